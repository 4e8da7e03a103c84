-- Oracle-free DISSect, offline: each pair's centred CLIPScore at an early-learning epoch
-- (hist_epoch, default a quarter of the run) minus its centred score at the run's last epoch.
-- In a run that memorises, mismatched pairs rise late, so their offline delta is the most
-- negative; keep the largest (the pairs not memorised late). Variables: run, hist_epoch, until_epoch.
WITH centred_scores AS (
    SELECT sample_id, epoch, centred(clipscore, run, epoch) AS c
    FROM history(getvariable('run'))
    WHERE clipscore IS NOT NULL
),
epochs AS (
    SELECT coalesce(getvariable('hist_epoch'), max(epoch) // 4) AS h, max(epoch) AS t FROM centred_scores
)
SELECT sample_id,
       any_value(c) FILTER (WHERE epoch = (SELECT h FROM epochs))
           - any_value(c) FILTER (WHERE epoch = (SELECT t FROM epochs)) AS score
FROM centred_scores
GROUP BY sample_id
HAVING count(*) FILTER (WHERE epoch IN ((SELECT h FROM epochs), (SELECT t FROM epochs))) = 2;

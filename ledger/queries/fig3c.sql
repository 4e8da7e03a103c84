-- Figure 3c: mean CLIPScore per epoch minus the epoch's mean over all samples,
-- clean vs noisy: the drift of the whole distribution taken out.
-- $run: the run; $oracle: oracle name, or NULL for the ground truth.
WITH centred_scores AS (
    SELECT epoch, sample_id, centred(clipscore, run, epoch) AS centred_clipscore
    FROM scores
    WHERE run = $run
)
SELECT s.epoch,
       c.is_clean,
       avg(s.centred_clipscore) AS mean_centred_clipscore,
       count(*) AS n
FROM centred_scores s
JOIN clean_split($run, $oracle) c USING (sample_id)
GROUP BY ALL
ORDER BY s.epoch, c.is_clean;

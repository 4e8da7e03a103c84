-- Figure 4a: CLIPScore distribution of the selected samples against all samples,
-- at chosen epochs (training stages: by default the last warm-up epoch, the first after it, the last).
-- Scored by the oracle when `oracle` names one (a model trained elsewhere: the paper's
-- "shifting toward cleaner samples" is the oracle's view), else by the run itself that epoch,
-- leaving out samples without a score (no scoring pass, not trained).
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; epochs: the epochs to show;
--   oracle: an oracle's name, or NULL; bins of 2 points.
WITH scored AS (
    SELECT s.epoch, s.selected,
           CASE WHEN getvariable('oracle') IS NULL THEN s.clipscore ELSE o.clipscore END AS clipscore
    FROM scores s
    LEFT JOIN oracle o ON o.name = getvariable('oracle') AND o.sample_id = s.sample_id
        AND o.dataset = (SELECT dataset FROM runs WHERE name = getvariable('run'))
    WHERE s.run = getvariable('run') AND list_contains(getvariable('epochs'), s.epoch)
)
SELECT epoch,
       subset,
       coalesce('oracle ' || getvariable('oracle'), 'the run') AS scored_by,
       floor(clipscore / 2) * 2 AS bin,
       count(*) AS n
FROM (
    SELECT epoch, clipscore, 'all' AS subset FROM scored
    UNION ALL
    SELECT epoch, clipscore, 'selected' AS subset FROM scored WHERE selected
)
WHERE clipscore IS NOT NULL
GROUP BY ALL
ORDER BY epoch, subset, bin;

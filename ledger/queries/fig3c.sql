-- Figure 3c: mean CLIPScore per epoch minus the epoch's mean over all samples,
-- clean vs noisy: the drift of the whole distribution taken out.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: oracle name, or NULL for the ground truth.
WITH centred_scores AS (
    SELECT epoch, sample_id, centred(clipscore, run, epoch) AS centred_clipscore
    FROM scores
    WHERE run = getvariable('run')
)
SELECT s.epoch,
       c.is_clean,
       avg(s.centred_clipscore) AS mean_centred_clipscore,
       count(*) AS n
FROM centred_scores s
JOIN clean_split(getvariable('run'), getvariable('oracle')) c USING (sample_id)
GROUP BY ALL
ORDER BY s.epoch, c.is_clean;

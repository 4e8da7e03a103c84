-- Figure 3c: mean CLIPScore per epoch minus the epoch's mean over all samples,
-- clean vs noisy, of one run (the paper's: full-data training): the drift of the whole
-- distribution taken out.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: oracle name, or NULL for the ground truth.
WITH by_class AS (
    SELECT s.epoch,
           is_clean(b.bits, s.sample_id) AS is_clean,
           avg(s.clipscore) AS mean_clipscore,
           count(s.clipscore) AS n
    FROM scores s,
         (SELECT clean_bits(getvariable('run'), getvariable('oracle')) AS bits) b
    WHERE s.run = getvariable('run')
    GROUP BY ALL
)
SELECT epoch,
       is_clean,
       mean_clipscore - sum(mean_clipscore * n) OVER (PARTITION BY epoch) / sum(n) OVER (PARTITION BY epoch)
           AS mean_centred_clipscore,
       n
FROM by_class
ORDER BY ALL;

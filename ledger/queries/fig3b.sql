-- Figure 3b: mean CLIPScore per epoch, clean vs noisy, of one run (the paper's: full-data training).
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: oracle name, or NULL for the ground truth.
SELECT s.epoch,
       is_clean(b.bits, s.sample_id) AS is_clean,
       avg(s.clipscore) AS mean_clipscore,
       count(s.clipscore) AS n
FROM scores s,
     (SELECT clean_bits(getvariable('run'), getvariable('oracle')) AS bits) b
WHERE s.run = getvariable('run')
GROUP BY ALL
ORDER BY ALL;

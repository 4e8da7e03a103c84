-- Figure 3b: mean CLIPScore per epoch, clean vs noisy.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: oracle name, or NULL for the ground truth.
SELECT s.epoch,
       c.is_clean,
       avg(s.clipscore) AS mean_clipscore,
       count(*) AS n
FROM scores s
JOIN clean_split(getvariable('run'), getvariable('oracle')) c USING (sample_id)
WHERE s.run = getvariable('run')
GROUP BY ALL
ORDER BY s.epoch, c.is_clean;

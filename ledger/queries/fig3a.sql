-- Figure 3a: CLIPScore histograms of one run (the paper's: full-data training) at chosen epochs, clean vs noisy
-- (clean: the oracle's top half of CLIPScore, or the ground truth when oracle is NULL).
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: oracle name or NULL; epochs: the epochs to show; bins of 2 points.
SELECT s.epoch,
       c.is_clean,
       floor(s.clipscore / 2) * 2 AS bin,
       count(*) AS n
FROM scores s
JOIN clean_split(getvariable('run'), getvariable('oracle')) c USING (sample_id)
WHERE s.run = getvariable('run') AND list_contains(getvariable('epochs'), s.epoch) AND s.clipscore IS NOT NULL
GROUP BY ALL
ORDER BY s.epoch, c.is_clean, bin;

-- Figure 3b: mean CLIPScore per epoch, clean vs noisy.
-- $run: the run; $oracle: oracle name, or NULL for the ground truth.
SELECT s.epoch,
       c.is_clean,
       avg(s.clipscore) AS mean_clipscore,
       count(*) AS n
FROM scores s
JOIN clean_split($run, $oracle) c USING (sample_id)
WHERE s.run = $run
GROUP BY ALL
ORDER BY s.epoch, c.is_clean;

-- Figure 3a: CLIPScore histograms of one run at chosen epochs, clean vs noisy
-- (clean: the oracle's top half of CLIPScore, or the ground truth when $oracle is NULL).
-- $run: the run; $oracle: oracle name or NULL; $epochs: the epochs to show; bins of 2 points.
SELECT s.epoch,
       c.is_clean,
       floor(s.clipscore / 2) * 2 AS bin,
       count(*) AS n
FROM scores s
JOIN clean_split($run, $oracle) c USING (sample_id)
WHERE s.run = $run AND list_contains($epochs, s.epoch)
GROUP BY ALL
ORDER BY s.epoch, c.is_clean, bin;

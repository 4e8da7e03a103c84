-- Figure 4b: CLIPScore distribution of each run at one epoch (by default the run's
-- last), clean vs noisy, and the gap between the clean and the noisy mean
-- (paper: 0.65 for full data, 2.14 for DISSect).
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to compare (one dataset); run: the run whose dataset defines the split;
--   oracle: oracle name, or NULL for the ground truth; epoch: the epoch to compare at.
WITH last AS (
    SELECT s.run, s.clipscore, c.is_clean
    FROM scores s
    JOIN clean_split(getvariable('run'), getvariable('oracle')) c ON c.sample_id = s.sample_id
    WHERE list_contains(getvariable('runs'), s.run) AND s.epoch = getvariable('epoch') AND s.clipscore IS NOT NULL
),
means AS (
    SELECT run,
           avg(clipscore) FILTER (WHERE is_clean) - avg(clipscore) FILTER (WHERE NOT is_clean) AS clean_minus_noisy
    FROM last
    GROUP BY run
)
SELECT l.run,
       l.is_clean,
       floor(l.clipscore / 2) * 2 AS bin,
       count(*) AS n,
       any_value(m.clean_minus_noisy) AS clean_minus_noisy
FROM last l
JOIN means m USING (run)
GROUP BY ALL
ORDER BY l.run, l.is_clean, bin;

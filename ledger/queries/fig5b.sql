-- Figure 5b: final retrieval (R@sum) against the selection ratio for the run's
-- strategy and random selection, mean and standard deviation over seeds.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: a run of the strategy; runs: the runs to draw from (one dataset).
SELECT r.strategy,
       r.ratio,
       avg(f.value) AS rsum_mean,
       coalesce(stddev_samp(f.value), 0) AS rsum_std,
       count(*) AS seeds
FROM final_metric('rsum') f
JOIN runs r ON r.name = f.run
WHERE list_contains(getvariable('runs'), f.run)
  AND r.strategy IN ((SELECT strategy FROM runs WHERE name = getvariable('run')), 'random')
GROUP BY ALL
ORDER BY r.strategy, r.ratio;

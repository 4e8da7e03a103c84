-- Figure 2: final zero-shot retrieval (R@sum on the test split) of each method at
-- each selection ratio, mean and standard deviation over seeds.
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to compare.
SELECT r.strategy,
       r.ratio,
       avg(f.value) AS rsum_mean,
       coalesce(stddev_samp(f.value), 0) AS rsum_std,
       count(*) AS seeds
FROM final_metric('rsum') f
JOIN runs r ON r.name = f.run
WHERE list_contains(getvariable('runs'), f.run)
GROUP BY ALL
ORDER BY r.strategy, r.ratio;

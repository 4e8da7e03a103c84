-- Table 1: final zero-shot retrieval of each method at each selection ratio,
-- mean and standard deviation over seeds (image->text TR@K, text->image IR@K, R@sum).
-- $runs: the runs to tabulate.
WITH final AS (
    SELECT e.run, e.metric, arg_max(e.value, e.step) AS value
    FROM evals e
    WHERE list_contains($runs, e.run)
    GROUP BY ALL
)
SELECT r.strategy,
       r.ratio,
       f.metric,
       avg(f.value) AS mean,
       coalesce(stddev_samp(f.value), 0) AS std,
       count(*) AS seeds
FROM final f
JOIN runs r ON r.name = f.run
GROUP BY ALL
ORDER BY r.ratio, r.strategy, f.metric;

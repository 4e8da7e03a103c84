-- One line per run: what it was, how it ended, and its last retrieval R@sum.
WITH last_eval AS (
    SELECT run, arg_max(value, step) AS rsum, max(epoch) + 1 AS evaluated_epochs
    FROM evals
    WHERE metric = 'rsum'
    GROUP BY run
)
SELECT r.name, r.strategy, r.ratio, r.model, r.epochs, r.seed, r.status,
       round(l.rsum, 1) AS last_rsum,
       round(epoch(r."end" - r.start)) AS seconds,
       r.dataset
FROM runs r
LEFT JOIN last_eval l ON l.run = r.name
ORDER BY r.start;

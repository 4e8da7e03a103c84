-- Table 6: wall-clock seconds each run needs to first reach the best R@sum of
-- the random-selection run and of the run itself, counting the compute and data
-- time of its steps (steps.t_data + t_score + t_train) up to that evaluation.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the selection run (DISSect); random: a random-selection run; runs: the runs to time.
WITH clock AS (
    SELECT run, step,
           sum(t_data + t_score + t_train) OVER (PARTITION BY run ORDER BY step) AS seconds
    FROM steps
    WHERE list_contains(getvariable('runs'), run)
),
curve AS (
    SELECT e.run, e.step, e.value AS rsum, c.seconds
    FROM evals e
    JOIN clock c ON c.run = e.run AND c.step = e.step - 1
    WHERE e.metric = 'rsum'
),
targets AS (
    SELECT (SELECT max(value) FROM evals WHERE run = getvariable('random') AND metric = 'rsum') AS random_best,
           (SELECT max(value) FROM evals WHERE run = getvariable('run') AND metric = 'rsum') AS run_best
)
SELECT r.name AS run, r.strategy, r.ratio,
       min(c.seconds) FILTER (WHERE c.rsum >= t.random_best) AS seconds_to_random_best,
       min(c.seconds) FILTER (WHERE c.rsum >= t.run_best) AS seconds_to_run_best,
       max(c.seconds) AS seconds_total
FROM curve c
JOIN runs r ON r.name = c.run,
targets t
GROUP BY ALL
ORDER BY seconds_total DESC;

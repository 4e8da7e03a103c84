-- Figure 5a: retrieval (R@sum) against training iterations for a run and a
-- full-data run, and the acceleration: the target is the lower of the two best
-- R@sums (both runs reach it); acceleration = the steps the full-data run needs
-- to first reach the target / the steps the run needs (paper: 2.85x).
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the selection run; full: the full-data run.
WITH curve AS (
    SELECT run, step AS iterations, value AS rsum  -- evals.step counts the steps done
    FROM evals
    WHERE metric = 'rsum' AND run IN (getvariable('run'), getvariable('full'))
),
target AS (
    SELECT min(best) AS rsum FROM (SELECT max(rsum) AS best FROM curve GROUP BY run)
),
reach AS (
    SELECT run, min(iterations) AS iterations
    FROM curve, target
    WHERE curve.rsum >= target.rsum
    GROUP BY run
)
SELECT c.run, c.iterations, c.rsum,
       (SELECT rsum FROM target) AS target_rsum,
       (SELECT iterations FROM reach WHERE run = getvariable('full'))
           / (SELECT iterations FROM reach WHERE run = getvariable('run')) AS acceleration
FROM curve c
ORDER BY c.run, c.iterations;

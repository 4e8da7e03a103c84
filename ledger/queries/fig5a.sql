-- Figure 5a: retrieval (the paper's R@Sum by default) against training iterations for
-- a run and a full-data run. Iterations are counted as the paper does: samples trained so
-- far / the batch size (x = 'trained'), or as steps taken (x = 'steps') or seconds of steps
-- (x = 'seconds'). The target is the lower of the two best values (both runs reach it);
-- acceleration = the x the full-data run needs to first reach it / the x the run needs
-- (paper: 2.85x). run_minus_full_at_same_x: the run's final value minus the full run's
-- at the run's final x, the last eval not beyond it (paper: +16.03 R@Sum at the same
-- number of iterations).
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the selection run; full: the
--   full-data run; metric: e.g. 'rsum4'; x: 'trained', 'steps' or 'seconds'.
WITH curve AS (
    SELECT run, CASE getvariable('x') WHEN 'steps' THEN steps WHEN 'seconds' THEN seconds ELSE trained END AS x,
           value
    FROM metric_curve(getvariable('metric'), [getvariable('run'), getvariable('full')])
),
target AS (
    SELECT min(best) AS value FROM (SELECT max(value) AS best FROM curve GROUP BY run)
),
reach AS (
    SELECT run, min(x) AS x FROM curve, target WHERE curve.value >= target.value GROUP BY run
),
run_end AS (
    SELECT arg_max(value, x) AS value, max(x) AS x FROM curve WHERE run = getvariable('run')
),
full_at_run_end AS (
    SELECT arg_max(c.value, c.x) AS value FROM curve c, run_end e WHERE c.run = getvariable('full') AND c.x <= e.x
)
SELECT c.run, getvariable('x') AS x_axis, c.x, c.value,
       (SELECT value FROM target) AS target,
       (SELECT x FROM reach WHERE run = getvariable('full')) / (SELECT x FROM reach WHERE run = getvariable('run'))
           AS acceleration,
       (SELECT value FROM run_end) - (SELECT value FROM full_at_run_end) AS run_minus_full_at_same_x
FROM curve c
ORDER BY c.run, c.x;

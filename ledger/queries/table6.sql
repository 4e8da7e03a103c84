-- Table 6: wall-clock seconds (of steps) each run needs to first reach the best value of
-- the random-selection run and of the selection run (DISSect in the paper), and the
-- percentage of the full-data run's total time saved, counted two ways:
--   seconds_*: every second of the steps (data, the scoring pass and the pick, training),
--     what a user waits for;
--   core_seconds_*: the steps less t_score (the scoring forward and the pick), what the
--     paper's Table 6 counts (its authors' README: only the algorithm's core), so its
--     58.3 h -> 21.8 h is set beside these.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the selection run; random: a
--   random-selection run; full: the full-data run; runs: the runs to time; metric: e.g. 'rsum4'.
WITH curve AS (
    SELECT * FROM metric_curve(getvariable('metric'), getvariable('runs'))
),
targets AS (
    SELECT max(value) FILTER (WHERE run = getvariable('random')) AS random_best,
           max(value) FILTER (WHERE run = getvariable('run')) AS selection_best,
           (SELECT max(seconds) FROM step_clock([getvariable('full')])) AS full_seconds,
           (SELECT max(core_seconds) FROM step_clock([getvariable('full')])) AS full_core_seconds
    FROM curve
),
timed AS (
    SELECT c.run,
           max(c.seconds) AS seconds_total,
           min(c.seconds) FILTER (WHERE c.value >= t.random_best) AS seconds_to_random_best,
           min(c.seconds) FILTER (WHERE c.value >= t.selection_best) AS seconds_to_selection_best,
           max(c.core_seconds) AS core_seconds_total,
           min(c.core_seconds) FILTER (WHERE c.value >= t.random_best) AS core_seconds_to_random_best,
           min(c.core_seconds) FILTER (WHERE c.value >= t.selection_best) AS core_seconds_to_selection_best,
           any_value(t.full_seconds) AS full_seconds,
           any_value(t.full_core_seconds) AS full_core_seconds
    FROM curve c, targets t
    GROUP BY c.run
)
SELECT r.name AS run, r.strategy, r.ratio,
       seconds_total,
       round(100 * (1 - seconds_total / full_seconds), 1) AS saved_pct_total,
       seconds_to_random_best,
       round(100 * (1 - seconds_to_random_best / full_seconds), 1) AS saved_pct_to_random_best,
       seconds_to_selection_best,
       round(100 * (1 - seconds_to_selection_best / full_seconds), 1) AS saved_pct_to_selection_best,
       core_seconds_total,
       round(100 * (1 - core_seconds_total / full_core_seconds), 1) AS core_saved_pct_total,
       core_seconds_to_random_best,
       round(100 * (1 - core_seconds_to_random_best / full_core_seconds), 1) AS core_saved_pct_to_random_best,
       core_seconds_to_selection_best,
       round(100 * (1 - core_seconds_to_selection_best / full_core_seconds), 1) AS core_saved_pct_to_selection_best
FROM timed JOIN runs r ON r.name = timed.run
ORDER BY seconds_total DESC;

-- Figure 5b: final retrieval (the paper's R@Sum by default) against the selection ratio
-- for the run's strategy and random selection, mean and standard deviation over seeds of one setting.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: a run of the strategy; runs: the runs to draw from (one dataset); metric.
SELECT method, setting, ratio, nominal_ratio, metric_mean, metric_std, n
FROM metric_by_setting(getvariable('metric'), getvariable('runs'))
WHERE method IN ((SELECT run_method(strategy, subset) FROM runs WHERE name = getvariable('run')), 'random')
ORDER BY method, setting, ratio;

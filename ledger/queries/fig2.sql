-- Figure 2: final zero-shot retrieval (the paper's R@Sum by default) of each method at
-- each selection ratio (coreset runs: the kept fraction), mean and standard deviation over seeds. Runs are averaged only
-- with runs of the same setting (model, epochs, batch size, lr, T_w, ...); n per point.
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to compare; metric: e.g. 'rsum4'.
SELECT method, setting, ratio, nominal_ratio, metric_mean, metric_std, n
FROM metric_by_setting(getvariable('metric'), getvariable('runs'))
ORDER BY method, setting, ratio;

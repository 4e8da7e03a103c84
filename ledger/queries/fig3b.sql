-- Figure 3b: mean CLIPScore per epoch, clean vs noisy, of one run (the paper's: full-data training).
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: oracle name, or NULL for the ground truth;
--   summarised: true to read the per-epoch summaries (class_stats).
SELECT epoch,
       is_clean,
       sum_clipscore / n_scored AS mean_clipscore,
       n_scored AS n
FROM class_stats([getvariable('run')], getvariable('oracle'))
ORDER BY ALL;

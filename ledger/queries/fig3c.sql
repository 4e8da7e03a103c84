-- Figure 3c: mean CLIPScore per epoch minus the epoch's mean over all samples,
-- clean vs noisy, of one run (the paper's: full-data training): the drift of the whole
-- distribution taken out.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: oracle name, or NULL for the ground truth;
--   summarised: true to read the per-epoch summaries (class_stats).
SELECT epoch,
       is_clean,
       sum_clipscore / n_scored
           - sum(sum_clipscore) OVER (PARTITION BY epoch) / sum(n_scored) OVER (PARTITION BY epoch)
           AS mean_centred_clipscore,
       n_scored AS n
FROM class_stats([getvariable('run')], getvariable('oracle'))
ORDER BY ALL;

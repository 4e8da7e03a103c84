-- Figure 4d: TP accuracy of each run, the fraction of its selected samples that are
-- clean (oracle's top half, or the ground truth when oracle is NULL): over all epochs,
-- over the epochs after its warm-up (DISSect-Warmup's T_w; every epoch for other
-- strategies) and at one epoch (by default the run's last), with the AUROC of delta and
-- of the CLIPScore for clean vs noisy at that epoch over the samples that have one
-- (paper TP accuracy: 65 % at r = 0.3, 61 % at r = 0.5). NULL: nothing to rank.
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to compare (one dataset); run: the run whose dataset defines the split;
--   oracle: oracle name, or NULL for the ground truth; epoch: the epoch of the last-epoch columns;
--   summarised: true to read the per-epoch summaries (class_stats).
WITH picks AS (
    SELECT run,
           tp_accuracy_of_counts(n_selected, is_clean, true) AS tp_accuracy,
           tp_accuracy_of_counts(n_selected, is_clean, epoch >= warmup_epochs(run)) AS tp_accuracy_after_warmup
    FROM class_stats(getvariable('runs'), getvariable('oracle'))
    GROUP BY run
),
last AS (
    SELECT run,
           tp_accuracy_of_counts(n_selected, is_clean, true) AS tp_accuracy_last_epoch,
           auroc_of_rank_sum(sum(rank_sum_delta) FILTER (WHERE is_clean), sum(n_delta) FILTER (WHERE is_clean),
                             sum(n_delta) FILTER (WHERE NOT is_clean)) AS auroc_delta,
           auroc_of_rank_sum(sum(rank_sum_clipscore) FILTER (WHERE is_clean), sum(n_scored) FILTER (WHERE is_clean),
                             sum(n_scored) FILTER (WHERE NOT is_clean)) AS auroc_clipscore
    FROM class_ranks(getvariable('runs'), getvariable('oracle'), getvariable('epoch'))
    GROUP BY run
)
SELECT r.name AS run, r.strategy, r.ratio,
       p.tp_accuracy, p.tp_accuracy_after_warmup, l.tp_accuracy_last_epoch,
       l.auroc_delta, l.auroc_clipscore
FROM runs r
JOIN picks p ON p.run = r.name
JOIN last l ON l.run = r.name
ORDER BY r.strategy, r.ratio, r.name;

-- Figure 4d: TP accuracy of each run, the fraction of its selected samples that are
-- clean (oracle's top half, or the ground truth when oracle is NULL): over all epochs,
-- over the epochs after its warm-up (DISSect-Warmup's T_w; every epoch for other
-- strategies) and at one epoch (by default the run's last), with the AUROC of delta and
-- of the CLIPScore for clean vs noisy at that epoch over the samples that have one
-- (paper TP accuracy: 65 % at r = 0.3, 61 % at r = 0.5). NULL: nothing to rank.
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to compare (one dataset); run: the run whose dataset defines the split;
--   oracle: oracle name, or NULL for the ground truth; epoch: the epoch of the last-epoch columns.
WITH split AS (
    SELECT * FROM clean_split(getvariable('run'), getvariable('oracle'))
),
picks AS (
    SELECT run,
           sum(n_selected * is_clean::INTEGER) / sum(n_selected) AS tp_accuracy,
           sum(n_selected * is_clean::INTEGER) FILTER (WHERE epoch >= warmup_epochs(run))
               / sum(n_selected) FILTER (WHERE epoch >= warmup_epochs(run)) AS tp_accuracy_after_warmup
    FROM class_stats(getvariable('runs'), getvariable('oracle'))
    GROUP BY run
),
last AS MATERIALIZED (
    SELECT s.run, s.selected, s.delta, s.clipscore, c.is_clean
    FROM scores s
    JOIN split c ON c.sample_id = s.sample_id
    WHERE list_contains(getvariable('runs'), s.run) AND s.epoch = getvariable('epoch')
),
last_picks AS (
    SELECT run, tp_accuracy(selected, is_clean) AS tp_accuracy_last_epoch FROM last GROUP BY run
),
clipscore_auroc AS (
    SELECT run, auroc(r, is_clean) AS auroc_clipscore
    FROM (SELECT run, is_clean, mid_rank(clipscore, run) AS r FROM last WHERE clipscore IS NOT NULL)
    GROUP BY run
),
delta_auroc AS (
    SELECT run, auroc(r, is_clean) AS auroc_delta
    FROM (SELECT run, is_clean, mid_rank(delta, run) AS r FROM last WHERE delta IS NOT NULL)
    GROUP BY run
)
SELECT r.name AS run, r.strategy, r.ratio,
       p.tp_accuracy, p.tp_accuracy_after_warmup, l.tp_accuracy_last_epoch,
       d.auroc_delta, c.auroc_clipscore
FROM runs r
JOIN picks p ON p.run = r.name
JOIN last_picks l ON l.run = r.name
LEFT JOIN clipscore_auroc c ON c.run = r.name
LEFT JOIN delta_auroc d ON d.run = r.name
ORDER BY r.strategy, r.ratio, r.name;

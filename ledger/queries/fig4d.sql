-- Figure 4d: TP accuracy of each run, the fraction of its selected samples that are
-- clean (oracle's top half, or the ground truth when oracle is NULL), over all
-- epochs and in the last epoch, with the AUROC of delta and of the CLIPScore for
-- clean vs noisy in the last epoch (paper TP accuracy: 65 % at r = 0.3, 61 % at r = 0.5).
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to compare (one dataset); run: the run whose dataset defines the split;
--   oracle: oracle name, or NULL for the ground truth.
WITH joined AS (
    SELECT s.run, s.epoch, s.selected, s.delta, s.clipscore, c.is_clean,
           s.epoch = max(s.epoch) OVER (PARTITION BY s.run) AS last_epoch
    FROM scores s
    JOIN clean_split(getvariable('run'), getvariable('oracle')) c ON c.sample_id = s.sample_id
    WHERE list_contains(getvariable('runs'), s.run)
),
last AS (
    SELECT * FROM joined WHERE last_epoch
),
clipscore_auroc AS (
    SELECT run, auroc(r, is_clean) AS auroc_clipscore
    FROM (SELECT run, is_clean, mid_rank(clipscore, run) AS r FROM last)
    GROUP BY run
),
delta_auroc AS (
    SELECT run, auroc(r, is_clean) AS auroc_delta
    FROM (SELECT run, is_clean, mid_rank(delta, run) AS r FROM last WHERE delta IS NOT NULL)
    GROUP BY run
)
SELECT r.name AS run, r.strategy, r.ratio,
       t.tp_accuracy, t.tp_accuracy_last_epoch,
       d.auroc_delta, c.auroc_clipscore
FROM runs r
JOIN (SELECT run,
             tp_accuracy(selected, is_clean) AS tp_accuracy,
             tp_accuracy(selected AND last_epoch, is_clean) AS tp_accuracy_last_epoch
      FROM joined GROUP BY run) t ON t.run = r.name
JOIN clipscore_auroc c ON c.run = r.name
LEFT JOIN delta_auroc d ON d.run = r.name
ORDER BY r.strategy, r.ratio, r.name;

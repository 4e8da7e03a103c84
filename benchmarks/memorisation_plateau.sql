-- The warm-up point the full-data runs matching `runs` show: the first epoch (1-based) at which
-- the AUROC of the current centred CLIPScore (clean vs noisy) comes within `tolerance` of its
-- highest over the run, mean over seeds: where the scores stop separating the pairs any better.
WITH ranked AS (
    SELECT run, epoch, is_clean, mid_rank(c, run || '/' || epoch) AS r FROM centred_truth(getvariable('runs'))
),
curve AS (
    SELECT epoch, avg(auroc) AS auroc
    FROM (SELECT run, epoch, auroc(r, is_clean) AS auroc FROM ranked GROUP BY run, epoch)
    GROUP BY epoch
)
SELECT min(epoch) + 1 AS plateau_epoch, round(max(auroc), 3) AS plateau_auroc,
       (SELECT round(max(auroc), 3) FROM curve) AS highest_auroc
FROM curve
WHERE auroc >= (SELECT max(auroc) FROM curve) - getvariable('tolerance');

-- Does DISSect's delta separate once the model memorises? Per epoch t of the full-data runs
-- whose names match `runs`, the AUROC (clean vs noisy, by the ground truth) of the current
-- centred CLIPScore, of its running mean over epochs 0..t, and of delta against each warm-up
-- point T_w in `warmup_points` (the score of epoch T_w - 1, DISSect-Warmup's last warm-up
-- epoch, minus that of epoch t, for t >= T_w); above 0.5 means the key ranks clean pairs first.
-- Mean over seeds, every `every`-th epoch and the last.
WITH centred_scores AS (SELECT * FROM centred_truth(getvariable('runs'))),
keys AS (
    SELECT run, epoch, sample_id, is_clean, c,
           avg(c) OVER (PARTITION BY run, sample_id ORDER BY epoch) AS running_mean
    FROM centred_scores
),
points AS (SELECT unnest(getvariable('warmup_points')) AS tw),
by_key AS (
    SELECT run, epoch, is_clean, 'clipscore' AS key, c AS value FROM keys
    UNION ALL
    SELECT run, epoch, is_clean, 'running_mean', running_mean FROM keys
    UNION ALL
    SELECT k.run, k.epoch, k.is_clean, 'delta_tw' || lpad(p.tw::VARCHAR, 2, '0'), h.c - k.c
    FROM keys k
    JOIN points p ON k.epoch >= p.tw
    JOIN keys h ON h.run = k.run AND h.sample_id = k.sample_id AND h.epoch = p.tw - 1
),
ranked AS (
    SELECT run, epoch, key, is_clean, mid_rank(value, run || '/' || epoch || '/' || key) AS r
    FROM by_key
),
aurocs AS (
    SELECT run, epoch, key, auroc(r, is_clean) AS auroc
    FROM ranked
    GROUP BY run, epoch, key
)
PIVOT (
    SELECT epoch + 1 AS epoch, key, auroc, count(*) OVER (PARTITION BY epoch, key) AS seeds
    FROM aurocs
    WHERE (epoch + 1) % getvariable('every') = 0 OR epoch = (SELECT max(epoch) FROM aurocs)
)
ON key
USING round(avg(auroc), 3)
GROUP BY epoch, seeds
ORDER BY epoch;

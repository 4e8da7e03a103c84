-- The regime map: for each (train pairs, epochs, warm-up point) of the regime runs,
-- dissect-warmup's final R@sum minus random's at the same size, length and seed,
-- as mean ± std over seeds, and the clean fraction of dissect-warmup's picks after
-- its warm-up.
WITH final AS (
    SELECT e.run, arg_max(e.value, e.step) AS rsum FROM evals e WHERE e.metric = 'rsum' GROUP BY e.run
),
regime AS (
    SELECT r.name, r.strategy, r.epochs, r.seed, (r.config->>'warmup_epochs')::INTEGER AS warmup_epochs,
           (SELECT count(*) FROM samples m WHERE m.dataset = r.dataset AND m.split = 'train') AS n_train,
           f.rsum
    FROM runs r JOIN final f ON f.run = r.name
    WHERE r.name LIKE 'regime-%' AND r.status = 'completed'
),
picks AS (
    SELECT s.run, tp_accuracy(s.selected, NOT m.is_noisy) AS clean_after_warmup
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE r.name LIKE 'regime-%' AND r.strategy = 'dissect-warmup'
      AND s.epoch >= (r.config->>'warmup_epochs')::INTEGER
    GROUP BY s.run
)
SELECT d.n_train, d.epochs, d.warmup_epochs,
       round(avg(d.rsum), 1) AS dissect_rsum,
       round(avg(rnd.rsum), 1) AS random_rsum,
       round(avg(d.rsum - rnd.rsum), 1) AS dissect_minus_random,
       round(coalesce(stddev_samp(d.rsum - rnd.rsum), 0), 1) AS difference_std,
       round(avg(p.clean_after_warmup), 3) AS dissect_clean_after_warmup,
       count(*) AS seeds
FROM regime d
JOIN regime rnd ON rnd.strategy = 'random' AND rnd.n_train = d.n_train AND rnd.epochs = d.epochs
                AND rnd.seed = d.seed
LEFT JOIN picks p ON p.run = d.name
WHERE d.strategy = 'dissect-warmup'
GROUP BY ALL
ORDER BY d.n_train, d.epochs, d.warmup_epochs;

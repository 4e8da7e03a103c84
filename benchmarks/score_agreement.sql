-- dissect-warmup runs by scoring pass: TP accuracy after the warm-up (clean share of the
-- picks), final R@Sum, and step time (scoring + training) against the full runs', mean and
-- standard deviation over seeds.
WITH per_run AS (
    SELECT r.name, r.seed,
           coalesce(r.config->>'score_image_size', 'model''s') AS score_image_size,
           r.config->>'score_precision' AS score_precision,
           (SELECT tp_accuracy(s.selected, NOT m.is_noisy)
            FROM scores s JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
            WHERE s.run = r.name AND s.epoch >= warmup_epochs(r.name)) AS tp_accuracy,
           f.value AS rsum4,
           (SELECT avg(t_score + t_train) FROM steps WHERE run = r.name AND epoch > 0) AS step_s
    FROM runs r JOIN final_metric('rsum4') f ON f.run = r.name
    WHERE r.strategy = 'dissect-warmup'
),
full_step AS (
    SELECT avg(t_score + t_train) AS step_s
    FROM steps JOIN runs ON runs.name = steps.run
    WHERE runs.strategy = 'full' AND epoch > 0
)
SELECT score_image_size, score_precision, count(*) AS seeds,
       round(avg(tp_accuracy), 3) AS tp_accuracy, round(stddev_samp(tp_accuracy), 3) AS tp_sd,
       round(avg(rsum4), 1) AS rsum4, round(stddev_samp(rsum4), 1) AS rsum4_sd,
       round(avg(step_s) / (SELECT step_s FROM full_step), 3) AS step_ratio_to_full
FROM per_run
GROUP BY ALL
ORDER BY step_ratio_to_full DESC;

-- How well each curation rule's ranking finds the clean pairs, against the ground truth
-- (samples.is_noisy): precision (clean fraction) of the kept set at keep 0.3 / 0.5 / 0.7
-- and the AUROC of the ranking. `ranking` (rule, seed, sample_id, score) is registered by
-- benchmarks/curation.py. Variables: dataset.
WITH ranked AS (
    SELECT k.rule, k.seed, NOT m.is_noisy AS is_clean,
           row_number() OVER (PARTITION BY k.rule, k.seed ORDER BY k.score DESC, k.sample_id) AS rank,
           count(*) OVER (PARTITION BY k.rule, k.seed) AS n,
           mid_rank(k.score, k.rule || k.seed) AS r
    FROM ranking k
    JOIN samples m ON m.dataset = getvariable('dataset') AND m.sample_id = k.sample_id
),
per_seed AS (
    SELECT rule, seed,
           avg(is_clean::DOUBLE) FILTER (WHERE rank <= 0.3 * n) AS precision_30,
           avg(is_clean::DOUBLE) FILTER (WHERE rank <= 0.5 * n) AS precision_50,
           avg(is_clean::DOUBLE) FILTER (WHERE rank <= 0.7 * n) AS precision_70,
           auroc(r, is_clean) AS auroc
    FROM ranked
    GROUP BY rule, seed
)
SELECT rule,
       printf('%.3f ± %.3f', avg(precision_30), coalesce(stddev_samp(precision_30), 0)) AS precision_keep_30,
       printf('%.3f ± %.3f', avg(precision_50), coalesce(stddev_samp(precision_50), 0)) AS precision_keep_50,
       printf('%.3f ± %.3f', avg(precision_70), coalesce(stddev_samp(precision_70), 0)) AS precision_keep_70,
       printf('%.3f ± %.3f', avg(auroc), coalesce(stddev_samp(auroc), 0)) AS auroc,
       count(*) AS seeds
FROM per_seed
GROUP BY rule
ORDER BY avg(auroc) DESC;

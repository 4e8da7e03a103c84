-- Per method of one setting (runs named PREFIX || method || ['-r' ratio] || '-s' seed): the final
-- METRIC as mean ± std over seeds, its difference from random seed by seed (mean ± std), the
-- fraction trained, and the clean share of the picks by the ground truth. Variables: prefix, metric.
WITH method AS (
    SELECT name AS run, seed, dataset,
           regexp_replace(substr(name, length(getvariable('prefix')) + 1), '(-r[0-9.]+)?-s[0-9]+$', '') AS method
    FROM runs
    WHERE starts_with(name, getvariable('prefix')) AND status = 'completed'
),
per_run AS (
    SELECT w.method, w.seed, f.value, t.trained
    FROM method w
    JOIN final_metric(getvariable('metric')) f ON f.run = w.run
    JOIN run_trained((SELECT list(run) FROM method)) t ON t.run = w.run
),
picks AS (
    SELECT w.method, tp_accuracy(s.selected, NOT m.is_noisy) AS clean_picks
    FROM scores s
    JOIN method w ON w.run = s.run
    JOIN samples m ON m.dataset = w.dataset AND m.sample_id = s.sample_id
    GROUP BY 1
),
against_random AS (
    SELECT p.method, p.value - q.value AS gain
    FROM per_run p JOIN per_run q ON q.method = 'random' AND q.seed = p.seed
)
SELECT p.method,
       round(avg(p.trained), 3) AS trained,
       printf('%.1f ± %.1f', avg(p.value), coalesce(stddev_samp(p.value), 0)) AS final_metric,
       (SELECT printf('%+.1f ± %.1f', avg(gain), coalesce(stddev_samp(gain), 0))
        FROM against_random a WHERE a.method = p.method) AS minus_random,
       round(any_value(k.clean_picks), 3) AS clean_picks,
       count(*) AS seeds
FROM per_run p
LEFT JOIN picks k ON k.method = p.method
GROUP BY p.method
ORDER BY avg(p.value) DESC;

-- The paper's ablations on one benchmark (runs named `pattern`): final R@Sum (rsum4) as
-- mean ± std over seeds, and the fraction trained, per strategy and the one setting each
-- ablation varies: DISSect-Momentum's beta, DISSect-Warmup's T_w, and the ratio (Fig. 5b:
-- dissect-warmup beside random). Variables: pattern.
WITH final AS (
    SELECT run, value AS rsum4 FROM final_metric('rsum4') WHERE run LIKE getvariable('pattern')
),
runs_of AS (
    SELECT r.name, r.strategy, r.ratio, r.seed,
           CASE r.strategy WHEN 'dissect-momentum' THEN 'beta=' || (r.config->>'momentum')
                           WHEN 'dissect-warmup' THEN 'T_w=' || (r.config->>'warmup_epochs')
                           ELSE '' END AS setting
    FROM runs r
    WHERE r.name LIKE getvariable('pattern') AND r.status = 'completed'
      AND r.strategy IN ('dissect-momentum', 'dissect-warmup', 'random', 'full')
)
SELECT o.strategy, o.setting, o.ratio,
       round(avg(t.trained), 3) AS trained,
       round(avg(f.rsum4), 1) AS rsum4_mean,
       round(coalesce(stddev_samp(f.rsum4), 0), 1) AS rsum4_std,
       count(*) AS seeds
FROM runs_of o
JOIN final f ON f.run = o.name
JOIN run_trained((SELECT list(name) FROM runs WHERE name LIKE getvariable('pattern'))) t ON t.run = o.name
GROUP BY ALL
ORDER BY o.strategy, o.setting, o.ratio;

-- Per method of one setting (and the kept fraction of its subset, pool; the last proxy epoch it read, proxy_until;
-- its epochs: a coreset may be trained for more): the proxy's cost is counted whole, even where proxy_until is set. the final metric as mean ± std over seeds, and what it cost
-- in samples forwarded and back-propagated, as a fraction of full training's (the proxy
-- run, which trains every sample every epoch). A coreset's cost includes what its rule
-- needed: the proxy run (history rules) or the oracle's training and scoring (oracle rules).
-- Variables: setting_runs, the setting's run names (LIKE); metric; proxy_runs, oracle_runs (LIKE).
WITH cost AS (
    SELECT s.run,
           sum(s.n_selected) AS backward,
           sum(s.n_selected) + sum(CASE WHEN r.strategy IN ('full', 'random', 'oracle-clean')
                                             AND NOT coalesce((r.config->>'score_all')::BOOLEAN, false)
                                        THEN 0 ELSE s.batch_size END) AS forward
    FROM steps s JOIN runs r ON r.name = s.run
    GROUP BY s.run
),
proxy AS (
    SELECT r.seed, c.forward, c.backward FROM runs r JOIN cost c ON c.run = r.name WHERE r.name LIKE getvariable('proxy_runs')
),
oracle AS (   -- its training, and one forward of every sample to score it
    SELECT r.seed, c.forward + (SELECT count(*) FROM oracle o WHERE o.name = r.name) AS forward, c.backward
    FROM runs r JOIN cost c ON c.run = r.name WHERE r.name LIKE getvariable('oracle_runs')
),
per_run AS (
    SELECT run_method(r.strategy, r.subset) AS method, run_ratio(r.ratio, r.subset) AS ratio,
           (r.subset->>'keep')::DOUBLE AS pool, (r.subset->>'until_epoch')::INTEGER AS proxy_until, r.epochs, f.value,
           (c.forward + CASE WHEN r.subset->>'run' IS NOT NULL AND r.subset->>'rule' NOT IN ('random')
                                  AND r.subset->>'rule' NOT LIKE 'oracle-%' THEN p.forward
                             WHEN r.subset->>'rule' LIKE 'oracle-%' THEN o.forward ELSE 0 END) / p.forward AS forward,
           (c.backward + CASE WHEN r.subset->>'run' IS NOT NULL AND r.subset->>'rule' NOT IN ('random')
                                   AND r.subset->>'rule' NOT LIKE 'oracle-%' THEN p.backward
                              WHEN r.subset->>'rule' LIKE 'oracle-%' THEN o.backward ELSE 0 END) / p.backward
               AS backward
    FROM runs r
    JOIN final_metric(getvariable('metric')) f ON f.run = r.name
    JOIN cost c ON c.run = r.name
    JOIN proxy p ON p.seed = r.seed
    JOIN oracle o ON o.seed = r.seed
    WHERE r.name LIKE getvariable('setting_runs') AND r.name NOT LIKE getvariable('oracle_runs') AND r.status = 'completed'
)
SELECT method, ratio, pool, proxy_until, epochs,
       printf('%.1f ± %.1f', avg(value), coalesce(stddev_samp(value), 0)) AS final_metric,
       round(avg(forward), 2) AS forwarded_vs_full,
       round(avg(backward), 2) AS backpropagated_vs_full,
       count(*) AS seeds
FROM per_run
GROUP BY method, ratio, pool, proxy_until, epochs
ORDER BY avg(value) DESC;

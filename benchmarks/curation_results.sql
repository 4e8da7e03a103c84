-- Per method of one setting: the final metric as mean ± std over seeds, and what it cost in
-- samples forwarded and back-propagated, as a fraction of full training's (the tiny proxy run,
-- which trains every sample every epoch). Grouped by the model trained, the kept fraction of
-- its subset (pool), the proxy the subset was curated from and the last proxy epoch it read
-- (proxy_until), and its epochs (a coreset may be trained for more). A coreset's cost includes
-- what its rule needed: the epochs of its proxy run that the rule read (history rules), or the
-- oracle's training and scoring (oracle rules); a cheaper proxy model's samples count as many as
-- tiny's (docs/curation.md gives their compute).
-- Variables: setting_runs, the setting's run names (LIKE); metric; proxy_runs, oracle_runs (LIKE);
-- seeds, the seeds reported (a list: the ledger may hold more).
WITH cost_by_epoch AS (
    SELECT s.run, s.epoch,
           sum(s.n_selected) AS backward,
           sum(s.n_selected) + sum(CASE WHEN r.strategy IN ('full', 'random', 'oracle-clean')
                                             AND NOT coalesce((r.config->>'score_all')::BOOLEAN, false)
                                        THEN 0 ELSE s.batch_size END) AS forward
    FROM steps s JOIN runs r ON r.name = s.run
    GROUP BY s.run, s.epoch
),
cost AS (
    SELECT run, sum(forward) AS forward, sum(backward) AS backward FROM cost_by_epoch GROUP BY run
),
full_training AS (
    SELECT r.seed, c.forward, c.backward FROM runs r JOIN cost c ON c.run = r.name WHERE r.name LIKE getvariable('proxy_runs')
),
oracle AS (   -- its training, and one forward of every sample to score it
    SELECT r.seed, c.forward + (SELECT count(*) FROM oracle o WHERE o.name = r.name) AS forward, c.backward
    FROM runs r JOIN cost c ON c.run = r.name WHERE r.name LIKE getvariable('oracle_runs')
),
curated_from AS (   -- the proxy epochs a history rule's subset read
    SELECT r.name AS run, sum(e.forward) AS forward, sum(e.backward) AS backward
    FROM runs r
    JOIN cost_by_epoch e ON e.run = r.subset->>'run'
                        AND e.epoch <= coalesce((r.subset->>'until_epoch')::INTEGER, e.epoch)
    WHERE r.subset->>'rule' <> 'random' AND r.subset->>'rule' NOT LIKE 'oracle-%'
    GROUP BY r.name
),
per_run AS (
    SELECT r.config->>'model' AS model, run_method(r.strategy, r.subset) AS method, run_ratio(r.ratio, r.subset) AS ratio,
           (r.subset->>'keep')::DOUBLE AS pool,
           regexp_extract(r.subset->>'run', '-proxy-?(.*)-s[0-9]+$', 1) AS proxy,
           (r.subset->>'until_epoch')::INTEGER AS proxy_until, r.epochs, f.value,
           (c.forward + CASE WHEN r.subset->>'rule' LIKE 'oracle-%' THEN o.forward
                             ELSE coalesce(h.forward, 0) END) / p.forward AS forward,
           (c.backward + CASE WHEN r.subset->>'rule' LIKE 'oracle-%' THEN o.backward
                              ELSE coalesce(h.backward, 0) END) / p.backward AS backward
    FROM runs r
    JOIN final_metric(getvariable('metric')) f ON f.run = r.name
    JOIN cost c ON c.run = r.name
    JOIN full_training p ON p.seed = r.seed
    JOIN oracle o ON o.seed = r.seed
    LEFT JOIN curated_from h ON h.run = r.name
    WHERE r.name LIKE getvariable('setting_runs') AND r.name NOT LIKE getvariable('oracle_runs') AND r.status = 'completed'
      AND list_contains(getvariable('seeds'), r.seed)
)
SELECT model, method, ratio, pool, nullif(proxy, '') AS proxy, proxy_until, epochs,
       printf('%.1f ± %.1f', avg(value), coalesce(stddev_samp(value), 0)) AS final_metric,
       round(avg(forward), 2) AS forwarded_vs_full,
       round(avg(backward), 2) AS backpropagated_vs_full,
       count(*) AS seeds
FROM per_run
GROUP BY ALL
ORDER BY avg(value) DESC;

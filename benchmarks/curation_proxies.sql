-- How good a ranking cheaper proxies give, and what they cost. `ranking` (proxy, run, until_epoch,
-- rule, seed, sample_id, score) is registered by benchmarks/curation.py: per seed, the full tiny
-- proxy (proxy 'full'), the same run read up to an epoch ('untilE'), and full runs of cheaper
-- models. Per proxy and rule: the AUROC of the ranking (clean vs noisy by samples.is_noisy), its
-- difference from the full proxy's seed by seed, whether that is within 0.02, and the proxy's
-- cost as a fraction of the full tiny proxy's: samples forwarded, and compute (the steps' data,
-- scoring and training seconds). Variables: dataset.
WITH ranked AS (
    SELECT k.proxy, k.rule, k.seed, NOT m.is_noisy AS is_clean,
           mid_rank(k.score, k.proxy || '/' || k.rule || '/' || k.seed) AS r
    FROM ranking k
    JOIN samples m ON m.dataset = getvariable('dataset') AND m.sample_id = k.sample_id
),
per_seed AS (
    SELECT proxy, rule, seed, auroc(r, is_clean) AS auroc FROM ranked GROUP BY proxy, rule, seed
),
proxies AS (
    SELECT DISTINCT proxy, seed, run, until_epoch FROM ranking
),
spent AS (
    SELECT p.proxy, p.seed, sum(s.batch_size) AS forward,
           sum(coalesce(s.t_data, 0) + coalesce(s.t_score, 0) + coalesce(s.t_train, 0)) AS seconds
    FROM proxies p
    JOIN steps s ON s.run = p.run AND s.epoch <= coalesce(p.until_epoch, s.epoch)
    GROUP BY p.proxy, p.seed
),
relative AS (
    SELECT s.proxy, s.seed, s.forward / f.forward AS forward, s.seconds / f.seconds AS compute
    FROM spent s JOIN spent f ON f.proxy = 'full' AND f.seed = s.seed
)
SELECT a.proxy, a.rule,
       printf('%.3f ± %.3f', avg(a.auroc), coalesce(stddev_samp(a.auroc), 0)) AS auroc,
       printf('%+.3f ± %.3f', avg(a.auroc - f.auroc), coalesce(stddev_samp(a.auroc - f.auroc), 0)) AS minus_full_proxy,
       abs(avg(a.auroc - f.auroc)) <= 0.02 AS within_002,
       round(avg(c.forward), 2) AS forwarded_vs_full,
       round(avg(c.compute), 2) AS compute_vs_full,
       count(*) AS seeds
FROM per_seed a
JOIN per_seed f ON f.proxy = 'full' AND f.rule = a.rule AND f.seed = a.seed
JOIN relative c ON c.proxy = a.proxy AND c.seed = a.seed
GROUP BY a.proxy, a.rule
ORDER BY a.rule, avg(c.compute);

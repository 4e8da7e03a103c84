-- When does a run's history know most? For the proxy runs whose names match `proxy_runs`, the AUROC
-- (clean vs noisy by the ground truth) of each oracle-free rule as if the run had stopped at
-- epoch e: final-clipscore (the score at e), mean-clipscore (the mean centred score up to e)
-- and delta (the centred score at `hist_epoch`, minus that at e), mean over the runs of the
-- seeds listed in `seeds` (the ledger may hold more).
WITH centred_scores AS (
    SELECT c.* FROM centred_truth(getvariable('proxy_runs')) c JOIN runs r ON r.name = c.run
    WHERE list_contains(getvariable('seeds'), r.seed)
),
keys AS (
    SELECT run, epoch, is_clean,
           c AS final_clipscore,
           avg(c) OVER (PARTITION BY run, sample_id ORDER BY epoch) AS mean_clipscore,
           any_value(c) FILTER (WHERE epoch = getvariable('hist_epoch')) OVER (PARTITION BY run, sample_id) - c AS delta
    FROM centred_scores
),
ranks AS (
    SELECT run, epoch, is_clean,
           mid_rank(final_clipscore, run || '/' || epoch) AS final_rank,
           mid_rank(mean_clipscore, run || '/' || epoch) AS mean_rank,
           mid_rank(delta, run || '/' || epoch) AS delta_rank
    FROM keys
),
aurocs AS (
    SELECT run, epoch,
           auroc(final_rank, is_clean) AS final_clipscore,
           auroc(mean_rank, is_clean) AS mean_clipscore,
           CASE WHEN epoch > getvariable('hist_epoch') THEN auroc(delta_rank, is_clean) END AS delta
    FROM ranks
    GROUP BY run, epoch
)
SELECT epoch, round(avg(final_clipscore), 3) AS final_clipscore, round(avg(mean_clipscore), 3) AS mean_clipscore,
       round(avg(delta), 3) AS delta, count(*) AS seeds
FROM aurocs
GROUP BY epoch
ORDER BY epoch;

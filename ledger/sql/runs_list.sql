-- One line per run: what it was, how it ended, the epochs it wrote of those planned, the
-- fraction of what it loaded that it trained on, its last R@Sum (the paper's four recalls)
-- and its wall time so far.
WITH trained AS (
    SELECT run, trained_share(n_selected, batch_size, n_pruned) AS trained_fraction, max(epoch) + 1 AS epochs_done
    FROM steps GROUP BY run
)
SELECT r.name, r.strategy, r.ratio, r.model, r.seed, r.status,
       coalesce(t.epochs_done, 0) || '/' || r.epochs AS epochs,
       round(t.trained_fraction, 3) AS trained_fraction,
       round(l.value, 1) AS last_rsum4,
       round(epoch(coalesce(r."end", now()::TIMESTAMP) - r.start)) AS seconds,
       r.dataset
FROM runs r
LEFT JOIN final_metric('rsum4') l ON l.run = r.name
LEFT JOIN trained t ON t.run = r.name
ORDER BY r.start;

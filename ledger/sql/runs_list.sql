-- One line per run: what it was, how it ended, the fraction of what it loaded that it
-- trained on, and its last R@Sum (the paper's four recalls).
WITH trained AS (
    SELECT run, sum(n_selected) / sum(batch_size) AS trained_fraction FROM steps GROUP BY run
)
SELECT r.name, r.strategy, r.ratio, r.model, r.epochs, r.seed, r.status,
       round(t.trained_fraction, 3) AS trained_fraction,
       round(l.value, 1) AS last_rsum4,
       round(epoch(r."end" - r.start)) AS seconds,
       r.dataset
FROM runs r
LEFT JOIN final_metric('rsum4') l ON l.run = r.name
LEFT JOIN trained t ON t.run = r.name
ORDER BY r.start;

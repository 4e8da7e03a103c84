-- One line per run: what it was, how it ended, and its last R@Sum (the paper's four recalls).
SELECT r.name, r.strategy, r.ratio, r.model, r.epochs, r.seed, r.status,
       round(l.value, 1) AS last_rsum4,
       round(epoch(r."end" - r.start)) AS seconds,
       r.dataset
FROM runs r
LEFT JOIN final_metric('rsum4') l ON l.run = r.name
ORDER BY r.start;

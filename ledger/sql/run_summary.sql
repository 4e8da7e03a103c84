-- Per run: final retrieval, how clean the selected samples were, wall time.
-- Clean is the dataset's ground truth (samples.is_noisy); NULL where it has none.
-- $1: a list of run names.
WITH picks AS (
    SELECT s.run, s.epoch,
           count(*) FILTER (WHERE s.selected) AS n_selected,
           count(*) FILTER (WHERE s.selected AND NOT m.is_noisy) AS n_clean_selected
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE list_contains($1, s.run)
    GROUP BY ALL
),
clean AS (
    SELECT run,
           sum(n_clean_selected) / sum(n_selected) AS clean_selected,
           arg_max(n_clean_selected / n_selected, epoch) AS clean_selected_last_epoch
    FROM picks
    GROUP BY run
),
last_eval AS (
    SELECT run, arg_max(value, step) AS rsum
    FROM evals
    WHERE metric = 'rsum' AND list_contains($1, run)
    GROUP BY run
)
SELECT r.name AS run, r.strategy, r.ratio,
       round(l.rsum, 1) AS rsum,
       round(c.clean_selected, 3) AS clean_selected,
       round(c.clean_selected_last_epoch, 3) AS clean_selected_last_epoch,
       round(epoch(r."end" - r.start), 1) AS seconds
FROM runs r
LEFT JOIN last_eval l ON l.run = r.name
LEFT JOIN clean c ON c.run = r.name
WHERE list_contains($1, r.name)
ORDER BY r.start;

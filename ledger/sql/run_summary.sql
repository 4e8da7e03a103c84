-- Per run: final retrieval (the paper's R@Sum, rsum4), how clean the selected samples
-- were, the fraction of the samples it trained on, wall time.
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
trained AS (
    SELECT run, sum(n_selected) / sum(batch_size) AS trained_fraction FROM steps WHERE list_contains($1, run)
    GROUP BY run
)
SELECT r.name AS run, r.strategy, r.ratio,
       round(l.value, 1) AS rsum4,
       round(t.trained_fraction, 3) AS trained_fraction,
       round(c.clean_selected, 3) AS clean_selected,
       round(c.clean_selected_last_epoch, 3) AS clean_selected_last_epoch,
       round(epoch(r."end" - r.start), 1) AS seconds
FROM runs r
LEFT JOIN final_metric('rsum4') l ON l.run = r.name
LEFT JOIN trained t ON t.run = r.name
LEFT JOIN clean c ON c.run = r.name
WHERE list_contains($1, r.name)
ORDER BY r.start;

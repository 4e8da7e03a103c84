-- Per run: final retrieval (the paper's R@Sum, rsum4), how clean the selected samples
-- were, the fraction of the dataset's train samples it trained on per epoch (a run on a
-- curated subset counts the subset's share: run_ratio, run_trained), wall time.
-- Clean is the dataset's ground truth (samples.is_noisy); NULL where it has none.
-- Variables: runs, a list of run names.
WITH picks AS (
    SELECT s.run, s.selected, NOT m.is_noisy AS is_clean,
           s.epoch = max(s.epoch) OVER (PARTITION BY s.run) AS last_epoch
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE list_contains(getvariable('runs'), s.run)
),
clean AS (
    SELECT run,
           tp_accuracy(selected, is_clean) AS clean_selected,
           tp_accuracy(selected AND last_epoch, is_clean) AS clean_selected_last_epoch
    FROM picks
    GROUP BY run
),
trained AS (
    SELECT run, trained AS trained_fraction FROM run_trained(getvariable('runs'))
)
SELECT r.name AS run, r.strategy, run_ratio(r.ratio, r.subset) AS ratio,
       round(l.value, 1) AS rsum4,
       round(t.trained_fraction, 3) AS trained_fraction,
       round(c.clean_selected, 3) AS clean_selected,
       round(c.clean_selected_last_epoch, 3) AS clean_selected_last_epoch,
       round(epoch(r."end" - r.start), 1) AS seconds
FROM runs r
LEFT JOIN final_metric('rsum4') l ON l.run = r.name
LEFT JOIN trained t ON t.run = r.name
LEFT JOIN clean c ON c.run = r.name
WHERE list_contains(getvariable('runs'), r.name)
ORDER BY r.start;

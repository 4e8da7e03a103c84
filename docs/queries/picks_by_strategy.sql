-- What each strategy's picks look like, per strategy and ratio over the completed runs
-- matching `pattern` (mean over seeds): the clean fraction of its picks (ground truth),
-- how sticky its selection is (the chance a sample picked at its previous visit is
-- picked again; random selection gives r), the fraction of what it loaded that it
-- trained on, and the AUROC of low loss for clean vs noisy over the samples it scored
-- in its last epoch (the ranking key of small-loss and, at its low end, of SCAN; for
-- InfoBatch the loss of the samples it trained).
-- In the duckdb shell: SET VARIABLE pattern = 'shapes-shuffle-%';
WITH labelled AS (
    SELECT s.run, s.epoch, s.sample_id, s.selected, s.loss, NOT m.is_noisy AS is_clean, r.epochs
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE s.run LIKE getvariable('pattern') AND r.status = 'completed'
),
visits AS (
    SELECT run, selected, lag(selected) OVER (PARTITION BY run, sample_id ORDER BY epoch) AS picked_last_visit
    FROM labelled
),
per_run AS (
    SELECT run,
           tp_accuracy(selected, is_clean) AS clean_picks
    FROM labelled GROUP BY run
),
sticky AS (
    SELECT run, avg(selected::DOUBLE) FILTER (WHERE picked_last_visit) AS p_again FROM visits GROUP BY run
),
loss_auroc AS (
    SELECT run, auroc(r, is_clean) AS auroc_low_loss
    FROM (SELECT run, is_clean, mid_rank(-loss, run) AS r FROM labelled WHERE epoch = epochs - 1 AND loss IS NOT NULL)
    GROUP BY run
),
trained AS (
    SELECT run, trained_share(n_selected, batch_size, n_pruned) AS trained_fraction FROM steps GROUP BY run
)
SELECT r.strategy, r.ratio,
       round(avg(p.clean_picks), 3) AS clean_picks,
       round(avg(s.p_again), 3) AS p_picked_again,
       round(avg(t.trained_fraction), 3) AS trained_fraction,
       round(avg(a.auroc_low_loss), 3) AS auroc_low_loss_last_epoch,
       count(*) AS seeds
FROM runs r
JOIN per_run p ON p.run = r.name
JOIN sticky s ON s.run = r.name
JOIN trained t ON t.run = r.name
LEFT JOIN loss_auroc a ON a.run = r.name
GROUP BY ALL
ORDER BY r.ratio, r.strategy;

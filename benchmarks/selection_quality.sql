-- Per strategy and ratio, over the completed runs whose names match `pattern` (one benchmark):
-- the fraction of the train samples the runs really trained (trained; infobatch and scan
-- prune on their own schedules and may train more than the ratio), final R@Sum (the paper's, rsum4), the six-recall sum (rsum) and zero-shot top-1
-- (where the test split has labels) as mean ± std over seeds, and the clean fraction of the picks (all epochs, and the last epoch)
-- by the dataset's ground truth.
WITH final AS (
    SELECT run,
           any_value(value) FILTER (WHERE metric = 'rsum4') AS rsum4,
           any_value(value) FILTER (WHERE metric = 'rsum') AS rsum,
           any_value(value) FILTER (WHERE metric = 'zeroshot_top1') AS top1
    FROM final_metrics() WHERE run LIKE getvariable('pattern') GROUP BY run
),
picks AS (
    SELECT s.run,
           tp_accuracy(s.selected, NOT m.is_noisy) AS clean_selected,
           tp_accuracy(s.selected AND s.epoch = r.epochs - 1, NOT m.is_noisy) AS clean_last
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE s.run LIKE getvariable('pattern')
    GROUP BY s.run
)
SELECT r.strategy, r.ratio,
       round(avg(t.trained), 3) AS trained,
       round(avg(f.rsum4), 1) AS rsum4_mean,
       round(coalesce(stddev_samp(f.rsum4), 0), 1) AS rsum4_std,
       round(avg(f.rsum), 1) AS rsum_mean,
       round(avg(f.top1), 1) AS top1_mean,
       round(stddev_samp(f.top1), 1) AS top1_std,
       round(avg(p.clean_selected), 3) AS clean_selected,
       round(avg(p.clean_last), 3) AS clean_selected_last_epoch,
       count(*) AS seeds
FROM runs r
JOIN final f ON f.run = r.name
JOIN picks p ON p.run = r.name
JOIN run_trained((SELECT list(name) FROM runs WHERE name LIKE getvariable('pattern'))) t ON t.run = r.name
WHERE r.name LIKE getvariable('pattern') AND r.status = 'completed'
GROUP BY ALL
ORDER BY r.ratio, rsum4_mean DESC;

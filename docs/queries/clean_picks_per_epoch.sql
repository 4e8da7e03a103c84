-- Clean fraction of the picks, per run and epoch (ground truth), for the runs matching `pattern`.
-- In the duckdb shell: SET VARIABLE pattern = 'shapes-shuffle-%';
SELECT s.run, s.epoch,
       round(tp_accuracy(s.selected, NOT m.is_noisy), 3) AS clean_selected,
       count(*) FILTER (WHERE s.selected) AS n_selected
FROM scores s
JOIN runs r ON r.name = s.run
JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
WHERE s.run LIKE getvariable('pattern')
GROUP BY ALL
ORDER BY s.run, s.epoch;

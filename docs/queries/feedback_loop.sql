-- The feedback-loop hypothesis: a sample left out of training at its previous visit
-- loses CLIPScore, so its delta = hist - curr grows and it wins the next selection;
-- noisy pairs lose most. Per run (the history strategies matching `pattern`):
-- delta and the chance of being picked, split by ground truth and by whether the
-- sample was trained at its previous visit. Epochs from `from_epoch` on.
WITH visits AS (
    SELECT s.run, s.epoch, s.sample_id, s.delta, s.selected, s.clipscore, m.is_noisy,
           lag(s.selected) OVER (PARTITION BY s.run, s.sample_id ORDER BY s.epoch) AS trained_last_visit,
           s.clipscore - lag(s.clipscore) OVER (PARTITION BY s.run, s.sample_id ORDER BY s.epoch) AS score_change
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE s.run LIKE getvariable('pattern')
)
SELECT run,
       CASE WHEN is_noisy THEN 'noisy' ELSE 'clean' END AS pair,
       CASE WHEN trained_last_visit THEN 'trained' ELSE 'left out' END AS last_visit,
       count(*) AS visits,
       round(avg(score_change), 2) AS mean_score_change,
       round(avg(delta), 2) AS mean_delta,
       round(avg(selected::DOUBLE), 3) AS picked_now
FROM visits
WHERE trained_last_visit IS NOT NULL AND epoch >= getvariable('from_epoch')
GROUP BY ALL
ORDER BY run, pair, last_visit;

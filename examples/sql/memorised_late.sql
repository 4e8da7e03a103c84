-- The pairs a run learned late: learned within their batch (the image's nearest caption is its
-- own and back) from some epoch on, for good, where that epoch is in the last quarter of the run.
-- Shuffled-caption pairs that only become "learned" late are being memorised.
--   dissect query --file examples/sql/memorised_late.sql --param run=RUN --ledger L
WITH history AS (
    SELECT s.sample_id, s.epoch, s.correct,
           max(s.epoch) OVER () AS last_epoch,
           -- the last epoch at which the pair was not learned (NULL: learned throughout)
           max(CASE WHEN NOT s.correct THEN s.epoch END) OVER (PARTITION BY s.sample_id) AS last_miss
    FROM scores s
    WHERE s.run = getvariable('run') AND s.correct IS NOT NULL
),
learned AS (
    SELECT DISTINCT sample_id, coalesce(last_miss + 1, 0) AS learned_from, last_epoch
    FROM history
)
SELECT l.sample_id, l.learned_from, m.is_noisy, m.key, m.caption
FROM learned l
JOIN runs r ON r.name = getvariable('run')
JOIN samples m ON m.dataset = r.dataset AND m.sample_id = l.sample_id
WHERE l.learned_from <= l.last_epoch AND l.learned_from >= 0.75 * (l.last_epoch + 1)
ORDER BY l.learned_from DESC, l.sample_id;

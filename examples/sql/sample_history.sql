-- One sample's history in a run: its CLIPScore, history, delta, loss, whether it was picked
-- and whether it was learned within its batch, epoch by epoch, beside its caption and truth.
--   dissect query --file examples/sql/sample_history.sql --param run=RUN --param sample_id=ID --ledger L
SELECT s.epoch, s.step, s.clipscore, s.hist, s.delta, s.loss, s.selected, s.correct,
       m.key, m.caption, m.is_noisy
FROM scores s
JOIN runs r ON r.name = s.run
JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
WHERE s.run = getvariable('run') AND s.sample_id = getvariable('sample_id')::BIGINT
ORDER BY s.epoch;

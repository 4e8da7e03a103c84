-- Where ranking by delta and ranking by small loss disagree, per epoch of a run: of each
-- batch's top `ratio` by delta and its bottom `ratio` by loss, how many pairs only one picks,
-- and the clean share of each group (ground truth).
--   dissect query --file examples/sql/delta_vs_small_loss.sql --param run=RUN --param ratio=0.3 --ledger L
WITH ranked AS (
    SELECT s.epoch, s.sample_id, NOT m.is_noisy AS is_clean,
           percent_rank() OVER (PARTITION BY s.epoch, s.step ORDER BY s.delta DESC) < getvariable('ratio')::DOUBLE AS by_delta,
           percent_rank() OVER (PARTITION BY s.epoch, s.step ORDER BY s.loss) < getvariable('ratio')::DOUBLE AS by_small_loss
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE s.run = getvariable('run') AND s.delta IS NOT NULL AND s.loss IS NOT NULL
)
SELECT epoch,
       count(*) FILTER (WHERE by_delta AND by_small_loss) AS both,
       count(*) FILTER (WHERE by_delta AND NOT by_small_loss) AS delta_only,
       count(*) FILTER (WHERE by_small_loss AND NOT by_delta) AS small_loss_only,
       round(tp_accuracy(by_delta AND NOT by_small_loss, is_clean), 3) AS clean_share_delta_only,
       round(tp_accuracy(by_small_loss AND NOT by_delta, is_clean), 3) AS clean_share_small_loss_only
FROM ranked
GROUP BY epoch
ORDER BY epoch;

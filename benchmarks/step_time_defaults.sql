-- Wall time of each run as a user sees it: per epoch (training, eval and ledger writes; the
-- median over the epochs after the first, which pays for start-up) and the whole run (start to
-- end, start-up included), each as a ratio to the full run trained just before it
-- (full-before-RUN); with what the run read its data from (train's --cache auto).
WITH per_epoch AS (
    SELECT run, median(t_steps + t_eval + t_ledger) AS epoch_s, median(t_steps) AS steps_s
    FROM epochs
    WHERE epoch > 0
    GROUP BY run
), per_run AS (
    SELECT e.run, e.epoch_s, e.steps_s, epoch(r."end" - r.start) AS run_s,
           CASE WHEN r.cache_used THEN 'cache' ELSE 'shards' END AS data
    FROM per_epoch e JOIN runs r ON r.name = e.run
)
SELECT p.run,
       p.data,
       round(p.epoch_s, 2) AS epoch_s,
       round(f.epoch_s, 2) AS full_epoch_s,
       round(p.epoch_s / f.epoch_s, 3) AS epoch_ratio_to_full,
       round(p.steps_s / f.steps_s, 3) AS training_ratio_to_full,
       round(p.run_s / f.run_s, 3) AS run_ratio_to_full
FROM per_run p JOIN per_run f ON f.run = 'full-before-' || p.run
ORDER BY epoch_ratio_to_full;

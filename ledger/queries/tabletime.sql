-- Where a run's time goes, per epoch, in seconds: waiting for the loader's batches (data),
-- the scoring pass, the training pass, the rest of the steps (the step's bookkeeping:
-- handing rows to the ledger writer, the schedule, the progress bar), the eval, and
-- waiting for the ledger writer at the epoch's end; what bounds the run is the largest.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run.
WITH per_epoch AS (
    SELECT epoch, sum(t_data) AS data, sum(t_score) AS scoring, sum(t_train) AS training, count(*) AS steps
    FROM steps
    WHERE run = getvariable('run')
    GROUP BY epoch
)
SELECT s.epoch, s.steps,
       round(s.data, 2) AS data,
       round(s.scoring, 2) AS scoring,
       round(s.training, 2) AS training,
       round(e.t_steps - s.data - s.scoring - s.training, 2) AS step_other,
       round(e.t_eval, 2) AS eval,
       round(e.t_ledger, 2) AS ledger,
       round(e.t_steps + e.t_eval + e.t_ledger, 2) AS total
FROM per_epoch s
LEFT JOIN epochs e ON e.run = getvariable('run') AND e.epoch = s.epoch
ORDER BY s.epoch;

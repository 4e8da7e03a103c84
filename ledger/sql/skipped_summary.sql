-- What a run's dataset lost at ingest and during the run, counted by reason.
-- $1: the dataset name; $2: the run name.
SELECT reason, count(*) AS n
FROM skipped
WHERE dataset = $1 AND (run IS NULL OR run = $2)
GROUP BY reason
ORDER BY n DESC, reason;

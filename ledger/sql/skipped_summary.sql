-- What a run's dataset lost at ingest and during the run, counted by reason.
-- Variables: dataset; run.
SELECT reason, count(*) AS n
FROM skipped
WHERE dataset = getvariable('dataset') AND (run IS NULL OR run = getvariable('run'))
GROUP BY reason
ORDER BY n DESC, reason;

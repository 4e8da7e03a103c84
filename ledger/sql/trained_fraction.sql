-- The fraction of the samples a run loaded that it trained on (back-propagated): its
-- mean budget over the steps so far. Variables: run.
SELECT coalesce(sum(n_selected) / nullif(sum(batch_size), 0), 0) AS trained_fraction
FROM steps
WHERE run = getvariable('run');

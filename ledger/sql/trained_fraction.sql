-- The fraction of the samples offered to a run (loaded, or pruned before loading) that it
-- trained on (back-propagated): its mean budget over the steps so far. Variables: run.
SELECT coalesce(trained_share(n_selected, batch_size, n_pruned), 0) AS trained_fraction
FROM steps
WHERE run = getvariable('run');

-- Oracle-free: the run's own CLIPScore of each pair at its last epoch (what the run believes
-- at the end). Keep the highest. Variables: run.
SELECT sample_id, clipscore AS score
FROM scores
WHERE run = getvariable('run') AND clipscore IS NOT NULL
  AND epoch = (SELECT max(epoch) FROM scores WHERE run = getvariable('run'));

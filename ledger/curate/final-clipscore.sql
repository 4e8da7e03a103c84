-- Oracle-free: the run's own CLIPScore of each pair at its last epoch (what the run believes
-- at the end). Keep the highest. Variables: run, until_epoch.
SELECT sample_id, clipscore AS score
FROM history(getvariable('run'))
WHERE clipscore IS NOT NULL
  AND epoch = (SELECT max(epoch) FROM history(getvariable('run')));

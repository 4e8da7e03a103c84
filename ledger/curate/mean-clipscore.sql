-- Oracle-free: the mean over the run's epochs of each pair's CLIPScore minus its epoch's mean:
-- the area under its centred curve, the label-free analogue of AUM (Pleiss et al., 2020) and
-- dataset cartography's confidence (Swayamdipta et al., 2020). Keep the highest. Variables: run, until_epoch.
SELECT sample_id, avg(c) AS score
FROM (SELECT sample_id, centred(clipscore, run, epoch) AS c
      FROM history(getvariable('run')) WHERE clipscore IS NOT NULL)
GROUP BY sample_id;

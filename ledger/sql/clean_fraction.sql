-- The fraction of a set of samples that are clean by the dataset's ground truth
-- (NULL where it has none). Variables: dataset; sample_ids.
SELECT avg((NOT is_noisy)::DOUBLE) AS clean_fraction
FROM samples
WHERE dataset = getvariable('dataset') AND list_contains(getvariable('sample_ids'), sample_id);

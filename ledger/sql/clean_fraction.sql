-- The fraction of a set of samples that are clean by the dataset's ground truth
-- (NULL where it has none). $1: the dataset; $2: the sample ids.
SELECT avg((NOT is_noisy)::DOUBLE) AS clean_fraction
FROM samples
WHERE dataset = $1 AND list_contains($2, sample_id);

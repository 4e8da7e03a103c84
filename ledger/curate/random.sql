-- The paper's random coreset: every train sample of the dataset, ranked by a seeded hash.
-- Variables: dataset, seed.
SELECT sample_id, hash(sample_id, getvariable('seed'))::DOUBLE AS score
FROM samples
WHERE dataset = getvariable('dataset') AND split = 'train';

-- The paper's CLIPScore coreset: the highest CLIPScore under an oracle model (`dissect score`).
-- Variables: dataset, oracle.
SELECT o.sample_id, o.clipscore AS score
FROM oracle o
JOIN samples m ON m.dataset = o.dataset AND m.sample_id = o.sample_id
WHERE o.name = getvariable('oracle') AND o.dataset = getvariable('dataset') AND m.split = 'train';

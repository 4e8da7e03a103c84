-- The paper's CLIPLoss coreset [53] (Wang et al., NeurIPS 2024, negCLIPLoss): the oracle's
-- similarity of the pair minus a normalisation by its similarity to the other pairs of
-- random batches (`dissect score` stores it; docs/curation.md pins the formula). Keep the highest.
-- Variables: dataset, oracle.
SELECT o.sample_id, o.negcliploss AS score
FROM oracle o
JOIN samples m ON m.dataset = o.dataset AND m.sample_id = o.sample_id
WHERE o.name = getvariable('oracle') AND o.dataset = getvariable('dataset') AND m.split = 'train'
  AND o.negcliploss IS NOT NULL;

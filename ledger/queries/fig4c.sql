-- Figure 4c: the oracle's CLIPScore of the samples a run selected at one epoch (the last by default),
-- against the oracle's CLIPScore of all train samples; the oracle's median splits
-- clean (above) from noisy (below). Needs an oracle.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; oracle: the oracle name;
--   epoch: the epoch whose picks are shown; bins of 2 points.
WITH oracle_scores AS (
    SELECT o.sample_id, o.clipscore
    FROM oracle o
    JOIN runs r ON r.dataset = o.dataset
    JOIN samples m ON m.dataset = o.dataset AND m.sample_id = o.sample_id
    WHERE r.name = getvariable('run') AND o.name = getvariable('oracle') AND m.split = 'train'
),
picked AS (
    SELECT sample_id
    FROM scores
    WHERE run = getvariable('run') AND selected AND epoch = getvariable('epoch')
)
SELECT subset,
       floor(clipscore / 2) * 2 AS bin,
       count(*) AS n,
       any_value(median) AS oracle_median
FROM (
    SELECT 'all' AS subset, clipscore FROM oracle_scores
    UNION ALL
    SELECT 'selected' AS subset, o.clipscore FROM oracle_scores o JOIN picked USING (sample_id)
), (SELECT median(clipscore) AS median FROM oracle_scores)
GROUP BY ALL
ORDER BY subset, bin;

-- The common moves of the analyses, as DuckDB macros over the ledger's views.

-- A value minus its mean over the same run and epoch (Fig. 3c: "CLIPScore minus the epoch mean").
CREATE OR REPLACE MACRO centred(x, run_col, epoch_col) AS
    x - avg(x) OVER (PARTITION BY run_col, epoch_col);

-- Which train samples of a run's dataset count as clean: the oracle's top 50 % of
-- CLIPScore when oracle_name is given, else the dataset's ground truth (NOT is_noisy).
CREATE OR REPLACE MACRO clean_split(run_name, oracle_name) AS TABLE
    SELECT m.sample_id, NOT m.is_noisy AS is_clean
    FROM samples m
    JOIN runs r ON r.dataset = m.dataset
    WHERE r.name = run_name AND oracle_name IS NULL AND m.split = 'train' AND m.is_noisy IS NOT NULL
    UNION ALL
    SELECT o.sample_id, ntile(2) OVER (ORDER BY o.clipscore, o.sample_id) = 2 AS is_clean
    FROM oracle o
    JOIN runs r ON r.dataset = o.dataset
    JOIN samples m ON m.dataset = o.dataset AND m.sample_id = o.sample_id
    WHERE r.name = run_name AND o.name = oracle_name AND m.split = 'train';

-- The same split as a bitmap over the dataset's dense sample ids (bit i: sample i is
-- clean). Looking a sample up in it is far cheaper than joining clean_split to every
-- epoch's rows of a large run. Samples outside the split (the test split) read as 0.
CREATE OR REPLACE MACRO clean_bits(run_name, oracle_name) AS (
    SELECT string_agg(CASE WHEN c.is_clean THEN '1' ELSE '0' END, '' ORDER BY m.sample_id)::BIT
    FROM samples m
    JOIN runs r ON r.dataset = m.dataset
    LEFT JOIN clean_split(run_name, oracle_name) c ON c.sample_id = m.sample_id
    WHERE r.name = run_name
);

CREATE OR REPLACE MACRO is_clean(bits, id) AS
    get_bit(bits, id::INTEGER) = 1;

-- TP accuracy: the fraction of the selected samples that are clean.
CREATE OR REPLACE MACRO tp_accuracy(selected, is_clean) AS
    avg(is_clean::DOUBLE) FILTER (WHERE selected);

-- Mid-rank of a score within a group (ties share the mean of their ranks).
CREATE OR REPLACE MACRO mid_rank(score, grp) AS
    rank() OVER (PARTITION BY grp ORDER BY score) + (count(*) OVER (PARTITION BY grp, score) - 1) / 2.0;

-- AUROC from mid-ranks (Mann-Whitney): the probability that a positive scores
-- above a negative, ties counting a half. NULL when a class is empty.
CREATE OR REPLACE MACRO auroc(rank_col, positive) AS
    (sum(rank_col) FILTER (WHERE positive)
        - count(*) FILTER (WHERE positive) * (count(*) FILTER (WHERE positive) + 1) / 2.0)
    / nullif(count(*) FILTER (WHERE positive) * count(*) FILTER (WHERE NOT positive), 0);

-- The last value of an eval metric of each run.
CREATE OR REPLACE MACRO final_metric(metric_name) AS TABLE
    SELECT run, arg_max(value, step) AS value, max(step) AS step
    FROM evals
    WHERE metric = metric_name
    GROUP BY run;

-- Table 1: final zero-shot retrieval of each method (online strategies, coresets) at the
-- fraction of the train samples it really trained (r=; coresets: the kept fraction times
-- the ratio inside), off_nominal naming where that differs from the nominal ratio by more
-- than 0.02, one panel
-- per test set, the paper's columns (IR@1, IR@10, TR@1, TR@10 per ratio), each cell
-- "mean ± std (n)" over the seeds of one setting.
-- The paper's IR is image-to-text retrieval and its TR text-to-image: in its Flickr 1K panel
-- every IR value is a multiple of 0.1 (1,000 image queries) and TR steps by 0.02 (5,000
-- caption queries). The ledger's names are CLIP_benchmark's, the other way round: `tr_r*`
-- (text retrieval, image queries) is the paper's IR, `ir_r*` (image retrieval, caption
-- queries) its TR.
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to tabulate.
WITH final AS (
    SELECT run,
           coalesce(nullif(regexp_extract(metric, '^(.*)/[^/]+$', 1), ''), 'test') AS test_set,
           regexp_extract(metric, '([^/]+)$', 1) AS recall,
           value
    FROM final_metrics()
    WHERE list_contains(getvariable('runs'), run)
),
placed AS (
    -- each (method, setting, nominal ratio) at the mean fraction its seeds trained
    SELECT r.name AS run, run_method(r.strategy, r.subset) AS method, l.setting, t.nominal_ratio,
           round(avg(t.trained) OVER (PARTITION BY run_method(r.strategy, r.subset), l.setting, t.nominal_ratio), 2)
               AS trained
    FROM runs r
    JOIN setting_labels(getvariable('runs')) l ON l.run = r.name
    JOIN run_trained(getvariable('runs')) t ON t.run = r.name
    WHERE r.status = 'completed'
),
cells AS (
    SELECT f.test_set, p.method, p.setting,
           'r=' || p.trained || ' ' || CASE f.recall WHEN 'tr_r1' THEN 'IR@1' WHEN 'tr_r10' THEN 'IR@10'
                                                     WHEN 'ir_r1' THEN 'TR@1' ELSE 'TR@10' END AS col,
           printf('%.2f ± %.2f (%d)', avg(f.value), coalesce(stddev_samp(f.value), 0), count(*)) AS cell
    FROM final f
    JOIN placed p ON p.run = f.run
    WHERE f.recall IN ('ir_r1', 'ir_r10', 'tr_r1', 'tr_r10')
    GROUP BY ALL
),
off_nominal AS (
    -- where a method trained another fraction than its nominal ratio, by more than 0.02
    SELECT method, setting,
           string_agg(DISTINCT 'r=' || nominal_ratio || ' trained ' || trained, ', ') AS off_nominal
    FROM placed
    WHERE abs(trained - nominal_ratio) > 0.02
    GROUP BY ALL
)
SELECT p.*, o.off_nominal
FROM (PIVOT cells ON col USING any_value(cell) GROUP BY test_set, method, setting) p
LEFT JOIN off_nominal o ON o.method = p.method AND o.setting = p.setting
ORDER BY p.test_set, p.method = 'full' DESC, p.method LIKE 'coreset%' DESC, p.method, p.setting;

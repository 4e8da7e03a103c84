-- Table 1: final zero-shot retrieval of each method (online strategies, coresets) at each
-- selection ratio (coresets: the kept fraction), one panel
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
cells AS (
    SELECT f.test_set, run_method(r.strategy, r.subset) AS method, l.setting,
           'r=' || run_ratio(r.ratio, r.subset) || ' ' || CASE f.recall WHEN 'tr_r1' THEN 'IR@1' WHEN 'tr_r10' THEN 'IR@10'
                                                    WHEN 'ir_r1' THEN 'TR@1' ELSE 'TR@10' END AS col,
           printf('%.2f ± %.2f (%d)', avg(f.value), coalesce(stddev_samp(f.value), 0), count(*)) AS cell
    FROM final f
    JOIN runs r ON r.name = f.run
    JOIN setting_labels(getvariable('runs')) l ON l.run = r.name
    WHERE f.recall IN ('ir_r1', 'ir_r10', 'tr_r1', 'tr_r10') AND r.status = 'completed'
    GROUP BY ALL
)
PIVOT cells ON col USING any_value(cell) GROUP BY test_set, method, setting
ORDER BY test_set, method = 'full' DESC, method LIKE 'coreset%' DESC, method, setting;

-- Table 1: final zero-shot retrieval of each method at each selection ratio as
-- "mean ± std" over seeds (image->text tr_r1/5/10, text->image ir_r1/5/10, rsum),
-- one column per ratio.
-- Variables (SET VARIABLE name = value in the duckdb shell): runs: the runs to tabulate.
WITH final AS (
    SELECT run, metric, arg_max(value, step) AS value
    FROM evals
    WHERE list_contains(getvariable('runs'), run)
    GROUP BY ALL
),
cells AS (
    SELECT f.metric, r.strategy, 'r=' || r.ratio AS ratio,
           printf('%.1f ± %.1f (n=%d)', avg(f.value), coalesce(stddev_samp(f.value), 0), count(*)) AS cell
    FROM final f
    JOIN runs r ON r.name = f.run
    WHERE r.status = 'completed'      -- a run still training has no final value yet
    GROUP BY ALL
)
PIVOT cells ON ratio USING any_value(cell) GROUP BY metric, strategy
ORDER BY list_position(['rsum', 'tr_r1', 'tr_r5', 'tr_r10', 'ir_r1', 'ir_r5', 'ir_r10'], metric), strategy;

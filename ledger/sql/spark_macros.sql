-- The macros of macros.sql whose DuckDB form has no equal on Spark, written so that Spark can
-- run them (spark.py expands these in their place). Each gives what its twin gives.

-- class_stats with the split joined rather than looked up in clean_bits' BIT string: Spark
-- has no BIT strings, and a join is how Spark looks a sample up.
CREATE OR REPLACE MACRO class_stats(run_names, oracle_name) AS TABLE
    SELECT run, epoch, is_clean, n, n_scored, sum_clipscore, n_selected
    FROM summaries
    WHERE coalesce(getvariable('summarised'), false)
      AND list_contains(run_names, run) AND oracle IS NOT DISTINCT FROM oracle_name
    UNION ALL
    SELECT s.run, s.epoch, coalesce(c.is_clean, false) AS is_clean, count(*) AS n, count(s.clipscore) AS n_scored,
           sum(s.clipscore)::DOUBLE AS sum_clipscore, count(*) FILTER (WHERE s.selected) AS n_selected
    FROM scores s
    LEFT JOIN clean_split(run_names[1], oracle_name) c ON c.sample_id = s.sample_id
    WHERE NOT coalesce(getvariable('summarised'), false) AND list_contains(run_names, s.run)
    GROUP BY ALL;

-- setting_labels over the settings column alone: Spark's runs view has every record's
-- (spark_runs.sql).
CREATE OR REPLACE MACRO setting_labels(run_names) AS TABLE
    WITH s AS (
        SELECT name, settings AS setting FROM runs WHERE list_contains(run_names, name)
    ),
    varying AS (
        SELECT k FROM s, unnest(json_keys(s.setting)) AS t(k)
        GROUP BY k
        HAVING count(DISTINCT s.setting->>k) > 1   -- among the runs that have the setting at all
    )
    SELECT s.name AS run,
           coalesce(string_agg(v.k || '=' || coalesce(s.setting->>v.k, 'null'), ' ' ORDER BY v.k), '') AS setting
    FROM s LEFT JOIN varying v ON true
    GROUP BY s.name;

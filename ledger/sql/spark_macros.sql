-- The macros of macros.sql whose DuckDB form has no equal on Spark, written so that Spark can
-- run them (spark.py expands these in their place). Each gives what its twin gives.

-- scored_class_stats with the split joined rather than looked up in clean_bits' BIT string:
-- Spark has no BIT strings, and a join is how Spark looks a sample up.
CREATE OR REPLACE MACRO scored_class_stats(run_names, oracle_name) AS TABLE
    SELECT s.run, s.epoch, coalesce(c.is_clean, false) AS is_clean, count(*) AS n, count(s.clipscore) AS n_scored,
           sum(s.clipscore)::DOUBLE AS sum_clipscore, count(*) FILTER (WHERE s.selected) AS n_selected
    FROM scores s
    LEFT JOIN clean_split(run_names[1], oracle_name) c ON c.sample_id = s.sample_id
    WHERE NOT coalesce(getvariable('summarised'), false) AND list_contains(run_names, s.run)
    GROUP BY ALL;

-- run_settings from the settings column alone: Spark's runs view has every record's
-- (spark_runs.sql), and Spark has no JSON merge for run_setting.
CREATE OR REPLACE MACRO run_settings(run_names) AS TABLE
    SELECT name, settings AS setting FROM runs WHERE list_contains(run_names, name);

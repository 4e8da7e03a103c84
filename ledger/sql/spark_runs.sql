-- The runs view as Spark reads it: DuckDB's own (runs_view.sql), each record's settings filled in
-- from its config where it was written before records kept them (run_setting), as run_settings
-- does on DuckDB. Spark has no JSON merge to do it there.
SELECT * REPLACE (coalesce(settings, run_setting(config)) AS settings)
FROM runs;

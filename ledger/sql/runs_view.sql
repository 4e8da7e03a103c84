-- One row per run, from runs/<run>.json. `config` holds every flag it ran with.
CREATE OR REPLACE VIEW runs AS
SELECT {columns}, config, versions
FROM read_json('{glob}', format = 'auto', union_by_name = true, maximum_object_size = 16777216)
ORDER BY start;

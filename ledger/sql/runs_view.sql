-- One row per run, from runs/<run>.json. `config` holds every flag it ran with. The
-- fields are read as declared, so a record written before a field existed reads NULL there.
CREATE OR REPLACE VIEW runs AS
SELECT {columns}, config, versions
FROM read_json('{glob}', format = 'auto', maximum_object_size = 16777216,
               columns = {{{json_columns}, 'config': 'JSON', 'versions': 'JSON'}})
ORDER BY start;

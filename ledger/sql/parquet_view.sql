-- A ledger table: every Parquet part under its hive-partitioned glob. union_by_name
-- reads parts written before a column was added (the column is NULL there).
CREATE OR REPLACE VIEW {name} AS
SELECT {columns}
FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{{hive_types}}}, union_by_name = true);

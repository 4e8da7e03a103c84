-- A ledger table: every Parquet part under its hive-partitioned glob.
CREATE OR REPLACE VIEW {name} AS
SELECT {columns}
FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{{hive_types}}});

-- A ledger table: its committed Parquet parts (commits/), partition columns from their
-- hive paths. union_by_name reads parts written before a column was added (NULL there); where
-- the commit records say every part holds the same columns it is left off (store.connect).
CREATE OR REPLACE VIEW {name} AS
SELECT {columns}
FROM read_parquet([{files}], hive_partitioning = true, hive_types = {{{hive_types}}}, union_by_name = {union_by_name});

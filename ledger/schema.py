"""The ledger's tables: one place that names every column and its type.

Files hold the data columns; the partition columns (run, epoch, dataset) live
in the hive path (`scores/run=R/epoch=E/part-*.parquet`) and come back as
columns when DuckDB reads the glob.
"""
from dataclasses import dataclass, field, fields

import pyarrow as pa

RUNS_DIR = "runs"   # LEDGER/runs/RUN.json: the run records (RunRecord)


@dataclass(frozen=True)
class Table:
    name: str
    partitions: tuple[tuple[str, str], ...]  # (column, DuckDB type), outermost first
    columns: pa.Schema                        # what the parts store
    # (column, DuckDB type, SQL over the stored columns, the column it follows): computed by the view
    derived: tuple[tuple[str, str, str, str], ...] = ()

    @property
    def glob(self) -> str:
        return "/".join([self.name, *("*" for _ in self.partitions), "*.parquet"])

    def partition_dir(self, **values) -> str:
        """TABLE/col=value/...: a whole partition's folder, or that of its first columns (scores/run=R)."""
        columns = [col for col, _ in self.partitions][:len(values)]
        if set(columns) != set(values):
            raise ValueError(f"{self.name} is partitioned by {', '.join(columns)} in that order, not {', '.join(values)}")
        return "/".join([self.name, *(f"{col}={values[col]}" for col in columns)])


def hive_values(path: str) -> dict[str, str]:
    """{column: value} of the hive folders in a path inside a ledger, or in a commit unit
    ('scores/run=r/epoch=0/part-0-00000.parquet', 'run=r/epoch=0' -> {'run': 'r', 'epoch': '0'})."""
    return dict(folder.split("=", 1) for folder in path.split("/") if "=" in folder)


SCORES = Table(
    "scores",
    (("run", "VARCHAR"), ("epoch", "INTEGER")),
    pa.schema([
        ("step", pa.int64()),
        ("sample_id", pa.int64()),
        ("clipscore", pa.float32()),
        ("hist", pa.float32()),
        ("loss", pa.float32()),
        ("selected", pa.bool_()),
        ("correct", pa.bool_()),    # learned within its batch: its image's nearest text is its caption and back
    ]),
    # delta = hist - clipscore by definition (the paper's Eq. 3): stored nowhere, derived by the view
    (("delta", "FLOAT", "hist - clipscore", "hist"),),
)

STEPS = Table(
    "steps",
    (("run", "VARCHAR"), ("epoch", "INTEGER")),
    pa.schema([
        ("step", pa.int64()),
        ("batch_size", pa.int32()),
        ("n_selected", pa.int32()),
        ("lr", pa.float64()),
        ("loss", pa.float32()),
        ("logit_scale", pa.float32()),
        ("t_data", pa.float64()),
        ("t_score", pa.float64()),
        ("t_train", pa.float64()),
        # the samples its strategy pruned from the epoch before loading (InfoBatch, SCAN), on
        # the epoch's first step; 0 on the others (NULL in ledgers written before it was kept)
        ("n_pruned", pa.int32()),
    ]),
)

# Rank 0's wall time per epoch outside the steps: the epoch's steps as a whole, the eval,
# and waiting for the ledger writer to put the epoch's parts on disk.
EPOCHS = Table(
    "epochs",
    (("run", "VARCHAR"), ("epoch", "INTEGER")),
    pa.schema([
        ("t_steps", pa.float64()),
        ("t_eval", pa.float64()),
        ("t_ledger", pa.float64()),
    ]),
)

EVALS = Table(
    "evals",
    (("run", "VARCHAR"), ("epoch", "INTEGER")),
    pa.schema([
        ("step", pa.int64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
    ]),
)

SAMPLES = Table(
    "samples",
    (("dataset", "VARCHAR"),),
    pa.schema([
        ("sample_id", pa.int64()),
        ("key", pa.string()),
        ("caption", pa.string()),
        ("split", pa.string()),
        ("is_noisy", pa.bool_()),
        ("shard", pa.string()),
        ("label", pa.int64()),
        ("uid", pa.string()),
        ("image_path", pa.string()),    # the image's path as a CSV/TSV row or a folder gave it
        ("url", pa.string()),           # the URL `dissect fetch` downloaded it from
    ]),
)

# One epoch of a run by clean / noisy class under one split (summaries.py): what figures
# 3b, 3c and 4d aggregate over every epoch, two rows per epoch and split.
SUMMARIES = Table(
    "summaries",
    (("run", "VARCHAR"), ("epoch", "INTEGER")),
    pa.schema([
        ("oracle", pa.string()),     # the split: NULL for the ground truth, else the oracle's top half
        ("is_clean", pa.bool_()),
        ("n", pa.int64()),
        ("n_scored", pa.int64()),
        ("sum_clipscore", pa.float64()),
        ("n_selected", pa.int64()),
        ("n_delta", pa.int64()),
        ("rank_sum_clipscore", pa.float64()),   # the class's mid-ranks of CLIPScore among the epoch's scored rows
        ("rank_sum_delta", pa.float64()),       # and of delta among its rows with a delta
    ]),
)

# CLIPScores of every sample under a reference model (`dissect score`).
ORACLE = Table(
    "oracle",
    (("name", "VARCHAR"),),
    pa.schema([
        ("dataset", pa.string()),
        ("sample_id", pa.int64()),
        ("clipscore", pa.float32()),
        ("loss", pa.float32()),
        ("negcliploss", pa.float32()),   # the CLIPLoss coreset score (Wang et al. 2024); docs/curation.md
    ]),
)

# Samples a dataset's ingest could not use, and shards training could not read (run set).
SKIPPED = Table(
    "skipped",
    (("dataset", "VARCHAR"),),
    pa.schema([
        ("source", pa.string()),
        ("key", pa.string()),
        ("reason", pa.string()),
        ("run", pa.string()),
    ]),
)

TABLES = {t.name: t for t in (SCORES, STEPS, EPOCHS, EVALS, SUMMARIES, SAMPLES, ORACLE, SKIPPED)}

def _column(duckdb_type: str, **kw):
    return field(metadata={"duckdb": duckdb_type}, **kw)


@dataclass
class RunRecord:
    """A run's record, runs/<run>.json: the one definition of its fields. Those with a DuckDB
    type are the columns of the `runs` view; config (every flag) and versions (of the packages)
    come through as JSON."""
    name: str = _column("VARCHAR")
    strategy: str = _column("VARCHAR")
    ratio: float = _column("DOUBLE")
    model: str = _column("VARCHAR")
    epochs: int = _column("INTEGER")
    batch_size: int = _column("INTEGER")
    seed: int = _column("BIGINT")
    dataset: str = _column("VARCHAR")
    dataset_path: str = _column("VARCHAR")
    dataset_fingerprint: str = _column("VARCHAR")
    world_size: int = _column("INTEGER")
    start: str = _column("TIMESTAMP")            # ISO time with its offset
    end: str | None = _column("TIMESTAMP")
    status: str = _column("VARCHAR")             # running, completed, failed, stopped
    subset: dict | None = _column("JSON", default=None)   # the `dissect curate` subset it trained on
    cache_used: bool | None = _column("BOOLEAN", default=None)   # it read the decoded cache (else the shards)
    cache_reason: str | None = _column("VARCHAR", default=None)  # why: --cache, --no-cache, or auto's budget
    # what sets it apart from another run of its strategy, ratio and seed (sql/macros.sql: setting_labels)
    settings: dict | None = _column("JSON", default=None)
    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)


RUN_COLUMNS = tuple((f.name, f.metadata["duckdb"]) for f in fields(RunRecord) if "duckdb" in f.metadata)

_DUCKDB_TYPES = {
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR",
}


def duckdb_columns(table: Table) -> list[tuple[str, str]]:
    """Every column of a table as the view shows it: partitions first, derived ones after theirs."""
    columns = [*table.partitions]
    for f in table.columns:
        columns.append((f.name, _DUCKDB_TYPES[f.type]))
        columns += [(name, typ) for name, typ, _, after in table.derived if after == f.name]
    return columns

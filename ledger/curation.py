"""`dissect curate`: turn what the ledger knows about every sample into a subset of a dataset.

A rule is one SQL file in curate/ that returns (sample_id, score) for a dataset's train
samples, higher meaning keep; it reads DuckDB variables (dataset, run, oracle, seed,
hist_epoch), so it runs as it is in the duckdb shell. `curate` ranks by score (ties by
sample id), keeps the top fraction or count, and returns the kept rows with what they came
from; `write_subset` writes them as Parquet (or DataComp's uid .npy) all or nothing.
"""
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dissect.ledger import spark
from dissect.ledger.files import atomic_path
from dissect.ledger.store import (ENGINES, LedgerError, connect, dataset_fingerprint_in_ledger, set_variables,
                                  sql_text)

SUBSET_SCHEMA = pa.schema([("sample_id", pa.int64()), ("key", pa.string()), ("uid", pa.string()),
                           ("caption", pa.string()), ("score", pa.float64()), ("rank", pa.int64())])
FORMATS = ("parquet", "npy")


@dataclass(frozen=True)
class Rule:
    name: str
    needs: str      # "run", "oracle" or "" (random)
    meaning: str

    def sql(self) -> str:
        return resources.files("dissect.ledger").joinpath("curate", f"{self.name}.sql").read_text()


RULES = {r.name: r for r in (
    Rule("random", "", "the paper's random coreset, seeded"),
    Rule("oracle-clipscore", "oracle", "highest CLIPScore under an oracle (the paper's CLIPScore coreset)"),
    Rule("oracle-cliploss", "oracle", "highest negCLIPLoss under an oracle (the paper's CLIPLoss coreset)"),
    Rule("forgetting", "run", "most forgetting events over a run's epochs (Toneva et al.)"),
    Rule("final-clipscore", "run", "highest CLIPScore of the run's last epoch"),
    Rule("mean-clipscore", "run", "highest mean centred CLIPScore over the run's epochs (AUM-like)"),
    Rule("delta", "run", "largest offline delta: centred score at --hist-epoch minus at the last epoch"),
)}


@dataclass(frozen=True)
class SubsetMeta:
    """What a subset is and where it came from; stored in the Parquet file's metadata."""
    dataset: str
    dataset_fingerprint: str
    rule: str
    keep: float            # fraction of the dataset's train samples kept
    n: int
    n_train: int
    run: str | None = None
    oracle: str | None = None
    seed: int = 0
    hist_epoch: int | None = None
    until_epoch: int | None = None   # the history rules read the run's epochs up to this one


@dataclass
class Subset:
    table: pa.Table        # SUBSET_SCHEMA, by rank
    meta: SubsetMeta


def curate(root, rule: str, *, keep: float | None = None, keep_n: int | None = None, run: str | None = None,
           oracle: str | None = None, dataset: str | None = None, seed: int = 0,
           hist_epoch: int | None = None, until_epoch: int | None = None, engine: str = "duckdb") -> Subset:
    """The top of a dataset's train samples by RULE, ranked on ENGINE (duckdb or spark); a
    LedgerError says what is missing."""
    if engine not in ENGINES:
        raise LedgerError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if rule not in RULES:
        raise LedgerError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
    if (keep is None) == (keep_n is None):
        raise LedgerError("give one of --keep F (a fraction in (0, 1]) or --keep-n N")
    if keep is not None and not 0 < keep <= 1:
        raise LedgerError(f"--keep {keep} is outside (0, 1]: give the fraction of the train samples to keep")
    if keep_n is not None and keep_n < 1:
        raise LedgerError(f"--keep-n {keep_n} must be at least 1")
    spec = RULES[rule]
    table, dataset, n_train, n = ranked(root, spec, "curate_keep.sql", run=run, oracle=oracle, dataset=dataset,
                                        seed=seed, hist_epoch=hist_epoch, until_epoch=until_epoch, keep=keep,
                                        keep_n=keep_n, engine=engine)
    n_scored = table["n_scored"][0].as_py() if table.num_rows else 0
    if n_scored < n:
        what = f"run {run!r}" if spec.needs == "run" else f"oracle {oracle!r}" if spec.needs == "oracle" else dataset
        raise LedgerError(f"rule {rule} scores {n_scored} of the {n_train} train samples of {dataset} from {what}, "
                          f"fewer than the {n} to keep" + (": train the run with --score-all, or use a full-data run"
                                                           if spec.needs == "run" else ""))
    meta = SubsetMeta(dataset, dataset_fingerprint_in_ledger(root, dataset), rule, round(n / n_train, 6), n, n_train,
                      run, oracle, seed, hist_epoch, until_epoch)
    return Subset(table.select(SUBSET_SCHEMA.names).cast(SUBSET_SCHEMA), meta)


def ends(root, rule: str, n: int = 20, *, run: str | None = None, oracle: str | None = None,
         dataset: str | None = None, seed: int = 0, hist_epoch: int | None = None,
         until_epoch: int | None = None) -> pa.Table:
    """The N pairs RULE keeps first and the N it drops first (curate_ends.sql's columns:
    end, sample_id, key, caption, is_noisy, score, rank), for a look at what it does."""
    if rule not in RULES:
        raise LedgerError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
    table, *_ = ranked(root, RULES[rule], "curate_ends.sql", run=run, oracle=oracle, dataset=dataset, seed=seed,
                       hist_epoch=hist_epoch, until_epoch=until_epoch, keep_n=n)
    return table


def ranked(root, spec: Rule, query: str, *, run, oracle, dataset, seed, hist_epoch, until_epoch, keep=None,
           keep_n=None, engine="duckdb"):
    """(QUERY's table over SPEC's ranking, the dataset, its train samples, the n to keep). The
    checks before it read the run records and partitions through DuckDB on either ENGINE."""
    con = connect(root)
    try:
        dataset = resolve_dataset(con, root, spec, run, oracle, dataset)
        check_epochs(con, spec, run, hist_epoch, until_epoch)
        n_train = con.execute("SELECT count(*) FROM samples WHERE dataset = ? AND split = 'train'",
                              [dataset]).fetchone()[0]
        n = keep_n if keep_n is not None else max(1, math.floor(keep * n_train + 1e-9))
        if n > n_train:
            raise LedgerError(f"--keep-n {n} is more than the {n_train} train samples of {dataset}")
        variables = {"dataset": dataset, "run": run, "oracle": oracle, "seed": seed, "hist_epoch": hist_epoch,
                     "until_epoch": until_epoch, "keep_n": n}
        ranking = sql_text("curate_ranked.sql").format(rule=spec.sql().rstrip().rstrip(";"))
        sql = sql_text(query).format(ranked=ranking)
        if engine == "spark":
            try:
                table = spark.query_table(root, sql, variables=variables)
            except spark.Untranslatable as e:
                raise spark.Untranslatable(f"rule {spec.name} cannot run on Spark: {e}; curate it with "
                                           "--engine duckdb") from e
        else:
            set_variables(con, variables)
            table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return table, dataset, n_train, n


def check_epochs(con, spec: Rule, run, hist_epoch, until_epoch) -> None:
    """--until-epoch and --hist-epoch name epochs the run's history has (from 0), in order."""
    if until_epoch is None and hist_epoch is None:
        return
    if spec.needs != "run":
        flag = "--until-epoch" if until_epoch is not None else "--hist-epoch"
        raise LedgerError(f"{flag} is for the rules that read a run's history, not {spec.name}")
    last = con.execute("SELECT max(epoch) FROM scores WHERE run = ?", [run]).fetchone()[0]
    for flag, epoch in (("--until-epoch", until_epoch), ("--hist-epoch", hist_epoch)):
        if epoch is not None and not 0 <= epoch <= (last if last is not None else -1):
            raise LedgerError(f"{flag} {epoch} is outside run {run!r}'s epochs 0..{last}")
    if hist_epoch is not None and until_epoch is not None and hist_epoch > until_epoch:
        raise LedgerError(f"--hist-epoch {hist_epoch} is after --until-epoch {until_epoch}: delta compares an "
                          "earlier epoch with the last one read")


def resolve_dataset(con, root, spec: Rule, run, oracle, dataset) -> str:
    """The dataset a rule curates: --dataset, else the run's or the oracle's, else the ledger's only one."""
    if spec.needs == "run":
        if not run:
            raise LedgerError(f"rule {spec.name} reads a run's history: pass --run (a full-data run has one row "
                              "per sample per epoch)")
        row = con.execute("SELECT dataset FROM runs WHERE name = ?", [run]).fetchone()
        if row is None:
            raise LedgerError(f"run {run!r} is not in ledger {root}: `dissect runs --ledger {root}` lists them")
        if dataset and dataset != row[0]:
            raise LedgerError(f"run {run!r} trained on {row[0]}, not on --dataset {dataset}")
        return row[0]
    if spec.needs == "oracle":
        if not oracle:
            raise LedgerError(f"rule {spec.name} needs an oracle: score one with `dissect score DATA --ckpt CKPT "
                              f"--name NAME --ledger {root}` and pass --oracle NAME")
        rows = con.execute("SELECT DISTINCT dataset FROM oracle WHERE name = ?", [oracle]).fetchall()
        if not rows:
            raise LedgerError(f"oracle {oracle!r} is not in ledger {root}: make it with `dissect score`")
        if dataset and dataset != rows[0][0]:
            raise LedgerError(f"oracle {oracle!r} scored {rows[0][0]}, not --dataset {dataset}")
        return rows[0][0]
    known = [d for (d,) in con.execute("SELECT DISTINCT dataset FROM samples ORDER BY 1").fetchall()]
    if dataset:
        if dataset not in known:
            raise LedgerError(f"dataset {dataset!r} is not in ledger {root}: it has {', '.join(known) or 'none'}")
        return dataset
    if len(known) != 1:
        raise LedgerError(f"ledger {root} holds {len(known)} datasets ({', '.join(known)}): pass --dataset")
    return known[0]


def write_subset(subset: Subset, out, *, fmt: str = "parquet", overwrite: bool = False) -> Path:
    """OUT appears only when complete: written beside it under a hidden name, then renamed."""
    out = Path(out)
    if fmt not in FORMATS:
        raise LedgerError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if out.exists() and not overwrite:
        raise LedgerError(f"{out} exists: pass --overwrite or another --out")
    if out.is_dir():
        raise LedgerError(f"{out} is a folder: give a file name for --out")
    payload = datacomp_uids(subset) if fmt == "npy" else None
    with atomic_path(out) as tmp:
        if fmt == "npy":
            with open(tmp, "wb") as f:
                np.save(f, payload)
        else:
            metadata = {b"dissect.subset": json.dumps(asdict(subset.meta)).encode()}
            pq.write_table(subset.table.replace_schema_metadata(metadata), tmp)
    return out


HEX128 = re.compile(r"^[0-9a-fA-F]{32}$")


def datacomp_uids(subset: Subset) -> np.ndarray:
    """DataComp's subset file: the kept samples' 128-bit hex uids as a sorted structured array
    of two unsigned 64-bit halves (dtype u8,u8)."""
    uids = subset.table["uid"].to_pylist()
    bad = sum(1 for u in uids if u is None or not HEX128.match(u))
    if bad:
        raise LedgerError(f"{bad} of the {len(uids)} kept samples of {subset.meta.dataset} have no 128-bit hex "
                          "uid (DataComp's): write --format parquet instead, or ingest a source with uids")
    pairs = np.array([(int(u[:16], 16), int(u[16:], 16)) for u in uids], dtype=np.dtype("u8,u8"))
    return np.sort(pairs)


def read_subset(path) -> tuple[np.ndarray, SubsetMeta, str]:
    """(sample ids, what the subset is, the file's sha256) of a subset written by write_subset."""
    path = Path(path)
    if not path.is_file():
        raise LedgerError(f"no subset at {path}: write one with `dissect curate`")
    try:
        table = pq.read_table(path)
        raw = (table.schema.metadata or {})[b"dissect.subset"]
        meta = SubsetMeta(**json.loads(raw))
    except (KeyError, ValueError, TypeError, pa.ArrowException, OSError) as e:
        raise LedgerError(f"{path} is not a subset written by `dissect curate` ({type(e).__name__})") from e
    ids = table["sample_id"].to_numpy()
    if len(ids) == 0:
        raise LedgerError(f"subset {path} is empty")
    return np.sort(ids), meta, hashlib.sha256(path.read_bytes()).hexdigest()


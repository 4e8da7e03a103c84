"""Commit records: what a complete piece of the ledger holds.

A writer puts its Parquet parts in place first, then commits them: it writes
commits/UNIT.json, naming each part with its rows and bytes. Readers read committed
parts only, so an epoch that a crash cut short, or a stray file, is never read, and a
committed part that is missing or has changed size is damage, found by its name.

    run=R/epoch=E        one epoch of a run: its scores, steps, epochs and evals parts
                         (every rank's) and the shards its training found missing (skipped)
    samples/dataset=D    a dataset's samples; the record keeps the dataset's fingerprint
    skipped/dataset=D    the samples the dataset's ingest skipped
    oracle/name=N        an oracle's scores (`dissect score`)
"""
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from dissect.ledger.files import FileLock, write_text_atomic
from dissect.ledger.schema import TABLES, hive_values

COMMITS = "commits"
EPOCH_TABLES = [t for t in TABLES.values() if dict(t.partitions).keys() == {"run", "epoch"}]


def epoch_unit(run: str, epoch: int) -> str:
    return f"run={run}/epoch={epoch}"


def is_epoch_unit(unit: str) -> bool:
    return unit.startswith("run=")


def unit_of(table: str, partition: dict) -> str:
    """The unit a part of TABLE in PARTITION is committed in when nobody names one."""
    if TABLES[table] in EPOCH_TABLES:
        return epoch_unit(partition["run"], partition["epoch"])
    return TABLES[table].partition_dir(**partition)


def describe(unit: str) -> str:
    """A unit as a user names it: 'run a epoch 3', 'oracle ref', 'dataset d (samples)'."""
    parts = hive_values(unit)
    if "epoch" in parts:
        return f"run {parts['run']} epoch {parts['epoch']}"
    if unit.startswith("oracle/"):
        return f"oracle {parts['name']}"
    return f"dataset {parts.get('dataset')} ({unit.split('/', 1)[0]})"


def record_path(root, unit: str) -> Path:
    return Path(root) / COMMITS / f"{unit}.json"


def lock(root) -> FileLock:
    return FileLock(Path(root) / COMMITS / ".lock")


COMPACTED = "compact-"   # the name's start of the parts `dissect compact` writes (compaction.py)


def epoch_parts(root, unit: str) -> list[Path]:
    """Every part in an epoch unit's folders, whichever rank wrote it ([] for other units), but
    the compacted ones: those are committed by the compaction's swap alone, so that what an
    interrupted compaction left is never committed by a later writer of the epoch."""
    if not is_epoch_unit(unit):
        return []
    return sorted(p for t in EPOCH_TABLES for p in (Path(root) / t.name / unit).glob("*.parquet")
                  if not p.name.startswith(COMPACTED))


def read_record(root, unit: str) -> dict | None:
    path = record_path(root, unit)
    return json.loads(path.read_text()) if path.exists() else None


def commit(root, unit: str, files, *, replace: bool = False, meta: dict | None = None) -> None:
    """Commit FILES (paths of parts already in place) into UNIT, beside what it holds already,
    or instead of it with REPLACE (the parts no longer named are then deleted)."""
    root = Path(root)
    with lock(root):
        before = read_record(root, unit)
        parts = {} if replace or before is None else dict(before["parts"])
        parts.update(_entries(root, files))
        record = {"unit": unit, "committed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "parts": parts}
        meta = meta if meta is not None else (before or {}).get("meta")
        if meta is not None:
            record["meta"] = meta
        write_text_atomic(record_path(root, unit), json.dumps(record, indent=1, sort_keys=True))
        if replace and before is not None:
            for rel in before["parts"].keys() - parts.keys():
                (root / rel).unlink(missing_ok=True)


def swap(root, unit: str, old, new) -> bool:
    """Name the parts NEW in UNIT's record instead of OLD, in one write of the record, keeping
    whatever else it names (parts another process added meanwhile). False, with nothing
    changed, where the record no longer names every part of OLD."""
    root = Path(root)
    with lock(root):
        before = read_record(root, unit)
        old_rels = {Path(p).relative_to(root).as_posix() for p in old}
        if before is None or not old_rels <= before["parts"].keys():
            return False
        parts = {rel: entry for rel, entry in before["parts"].items() if rel not in old_rels}
        parts.update(_entries(root, new))
        write_text_atomic(record_path(root, unit), json.dumps({**before, "parts": parts}, indent=1, sort_keys=True))
        return True


def _entries(root: Path, files) -> dict[str, dict]:
    """What a commit record says of each part: its rows, bytes and columns."""
    entries = {}
    for path in map(Path, files):
        footer = pq.ParquetFile(path)
        entries[path.relative_to(root).as_posix()] = {"rows": footer.metadata.num_rows, "bytes": path.stat().st_size,
                                                      "columns": footer.schema_arrow.names}
    return entries


def uncommit(root, unit: str) -> None:
    """Take UNIT out of the ledger: its record first (readers stop reading it), then its parts."""
    root = Path(root)
    with lock(root):
        record = read_record(root, unit)
        record_path(root, unit).unlink(missing_ok=True)
        for rel in (record or {}).get("parts", {}):
            (root / rel).unlink(missing_ok=True)


def run_records_dir(root, run: str) -> Path:
    """The folder of RUN's epochs' commit records."""
    return record_path(root, epoch_unit(run, 0)).parent


def run_units(root, run: str | None) -> list[tuple[int, str]]:
    """(epoch, unit) of every committed epoch of RUN (of every run where RUN is None), by run and epoch."""
    found = []
    for path in Path(root, COMMITS).glob(f"{'run=*' if run is None else f'run={run}'}/epoch=*.json"):
        name, epoch = hive_values(path.parent.name)["run"], int(hive_values(path.stem)["epoch"])
        found.append((name, epoch, epoch_unit(name, epoch)))
    return [(epoch, unit) for _, epoch, unit in sorted(found)]


@dataclass(frozen=True)
class Damage:
    path: str        # relative to the ledger
    problem: str
    unit: str | None

    def line(self) -> str:
        where = f" ({describe(self.unit)})" if self.unit else ""
        return f"{self.path}: {self.problem}{where}"


@dataclass(frozen=True)
class Entry:
    """One part as a commit record names it, and what a look at the file shows."""
    unit: str
    rel: str          # the part's path relative to the ledger
    rows: int         # as committed
    columns: list[str] | None   # as committed (None: a record older than the columns field)
    damage: Damage | None       # missing, or of another size than committed


def entries(root) -> tuple[list[Entry], list[Damage]]:
    """The one walk over the commit records: every part they name, each checked against its
    file's size, and the records that cannot be read."""
    root = Path(root)
    found, unreadable = [], []
    for path in sorted((root / COMMITS).rglob("*.json")):
        unit = path.relative_to(root / COMMITS).with_suffix("").as_posix()
        try:
            parts = json.loads(path.read_text())["parts"]
        except (ValueError, KeyError, TypeError):
            unreadable.append(Damage(path.relative_to(root).as_posix(), "commit record cannot be read", unit))
            continue
        for rel, entry in parts.items():
            try:
                size = (root / rel).stat().st_size
                damage = None if size == entry["bytes"] else Damage(
                    rel, f"{size} bytes, committed with {entry['bytes']}: changed or cut short", unit)
            except FileNotFoundError:
                damage = Damage(rel, f"missing (committed with {entry['rows']} rows)", unit)
            found.append(Entry(unit, rel, entry["rows"], entry.get("columns"), damage))
    return found, unreadable


def committed(root) -> tuple[dict[str, list[Path]], list[Damage], dict[str, set[str] | None], dict[str, bool]]:
    """Every committed part by table, the damage a look at the files shows (records that
    cannot be read, parts missing or of another size than committed; damaged parts are
    left out of the lists), the columns each table's parts hold (None where a commit
    record does not say: the parts' footers do), and whether the records say that every
    part of the table holds the same columns in the same order."""
    root = Path(root)
    by_table: dict[str, list[Path]] = {t: [] for t in TABLES}
    layouts: dict[str, set[tuple[str, ...] | None]] = {t: set() for t in TABLES}   # None: not recorded
    found, damage = entries(root)
    for entry in found:
        if entry.damage is not None:
            damage.append(entry.damage)
            continue
        table = entry.rel.split("/", 1)[0]
        by_table[table].append(root / entry.rel)
        layouts[table].add(None if entry.columns is None else tuple(entry.columns))
    columns = {t: None if None in held else set().union(*held) for t, held in layouts.items()}
    uniform = {t: len(held) == 1 and None not in held for t, held in layouts.items()}
    return by_table, damage, columns, uniform

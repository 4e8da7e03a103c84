"""`dissect check`: every file of a ledger against its commit records.

Damage is a committed part that is missing, has changed size, cannot be read or holds
other rows than committed; a commit or run record that cannot be read; and a part or
temporary file nobody committed. Not damage: the files of an epoch a live run is writing
(in progress), those of an epoch a run died in before committing it (interrupted:
never read, and removed by `--resume` or `dissect drop`), and those an interrupted
`dissect compact` left (never read, removed by the next `dissect compact`).
"""
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from dissect.ledger import commits, compaction
from dissect.ledger.commits import Damage
from dissect.ledger.files import is_unfinished
from dissect.ledger.runs import Run
from dissect.ledger.schema import RUNS_DIR, TABLES, hive_values
from dissect.ledger.store import NAME, LedgerError, check_root


@dataclass
class CheckResult:
    damage: list[Damage]
    in_progress: list[str]   # uncommitted files of runs training now: not damage
    interrupted: list[str]   # files of epochs that dead runs never committed: not damage
    parts: int               # committed parts read back whole
    rows: int

    def affected(self) -> list[str]:
        """The runs' epochs, oracles and datasets the damage touches, one line each."""
        epochs, others = defaultdict(set), set()
        for d in self.damage:
            unit = d.unit or ""
            if commits.is_epoch_unit(unit):
                values = hive_values(unit)
                epochs[values["run"]].add(int(values["epoch"]))
            elif unit:
                others.add(commits.describe(unit))
            else:
                others.add(d.path)
        lines = [f"run {run}: epoch{'s' if len(e) > 1 else ''} {', '.join(map(str, sorted(e)))}"
                 for run, e in sorted(epochs.items())]
        return lines + sorted(others)


def check(root) -> CheckResult:
    """Read every part of the ledger at ROOT back and compare it with its commit record."""
    root = check_root(root)
    if not root.is_dir():
        raise LedgerError(f"no ledger at {root}: pass --ledger with the folder `dissect train` wrote")
    found, damage = commits.entries(root)
    committed, parts, rows = set(), 0, 0
    for entry in found:
        committed.add(entry.rel)
        if entry.damage is not None:
            damage.append(entry.damage)
            continue
        try:
            rows_read = _read_back(root / entry.rel)
        except Exception as e:   # pyarrow raises several kinds for a damaged file
            damage.append(Damage(entry.rel, f"cannot be read as Parquet ({str(e).splitlines()[0]})", entry.unit))
            continue
        if rows_read != entry.rows:
            damage.append(Damage(entry.rel, f"holds {rows_read} rows, committed with {entry.rows}", entry.unit))
            continue
        parts, rows = parts + 1, rows + rows_read
    in_progress, interrupted = [], []
    left_by_compaction = compaction.interrupted_files(root)
    compacting_now = bool(left_by_compaction) and compaction.is_running(root)
    for path in _table_files(root):
        rel = path.relative_to(root).as_posix()
        if rel in committed:
            continue
        unit, run = _owner(root, rel)
        if rel in left_by_compaction and compacting_now:
            in_progress.append(f"{rel}: being rewritten by `dissect compact`")
        elif rel in left_by_compaction:
            interrupted.append(f"{rel}: {left_by_compaction[rel]}")
        elif run is not None and run.is_live():
            in_progress.append(f"{rel}: being written by run {run.name}")
        elif run is not None and not commits.record_path(root, unit).exists() and run.record_path.exists():
            interrupted.append(f"{rel}: run {run.name} stopped in epoch {unit.rsplit('=', 1)[1]} before committing it; "
                               f"`dissect train --resume` removes it and trains that epoch again, "
                               f"`dissect drop {run.name}` removes the run")
        elif is_unfinished(path):
            damage.append(Damage(rel, "a write that did not finish; delete it", unit))
        elif run is not None:
            damage.append(Damage(rel, f"not committed: run {run.name} died in that epoch; `dissect train --resume` "
                                      f"rewrites it, `dissect drop {run.name}` removes the run", unit))
        else:
            damage.append(Damage(rel, "not committed: a stray file or a write that did not finish; delete it",
                                 unit))
    for record_file in sorted((root / RUNS_DIR).glob("*.json")):
        try:
            json.loads(record_file.read_text())["name"]
        except (ValueError, KeyError, TypeError):
            damage.append(Damage(record_file.relative_to(root).as_posix(), "run record cannot be read", None))
    return CheckResult(damage, in_progress, interrupted, parts, rows)


def _read_back(path: Path) -> int:
    """Rows of a part, read whole one row group at a time with each page's checksum verified
    (the footer alone misses damaged pages)."""
    part = pq.ParquetFile(path, page_checksum_verification=True)
    for group in range(part.num_row_groups):
        part.read_row_group(group)
    return part.metadata.num_rows


def _table_files(root: Path):
    for table in TABLES.values():
        folder = root / table.name
        yield from sorted(p for p in folder.rglob("*") if p.is_file() and (p.suffix == ".parquet"
                                                                            or is_unfinished(p)))


def _owner(root: Path, rel: str) -> tuple[str | None, Run | None]:
    """The unit a file sits in by its path, and the run that writes it (None outside runs)."""
    table, partition = rel.split("/", 1)[0], hive_values(rel)
    if table not in TABLES or list(partition) != [col for col, _ in TABLES[table].partitions]:
        return None, None
    run = partition.get("run")
    return commits.unit_of(table, partition), Run(root, run) if run is not None and NAME.match(run) else None

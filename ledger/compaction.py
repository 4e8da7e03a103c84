"""`dissect compact`: an epoch's many small parts rewritten as a few large ones, atomically.

Every rank writes its own parts of an epoch, one per table at each flush and every
LedgerWriter.PART_ROWS rows, so a run on many ranks leaves many small files; DuckDB and
Spark read fewer, larger ones faster (a file opened per part, a task per file). For each
committed epoch and table, consecutive parts are packed up to COMPACT_ROWS rows, and each
pack of several is rewritten as one part, its rows sorted by sample_id where the table has
one (as the writer sorts each part), in row groups of PART_ROWS: one pack in memory at a
time. The summaries keep their parts, one per split, named by what they summarise
(`dissect score` replaces an oracle's by its name).

The swap is atomic through the commit records. The plan (old parts, new parts) is written
first, to PLAN in the ledger's root; then the new parts; then one replacement of the
epoch's record names the new parts instead of the old (commits.swap); then the old parts
are deleted and the plan removed. A crash leaves the plan behind: before the swap the old
parts are still the committed ones and the new files are never read, after it the other
way round; `dissect check` reports the files the plan names as left by an interrupted
compaction (not damage), and the next `dissect compact` finishes or undoes it first.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dissect.ledger import commits
from dissect.ledger.files import FileLock, LockHeld, is_held, write_parquet_atomic, write_text_atomic
from dissect.ledger.schema import TABLES
from dissect.ledger.store import LedgerError, check_name, check_root
from dissect.ledger.writer import LedgerWriter

PLAN = "compacting.json"      # in the ledger's root, beside commits/
COMPACT_ROWS = 16 * LedgerWriter.PART_ROWS


@dataclass
class CompactResult:
    epochs: int          # epochs rewritten
    parts_before: int    # their parts before, in the tables rewritten
    parts_after: int
    rows: int            # rows rewritten (the same before and after)
    finished: str | None = None   # what an interrupted compaction left, finished or undone first


def plan_path(root) -> Path:
    return Path(root) / PLAN


def _lock_path(root) -> Path:
    return Path(root) / commits.COMMITS / ".compact.lock"


def _lock(root) -> FileLock:
    return FileLock(_lock_path(root), wait=False)


def is_running(root) -> bool:
    """Whether a `dissect compact` is rewriting the ledger at ROOT now."""
    return is_held(_lock_path(root))


def compact(root, *, run: str | None = None) -> CompactResult:
    """Rewrite the committed epochs of RUN (every run's without it) whose tables have several parts."""
    root = check_root(root)
    if not (root / commits.COMMITS).is_dir():
        raise LedgerError(f"no ledger at {root}: pass --ledger with the folder `dissect train` wrote")
    if run is not None:
        check_name(run, "run")
    try:
        with _lock(root):
            finished = finish_interrupted(root)
            result = CompactResult(0, 0, 0, 0, finished)
            for unit in _epoch_units(root, run):
                plan = _plan(root, unit)
                if plan:
                    before, after, rows = _compact_unit(root, unit, plan)
                    result.epochs += 1
                    result.parts_before += before
                    result.parts_after += after
                    result.rows += rows
            return result
    except LockHeld as e:
        raise LedgerError(f"another `dissect compact` is rewriting {root} ({e.holder}): wait for it to end") from None


def _epoch_units(root: Path, run: str | None) -> list[str]:
    units = [unit for _, unit in commits.run_units(root, run)]
    if run is not None and not units:
        raise LedgerError(f"run {run!r} has no committed epoch in {root}: `dissect runs --ledger {root}` "
                          "lists the runs")
    return units


def _plan(root: Path, unit: str) -> dict[str, list[str]]:
    """New part (relative path) -> the unit's committed parts it replaces: per partition folder of
    the epoch tables, consecutive parts packed up to COMPACT_ROWS rows; a pack of one is left."""
    record = commits.read_record(root, unit) or {"parts": {}}
    epoch_tables = {t.name for t in commits.EPOCH_TABLES} - {"summaries"}
    folders: dict[str, list[str]] = {}
    for rel in sorted(record["parts"]):
        if rel.split("/", 1)[0] in epoch_tables:
            folders.setdefault(rel.rsplit("/", 1)[0], []).append(rel)
    plan = {}
    for folder, rels in folders.items():
        packs, rows = [[]], 0
        for rel in rels:
            if packs[-1] and rows + record["parts"][rel]["rows"] > COMPACT_ROWS:
                packs.append([])
                rows = 0
            packs[-1].append(rel)
            rows += record["parts"][rel]["rows"]
        names = _free_names(root / folder)
        plan.update({f"{folder}/{next(names)}": pack for pack in packs if len(pack) > 1})
    return plan


def _compact_unit(root: Path, unit: str, plan: dict[str, list[str]]) -> tuple[int, int, int]:
    """Write the plan's new parts one at a time (a pack's rows in memory at most), then swap them in."""
    old, new = [rel for pack in plan.values() for rel in pack], list(plan)
    write_text_atomic(plan_path(root), json.dumps({"unit": unit, "old": old, "new": new}, indent=1))
    rows = 0
    for rel, pack in plan.items():
        table = _merged(root, rel.split("/", 1)[0], pack)
        write_parquet_atomic(table, root / rel, row_group_size=LedgerWriter.PART_ROWS)
        rows += table.num_rows
    swapped = commits.swap(root, unit, [root / rel for rel in old], [root / rel for rel in new])
    _remove(root, old if swapped else new)
    plan_path(root).unlink()
    if not swapped:
        raise LedgerError(f"{commits.describe(unit)} changed while it was being compacted (a run resumed or was "
                          "dropped): nothing of it was rewritten; run `dissect compact` again")
    return len(old), len(new), rows


def _free_names(folder: Path):
    """compact-N.parquet names that no file in FOLDER has (an earlier compaction's are committed)."""
    n = 0
    while True:
        name = f"{commits.COMPACTED}{n:05d}.parquet"
        if not (folder / name).exists():
            yield name
        n += 1


def _merged(root: Path, table: str, rels: list[str]) -> pa.Table:
    """The rows of parts of TABLE as one table, sorted by sample_id where the table has it."""
    schema = TABLES[table].columns
    merged = pa.concat_tables([pq.read_table(root / rel, partitioning=None).select(schema.names).cast(schema)
                               for rel in rels])
    return merged.sort_by("sample_id") if "sample_id" in schema.names else merged


def finish_interrupted(root) -> str | None:
    """Finish the compaction a crash interrupted (its epoch's record already names the new
    parts: delete the old) or undo it (delete the new); None where there was none."""
    root = Path(root)
    plan = read_plan(root)
    if plan is None:
        return None
    record = commits.read_record(root, plan["unit"]) or {"parts": {}}
    swapped = all(rel in record["parts"] for rel in plan["new"])
    _remove(root, plan["old"] if swapped else plan["new"])
    plan_path(root).unlink()
    return f"{'finished' if swapped else 'undid'} an interrupted compaction of {commits.describe(plan['unit'])}"


def read_plan(root) -> dict | None:
    path = plan_path(root)
    return json.loads(path.read_text()) if path.exists() else None


def _remove(root: Path, rels: list[str]) -> None:
    for rel in rels:
        (root / rel).unlink(missing_ok=True)


def interrupted_files(root) -> dict[str, str]:
    """The files an interrupted compaction left, which are not committed: rel -> what to do."""
    plan = read_plan(root)
    if plan is None:
        return {}
    where = commits.describe(plan["unit"])
    note = f"left by an interrupted `dissect compact` of {where}, never read; `dissect compact` again removes it"
    return {rel: note for rel in [*plan["old"], *plan["new"]]}

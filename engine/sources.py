"""What a run trains and evaluates on: its dataset (any source `dissect ingest` takes), its
test sets and its `dissect curate` subset, opened and checked before anything is written."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dissect import ledger
from dissect.ledger import curation
from dissect.engine import data, models, strategies
from dissect.engine.config import TrainConfig, test_set_name
from dissect.engine.data import ingest
from dissect.engine.errors import InputError


@dataclass
class TestSet:
    prefix: str                     # of its metric names in `evals`: "" for DATA's own test split, else "NAME/"
    dataset: data.Dataset
    split: str


@dataclass
class Sources:
    train: data.Dataset
    tests: list[TestSet]            # where the periodic eval reads from
    notes: list[str]                # what ingesting the sources did
    subset: np.ndarray | None = None        # sorted train ids of --subset
    subset_record: dict | None = None       # what the run record says of it


def open_subset(path: str, dataset: data.Dataset) -> tuple[np.ndarray, dict]:
    """The ids of a `dissect curate` subset of DATASET, or an InputError that says why not."""
    try:
        ids, meta, digest = curation.read_subset(path)
    except ledger.LedgerError as e:
        raise InputError(str(e)) from e
    if meta.dataset_fingerprint != dataset.fingerprint:
        raise InputError(f"subset {path} was curated from dataset {meta.dataset}, not from this one "
                         f"({dataset.name}): curate it from a ledger that trained on this dataset")
    train_ids = dataset.split("train")["sample_id"].to_numpy()
    strays = int((~np.isin(ids, train_ids)).sum())
    if strays:
        raise InputError(f"subset {path} has {strays} ids that are not train samples of {dataset.name}")
    record = {"path": str(Path(path).resolve()), "rule": meta.rule, "keep": meta.keep, "n": len(ids),
              "run": meta.run, "oracle": meta.oracle, "hist_epoch": meta.hist_epoch, "until_epoch": meta.until_epoch,
              "fingerprint": digest}
    return ids, record


def open_sources(cfg: TrainConfig) -> Sources:
    """The checks of a validated config that need the strategies, the models or the data, and
    the data's sources opened, before anything is written (but the ingest of a source that is
    not yet a dataset, which goes to the ledger's datasets folder)."""
    if cfg.strategy not in strategies.REGISTRY:
        raise strategies.UnknownStrategy(
            f"unknown strategy {cfg.strategy!r}: choose one of {', '.join(strategies.REGISTRY)}")
    models.check_model_name(cfg.model)
    if strategies.REGISTRY[cfg.strategy].peer and cfg.select_scope == "local":
        raise InputError(f"{cfg.strategy} picks over the global batch for both of its networks: "
                         "leave --select-scope global")
    if cfg.score_image_size is not None:
        models.check_score_image_size(cfg.model, cfg.score_image_size)
    ledger.check_name("--run", cfg.run)
    ledger.check_root(cfg.ledger)
    csv_format = ingest.CsvFormat(cfg.csv_img_key, cfg.csv_caption_key, cfg.csv_separator)
    workdir = ledger.datasets_dir(cfg.ledger)
    dataset, note = ingest.open_source(cfg.data, workdir, csv_format=csv_format, quiet=cfg.quiet)
    if not dataset.split("train").num_rows:
        raise InputError(f"{cfg.data} has no train samples")
    notes = [note] if note else []
    tests = [TestSet("", dataset, "test")] if dataset.split("test").num_rows and not cfg.test_data else []
    for spec in cfg.test_data:
        name, path = test_set_name(spec)
        if any(t.prefix == f"{name}/" for t in tests):
            raise InputError(f"two --test-data sets are named {name!r}: name them, e.g. --test-data {name}2={path}")
        test, note = ingest.open_source(path, workdir, csv_format=csv_format, quiet=cfg.quiet)
        tests.append(TestSet(f"{name}/", test, "test" if test.split("test").num_rows else "train"))
        notes += [note] if note else []
    subset, subset_record = open_subset(cfg.subset, dataset) if cfg.subset else (None, None)
    return Sources(dataset, tests, notes, subset, subset_record)

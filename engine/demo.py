"""The demo a new user runs first: a noisy synthetic dataset, five strategies and the
curation recipe (a cheap proxy's history, the main model trained on its top half), one ledger."""
import shutil
from pathlib import Path

from dissect.engine import models, train
from dissect.engine.config import AUTO, DemoSettings
from dissect.engine.data import synthetic
from dissect.engine.errors import InputError
from dissect.ledger import curation

STRATEGIES = ("full", "random", "small-loss", "dissect-warmup", "running-mean")
PROXY_RUN, CURATED_RUN = "micro-proxy", "curated"


def scoring_precision(settings: DemoSettings, device: str) -> str | None:
    """The scoring pass's autocast: AUTO is bf16 on a CPU that multiplies bf16 natively, where the
    no-grad forward is faster and ranks the batch as exact scoring does (docs/scale.md), while
    training stays fp32; elsewhere as training (None: the run's --precision)."""
    if settings.score_precision != AUTO:
        return settings.score_precision
    return "amp_bf16" if device == "cpu" and models.cpu_multiplies_bf16() else None


def run(settings: DemoSettings, on_run_start=None) -> tuple[Path, list[str], curation.Subset, Path]:
    """Make the dataset, train every strategy, then the proxy, curate its history and train on
    the curated subset; returns (ledger path, run names, the subset, its file)."""
    out = Path(settings.out)
    ledger_dir, data_dir = out / "ledger", out / "data"
    if ledger_dir.exists():
        if not settings.overwrite:
            raise InputError(f"{out} already holds a demo ledger: pass --overwrite or another --out")
        shutil.rmtree(ledger_dir)
    if data_dir.exists() and settings.overwrite:
        shutil.rmtree(data_dir)
    if not data_dir.exists():
        synthetic.make_synthetic(data_dir, n=settings.n, test_n=settings.test_n, noise_ratio=settings.noise_ratio,
                            noise_type=settings.noise_type, seed=settings.seed)
    common = dict(data=str(data_dir), ledger=str(ledger_dir), epochs=settings.epochs,
                  warmup_epochs=settings.warmup_epochs, batch_size=settings.batch_size, workers=settings.workers,
                  score_precision=scoring_precision(settings, models.default_device()),
                  seed=settings.seed)
    runs = []
    for strategy in STRATEGIES:
        if on_run_start:
            on_run_start(strategy)
        train.train(train.TrainConfig(run=strategy, strategy=strategy, ratio=settings.ratio, **common))
        runs.append(strategy)
    if on_run_start:
        on_run_start(f"{PROXY_RUN} (the proxy: {settings.proxy_model}, full data)")
    train.train(train.TrainConfig(run=PROXY_RUN, strategy="full", model=settings.proxy_model, **common))
    subset, path = curate(settings, ledger_dir)
    if on_run_start:
        on_run_start(f"{CURATED_RUN} (--subset {path} --strategy full)")
    train.train(train.TrainConfig(run=CURATED_RUN, strategy="full", subset=str(path), **common))
    return ledger_dir, runs + [PROXY_RUN, CURATED_RUN], subset, path


def curate(settings: DemoSettings, ledger_dir: Path) -> tuple[curation.Subset, Path]:
    """The better dataset the demo takes away: its train pairs ranked by the proxy run's
    history (no oracle), the top curate_keep written to OUT/subset.parquet."""
    subset = curation.curate(ledger_dir, settings.curate_rule, keep=settings.curate_keep, run=PROXY_RUN)
    return subset, curation.write_subset(subset, Path(settings.out) / "subset.parquet", overwrite=True)

"""The training loop: score the batch, let the strategy pick, train on the picks.

One step (DESIGN.md): a no-grad forward of the whole batch gives every sample's
CLIPScore and InfoNCE loss; the strategy picks k = floor(r * B); a forward and
backward on those k with open_clip's ClipLoss; AdamW, cosine schedule, logit
scale clamped to ln(100). Every step's scores and decisions go to the ledger
writer, which writes them in the background.
"""
import math
import platform
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.loss import ClipLoss
from open_clip_train.precision import get_autocast
from open_clip_train.scheduler import cosine_lr
from tqdm import tqdm

from dissect import ledger
from dissect.ledger import curation
from dissect.engine import data, distributed, evaluate, models, stopping, strategies
from dissect.engine.data import cache, ingest
from dissect.engine.scores import per_sample_scores, weighted_clip_loss
from dissect.engine.config import DIVBS_FEATURES, PRECISIONS, TrainConfig, test_set_name
from dissect.engine.errors import InputError

MAX_LOGIT_SCALE = math.log(100)


END = object()  # the loader has no batch left


@dataclass
class Scores:
    """Per-sample numbers of the global batch: from the scoring pass (features too), or from
    the training forward for the trained samples (NaN elsewhere, no features)."""
    clipscore: torch.Tensor
    loss: torch.Tensor
    correct: torch.Tensor
    loss_i2t: torch.Tensor
    loss_t2i: torch.Tensor
    features: strategies.Features | None

    def part(self, rows: slice) -> "Scores":
        f = self.features
        return Scores(self.clipscore[rows], self.loss[rows], self.correct[rows], self.loss_i2t[rows],
                      self.loss_t2i[rows], strategies.Features(f.image[rows], f.text[rows], f.logit_scale))


@dataclass
class Step:
    """What one training step did. Tensors cover the global batch (every rank's samples in
    rank order); `rows` are this rank's. NaN: not scored (no scoring pass, not trained) or
    no history."""
    ids: torch.Tensor           # this rank's sample ids
    rows: slice
    clipscore: torch.Tensor
    loss: torch.Tensor
    correct: torch.Tensor       # 1.0 / 0.0: the pair is (not) learned within its batch
    hist: torch.Tensor
    trained: torch.Tensor       # bool
    train_loss: float           # NaN when nothing was trained
    t_score: float
    t_train: float


@dataclass
class Network:
    """A peer strategy's second network (NCR's): trained beside the model on its own picks,
    with its own optimiser on the same schedule."""
    model: torch.nn.Module
    ddp_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None


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


def validate(cfg: TrainConfig) -> Sources:
    """Every check that can fail on the user's input, before anything is written
    (but the ingest of a source that is not yet a dataset, which goes to LEDGER/datasets)."""
    if cfg.strategy not in strategies.REGISTRY:
        raise strategies.UnknownStrategy(
            f"unknown strategy {cfg.strategy!r}: choose one of {', '.join(strategies.REGISTRY)}")
    models.check_model_name(cfg.model)
    if not 0 < cfg.ratio <= 1:
        raise InputError(f"--ratio {cfg.ratio} is outside (0, 1]: give the fraction of each batch to train on")
    for name in ("epochs", "batch_size", "eval_every"):
        if getattr(cfg, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    if cfg.strategy == "dissect-warmup" and cfg.epochs < 2:
        raise InputError("dissect-warmup needs --epochs 2 or more (a warm-up epoch, then selection by delta): "
                         "pass --epochs 2 or more, or another --strategy")
    if cfg.strategy == "dissect-warmup" and not 1 <= cfg.warmup_epochs < cfg.epochs:
        raise InputError(f"--warmup-epochs {cfg.warmup_epochs} must be at least 1 and below --epochs {cfg.epochs}")
    if not 0 <= cfg.momentum < 1:
        raise InputError(f"--momentum {cfg.momentum} is outside [0, 1)")
    if not 0 <= cfg.infobatch_anneal < 1:
        raise InputError(f"--infobatch-anneal {cfg.infobatch_anneal} is outside [0, 1): give the final fraction "
                         "of the epochs that prunes nothing")
    if cfg.scan_t_cos < 1:
        raise InputError(f"--scan-t-cos {cfg.scan_t_cos} must be at least 1 (the pruning epochs of a cycle)")
    if not 0 <= cfg.scan_prune_td < 1:
        raise InputError(f"--scan-prune-td {cfg.scan_prune_td} is outside [0, 1): give the epoch-on-epoch loss "
                         "decrease under which pre-training ends")
    if cfg.ncr_warmup_epoch < 0:
        raise InputError(f"--ncr-warmup-epoch {cfg.ncr_warmup_epoch} must be 0 or more")
    if not 0 <= cfg.ncr_p_threshold <= 1:
        raise InputError(f"--ncr-p-threshold {cfg.ncr_p_threshold} is outside [0, 1]")
    if not 0 <= cfg.gsc_beta <= 1:
        raise InputError(f"--gsc-beta {cfg.gsc_beta} is outside [0, 1]")
    if strategies.REGISTRY[cfg.strategy].peer and cfg.select_scope == "local":
        raise InputError(f"{cfg.strategy} picks over the global batch for both of its networks: "
                         "leave --select-scope global")
    if cfg.running_mean_warmup < 0:
        raise InputError(f"--running-mean-warmup {cfg.running_mean_warmup} must be 0 or more")
    if not 0 <= cfg.running_mean_random_share <= 1:
        raise InputError(f"--running-mean-random-share {cfg.running_mean_random_share} is outside [0, 1]")
    if not 0 < cfg.running_mean_pool <= 1:
        raise InputError(f"--running-mean-pool {cfg.running_mean_pool} is outside (0, 1]: give the share of the "
                         "batch, by running mean, that the picks are drawn among")
    if not 0 <= cfg.mid_loss_spread < 1:
        raise InputError(f"--mid-loss-spread {cfg.mid_loss_spread} is outside [0, 1)")
    if not 0 <= cfg.mid_loss_low_share <= 1:
        raise InputError(f"--mid-loss-low-share {cfg.mid_loss_low_share} is outside [0, 1]")
    if cfg.divbs_features not in DIVBS_FEATURES:
        raise InputError(f"--divbs-features {cfg.divbs_features!r}: use {' or '.join(DIVBS_FEATURES)}")
    if cfg.precision not in PRECISIONS:
        raise InputError(f"--precision {cfg.precision!r}: use one of {', '.join(PRECISIONS)}")
    if cfg.precision == "amp" and not cfg.device.startswith("cuda"):
        raise InputError("--precision amp (fp16 autocast with a gradient scaler) needs a GPU: on the CPU use "
                         "amp_bf16, pure_bf16 or fp32")
    if cfg.score_precision not in PRECISIONS:
        raise InputError(f"--score-precision {cfg.score_precision!r}: use one of {', '.join(PRECISIONS)}")
    if (cfg.score_precision == "pure_bf16") != (cfg.precision == "pure_bf16"):
        raise InputError("--score-precision pure_bf16 goes with --precision pure_bf16 only (the weights are bf16 "
                         "then): to score in bf16 while training in fp32, use --score-precision amp_bf16")
    if cfg.score_precision == "amp" and not cfg.device.startswith("cuda"):
        raise InputError("--score-precision amp (fp16 autocast) needs a GPU: on the CPU use amp_bf16 or fp32")
    if cfg.score_image_size is not None:
        models.check_score_image_size(cfg.model, cfg.score_image_size)
    if cfg.select_scope not in ("global", "local"):
        raise InputError(f"--select-scope {cfg.select_scope!r}: use global or local")
    if cfg.score_mode not in ("eval", "train"):
        raise InputError(f"--score-mode {cfg.score_mode!r}: use eval or train")
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


# What a run is: a resumed run must agree with its record on every one of these.
DEFINING = ("strategy", "ratio", "seed", "model", "batch_size", "lr", "weight_decay", "beta1", "beta2", "eps",
            "warmup_steps", "logit_scale_lr_mult", "warmup_epochs", "momentum", "score_mode", "score_all",
            "select_scope", "local_loss", "gather_with_grad", "test_data", "subset", "infobatch_anneal",
            "scan_t_cos", "scan_prune_td", "ncr_warmup_epoch", "ncr_p_threshold", "gsc_beta", "mid_loss_spread",
            "mid_loss_low_share", "running_mean_warmup", "running_mean_random_share", "running_mean_pool",
            "divbs_features", "precision", "score_precision", "score_image_size")


def check_record(cfg: TrainConfig, run: ledger.Run, sources: Sources, world: distributed.World) -> bool:
    """Under the run's lock: whether to resume from a checkpoint. A new run must not be in the
    ledger; --resume must agree with the record on everything that defines the run (a larger
    --epochs trains on); a run that died before its first checkpoint, or before its record
    was written, starts again."""
    record = run.record()
    if record is not None and not cfg.resume:
        raise InputError(f"run {cfg.run!r} is already in {cfg.ledger}: pick another --run, pass --resume, "
                         f"or remove it with `dissect drop {cfg.run} --ledger {cfg.ledger}`")
    if not cfg.resume:
        return False
    if record is None:
        return False
    if record["dataset_fingerprint"] != sources.train.fingerprint:
        raise InputError(f"run {cfg.run!r} was trained on another dataset (fingerprint "
                         f"{record['dataset_fingerprint'][:12]}, {cfg.data} has {sources.train.fingerprint[:12]})")
    before, now = record["config"], cfg.as_record()
    unused = {key for cls in strategies.REGISTRY.values() for key in cls.settings} \
        - set(strategies.REGISTRY[cfg.strategy].settings)   # another strategy's hyper-parameters
    before = {key: before.get(key, getattr(TrainConfig, key, None)) for key in DEFINING}   # older records lack new flags
    differences = [f"--{key.replace('_', '-')} {before[key]!r} -> {now[key]!r}" for key in DEFINING
                   if key not in unused and _comparable(before[key]) != _comparable(now[key])]
    read_cache = record_read_cache(record)
    if cfg.cache != "auto" and (cfg.cache == "on") != read_cache:
        differences.append(f"--{'no-' if cfg.cache == 'off' else ''}cache, but the run read "
                           f"{'the cache' if read_cache else 'the shards'}")
    if record.get("world_size", 1) != world.world_size:
        differences.append(f"world size {record.get('world_size')} -> {world.world_size}")
    if cfg.epochs < record["epochs"]:
        differences.append(f"--epochs {record['epochs']} -> {cfg.epochs} (it may only grow)")
    if differences:
        raise InputError(f"--resume of run {cfg.run!r} with other settings than it ran with: "
                         + "; ".join(differences))
    return run.has_checkpoint()


def record_read_cache(record: dict) -> bool:
    """Whether a recorded run read the decoded cache (records before --cache auto hold config.cache True/False)."""
    return bool(record["cache_used"]) if record.get("cache_used") is not None else record["config"].get("cache") is True


def _comparable(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def param_groups(model: torch.nn.Module, weight_decay: float, logit_scale_lr_mult: float):
    """open_clip_train's split: no weight decay on gains, biases and the logit scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad or name == "logit_scale":
            continue
        exclude = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
        (no_decay if exclude else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
        {"params": [model.logit_scale], "weight_decay": 0.0, "lr_scale": logit_scale_lr_mult},
    ]


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("dissect", "torch", "open_clip_torch", "webdataset", "duckdb", "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _now() -> str:
    # milliseconds: a run's wall time (end - start) is compared between runs of seconds
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Trainer:
    def __init__(self, cfg: TrainConfig, run: ledger.Run, sources: Sources, world: distributed.World,
                 resumed_cache: bool | None = None):
        self.cfg = cfg
        self.run = run
        self.sources = sources
        self.world = world
        dataset = self.dataset = sources.train
        self.device = torch.device(f"cuda:{world.gpu}" if cfg.device.startswith("cuda") else cfg.device)
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        bundle = models.create(cfg.model, device=str(self.device), precision=cfg.precision)
        self.model, self.preprocess_train, self.preprocess_val = bundle.model, bundle.preprocess_train, bundle.preprocess_val
        self.tokenizer = bundle.tokenizer
        self.cache, self.cache_choice = cache.open_for(dataset, cfg.model, bundle, cfg.cache, cfg.cache_max_gb,
                                                       quiet=cfg.quiet or not world.is_main, resumed=resumed_cache)
        self.image_size = bundle.image_size
        self.context_length = self.model.context_length
        self.embed_dim = self.model.text_projection.shape[1] if hasattr(self.model, "text_projection") \
            else self.model.visual.output_dim
        self.ddp_model = torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[world.gpu] if self.device.type == "cuda" else None) \
            if world.enabled else self.model
        noisy = dataset.manifest["is_noisy"]
        self.strategy = strategies.create(
            cfg.strategy, n_samples=dataset.n_samples, ratio=cfg.ratio, seed=cfg.seed,
            clean=None if noisy.null_count else ~torch.tensor(noisy.to_numpy(zero_copy_only=False)),
            **{key: getattr(cfg, key) for key in strategies.REGISTRY[cfg.strategy].settings})
        if cfg.select_scope == "global":
            self.strategy.k_multiple = world.world_size
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, cfg.weight_decay, cfg.logit_scale_lr_mult), lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
        # the sorted train ids an epoch draws from, before its strategy prunes any (InfoBatch, SCAN)
        self.pool = torch.from_numpy(np.sort(dataset.split("train")["sample_id"].to_numpy())
                                     if sources.subset is None else sources.subset)
        self.steps_per_epoch = math.ceil(len(self.pool) / (cfg.batch_size * world.world_size))
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.schedule = cosine_lr(self.optimizer, cfg.lr, cfg.warmup_steps, self.total_steps)
        # the training loss gathers features across ranks; scores are computed on gathered features
        self.loss_fn = ClipLoss(local_loss=cfg.local_loss, gather_with_grad=cfg.gather_with_grad, cache_labels=True,
                                rank=world.rank, world_size=world.world_size)
        self.score_loss = ClipLoss()
        self.stop = stopping.StopRequest()   # set by a signal while train() runs the loop
        # the training and the scoring pass run under the same autocast, as open_clip_train's
        self.autocast = get_autocast(cfg.precision, device_type=self.device.type)
        self.score_autocast = get_autocast(cfg.score_precision, device_type=self.device.type)
        self.score_model = models.scoring_twin(cfg.model, cfg.score_image_size, str(self.device), cfg.precision) \
            if cfg.score_image_size not in (None, self.image_size) else None
        self.input_dtype = open_clip.get_input_dtype(cfg.precision)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "amp" else None
        self.peer = self.peer_network() if self.strategy.peer else None
        self.missing_shards: set[str] = set()
        self.epoch = 0
        self.step = 0

    def peer_network(self) -> Network:
        """The second network of a peer strategy, initialised apart from the model (seed + 1)."""
        cfg, world = self.cfg, self.world
        torch.manual_seed(cfg.seed + 1)
        model = models.create(cfg.model, device=str(self.device), precision=cfg.precision).model
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[world.gpu] if self.device.type == "cuda" else None) if world.enabled else model
        optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.logit_scale_lr_mult), lr=cfg.lr,
                                      betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
        return Network(model, ddp_model, optimizer, torch.amp.GradScaler("cuda") if cfg.precision == "amp" else None)

    # --- checkpoints ----------------------------------------------------------

    def checkpoint_state(self) -> dict:
        peer = {} if self.peer is None else {
            "peer": {"state_dict": self.peer.model.state_dict(), "optimizer": self.peer.optimizer.state_dict()}}
        return {
            "state_dict": self.model.state_dict(),   # the bare model, never the DDP wrapper
            "optimizer": self.optimizer.state_dict(),
            **peer,
            "strategy": self.strategy.state_dict(),
            "epoch": self.epoch,   # epochs completed; the ledger holds exactly these
            "step": self.step,
            "run": self.cfg.run,
            "model": self.cfg.model,
            "dataset_fingerprint": self.dataset.fingerprint,
        }

    def save_checkpoint(self) -> None:
        """Rank 0 writes; every rank holds the same weights and strategy state."""
        if not self.world.is_main:
            return
        self.run.save_checkpoint(lambda path: torch.save(self.checkpoint_state(), path))

    def load_checkpoint(self) -> None:
        path = self.run.checkpoint_path
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.strategy.load_state_dict(state["strategy"])
            if self.peer is not None:
                self.peer.model.load_state_dict(state["peer"]["state_dict"])
                self.peer.optimizer.load_state_dict(state["peer"]["optimizer"])
            self.epoch, self.step = state["epoch"], state["step"]
        except Exception as e:   # torch raises many kinds for a damaged or foreign file
            raise InputError(f"checkpoint {path} cannot be resumed from ({type(e).__name__}): delete it to train "
                             f"run {self.cfg.run!r} again from epoch 0 with --resume") from e

    # --- one step -------------------------------------------------------------

    def train_step(self, ids, images, tokens) -> Step:
        """Score (where the strategy needs it), select, train: the same order for every strategy.

        Strategies that rank the batch get a no-grad scoring pass over every sample; the
        others (full, random, oracle-clean) pick first, and the trained samples' CLIPScore
        and loss come from the training forward (the rest stay NaN: NULL in the ledger)."""
        images = images.to(self.device, dtype=self.input_dtype, non_blocking=True)
        tokens = tokens.to(self.device, non_blocking=True)
        sizes = distributed.all_sizes(self.world, len(ids), self.device)
        global_ids = distributed.gather_rows(self.world, ids.to(self.device), sizes).cpu() \
            if self.world.enabled else ids
        t0 = time.perf_counter()
        scored = self.strategy.scores_batch or self.cfg.score_all
        scores = self.global_scores(sizes, *self.features(images, tokens)) if scored else None
        if self.peer is None:
            selection = self.select(global_ids, scores, sizes)
        else:
            peer_scores = self.global_scores(sizes, *self.features(images, tokens, self.peer.model))
            selection, peer_selection = self.strategy.select_pair(global_ids, scores, peer_scores, self.epoch)
        t1 = time.perf_counter()
        train_loss, trained, trained_scores = self.train_selected(images, tokens, selection, sizes,
                                                                  want_scores=not scored)
        if self.peer is not None:
            self.train_selected(images, tokens, peer_selection, sizes, want_scores=False, net=self.peer)
        scores = scores if scored else trained_scores
        self.strategy.trained(global_ids, trained, scores)
        nan = torch.full((len(global_ids),), float("nan"))
        return Step(ids=ids, rows=slice(sum(sizes[:self.world.rank]), sum(sizes[:self.world.rank + 1])),
                    clipscore=scores.clipscore, loss=scores.loss, correct=scores.correct.float(),
                    hist=nan if selection.hist is None else selection.hist,
                    trained=trained, train_loss=train_loss, t_score=t1 - t0, t_train=time.perf_counter() - t1)

    @torch.inference_mode()
    def features(self, images, tokens, network=None):
        """No-grad features of this rank's batch for the scoring pass (eval mode unless --score-mode
        train), by the model or by NETWORK (a peer strategy's second network)."""
        trained = network or self.model
        if len(images) == 0:  # a rank with nothing left this epoch still takes part in the step
            empty = torch.zeros(0, self.embed_dim, device=self.device)
            return empty, empty, trained.logit_scale.exp()
        model = trained
        if self.score_model is not None:   # this step's weights, scored at --score-image-size
            model = self.score_model
            models.copy_weights(trained, model)
            images = torch.nn.functional.interpolate(images, size=self.cfg.score_image_size, mode="bilinear",
                                                     antialias=True)
        model.train(self.cfg.score_mode == "train")
        with self.score_autocast():
            image_features, text_features, logit_scale = model(images, tokens)
        trained.train()
        return image_features, text_features, logit_scale

    def global_scores(self, sizes, image_features, text_features, logit_scale) -> Scores:
        """CLIPScore, per-sample loss, learned-in-batch and features of every sample of the
        global batch (all ranks' rows)."""
        image_features = distributed.gather_rows(self.world, image_features.float(), sizes)
        text_features = distributed.gather_rows(self.world, text_features.float(), sizes)
        scores = per_sample_scores(self.score_loss, image_features, text_features, logit_scale)
        return Scores(*(t.cpu() for t in scores), strategies.Features(image_features, text_features, logit_scale))

    def select(self, ids, scores: Scores | None, sizes) -> strategies.Selection:
        """The strategy's pick over the global batch, or within each rank's part (--select-scope local).
        Either way every rank runs it on the same global view, so the state stays identical."""
        def pick(rows):
            if scores is None:
                return self.strategy.select(ids[rows], None, None, self.epoch)
            part = scores.part(rows)
            return self.strategy.select(ids[rows], part.clipscore, part.loss, self.epoch,
                                        part.features if self.strategy.wants_features else None)

        if self.cfg.select_scope == "global" or len(sizes) == 1:
            return pick(slice(None))
        bounds = [sum(sizes[:r]) for r in range(len(sizes) + 1)]
        # a rank with nothing left this epoch has nothing to pick from
        parts = [pick(slice(a, b)) for a, b in zip(bounds, bounds[1:]) if b > a]
        hist = None if parts[0].hist is None else torch.cat([p.hist for p in parts])
        weights = None if parts[0].weights is None else torch.cat([p.weights for p in parts])
        return strategies.Selection(torch.cat([p.selected for p in parts]), hist, weights)

    def train_selected(self, images, tokens, selection: strategies.Selection, sizes, want_scores: bool,
                       net: Network | None = None):
        """Train on the selected samples of the global batch, shared out equally over the ranks.

        ClipLoss gathers equal-sized batches: with global scope the strategy picks a
        multiple of the world size; with local scope, or `full` on an uneven last batch,
        the picks are cut to one (the last in global order wait for another visit). Each
        rank trains on its slice of the picks in global order, with the strategy's loss
        weights where it gave some. Returns the train loss (NaN when nothing was trained),
        the mask of what was trained and the trained samples' Scores from the training
        forward (with want_scores; NaN elsewhere). NET: train a peer strategy's second network
        instead of the model."""
        world = self.world
        picks = selection.selected.nonzero().squeeze(1)
        trained = torch.zeros_like(selection.selected)
        trained[picks[:len(picks) - len(picks) % world.world_size]] = True
        share = int(trained.sum()) // world.world_size
        unknown = Scores(*torch.full((5, len(trained)), float("nan")), None)
        if share == 0:
            return float("nan"), trained, unknown
        start = sum(sizes[:world.rank])
        local_picks = trained[start:start + sizes[world.rank]].nonzero().squeeze(1).to(self.device)
        counts = [int(trained[sum(sizes[:r]):sum(sizes[:r + 1])].sum()) for r in range(world.world_size)]
        part = slice(world.rank * share, (world.rank + 1) * share)
        weights = None if selection.weights is None else selection.weights[trained].to(self.device)
        train_loss, image_features, text_features, logit_scale = self.train_on(
            distributed.share_rows(world, images[local_picks], counts, share),
            distributed.share_rows(world, tokens[local_picks], counts, share), weights, part, net)
        if want_scores:
            scores = self.global_scores([share] * world.world_size, image_features, text_features, logit_scale)
            for name in ("clipscore", "loss", "correct", "loss_i2t", "loss_t2i"):
                getattr(unknown, name)[trained] = getattr(scores, name).float()
        return float(train_loss), trained, unknown

    def train_on(self, images, tokens, weights=None, part=slice(None), net: Network | None = None):
        """One optimiser step on this rank's share of the picks, of the model (or of NET). weights: the
        loss weight of every trained pick in global order (None: open_clip's ClipLoss as it is);
        `part` is this rank's."""
        model, ddp_model, optimizer, scaler = (self.model, self.ddp_model, self.optimizer, self.scaler) \
            if net is None else (net.model, net.ddp_model, net.optimizer, net.scaler)
        ddp_model.train()
        with self.autocast():
            image_features, text_features, logit_scale = ddp_model(images, tokens)
            loss = self.loss_fn(image_features, text_features, logit_scale) if weights is None else \
                weighted_clip_loss(self.loss_fn, image_features, text_features, logit_scale, weights, part)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return loss.detach(), image_features.detach(), text_features.detach(), logit_scale.detach()

    def set_lr(self, step_in_epoch: int, epoch_steps: int) -> float:
        """The cosine schedule at the epoch's progress: an epoch its strategy pruned (fewer
        steps) covers the same stretch of the schedule as a full one."""
        position = self.epoch * self.steps_per_epoch + step_in_epoch * self.steps_per_epoch // epoch_steps
        lr = self.schedule(min(position, self.total_steps - 1))
        optimizers = [self.optimizer] + ([] if self.peer is None else [self.peer.optimizer])
        for group in (g for optimizer in optimizers for g in optimizer.param_groups):
            group["lr"] = lr * group["lr_scale"]
        return lr

    def next_batch(self, batches):
        """This rank's next batch (empty where it has nothing left), or None when every rank is done.
        Once a signal reached any rank, every rank raises Stopped here, before the same step."""
        try:
            batch = next(batches, END)
        except Exception:
            if not self.stop.requested:
                raise
            batch = END   # the signal reached the loader's workers as well (sent to the process group)
        more, signum = distributed.largest(self.world, [int(batch is not END), self.stop.signum or 0], self.device)
        if signum:
            raise stopping.Stopped(signum, f"run {self.cfg.run} stopped by {signal.Signals(signum).name} in "
                                           f"epoch {self.epoch}: its epochs before {self.epoch} are whole in the "
                                           f"ledger; the same command with --resume continues from epoch "
                                           f"{self.epoch}, row for row")
        if not more:
            return None
        if batch is END or batch is None:
            size = self.image_size
            return (torch.zeros(0, dtype=torch.long), torch.zeros(0, 3, size, size, dtype=self.input_dtype),
                    torch.zeros(0, self.context_length, dtype=torch.long))
        return batch

    def run_epoch(self, writer: ledger.LedgerWriter) -> None:
        cfg, world = self.cfg, self.world
        # Anything in the model that draws from the global RNG draws the same after a resume.
        torch.manual_seed(data.rank_seed(cfg.seed, self.epoch, world.rank))
        plan = self.strategy.epoch_plan(self.epoch, self.pool)
        n_pruned = len(self.pool) - len(plan)
        if n_pruned and world.is_main:
            self.record_pruned(writer, plan)
        only = None if self.sources.subset is None and not n_pruned else plan.numpy()
        if self.cache is not None:
            batches = self.cache.batches(self.dataset, "train", batch_size=cfg.batch_size, seed=cfg.seed,
                                         epoch=self.epoch, rank=world.rank, world_size=world.world_size, only=only)
        else:
            batches = iter(data.loader(self.dataset, "train", transform=self.preprocess_train,
                                       tokenizer=self.tokenizer, batch_size=cfg.batch_size, shuffle=True,
                                       seed=cfg.seed, epoch=self.epoch, workers=cfg.workers, rank=world.rank,
                                       world_size=world.world_size, only=only))
        epoch_steps = max(1, math.ceil(len(plan) / (cfg.batch_size * world.world_size)))
        progress = tqdm(total=epoch_steps, desc=f"{cfg.run} epoch {self.epoch + 1}/{cfg.epochs}",
                        unit="batch", disable=cfg.quiet or not world.is_main, leave=False)
        t_start = time.perf_counter()
        step_in_epoch = 0
        while (batch := self.next_batch(batches)) is not None:
            t_data = time.perf_counter() - t_start
            lr = self.set_lr(step_in_epoch, epoch_steps)
            self.record_step(writer, self.train_step(*batch), lr, t_data, n_pruned if step_in_epoch == 0 else 0)
            self.step += 1
            step_in_epoch += 1
            progress.update()
            t_start = time.perf_counter()
        progress.close()

    def record_pruned(self, writer: ledger.LedgerWriter, plan: torch.Tensor) -> None:
        """The samples the strategy pruned from the epoch before loading: a row each in `scores`
        (no step, not scored, not selected), so the epoch still has a row for every sample."""
        pruned = self.pool[~torch.isin(self.pool, plan)].numpy()
        nan = np.full(len(pruned), np.nan)
        writer.add("scores", {"run": self.cfg.run, "epoch": self.epoch}, {
            "step": nan, "sample_id": pruned, "clipscore": nan, "hist": nan, "loss": nan,
            "selected": np.zeros(len(pruned), dtype=bool), "correct": nan})

    def record_step(self, writer: ledger.LedgerWriter, step: Step, lr: float, t_data: float,
                    n_pruned: int) -> None:
        """The step's rows: this rank's samples in `scores`, the step itself in `steps` (rank 0),
        with the samples pruned from the epoch before loading on its first step."""
        partition = {"run": self.cfg.run, "epoch": self.epoch}
        rows = step.rows
        writer.add("scores", partition, {
            "step": torch.full_like(step.ids, self.step).numpy(),
            "sample_id": step.ids.numpy(),
            "clipscore": step.clipscore[rows].numpy(),
            "hist": step.hist[rows].numpy(),
            "loss": step.loss[rows].numpy(),
            "selected": step.trained[rows].numpy(),
            "correct": step.correct[rows].numpy(),
        })
        if self.world.is_main:
            writer.add("steps", partition, {
                "step": [self.step], "batch_size": [len(step.trained)], "n_selected": [int(step.trained.sum())],
                "n_pruned": [n_pruned],
                "lr": [lr], "loss": [step.train_loss],
                "logit_scale": [float(self.model.logit_scale.detach().exp())],
                "t_data": [t_data], "t_score": [step.t_score], "t_train": [step.t_train],
            })

    def record_missing_shards(self, writer: ledger.LedgerWriter) -> None:
        """Shards that vanished during training were passed over by the loader: say so in `skipped`."""
        gone = [url for url in self.dataset.shard_urls("train") if url not in self.missing_shards
                and not Path(url).exists()]
        if gone:
            self.missing_shards.update(gone)
            writer.add("skipped", {"dataset": self.dataset.name}, {
                "source": gone, "key": [None] * len(gone),
                "reason": [f"shard missing during training (epoch {self.epoch})"] * len(gone),
                "run": [self.cfg.run] * len(gone)})

    def evaluate(self, writer: ledger.LedgerWriter) -> None:
        """Every test set's zero-shot metrics, each under its own prefix."""
        for test in self.sources.tests:
            with self.autocast():
                metrics = evaluate.evaluate_dataset(self.model, self.tokenizer, self.preprocess_val, test.dataset,
                                                    test.split, workers=self.cfg.workers, device=self.device,
                                                    input_dtype=self.input_dtype,
                                                    cache=self.cache if test.dataset is self.dataset else None)
            writer.add("evals", {"run": self.cfg.run, "epoch": self.epoch}, {
                "step": [self.step] * len(metrics), "metric": [test.prefix + m for m in metrics],
                "value": list(metrics.values())})


def run_of(cfg: TrainConfig) -> ledger.Run:
    """The run CFG trains, in its ledger."""
    return ledger.Run(cfg.ledger, cfg.run, checkpoint_dir=cfg.out)


def run_record(cfg: TrainConfig, run: ledger.Run, sources: Sources, world: distributed.World,
               cache_choice: cache.Choice, status: str, start: str, end: str | None) -> ledger.RunRecord:
    dataset = sources.train
    return ledger.RunRecord(
        cache_used=cache_choice.used, cache_reason=cache_choice.reason,
        name=cfg.run, strategy=cfg.strategy, ratio=cfg.ratio, model=cfg.model, epochs=cfg.epochs,
        batch_size=cfg.batch_size, seed=cfg.seed, dataset=dataset.name, dataset_path=str(dataset.root),
        dataset_fingerprint=dataset.fingerprint, world_size=world.world_size, start=start, end=end, status=status,
        subset=sources.subset_record, config={**cfg.as_record(), "out": run.recorded_checkpoint_dir()},
        versions=versions())


def train(cfg: TrainConfig, on_epoch_end=None, log=lambda line: None) -> ledger.RunRecord:
    """Train one run into the ledger; returns its run record. `on_epoch_end(trainer)` runs
    after each checkpoint; `log(line)` hears what ingesting the sources did and where the data is read from.

    Under torchrun every rank runs this; rank 0 alone ingests, writes the run record,
    the samples, steps and evals, and the checkpoint; every rank writes its own scores."""
    cfg = cfg.resolved(device=models.device(cfg.device), is_resnet=models.is_resnet(cfg.model))
    world = distributed.init(cfg.device)
    try:
        return _train(cfg, world, on_epoch_end, log)
    finally:
        distributed.shutdown(world)


def _train(cfg: TrainConfig, world: distributed.World, on_epoch_end, log) -> ledger.RunRecord:
    if world.is_main:
        sources = validate(cfg)
        for note in sources.notes:
            log(note)
        run = run_of(cfg)
        with run.lock():   # held until the process ends
            return _train_locked(cfg, run, sources, world, on_epoch_end, log)
    distributed.barrier(world)
    sources = validate(cfg)
    return _train_locked(cfg, run_of(cfg), sources, world, on_epoch_end, log)


def _train_locked(cfg: TrainConfig, run: ledger.Run, sources: Sources, world: distributed.World, on_epoch_end,
                  log) -> ledger.RunRecord:
    if world.is_main:
        resuming = check_record(cfg, run, sources, world)
        if cfg.resume and not resuming:
            log(f"run {cfg.run!r} has no checkpoint: it starts again from epoch 0")
        distributed.barrier(world)
    resuming = distributed.any_rank(world, world.is_main and resuming, torch.device(cfg.device)) \
        if world.enabled else resuming
    dataset = sources.train
    previous = run.record() if resuming else None
    trainer = Trainer(cfg, run, sources, world, resumed_cache=None if previous is None else record_read_cache(previous))
    if resuming:
        trainer.load_checkpoint()
    start = previous["start"] if resuming else _now()
    choice = trainer.cache_choice
    if world.is_main:
        source = f"the decoded cache {trainer.cache.folder}" if choice.used else "the shards"
        log(f"data: {source}: {choice.reason}")
        if cfg.resume:
            run.resume_from(trainer.epoch)
        ledger.add_samples(cfg.ledger, dataset.name, dataset.fingerprint, dataset.manifest, dataset.skipped())
        run.write_record(run_record(cfg, run, sources, world, choice, "running", start, None))
    distributed.barrier(world)
    status = "failed"
    with stopping.on_signals() as trainer.stop:   # kept until the record says how the run ended
        try:
            with run.writer(rank=world.rank, commits=world.is_main) as writer:
                while trainer.epoch < cfg.epochs:
                    t0 = time.perf_counter()
                    trainer.run_epoch(writer)
                    t1 = time.perf_counter()
                    last = trainer.epoch + 1 == cfg.epochs
                    if world.is_main:
                        if trainer.cache is None:   # the cache holds every sample it was built with
                            trainer.record_missing_shards(writer)
                        if (trainer.epoch + 1) % cfg.eval_every == 0 or last:
                            trainer.evaluate(writer)
                    t2 = time.perf_counter()
                    writer.flush()
                    distributed.barrier(world)   # every rank's parts of the epoch are on disk
                    if world.is_main:
                        writer.add("epochs", {"run": cfg.run, "epoch": trainer.epoch}, {
                            "t_steps": [t1 - t0], "t_eval": [t2 - t1], "t_ledger": [time.perf_counter() - t2]})
                        run.commit_epoch(writer, trainer.epoch)   # before the checkpoint
                    trainer.epoch += 1
                    trainer.save_checkpoint()
                    distributed.barrier(world)
                    if on_epoch_end:
                        on_epoch_end(trainer)
            status = "completed"
        except (stopping.Stopped, KeyboardInterrupt):
            status = "stopped"
            raise
        finally:
            record = run_record(cfg, run, sources, world, choice, status, start, _now())
            if world.is_main:
                run.write_record(record)
    return record

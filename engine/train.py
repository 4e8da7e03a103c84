"""The training loop: score the batch, let the strategy pick, train on the picks.

One step (docs/architecture.md): a no-grad forward of the whole batch gives every sample's
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
from dissect.engine import data, distributed, evaluate, models, resume, stopping, strategies
from dissect.engine.data import cache
from dissect.engine.scores import per_sample_scores, weighted_clip_loss
from dissect.engine.config import TrainConfig
from dissect.engine.errors import InputError
from dissect.engine.sources import Sources, open_sources

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
            epochs=cfg.epochs, **{s.name: getattr(cfg, s.name) for s in strategies.REGISTRY[cfg.strategy].settings})
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
        """One step, in the same order for every strategy: score the global batch (where the
        strategy ranks it, or with --score-all), select, train on the picks.

        The others (full, random, oracle-clean) pick first, and the trained samples' CLIPScore
        and loss come from the training forward (the rest stay NaN: NULL in the ledger)."""
        images = images.to(self.device, dtype=self.input_dtype, non_blocking=True)
        tokens = tokens.to(self.device, non_blocking=True)
        batch = distributed.GlobalBatch.of(self.world, ids, self.device)
        t0 = time.perf_counter()
        scored = self.strategy.scores_batch or self.cfg.score_all
        scores = self.score(batch, images, tokens) if scored else None
        if self.peer is None:
            selection = self.select(batch, scores)
        else:
            peer_scores = self.score(batch, images, tokens, self.peer.model)
            selection, peer_selection = self.strategy.select_pair(batch.ids, scores, peer_scores, self.epoch)
        t1 = time.perf_counter()
        train_loss, trained, trained_scores = self.train_selected(batch, images, tokens, selection,
                                                                  want_scores=not scored)
        if self.peer is not None:
            self.train_selected(batch, images, tokens, peer_selection, want_scores=False, net=self.peer)
        scores = scores if scored else trained_scores
        self.strategy.trained(batch.ids, trained, scores)
        nan = torch.full((len(batch.ids),), float("nan"))
        return Step(ids=ids, rows=batch.rows, clipscore=scores.clipscore, loss=scores.loss,
                    correct=scores.correct.float(), hist=nan if selection.hist is None else selection.hist,
                    trained=trained, train_loss=train_loss, t_score=t1 - t0, t_train=time.perf_counter() - t1)

    def score(self, batch: distributed.GlobalBatch, images, tokens, network=None) -> Scores:
        """The scoring pass: every sample's CLIPScore, per-sample loss, learned-in-batch and
        features over the global batch, from a no-grad forward of this rank's part by the model
        (or by NETWORK, a peer strategy's second network)."""
        return self.global_scores(batch.sizes, *self.features(images, tokens, network))

    @torch.inference_mode()
    def features(self, images, tokens, network=None):
        """No-grad features of this rank's batch (eval mode unless --score-mode train)."""
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
        """Per-sample numbers of every rank's rows (SIZES of them), from this rank's features."""
        image_features = distributed.gather_rows(self.world, image_features.float(), sizes)
        text_features = distributed.gather_rows(self.world, text_features.float(), sizes)
        scores = per_sample_scores(self.score_loss, image_features, text_features, logit_scale)
        return Scores(*(t.cpu() for t in scores), strategies.Features(image_features, text_features, logit_scale))

    def select(self, batch: distributed.GlobalBatch, scores: Scores | None) -> strategies.Selection:
        """The strategy's pick over the global batch, or within each rank's part (--select-scope local).
        Either way every rank runs it on the same global view, so the state stays identical."""
        def pick(rows):
            if scores is None:
                return self.strategy.select(batch.ids[rows], None, None, self.epoch)
            part = scores.part(rows)
            return self.strategy.select(batch.ids[rows], part.clipscore, part.loss, self.epoch,
                                        part.features if self.strategy.wants_features else None)

        if self.cfg.select_scope == "global" or len(batch.sizes) == 1:
            return pick(slice(None))
        # a rank with nothing left this epoch has nothing to pick from
        parts = [pick(rows) for rows in map(batch.rank_rows, range(len(batch.sizes))) if rows.stop > rows.start]
        hist = None if parts[0].hist is None else torch.cat([p.hist for p in parts])
        weights = None if parts[0].weights is None else torch.cat([p.weights for p in parts])
        return strategies.Selection(torch.cat([p.selected for p in parts]), hist, weights)

    def train_selected(self, batch: distributed.GlobalBatch, images, tokens, selection: strategies.Selection,
                       want_scores: bool, net: Network | None = None):
        """Train on the selected samples of the global batch, shared out equally over the ranks
        (distributed.GlobalBatch.share_out), with the strategy's loss weights where it gave some.
        Returns the train loss (NaN when nothing was trained), the mask of what was trained and
        the trained samples' Scores from the training forward (with want_scores; NaN elsewhere).
        NET: train a peer strategy's second network instead of the model."""
        share = batch.share_out(selection.selected)
        unknown = Scores(*torch.full((5, len(share.trained)), float("nan")), None)
        if share.size == 0:
            return float("nan"), share.trained, unknown
        weights = None if selection.weights is None else selection.weights[share.trained].to(self.device)
        train_loss, image_features, text_features, logit_scale = self.train_on(
            share.rows(images), share.rows(tokens), weights, share.part, net)
        if want_scores:
            scores = self.global_scores([share.size] * self.world.world_size, image_features, text_features,
                                        logit_scale)
            for name in ("clipscore", "loss", "correct", "loss_i2t", "loss_t2i"):
                getattr(unknown, name)[share.trained] = getattr(scores, name).float()
        return float(train_loss), share.trained, unknown

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
        """The epoch's steps, each: the next batch, the schedule's lr, the step, its rows in the ledger."""
        cfg, world = self.cfg, self.world
        t_epoch = time.perf_counter()
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
        self.end_epoch(writer, t_epoch)

    def end_epoch(self, writer: ledger.LedgerWriter, t_epoch: float) -> None:
        """After the epoch's last step: the shards found missing and the evals (rank 0), every
        rank's parts on disk, the epoch committed, then the checkpoint, so that a checkpoint's
        epochs are always whole in the ledger."""
        cfg, world = self.cfg, self.world
        t_steps = time.perf_counter()
        if world.is_main:
            if self.cache is None:   # the cache holds every sample it was built with
                self.record_missing_shards(writer)
            if (self.epoch + 1) % cfg.eval_every == 0 or self.epoch + 1 == cfg.epochs:
                self.evaluate(writer)
        t_eval = time.perf_counter()
        writer.flush()
        distributed.barrier(world)   # every rank's parts of the epoch are on disk
        if world.is_main:
            self.run.add(writer, "epochs", self.epoch, {
                "t_steps": [t_steps - t_epoch], "t_eval": [t_eval - t_steps], "t_ledger": [time.perf_counter() - t_eval]})
            self.run.commit_epoch(writer, self.epoch)
        self.epoch += 1
        self.save_checkpoint()
        distributed.barrier(world)

    def record_pruned(self, writer: ledger.LedgerWriter, plan: torch.Tensor) -> None:
        """The samples the strategy pruned from the epoch before loading: a row each in `scores`
        (no step, not scored, not selected), so the epoch still has a row for every sample."""
        pruned = self.pool[~torch.isin(self.pool, plan)].numpy()
        nan = np.full(len(pruned), np.nan)
        self.run.add(writer, "scores", self.epoch, {
            "step": nan, "sample_id": pruned, "clipscore": nan, "hist": nan, "loss": nan,
            "selected": np.zeros(len(pruned), dtype=bool), "correct": nan})

    def record_step(self, writer: ledger.LedgerWriter, step: Step, lr: float, t_data: float,
                    n_pruned: int) -> None:
        """The step's rows: this rank's samples in `scores`, the step itself in `steps` (rank 0),
        with the samples pruned from the epoch before loading on its first step."""
        rows = step.rows
        self.run.add(writer, "scores", self.epoch, {
            "step": torch.full_like(step.ids, self.step).numpy(),
            "sample_id": step.ids.numpy(),
            "clipscore": step.clipscore[rows].numpy(),
            "hist": step.hist[rows].numpy(),
            "loss": step.loss[rows].numpy(),
            "selected": step.trained[rows].numpy(),
            "correct": step.correct[rows].numpy(),
        })
        if self.world.is_main:
            self.run.add(writer, "steps", self.epoch, {
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
            self.run.add(writer, "evals", self.epoch, {
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
        subset=sources.subset_record, settings=cfg.recorded_settings(),
        config={**cfg.as_record(), "out": run.recorded_checkpoint_dir()}, versions=versions())


def train(cfg: TrainConfig, on_epoch_end=None, log=lambda line: None) -> ledger.RunRecord:
    """Train one run into the ledger; returns its run record. `on_epoch_end(trainer)` runs
    after each checkpoint; `log(line)` hears what ingesting the sources did and where the data is read from.

    Under torchrun every rank runs this; rank 0 alone ingests, writes the run record,
    the samples, steps and evals, and the checkpoint; every rank writes its own scores."""
    cfg = cfg.resolved(device=models.device(cfg.device), is_resnet=models.is_resnet(cfg.model)).validated()
    world = distributed.init(cfg.device)
    try:
        if not world.is_main:
            distributed.barrier(world)   # rank 0 has ingested the sources and read the record
            return _train(cfg, run_of(cfg), open_sources(cfg), world, False, on_epoch_end, log)
        sources = open_sources(cfg)
        for note in sources.notes:
            log(note)
        run = run_of(cfg)
        with run.lock():   # held until the process ends
            resuming = resume.resumes(cfg, run, sources, world)
            if cfg.resume and not resuming:
                log(f"run {cfg.run!r} has no checkpoint: it starts again from epoch 0")
            distributed.barrier(world)
            return _train(cfg, run, sources, world, resuming, on_epoch_end, log)
    finally:
        distributed.shutdown(world)


def _train(cfg: TrainConfig, run: ledger.Run, sources: Sources, world: distributed.World, resuming: bool,
           on_epoch_end, log) -> ledger.RunRecord:
    resuming = distributed.any_rank(world, resuming, torch.device(cfg.device))   # rank 0 read the record
    previous = run.record() if resuming else None
    trainer = Trainer(cfg, run, sources, world, resumed_cache=None if previous is None else resume.read_cache(previous))
    if resuming:
        trainer.load_checkpoint()
    start = previous["start"] if resuming else _now()
    choice = trainer.cache_choice
    if world.is_main:
        log(f"data: {f'the decoded cache {trainer.cache.folder}' if choice.used else 'the shards'}: {choice.reason}")
        if cfg.resume:
            run.resume_from(trainer.epoch)
        ledger.add_samples(cfg.ledger, sources.train.name, sources.train.fingerprint, sources.train.manifest,
                           sources.train.skipped())
        run.write_record(run_record(cfg, run, sources, world, choice, "running", start, None))
    distributed.barrier(world)
    status = "failed"
    with stopping.on_signals() as trainer.stop:   # kept until the record says how the run ended
        try:
            with run.writer(rank=world.rank, commits=world.is_main) as writer:
                while trainer.epoch < cfg.epochs:
                    trainer.run_epoch(writer)   # its steps, evals and commit, then the checkpoint
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

"""Online selection strategies: which samples of a batch get a gradient.

Each strategy is one small class: it sees the batch's ids, CLIPScores and
per-sample losses (all tensors; None for a strategy that needs no scoring pass), returns a boolean mask of the k = floor(r * B)
samples to train on, and the historical score it compared against (or None).
Per-sample state is a tensor of size N indexed by `sample_id`, so a step costs
a gather and a top-k, never a Python loop over samples.

Semantics: docs/method.md.
"""
import math
from dataclasses import dataclass

import torch

from dissect.engine.errors import InputError

REGISTRY: dict[str, type["Strategy"]] = {}


def register(cls):
    REGISTRY[cls.name] = cls
    return cls


class UnknownStrategy(InputError):
    pass


def create(name: str, *, n_samples: int, ratio: float, seed: int, warmup_epochs: int, momentum: float,
           clean: torch.Tensor | None = None) -> "Strategy":
    """clean: ground truth (bool per sample id), which only `oracle-clean` reads."""
    if name not in REGISTRY:
        raise UnknownStrategy(f"unknown strategy {name!r}: choose one of {', '.join(REGISTRY)}")
    if not 0 < ratio <= 1:
        raise InputError(f"--ratio {ratio} is outside (0, 1]")
    strategy = REGISTRY[name](n_samples=n_samples, ratio=ratio, seed=seed,
                              warmup_epochs=warmup_epochs, momentum=momentum)
    if isinstance(strategy, OracleClean):
        if clean is None:
            raise InputError("oracle-clean needs ground-truth noise flags (samples.is_noisy): "
                             "use a synthetic or Fashion-MNIST dataset")
        strategy.clean = clean
    return strategy


def budget(ratio: float, batch_size: int) -> int:
    """k = floor(r * B), at least one sample. The epsilon absorbs float error (0.3 * 10 = 2.9999...)."""
    return max(1, math.floor(ratio * batch_size + 1e-9))


@dataclass
class Selection:
    selected: torch.Tensor      # bool [B]
    hist: torch.Tensor | None   # float [B], NaN where the sample has no history


class Strategy:
    name: str
    # False: the strategy picks without looking at scores (clipscore and loss are None),
    # so the step runs no scoring pass unless --score-all asks for one.
    scores_batch = True

    def __init__(self, *, n_samples: int, ratio: float, seed: int, warmup_epochs: int, momentum: float):
        self.n_samples = n_samples
        self.ratio = ratio
        self.generator = torch.Generator().manual_seed(seed)
        # Under torchrun the picks are shared out equally over the ranks: k a multiple of the world size.
        self.k_multiple = 1

    def select(self, ids, clipscore, loss, epoch: int) -> Selection:
        raise NotImplementedError

    def k(self, batch_size: int) -> int:
        k = budget(self.ratio, batch_size)
        return k - k % self.k_multiple

    def random_mask(self, batch_size: int, k: int) -> torch.Tensor:
        mask = torch.zeros(batch_size, dtype=torch.bool)
        mask[torch.randperm(batch_size, generator=self.generator)[:k]] = True
        return mask

    def top_mask(self, values: torch.Tensor, k: int) -> torch.Tensor:
        mask = torch.zeros(values.shape[0], dtype=torch.bool)
        mask[torch.topk(values, k, sorted=False).indices] = True
        return mask

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


@register
class Full(Strategy):
    name = "full"
    scores_batch = False

    def select(self, ids, clipscore, loss, epoch):
        return Selection(torch.ones(ids.shape[0], dtype=torch.bool), None)


@register
class Random(Strategy):
    name = "random"
    scores_batch = False

    def select(self, ids, clipscore, loss, epoch):
        return Selection(self.random_mask(ids.shape[0], self.k(ids.shape[0])), None)


@register
class SmallLoss(Strategy):
    name = "small-loss"

    def select(self, ids, clipscore, loss, epoch):
        return Selection(self.top_mask(-loss, self.k(ids.shape[0])), None)


@register
class BigLoss(Strategy):
    name = "big-loss"

    def select(self, ids, clipscore, loss, epoch):
        return Selection(self.top_mask(loss, self.k(ids.shape[0])), None)


@register
class ClipScoreStar(Strategy):
    """CLIPScore*: keep the highest CLIPScore of the model being trained."""
    name = "clipscore"

    def select(self, ids, clipscore, loss, epoch):
        return Selection(self.top_mask(clipscore, self.k(ids.shape[0])), None)


@register
class OracleClean(Strategy):
    """A reference, not a method: random selection among the samples the ground truth
    calls clean (is_noisy false), at most k of them. It shows the head-room of
    selection when the noise is known exactly."""
    name = "oracle-clean"
    scores_batch = False
    clean: torch.Tensor  # bool [N], set by create()

    def select(self, ids, clipscore, loss, epoch):
        clean = self.clean[ids]
        priority = torch.rand(ids.shape[0], generator=self.generator) + clean.float()  # clean ones first
        k = min(self.k(ids.shape[0]), int(clean.sum()))
        return Selection(self.top_mask(priority, k), None)


class HistoryStrategy(Strategy):
    """Top-k of delta = hist - curr over the samples that have a history.

    Samples seen for the first time have no delta; they are treated as random
    selection: they get their share of the k slots (k * n_new / B, rounded), filled
    at random, and the rest go to the largest deltas.
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self.hist = torch.full((self.n_samples,), float("nan"))

    def top_delta_mask(self, delta: torch.Tensor) -> torch.Tensor:
        """delta: the ranking key, NaN where the sample has no history."""
        batch_size = delta.shape[0]
        k = self.k(batch_size)
        new = torch.isnan(delta)
        n_new = int(new.sum())
        k_new = min(n_new, round(k * n_new / batch_size))
        k_old = min(k - k_new, batch_size - n_new)
        k_new = k - k_old
        delta = torch.where(new, float("-inf"), delta)
        mask = self.top_mask(delta, k_old) if k_old else torch.zeros(batch_size, dtype=torch.bool)
        if k_new:
            new_idx = new.nonzero().squeeze(1)
            mask[new_idx[torch.randperm(n_new, generator=self.generator)[:k_new]]] = True
        return mask

    def state_dict(self):
        return {**super().state_dict(), "hist": self.hist}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.hist.copy_(state["hist"])


@register
class DissectWarmup(HistoryStrategy):
    """DISSect-Warmup (Alg. 1): random selection at rate r for epochs < T_w, each
    visit overwriting hist with the current score; from T_w on, top-k delta
    against the score of the sample's last warm-up visit."""
    name = "dissect-warmup"

    def __init__(self, *, warmup_epochs: int, **kw):
        super().__init__(warmup_epochs=warmup_epochs, **kw)
        self.warmup_epochs = warmup_epochs

    def select(self, ids, clipscore, loss, epoch):
        hist = self.hist[ids]
        if epoch < self.warmup_epochs:
            self.hist[ids] = clipscore
            return Selection(self.random_mask(ids.shape[0], self.k(ids.shape[0])), hist)
        return Selection(self.top_delta_mask(hist - clipscore), hist)


@register
class DissectMomentum(HistoryStrategy):
    """DISSect-Momentum (Eq. 5): top-k delta against an exponential moving average
    of the sample's past scores, updated after every visit; a first visit
    starts the average at the current score."""
    name = "dissect-momentum"

    def __init__(self, *, momentum: float, **kw):
        super().__init__(momentum=momentum, **kw)
        self.momentum = momentum

    def select(self, ids, clipscore, loss, epoch):
        hist = self.hist[ids]
        mask = self.top_delta_mask(hist - clipscore)
        updated = self.momentum * hist + (1 - self.momentum) * clipscore
        self.hist[ids] = torch.where(torch.isnan(hist), clipscore, updated)
        return Selection(mask, hist)

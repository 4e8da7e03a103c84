"""Online selection strategies: which samples of a batch get a gradient.

Each strategy is one small class: it sees the batch's ids, CLIPScores and
per-sample losses (all tensors; None for a strategy that needs no scoring pass) and,
where it asks for them, the scoring pass's features; returns a boolean mask of the
samples to train on (k = floor(r * B) unless the strategy sets its own number), the
historical score it compared against (or None) and per-sample loss weights (or None).
Per-sample state is a tensor of size N indexed by `sample_id`, so a step costs
a gather and a top-k, never a Python loop over samples.

Semantics: docs/method.md.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dissect.engine.errors import InputError

REGISTRY: dict[str, type["Strategy"]] = {}


def register(cls):
    REGISTRY[cls.name] = cls
    return cls


class UnknownStrategy(InputError):
    pass


def create(name: str, *, n_samples: int, ratio: float, seed: int, clean: torch.Tensor | None = None,
           **settings) -> "Strategy":
    """settings: the run's hyper-parameters (warmup_epochs, momentum, epochs, infobatch_anneal, ...);
    each strategy takes those it names in `settings`. clean: ground truth (bool per sample id),
    which only `oracle-clean` reads."""
    if name not in REGISTRY:
        raise UnknownStrategy(f"unknown strategy {name!r}: choose one of {', '.join(REGISTRY)}")
    if not 0 < ratio <= 1:
        raise InputError(f"--ratio {ratio} is outside (0, 1]")
    cls = REGISTRY[name]
    missing = [key for key in cls.settings if key not in settings]
    if missing:
        raise TypeError(f"{name} needs the settings {', '.join(missing)}")
    strategy = cls(n_samples=n_samples, ratio=ratio, seed=seed, **{key: settings[key] for key in cls.settings})
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
    selected: torch.Tensor               # bool [B]
    hist: torch.Tensor | None = None     # float [B], NaN where the sample has no history
    weights: torch.Tensor | None = None  # float [B]: each selected sample's weight in the training loss


@dataclass
class Features:
    """The scoring pass's normalised features of the batch, for a strategy that asks for them."""
    image: torch.Tensor
    text: torch.Tensor
    logit_scale: torch.Tensor


class Strategy:
    name: str
    settings: tuple[str, ...] = ()   # the run hyper-parameters its constructor takes
    # False: the strategy picks without looking at scores (clipscore and loss are None),
    # so the step runs no scoring pass unless --score-all asks for one.
    scores_batch = True
    wants_features = False           # True: select() gets the scoring pass's Features

    def __init__(self, *, n_samples: int, ratio: float, seed: int):
        self.n_samples = n_samples
        self.ratio = ratio
        self.generator = torch.Generator().manual_seed(seed)
        # Under torchrun the picks are shared out equally over the ranks: k a multiple of the world size.
        self.k_multiple = 1

    def select(self, ids, clipscore, loss, epoch: int, features: Features | None = None) -> Selection:
        raise NotImplementedError

    def trained(self, ids, trained, loss) -> None:
        """After the training step: which samples were trained and their per-sample loss
        from the training forward (NaN where not known). Only InfoBatch keeps it."""

    def k(self, batch_size: int, ratio: float | None = None) -> int:
        k = budget(self.ratio if ratio is None else ratio, batch_size)
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

    def select(self, ids, clipscore, loss, epoch, features=None):
        return Selection(torch.ones(ids.shape[0], dtype=torch.bool))


@register
class Random(Strategy):
    name = "random"
    scores_batch = False

    def select(self, ids, clipscore, loss, epoch, features=None):
        return Selection(self.random_mask(ids.shape[0], self.k(ids.shape[0])))


@register
class SmallLoss(Strategy):
    name = "small-loss"

    def select(self, ids, clipscore, loss, epoch, features=None):
        return Selection(self.top_mask(-loss, self.k(ids.shape[0])))


@register
class BigLoss(Strategy):
    name = "big-loss"

    def select(self, ids, clipscore, loss, epoch, features=None):
        return Selection(self.top_mask(loss, self.k(ids.shape[0])))


@register
class ClipScoreStar(Strategy):
    """CLIPScore*: keep the highest CLIPScore of the model being trained."""
    name = "clipscore"

    def select(self, ids, clipscore, loss, epoch, features=None):
        return Selection(self.top_mask(clipscore, self.k(ids.shape[0])))


@register
class OracleClean(Strategy):
    """A reference, not a method: random selection among the samples the ground truth
    calls clean (is_noisy false), at most k of them. It shows the head-room of
    selection when the noise is known exactly."""
    name = "oracle-clean"
    scores_batch = False
    clean: torch.Tensor  # bool [N], set by create()

    def select(self, ids, clipscore, loss, epoch, features=None):
        clean = self.clean[ids]
        priority = torch.rand(ids.shape[0], generator=self.generator) + clean.float()  # clean ones first
        k = min(self.k(ids.shape[0]), int(clean.sum()))
        return Selection(self.top_mask(priority, k))


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
    settings = ("warmup_epochs",)

    def __init__(self, *, warmup_epochs: int, **kw):
        super().__init__(**kw)
        self.warmup_epochs = warmup_epochs

    def select(self, ids, clipscore, loss, epoch, features=None):
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
    settings = ("momentum",)

    def __init__(self, *, momentum: float, **kw):
        super().__init__(**kw)
        self.momentum = momentum

    def select(self, ids, clipscore, loss, epoch, features=None):
        hist = self.hist[ids]
        mask = self.top_delta_mask(hist - clipscore)
        updated = self.momentum * hist + (1 - self.momentum) * clipscore
        self.hist[ids] = torch.where(torch.isnan(hist), clipscore, updated)
        return Selection(mask, hist)


@register
class InfoBatch(Strategy):
    """InfoBatch (Qin et al., ICLR 2024), online and on a budget. A sample's score is its
    loss when it was last trained (no extra forward; never trained: kept). Samples scoring
    below the mean of all recorded scores are pruned at random with probability p, and the
    kept ones among them have their loss weighted by 1 / (1 - p); the final --infobatch-anneal
    fraction of the epochs prunes nothing. The paper prunes per epoch with a fixed p; here p
    follows from the budget, per batch: p = min(--infobatch-max-prune, (1 - r) B / n_below),
    so the trained fraction is r where enough samples are below the mean and more otherwise
    (steps.n_selected shows what was trained)."""
    name = "infobatch"
    scores_batch = False
    settings = ("epochs", "infobatch_anneal", "infobatch_max_prune")

    def __init__(self, *, epochs: int, infobatch_anneal: float, infobatch_max_prune: float, **kw):
        super().__init__(**kw)
        self.last_pruning_epoch = math.ceil(epochs * (1 - infobatch_anneal)) - 1
        self.max_prune = infobatch_max_prune
        self.score = torch.full((self.n_samples,), float("nan"))

    def select(self, ids, clipscore, loss, epoch, features=None):
        batch_size = ids.shape[0]
        if epoch > self.last_pruning_epoch:
            return Selection(torch.ones(batch_size, dtype=torch.bool))
        recorded = self.score[~torch.isnan(self.score)]
        below = self.score[ids] < recorded.mean() if len(recorded) else torch.zeros(batch_size, dtype=torch.bool)
        n_below = int(below.sum())
        p = min(self.max_prune, (1 - self.ratio) * batch_size / n_below) if n_below else 0.0
        selected = ~(below & (torch.rand(batch_size, generator=self.generator) < p))
        return Selection(selected, weights=torch.where(below, 1 / (1 - p), 1.0))

    def trained(self, ids, trained, loss):
        self.score[ids[trained]] = loss[trained]

    def state_dict(self):
        return {**super().state_dict(), "score": self.score}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.score.copy_(state["score"])


@register
class Scan(Strategy):
    """SCAN (Guo and Kankanhalli, arXiv 2411.09126), online: the per-sample InfoNCE loss is the
    metric; the lowest-loss (redundant) and highest-loss (ill-matched) samples are pruned,
    --scan-low-share of the pruned from the low end, the rest from the high end. The kept
    fraction falls linearly over training from r (1 + s) to r (1 - s), s = --scan-spread
    (capped so it starts at most at 1): the pruning ratio grows, bootstrapping, and the kept
    fraction averages r. The paper's dataset mutation between rounds is not done."""
    name = "scan"
    settings = ("epochs", "scan_spread", "scan_low_share")

    def __init__(self, *, epochs: int, scan_spread: float, scan_low_share: float, **kw):
        super().__init__(**kw)
        self.epochs = epochs
        self.spread = min(scan_spread, 1 / self.ratio - 1)
        self.low_share = scan_low_share

    def kept_fraction(self, epoch: int) -> float:
        progress = (epoch + 0.5) / self.epochs      # mid-epoch, so the epochs average r exactly
        return self.ratio * (1 + self.spread * (1 - 2 * progress))

    def select(self, ids, clipscore, loss, epoch, features=None):
        batch_size = ids.shape[0]
        k = self.k(batch_size, self.kept_fraction(epoch))
        n_low = round((batch_size - k) * self.low_share)
        selected = torch.zeros(batch_size, dtype=torch.bool)
        selected[torch.argsort(loss, stable=True)[n_low:n_low + k]] = True
        return Selection(selected)


@register
class DivBS(Strategy):
    """DivBS (Hong et al., ICML 2024): the batch's most representative, mutually orthogonal
    members on per-sample gradient features, by the authors' greedy loop: the residual starts
    at the mean feature; each pick is drawn with probability proportional to |<g_i, residual>|,
    orthogonalised against the picks before it (Gram-Schmidt) and its projection taken off the
    residual; once every correlation vanishes the rest are drawn at random. Features
    (--divbs-features): `grad`, the gradient of the batch InfoNCE loss with respect to each
    sample's normalised image and text embeddings (closed form: logit scale x (softmax of the
    logit rows and columns minus the identity) x the other modality's embeddings), or
    `embedding`, the two embeddings themselves."""
    name = "divbs"
    wants_features = True
    settings = ("divbs_features",)

    def __init__(self, *, divbs_features: str, **kw):
        super().__init__(**kw)
        self.features = divbs_features

    def gradient_features(self, features: Features) -> torch.Tensor:
        image, text, scale = features.image.float().cpu(), features.text.float().cpu(), float(features.logit_scale)
        if self.features == "embedding":
            return torch.cat([image, text], 1)
        logits = scale * image @ text.T
        eye = torch.eye(len(image))
        d_logits = (F.softmax(logits, 1) - eye + F.softmax(logits, 0) - eye) / (2 * len(image))
        return scale * torch.cat([d_logits @ text, d_logits.T @ image], 1)

    def select(self, ids, clipscore, loss, epoch, features=None):
        g = self.gradient_features(features)
        batch_size, k = g.shape[0], self.k(g.shape[0])
        residual = g.mean(0)
        basis = torch.zeros(0, g.shape[1])
        selected = torch.zeros(batch_size, dtype=torch.bool)
        for _ in range(k):
            correlation = (g @ residual).abs().masked_fill(selected, 0)
            if not correlation.sum() > 0:
                break
            pick = int(torch.multinomial(correlation, 1, generator=self.generator))
            selected[pick] = True
            direction = g[pick] - basis.T @ (basis @ g[pick])
            direction = direction / direction.norm().clamp_min(1e-12)
            basis = torch.cat([basis, direction[None]])
            residual = residual - (direction @ residual) * direction
        rest = (~selected).nonzero().squeeze(1)
        selected[rest[torch.randperm(len(rest), generator=self.generator)[:k - int(selected.sum())]]] = True
        return Selection(selected)

"""Online selection strategies: which samples of a batch get a gradient.

Each strategy is one small class: it sees the batch's ids, CLIPScores and
per-sample losses (all tensors; None for a strategy that needs no scoring pass) and,
where it asks for them, the scoring pass's features; returns a boolean mask of the
samples to train on (k = floor(r * B) unless the strategy sets its own number), the
historical score it compared against (or None) and per-sample loss weights (or None).
A strategy that prunes the dataset before an epoch is loaded (InfoBatch, SCAN, as
their authors built them) says in epoch_plan which samples the epoch loads: the
epoch then has fewer steps, each a full batch.
Per-sample state is a tensor of size N indexed by `sample_id`, so a step costs
a gather and a top-k, never a Python loop over samples.

Semantics: docs/method.md.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dissect.engine.errors import InputError
from dissect.engine.strategy_settings import STRATEGY_SETTINGS, Setting

REGISTRY: dict[str, type["Strategy"]] = {}


def register(cls):
    if cls.name not in STRATEGY_SETTINGS:
        raise ValueError(f"strategy {cls.name!r} is not declared in strategy_settings.py")
    REGISTRY[cls.name] = cls
    return cls


class UnknownStrategy(InputError):
    pass


def create(name: str, *, n_samples: int, ratio: float, seed: int, epochs: int | None = None,
           clean: torch.Tensor | None = None, **settings) -> "Strategy":
    """settings: the run's strategy settings (warmup_epochs, momentum, infobatch_anneal, ...);
    each strategy takes its own (`settings`), and the run's EPOCHS where it plans by them.
    clean: ground truth (bool per sample id), which only `oracle-clean` reads."""
    if name not in REGISTRY:
        raise UnknownStrategy(f"unknown strategy {name!r}: choose one of {', '.join(REGISTRY)}")
    if not 0 < ratio <= 1:
        raise InputError(f"--ratio {ratio} is outside (0, 1]")
    cls = REGISTRY[name]
    missing = [s.name for s in cls.settings if s.name not in settings] + ["epochs"] * (cls.needs_epochs and epochs is None)
    if missing:
        raise TypeError(f"{name} needs the settings {', '.join(missing)}")
    own = {s.name: settings[s.name] for s in cls.settings} | ({"epochs": epochs} if cls.needs_epochs else {})
    strategy = cls(n_samples=n_samples, ratio=ratio, seed=seed, **own)
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
    settings: tuple[Setting, ...] = ()   # its own hyper-parameters, declared in strategy_settings.py
    needs_epochs = False             # True: its constructor takes the run's number of epochs
    # False: the strategy picks without looking at scores (clipscore and loss are None),
    # so the step runs no scoring pass unless --score-all asks for one.
    scores_batch = True
    wants_features = False           # True: select() gets the scoring pass's Features
    # True: the run trains a second network beside the model (NCR's co-divide), scored in every
    # step too; the trainer calls select_pair instead of select
    peer = False

    def __init__(self, *, n_samples: int, ratio: float, seed: int):
        self.n_samples = n_samples
        self.ratio = ratio
        self.generator = torch.Generator().manual_seed(seed)
        # Under torchrun the picks are shared out equally over the ranks: k a multiple of the world size.
        self.k_multiple = 1

    def select(self, ids, clipscore, loss, epoch: int, features: Features | None = None) -> Selection:
        raise NotImplementedError

    def epoch_plan(self, epoch: int, pool: torch.Tensor) -> torch.Tensor:
        """The sorted ids of POOL (the epoch's train ids, sorted) that epoch EPOCH loads: all of
        them, but for a strategy that prunes the dataset before loading."""
        return pool

    def select_pair(self, ids, own, peer, epoch: int) -> tuple[Selection, Selection]:
        """A peer strategy's picks for the model and for its peer network, from both networks'
        scoring passes (own, peer: the batch's per-sample numbers, with .loss_i2t and .loss_t2i)."""
        raise NotImplementedError

    def trained(self, ids, trained, scores) -> None:
        """After the training step: which samples were trained, and the batch's per-sample
        numbers (scores.loss, .loss_i2t, .loss_t2i: from the scoring pass, or from the training
        forward for the trained samples and NaN elsewhere)."""

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

    def top_mask_random_ties(self, values: torch.Tensor, k: int) -> torch.Tensor:
        """top_mask with ties broken at random (GSC's targets all start at 1)."""
        order = torch.randperm(values.shape[0], generator=self.generator)
        mask = torch.zeros(values.shape[0], dtype=torch.bool)
        mask[order[self.top_mask(values[order], k)]] = True
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
    settings = STRATEGY_SETTINGS["dissect-warmup"]

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
    settings = STRATEGY_SETTINGS["dissect-momentum"]

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
    """InfoBatch (Qin et al., ICLR 2024) as its authors built it (NUS-HPC-AI-Lab/InfoBatch,
    infobatch.py): before each epoch is loaded, the samples whose score is below the mean
    score ("well learned") are pruned at random, int(keep x n) of them kept, and the kept
    ones weigh 1 / keep in the loss (the 1 / (1 - p) rescale, p = 1 - keep); the final
    --infobatch-anneal fraction of the epochs (their delta = 0.875) prunes nothing and
    weighs 1. A sample's score is its per-sample loss from the training forward when last
    trained, no extra forward; a sample never trained has none and is kept (the authors
    start every score at 3, above the mean, to the same effect). keep = max(0.1, r), their
    prune_ratio being 1 - r: the run trains more than r (every sample above the mean, and
    the annealed epochs), and is placed at what it trained (steps.n_selected)."""
    name = "infobatch"
    scores_batch = False
    settings = STRATEGY_SETTINGS["infobatch"]
    needs_epochs = True

    def __init__(self, *, epochs: int, infobatch_anneal: float, **kw):
        super().__init__(**kw)
        # the authors' IBSampler prunes while its epoch count (from 1) is at most delta x epochs
        self.last_pruning_epoch = math.ceil(epochs * (1 - infobatch_anneal)) - 1
        self.keep = max(0.1, self.ratio)
        self.score = torch.full((self.n_samples,), float("nan"))
        self.weight = torch.ones(self.n_samples)

    def epoch_plan(self, epoch, pool):
        self.weight.fill_(1.0)
        if epoch > self.last_pruning_epoch:
            return pool
        score = self.score[pool]
        recorded = score[~torch.isnan(score)]
        if not len(recorded):
            return pool
        well_learned = pool[score < recorded.mean()]
        kept = well_learned[torch.randperm(len(well_learned), generator=self.generator)
                            [:int(self.keep * len(well_learned))]]
        self.weight[kept] = 1 / self.keep
        pruned = torch.zeros(self.n_samples, dtype=torch.bool)
        pruned[well_learned] = True
        pruned[kept] = False
        return pool[~pruned[pool]]

    def select(self, ids, clipscore, loss, epoch, features=None):
        weights = self.weight[ids]
        return Selection(torch.ones(ids.shape[0], dtype=torch.bool),
                         weights=None if bool((weights == 1).all()) else weights)

    def trained(self, ids, trained, scores):
        self.score[ids[trained]] = scores.loss[trained]

    def state_dict(self):
        return {**super().state_dict(), "score": self.score, "weight": self.weight}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.score.copy_(state["score"])
        self.weight.copy_(state["weight"])


@register
class Scan(Strategy):
    """SCAN (Guo and Kankanhalli, arXiv 2411.09126) as its authors built it (guoyang9/SCAN,
    scan_module.py and training/main.py): full-data pre-training until an epoch's mean loss
    falls by less than --scan-prune-td (0.3) of the epoch's before; then cycles of
    --scan-t-cos + 1 (T_cos = 3) epochs. A cycle's first epoch trains on full data and
    collects the candidates from each batch's training forward: the int(B rho_max) highest
    image->text losses intersected with the highest text->image losses (ill-matched), and
    the int(B rho_min) lowest of both (redundant); an intersection under 0.9 of its set is
    filled at random from their union. Epoch d of the cycle (d = 1 .. T_cos) drops a random
    share rho_cur(d) = (1 + cos((T_cos - d) / T_cos pi)) / 2 (0.25, 0.75, 1.0) of the
    candidates from the dataset before loading: fewer steps, no scoring pass.

    The budget: rho_max = rho_min is solved at each collecting epoch from what the run has
    trained so far, so that it ends at r of the samples offered, at most 0.5 each (every
    sample a candidate). Pre-training and the collecting epochs train everything, so r has
    a floor (about (P + the collecting epochs + the epochs dropping little) / epochs); below
    it the run trains the floor, and is placed there."""
    name = "scan"
    scores_batch = False
    settings = STRATEGY_SETTINGS["scan"]
    needs_epochs = True
    MAX_RHO = 0.5

    def __init__(self, *, epochs: int, scan_t_cos: int, scan_prune_td: float, **kw):
        super().__init__(**kw)
        self.epochs = epochs
        self.t_cos = scan_t_cos
        self.prune_td = scan_prune_td
        self.candidate = torch.zeros(self.n_samples, dtype=torch.bool)
        # [loss sum, samples] of the epoch under way, the last epoch's mean loss before pruning
        # started, the epoch it started (-1: not yet), rho_max = rho_min, and [trained, offered]
        self.epoch_loss = torch.zeros(2, dtype=torch.float64)
        self.loss_pre = torch.tensor(float("inf"), dtype=torch.float64)
        self.start = torch.tensor(-1)
        self.rho = torch.tensor(0.0, dtype=torch.float64)
        self.budget = torch.zeros(2, dtype=torch.float64)
        self.collecting = False   # the epoch under way collects candidates (set by epoch_plan)

    def drop_share(self, d: int) -> float:
        """rho_cur of the authors' CosineAnnealing: 0 on a cycle's collecting epoch."""
        d %= self.t_cos + 1
        return 0.0 if d == 0 else 0.5 * (1 + math.cos((self.t_cos - d) / self.t_cos * math.pi))

    def epoch_plan(self, epoch, pool):
        if epoch > 0 and self.start < 0:
            loss_cur = float(self.epoch_loss[0] / self.epoch_loss[1].clamp_min(1))
            if (float(self.loss_pre) - loss_cur) / (float(self.loss_pre) + 1e-8) < self.prune_td:
                self.start.fill_(epoch)
            else:
                self.loss_pre.fill_(loss_cur)
        self.epoch_loss.zero_()
        plan = pool
        self.collecting = self.start >= 0 and (epoch - int(self.start)) % (self.t_cos + 1) == 0
        if self.start >= 0:
            d = epoch - int(self.start)
            if self.collecting:
                self.candidate.zero_()
                self.rho.fill_(self.solve_rho(epoch, len(pool)))
            else:
                candidates = pool[self.candidate[pool]]
                n_drop = int(len(candidates) * self.drop_share(d))
                dropped = torch.zeros(self.n_samples, dtype=torch.bool)
                dropped[candidates[torch.randperm(len(candidates), generator=self.generator)[:n_drop]]] = True
                plan = pool[~dropped[pool]]
        self.budget[1] += len(pool)
        return plan

    def solve_rho(self, epoch: int, n_pool: int) -> float:
        """rho_max = rho_min such that the run ends at r: from here to the last epoch it drops
        about 2 rho x n_pool x the sum of the drop shares to come."""
        shares = sum(self.drop_share(e - int(self.start)) for e in range(epoch, self.epochs))
        if shares == 0:
            return 0.0
        to_train = self.ratio * (float(self.budget[1]) + (self.epochs - epoch) * n_pool) - float(self.budget[0])
        candidates = ((self.epochs - epoch) - to_train / n_pool) / shares
        return min(self.MAX_RHO, max(0.0, candidates / 2))

    def select(self, ids, clipscore, loss, epoch, features=None):
        return Selection(torch.ones(ids.shape[0], dtype=torch.bool))

    def trained(self, ids, trained, scores):
        loss = scores.loss[trained]
        self.epoch_loss += torch.tensor([float(loss.sum()), len(loss)], dtype=torch.float64)
        self.budget[0] += int(trained.sum())
        if not self.collecting or float(self.rho) == 0:
            return
        rows = trained.nonzero().squeeze(1)
        n = int(len(rows) * float(self.rho))
        if n == 0:
            return
        i2t, t2i = scores.loss_i2t[rows], scores.loss_t2i[rows]
        for descending in (True, False):   # ill-matched, then redundant
            by_i2t = rows[torch.argsort(i2t, descending=descending, stable=True)[:n]]
            by_t2i = rows[torch.argsort(t2i, descending=descending, stable=True)[:n]]
            self.candidate[ids[self.intersect(by_i2t, by_t2i, n)]] = True

    def intersect(self, a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
        """The rows in both sets; under 0.9 n of them, filled to n at random from the union."""
        both = a[torch.isin(a, b)]
        if len(both) >= 0.9 * n:
            return both
        rest = torch.cat([a, b])
        rest = rest[~torch.isin(rest, both)].unique()
        return torch.cat([both, rest[torch.randperm(len(rest), generator=self.generator)[:n - len(both)]]])

    def state_dict(self):
        return {**super().state_dict(), "candidate": self.candidate, "epoch_loss": self.epoch_loss,
                "loss_pre": self.loss_pre, "start": self.start, "rho": self.rho, "budget": self.budget}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for key in ("candidate", "epoch_loss", "loss_pre", "start", "rho", "budget"):
            getattr(self, key).copy_(state[key])


@register
class MidLoss(Strategy):
    """A per-batch, SCAN-inspired rule (not SCAN: that is `scan`): the scoring pass's
    per-sample InfoNCE loss ranks the batch; the lowest-loss and highest-loss samples are
    left out, --mid-loss-low-share of them from the low end, the rest from the high end.
    The kept fraction falls linearly over training from r (1 + s) to r (1 - s),
    s = --mid-loss-spread (capped so it starts at most at 1), averaging r."""
    name = "mid-loss"
    settings = STRATEGY_SETTINGS["mid-loss"]
    needs_epochs = True

    def __init__(self, *, epochs: int, mid_loss_spread: float, mid_loss_low_share: float, **kw):
        super().__init__(**kw)
        self.epochs = epochs
        self.spread = min(mid_loss_spread, 1 / self.ratio - 1)
        self.low_share = mid_loss_low_share

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
class RunningMean(Strategy):
    """The online twin of `dissect curate --by mean-clipscore`, no proxy: every visit adds the
    sample's CLIPScore minus its batch's mean to its running total, and a sample ranks by its
    mean over its visits so far (the area under its centred curve, as AUM is for labels), the
    current visit included. The first --running-mean-warmup epochs select at random; after
    them a --running-mean-random-share of the k picks is drawn at random from the batch (so
    the run keeps training pairs it would rank low), and the rest at random among the
    batch's top --running-mean-pool q by running mean (the pairs the history trusts, as
    oracle-clean draws among the clean ones). Taking the top-k itself, and q = 0.6, lost
    to random selection (docs/selection.md) and were removed."""
    name = "running-mean"
    settings = STRATEGY_SETTINGS["running-mean"]

    def __init__(self, *, running_mean_warmup: int, running_mean_random_share: float, running_mean_pool: float,
                 **kw):
        super().__init__(**kw)
        self.warmup, self.random_share, self.pool = running_mean_warmup, running_mean_random_share, running_mean_pool
        self.total = torch.zeros(self.n_samples)
        self.visits = torch.zeros(self.n_samples)

    def select(self, ids, clipscore, loss, epoch, features=None):
        batch_size, k = ids.shape[0], self.k(ids.shape[0])
        self.total[ids] += clipscore - clipscore.mean()
        self.visits[ids] += 1
        if epoch < self.warmup:
            return Selection(self.random_mask(batch_size, k))
        mean = self.total[ids] / self.visits[ids]
        selected = self.random_mask(batch_size, round(self.random_share * k))
        rest = k - int(selected.sum())
        trusted = self.top_mask(torch.where(selected, float("-inf"), mean),
                                min(batch_size - int(selected.sum()), max(rest, round(self.pool * batch_size))))
        priority = torch.rand(batch_size, generator=self.generator) + trusted.float()   # trusted ones first
        selected |= self.top_mask(torch.where(selected, float("-inf"), priority), rest)
        return Selection(selected)

    def state_dict(self):
        return {**super().state_dict(), "total": self.total, "visits": self.visits}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.total.copy_(state["total"])
        self.visits.copy_(state["visits"])


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
    settings = STRATEGY_SETTINGS["divbs"]

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


def two_gaussians(x: torch.Tensor, *, max_iter: int = 10, tol: float = 1e-2,
                  reg_covar: float = 5e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """A two-component Gaussian mixture fitted to 1-D values as NCR and GSC call scikit-learn's
    GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4): initialised from
    k-means (Lloyd's iterations from the smallest and largest value), then EM until the mean
    log-likelihood gains less than tol. Returns each value's posterior of the two components
    [n, 2] and the components' means [2]."""
    x = x.double()
    centres = torch.stack([x.min(), x.max()])
    for _ in range(100):
        assign = (x[:, None] - centres).abs().argmin(1)
        moved = torch.stack([x[assign == c].mean() if (assign == c).any() else centres[c] for c in range(2)])
        if torch.equal(moved, centres):
            break
        centres = moved
    resp = F.one_hot(assign, 2).double()
    previous = -math.inf
    for _ in range(max_iter):
        counts = resp.sum(0) + 1e-10
        means = (resp * x[:, None]).sum(0) / counts
        variances = (resp * (x[:, None] - means) ** 2).sum(0) / counts + reg_covar
        log_prob = (-0.5 * (torch.log(2 * math.pi * variances) + (x[:, None] - means) ** 2 / variances)
                    + torch.log(counts / len(x)))
        log_norm = torch.logsumexp(log_prob, 1)
        resp = torch.exp(log_prob - log_norm[:, None])
        likelihood = float(log_norm.mean())
        if abs(likelihood - previous) < tol:
            break
        previous = likelihood
    return resp.float(), means.float()


def min_max(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)


def positive_probability(loss_i2t: torch.Tensor, loss_t2i: torch.Tensor) -> torch.Tensor:
    """The in-batch InfoNCE probability of each pair's own caption and image, the mean of the
    two directions (GSC's preds = pos / (pos + sum of negatives); NCR's prediction of a pair,
    for InfoNCE): exp(-cross-entropy)."""
    return (torch.exp(-loss_i2t) + torch.exp(-loss_t2i)) / 2


@register
class NCR(Strategy):
    """NCR (Huang et al., NeurIPS 2021), after its authors' co_train.py (XLearning-SCU/
    2021-NeurIPS-NCR): two networks, the model and a peer trained in the same run; after
    --ncr-warmup-epoch epochs (1), each epoch fits a two-component GMM to each network's
    min-max normalised per-sample losses, a pair's clean probability being the posterior of
    the smaller-mean component (co-divide); each network trains on what the other calls clean,
    with a rectified label as its loss weight: prob + (1 - prob) x its own prediction where the
    other's prob is above --ncr-p-threshold (0.5), the mean of both networks' predictions
    (co-rectification) where it is not.

    Adapted to a per-batch budget and to InfoNCE: each network trains the k = floor(r B) of
    the batch the other network gives the highest clean probability (NCR trains every
    sample, the unlabeled ones with co-rectified labels); during warm-up each trains k at
    random (NCR trains all); the losses the GMM fits are those of the previous epoch's scoring
    passes (NCR runs a separate pass over the data before each epoch); the prediction of a
    pair is its in-batch InfoNCE probability, and the rectified label weighs the InfoNCE
    loss (NCR's soft margin belongs to a triplet loss)."""
    name = "ncr"
    peer = True
    settings = STRATEGY_SETTINGS["ncr"]

    def __init__(self, *, ncr_warmup_epoch: int, ncr_p_threshold: float, **kw):
        super().__init__(**kw)
        self.warmup = ncr_warmup_epoch
        self.threshold = ncr_p_threshold
        self.loss = torch.full((2, self.n_samples), float("nan"))   # [model, peer] x sample: last scored loss
        self.prob = torch.zeros(2, self.n_samples)                  # clean probability by each network's GMM

    def epoch_plan(self, epoch, pool):
        if epoch >= self.warmup:
            for net in range(2):
                loss = self.loss[net, pool]
                known = ~torch.isnan(loss)
                if int(known.sum()) >= 2:
                    resp, means = two_gaussians(min_max(loss[known]))
                    self.prob[net, pool[known]] = resp[:, means.argmin()]
        return pool

    def select_pair(self, ids, own, peer, epoch):
        self.loss[0, ids], self.loss[1, ids] = own.loss, peer.loss
        batch_size = ids.shape[0]
        k = self.k(batch_size)
        if epoch < self.warmup:
            return Selection(self.random_mask(batch_size, k)), Selection(self.random_mask(batch_size, k))
        pred = (positive_probability(own.loss_i2t, own.loss_t2i), positive_probability(peer.loss_i2t, peer.loss_t2i))
        return (self.co_divide(self.prob[1, ids], pred[0], pred[1], k),
                self.co_divide(self.prob[0, ids], pred[1], pred[0], k))

    def co_divide(self, prob, own_pred, other_pred, k):
        label = torch.where(prob > self.threshold, prob + (1 - prob) * own_pred, (own_pred + other_pred) / 2)
        return Selection(self.top_mask_random_ties(prob, k), weights=label)

    def state_dict(self):
        return {**super().state_dict(), "loss": self.loss, "prob": self.prob}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.loss.copy_(state["loss"])
        self.prob.copy_(state["prob"])


@register
class GSC(Strategy):
    """GSC (Zhao et al., CVPR 2024), after its authors' GSC/ (MediaBrain-SJTU/GSC, RINCE.py):
    every pair has a target in [0, 1] (all start at 1). Each step records the pair's geometrical
    structure consistency, the cosine between its row of image-image and of caption-caption
    similarities (sigmoid, times the batch's targets), and its prediction (the in-batch InfoNCE
    probability of its own pair); after each epoch a two-component GMM on the min-max
    normalised consistencies gives the probability of the larger-mean component, and
    topo_target <- beta prob + (1 - beta) topo_target, pred_target <- beta pred + (1 - beta)
    pred_target, target = min of the two (--gsc-beta 0.7). The InfoNCE loss of a pair is
    weighted by its target.

    Adapted to a per-batch budget: it trains the k = floor(r B) of the batch with the highest
    targets (GSC trains every pair, weighted), ties at random; the similarities are the CLIP
    embeddings' cosines from the scoring pass (GSC's come from its SGR encoder's
    forward_topology, in the training forward); its topology loss (gamma 0.01) is not added."""
    name = "gsc"
    wants_features = True
    settings = STRATEGY_SETTINGS["gsc"]

    def __init__(self, *, gsc_beta: float, **kw):
        super().__init__(**kw)
        self.beta = gsc_beta
        # topo, pred, topo_target, pred_target, target: the authors' five per-sample tensors of ones
        self.state = torch.ones(5, self.n_samples)

    def epoch_plan(self, epoch, pool):
        if epoch > 0:
            topo, pred, topo_target, pred_target, target = (row[pool] for row in self.state)
            resp, means = two_gaussians(min_max(topo))
            topo_target = self.beta * resp[:, means.argmax()] + (1 - self.beta) * topo_target
            pred_target = self.beta * pred + (1 - self.beta) * pred_target
            self.state[2:, pool] = torch.stack([topo_target, pred_target, torch.minimum(topo_target, pred_target)])
        return pool

    def select(self, ids, clipscore, loss, epoch, features=None):
        target = self.state[4, ids]
        image, text, scale = features.image.float().cpu(), features.text.float().cpu(), float(features.logit_scale)
        image_sims = torch.sigmoid(image @ image.T) * target
        text_sims = torch.sigmoid(text @ text.T) * target
        self.state[0, ids] = F.cosine_similarity(image_sims, text_sims, dim=1)
        logits = scale * image @ text.T
        self.state[1, ids] = (F.softmax(logits, 1).diagonal() + F.softmax(logits, 0).diagonal()) / 2
        return Selection(self.top_mask_random_ties(target, self.k(ids.shape[0])), weights=target)

    def state_dict(self):
        return {**super().state_dict(), "state": self.state}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.state.copy_(state["state"])

"""Every online strategy's own hyper-parameters, each declared once: name, type, default,
range and help.

From these come `dissect train`'s options, TrainConfig's fields, their validation (the
library's and the command line's, one range each), what defines a run on resume, the
settings a run record keeps, and the README's strategies table (tests/test_readme_commands.py
checks it). Torch-free, so that the command line builds its options without loading torch;
each class in strategies.py names its own from here.
"""
from dataclasses import dataclass

from dissect.engine.errors import InputError

DIVBS_FEATURES = ("grad", "embedding")


@dataclass(frozen=True)
class Setting:
    name: str
    type: type                   # int, float or str
    default: object
    help: str
    low: float | None = None     # bounds, inclusive unless the *_open flag says otherwise
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    default_text: str | None = None   # how the help and the README say a None default is filled in

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def range_text(self) -> str:
        if self.high is None:
            return f"above {self.low:g}" if self.low_open else "0 or more" if self.low == 0 else f"at least {self.low:g}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def check(self, value) -> None:
        """An InputError naming the option and its range where VALUE is outside it."""
        if value is None:
            return
        if self.choices is not None:
            if value not in self.choices:
                raise InputError(f"{self.option} {value!r}: use {' or '.join(self.choices)}")
            return
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if below or above:
            where = f"must be {self.range_text()}" if self.high is None else f"is outside {self.range_text()}"
            raise InputError(f"{self.option} {value} {where}")


# Every strategy, in the order `dissect train --help` names them (and lists their settings).
STRATEGY_SETTINGS: dict[str, tuple[Setting, ...]] = {
    "full": (),
    "random": (),
    "small-loss": (),
    "big-loss": (),
    "clipscore": (),
    "dissect-warmup": (
        Setting("warmup_epochs", int, None, "dissect-warmup's T_w: random selection before, delta after; "
                "below --epochs.", low=1, default_text="epochs // 4"),
    ),
    "dissect-momentum": (
        Setting("momentum", float, 0.9, "dissect-momentum's beta.", low=0, high=1, high_open=True),
    ),
    "infobatch": (
        Setting("infobatch_anneal", float, 0.125, "infobatch: the final fraction of the epochs that prunes nothing "
                "(the authors' 1 - delta).", low=0, high=1, high_open=True),
    ),
    "scan": (
        Setting("scan_t_cos", int, 3, "scan: T_cos, the pruning epochs that follow each collecting epoch.", low=1),
        Setting("scan_prune_td", float, 0.3, "scan: full-data pre-training ends when an epoch's mean loss falls by "
                "less than this share.", low=0, high=1, high_open=True),
    ),
    "mid-loss": (
        Setting("mid_loss_spread", float, 0.5, "mid-loss: the kept fraction falls linearly from r (1 + s) to "
                "r (1 - s) over the epochs.", low=0, high=1, high_open=True),
        Setting("mid_loss_low_share", float, 0.5, "mid-loss: the share of the left-out samples taken from the "
                "lowest losses (the rest: highest).", low=0, high=1),
    ),
    "running-mean": (
        Setting("running_mean_warmup", int, 2, "running-mean: epochs of random selection before the running mean "
                "ranks.", low=0),
        Setting("running_mean_random_share", float, 0.2, "running-mean: the share of each batch's k picks drawn at "
                "random.", low=0, high=1),
        Setting("running_mean_pool", float, 0.8, "running-mean: the picks not drawn at random from the batch are "
                "drawn at random among its top q by running mean.", low=0, high=1, low_open=True),
    ),
    "divbs": (
        Setting("divbs_features", str, "grad", "divbs: per-sample features, the InfoNCE gradient w.r.t. the "
                "embeddings or the embeddings.", choices=DIVBS_FEATURES),
    ),
    "ncr": (
        Setting("ncr_warmup_epoch", int, 1, "ncr: warm-up epochs (both networks train k at random) before the GMM "
                "co-divide.", low=0),
        Setting("ncr_p_threshold", float, 0.5, "ncr: the clean probability above which a pair's rectified label is "
                "prob + (1 - prob) x pred.", low=0, high=1),
    ),
    "gsc": (
        Setting("gsc_beta", float, 0.7, "gsc: beta of the targets' moving average (topo_target, pred_target).",
                low=0, high=1),
    ),
    "oracle-clean": (),
}

ALL_SETTINGS: tuple[Setting, ...] = tuple(s for settings in STRATEGY_SETTINGS.values() for s in settings)


def settings_of(strategy: str) -> tuple[Setting, ...]:
    return STRATEGY_SETTINGS.get(strategy, ())   # an unknown strategy is refused where it is opened

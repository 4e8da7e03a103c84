"""Scoring a dataset and evaluating a checkpoint: `dissect score` and `dissect eval`."""
from pathlib import Path

import torch
from open_clip.loss import ClipLoss
from tqdm import tqdm

from dissect import ledger
from dissect.engine import data, evaluate, models
from dissect.engine.errors import InputError
from dissect.engine.scores import neg_clip_loss, per_sample_scores


def load_checkpoint(model_name: str, checkpoint: str, device: str = "cpu") -> models.ClipBundle:
    """An open_clip model with a checkpoint's weights, or an InputError that says why not."""
    models.check_model_name(model_name)
    if not Path(checkpoint).is_file():
        raise InputError(f"no checkpoint at {checkpoint}")
    try:
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot read checkpoint {checkpoint}: {_first_line(e)}") from e
    try:
        return models.create(model_name, checkpoint=checkpoint, device=device)
    except Exception as e:  # open_clip raises RuntimeError, AssertionError, KeyError for a mismatch
        raise InputError(f"checkpoint {checkpoint} does not fit model {model_name} ({_first_line(e)}): "
                         "pass the --model it was trained with") from e


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def score(data_path: str, *, checkpoint: str, model_name: str, name: str, ledger_dir: str,
          batch_size: int = 256, rounds: int = 5, seed: int = 0, replace: bool = False, workers: int = 0,
          device: str | None = None, quiet: bool = False) -> int:
    """Write every sample's CLIPScore, loss (within its batch of batch_size in manifest order)
    and negCLIPLoss (over `rounds` random batchings of batch_size within its split) under a
    reference model to the ledger's `oracle` table as NAME; returns the number of samples scored.

    The new rows are committed at the end, in place of an existing NAME's (--replace):
    readers see the old scores or the new, never a mix."""
    device = device or default_device()
    ledger.check_name("--name", name)
    ledger.check_root(ledger_dir)
    dataset = data.open_dataset(data_path)
    if ledger.oracle_exists(ledger_dir, name) and not replace:
        raise InputError(f"oracle {name!r} is already in {ledger_dir}: pass --replace or another --name")
    if rounds < 1 or batch_size < 2:
        raise InputError("--rounds must be at least 1 and --batch-size at least 2")
    bundle = load_checkpoint(model_name, checkpoint, device)
    ledger.add_samples(ledger_dir, dataset.name, dataset.fingerprint, dataset.manifest)
    loss_fn = ClipLoss()
    model = bundle.model.eval()
    generator = torch.Generator().manual_seed(seed)
    n = 0
    with ledger.LedgerWriter(ledger_dir) as writer:
        for split in sorted(set(dataset.manifest["split"].to_pylist())):
            batches = data.loader(dataset, split, transform=bundle.preprocess_val, tokenizer=bundle.tokenizer,
                                  batch_size=batch_size, shuffle=False, workers=workers)
            parts = []
            for ids, images, tokens in tqdm(batches, desc=f"scoring {split}", unit="batch", disable=quiet):
                with torch.inference_mode():
                    image_features, text_features, logit_scale = model(images.to(device), tokens.to(device))
                    clipscore, loss, _ = per_sample_scores(loss_fn, image_features, text_features, logit_scale)
                parts.append((ids, clipscore.cpu(), loss.cpu(), image_features.float().cpu(),
                              text_features.float().cpu()))
            ids, clipscore, loss, image_features, text_features = (torch.cat(t) for t in zip(*parts))
            negcliploss = neg_clip_loss(image_features, text_features, logit_scale.cpu(), batch_size, rounds,
                                        generator)
            writer.add("oracle", {"name": name}, {
                "dataset": [dataset.name] * len(ids), "sample_id": ids.numpy(), "clipscore": clipscore.numpy(),
                "loss": loss.numpy(), "negcliploss": negcliploss.numpy()})
            n += len(ids)
        writer.commit(replace=True)
    ledger.summarise_oracle(ledger_dir, name, dataset.name)
    return n


def evaluate_checkpoint(data_path: str, *, checkpoint: str, model_name: str, split: str | None = None,
                        batch_size: int = 256, workers: int = 0, device: str | None = None,
                        quiet: bool = True) -> dict[str, float]:
    """Zero-shot retrieval (and classification where the data has labels) of a checkpoint."""
    device = device or default_device()
    dataset = data.open_dataset(data_path, require_train=False)
    splits = set(dataset.manifest["split"].to_pylist())
    split = split or ("test" if "test" in splits else "train")
    if split not in splits:
        raise InputError(f"{data_path} has no {split!r} split (it has {', '.join(sorted(splits))})")
    bundle = load_checkpoint(model_name, checkpoint, device)
    return evaluate.evaluate_dataset(bundle.model, bundle.tokenizer, bundle.preprocess_val, dataset, split,
                                     batch_size=batch_size, workers=workers, device=device, quiet=quiet)


def record_eval(ledger_dir: str, run: str, checkpoint: str, metrics: dict[str, float], prefix: str) -> None:
    """Add a checkpoint's metrics to a run's evals, at the epoch and step the checkpoint was saved."""
    if ledger.read_run(ledger_dir, run) is None:
        raise InputError(f"run {run!r} is not in {ledger_dir}: `dissect runs --ledger {ledger_dir}` lists them")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    epoch, step = state.get("epoch", 0) - 1, state.get("step", -1)
    with ledger.LedgerWriter(ledger_dir, rank=0) as writer:
        writer.add("evals", {"run": run, "epoch": epoch}, {
            "step": [step] * len(metrics), "metric": [prefix + m for m in metrics], "value": list(metrics.values())})

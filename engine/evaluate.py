"""Zero-shot evaluation: retrieval Recall@K both ways (the CLIP_benchmark convention)
and, where the data has labels and class names, zero-shot classification.

With several captions per image, an image query is a hit if any of its captions
is in the top K; a caption query is a hit if its image is in the top K.
"""
import torch
from open_clip import SIMPLE_IMAGENET_TEMPLATES, build_zero_shot_classifier
from tqdm import tqdm

from dissect import ledger
from dissect.engine import data, models
from dissect.engine.data import cache as data_cache, ingest
from dissect.engine.errors import InputError

RECALL_KS = (1, 5, 10)


@torch.inference_mode()
def encode(model, batches, device="cpu", input_dtype=None):
    """Normalised image and text features of batches from data.loader(all_captions=True):
    (image features, text features, text_to_image, sample ids)."""
    was_training = model.training
    model.eval()
    images, texts, owners, ids = [], [], [], []
    seen = 0
    for batch_ids, image, tokens, owner in batches:
        images.append(model.encode_image(image.to(device, dtype=input_dtype), normalize=True).float().cpu())
        texts.append(model.encode_text(tokens.to(device), normalize=True).float().cpu())
        owners.append(owner + seen)
        ids.append(batch_ids)
        seen += len(batch_ids)
    model.train(was_training)
    return torch.cat(images), torch.cat(texts), torch.cat(owners), torch.cat(ids)


def retrieval_metrics(image_features: torch.Tensor, text_features: torch.Tensor,
                      text_to_image: torch.Tensor) -> dict[str, float]:
    """R@1/5/10 for image->text (tr_*) and text->image (ir_*) retrieval, and two sums:
    rsum, all six recalls; rsum4, the paper's R@Sum (Tables 2, 4, 5): TR@1 + TR@10 + IR@1 + IR@10.

    text_to_image[j] is the row of image_features that caption j describes.
    """
    similarity = text_features @ image_features.T  # [texts, images]
    n_images = image_features.shape[0]
    # text -> image: how many images score above the caption's own image.
    own = similarity.gather(1, text_to_image[:, None])
    image_rank = (similarity > own).sum(1)
    # image -> text: the best rank among the image's own captions.
    order = similarity.T.argsort(dim=1, descending=True)
    is_own = text_to_image[order] == torch.arange(n_images)[:, None]
    caption_rank = is_own.float().argmax(dim=1)
    metrics = {}
    for k in RECALL_KS:
        metrics[f"tr_r{k}"] = 100.0 * (caption_rank < k).float().mean().item()
        metrics[f"ir_r{k}"] = 100.0 * (image_rank < k).float().mean().item()
    metrics["rsum"] = sum(metrics[f"{d}_r{k}"] for d in ("tr", "ir") for k in RECALL_KS)
    metrics["rsum4"] = sum(metrics[f"{d}_r{k}"] for d in ("tr", "ir") for k in (1, 10))
    return metrics


@torch.inference_mode()
def zero_shot_metrics(model, tokenizer, classnames: list[str], image_features: torch.Tensor,
                      labels: torch.Tensor, device="cpu") -> dict[str, float]:
    """Top-1 (and top-5 with five or more classes) accuracy, in percent, of open_clip's
    zero-shot classifier built from the class names with its simple ImageNet templates."""
    classifier = build_zero_shot_classifier(model, tokenizer, classnames, SIMPLE_IMAGENET_TEMPLATES,
                                            device=device).float().cpu()
    return classification_metrics(image_features @ classifier, labels)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 (and top-5) accuracy and the mean over classes of each class's top-1 recall, in percent."""
    ks = [k for k in (1, 5) if k <= logits.shape[1]]
    top = logits.topk(max(ks), dim=1).indices
    metrics = {f"zeroshot_top{k}": 100.0 * (top[:, :k] == labels[:, None]).any(1).float().mean().item() for k in ks}
    hit = (top[:, 0] == labels).float()
    recalls = [hit[labels == c].mean() for c in labels.unique()]
    metrics["zeroshot_mean_per_class_recall"] = 100.0 * torch.stack(recalls).mean().item()
    return metrics


def clip_benchmark_results(metrics: dict[str, float], *, dataset: str, model: str, pretrained: str) -> list[dict]:
    """The metrics in CLIP_benchmark's result layout, one dict per task (`clip_benchmark build`
    tabulates them): zeroshot_retrieval with image_retrieval_recall@K (text->image) and
    text_retrieval_recall@K (image->text) as fractions; zeroshot_classification with acc1,
    acc5 and mean_per_class_recall, also fractions."""
    results = [{"dataset": dataset, "model": model, "pretrained": pretrained, "task": "zeroshot_retrieval",
                "metrics": {**{f"image_retrieval_recall@{k}": metrics[f"ir_r{k}"] / 100 for k in RECALL_KS},
                            **{f"text_retrieval_recall@{k}": metrics[f"tr_r{k}"] / 100 for k in RECALL_KS}},
                "language": "en"}]
    names = {"zeroshot_top1": "acc1", "zeroshot_top5": "acc5", "zeroshot_mean_per_class_recall": "mean_per_class_recall"}
    if "zeroshot_top1" in metrics:
        results.append({"dataset": dataset, "model": model, "pretrained": pretrained,
                        "task": "zeroshot_classification", "language": "en",
                        "metrics": {names[k]: v / 100 for k, v in metrics.items() if k in names}})
    return results


def evaluate_dataset(model, tokenizer, transform, dataset, split: str, *, batch_size: int = 256,
                     workers: int = 0, device="cpu", input_dtype=None, quiet: bool = True,
                     cache=None) -> dict[str, float]:
    """Every zero-shot metric the split supports: retrieval always, classification
    where the samples have labels and the dataset has class names. CACHE: the dataset's decoded
    cache, read instead of the shards where it covers the split (one caption per image)."""
    if cache is not None and cache.covers(dataset, split):
        batches = cache.eval_batches(dataset, split, batch_size)
        total = -(-dataset.split(split).num_rows // batch_size)
    else:
        batches = data.loader(dataset, split, transform=transform, tokenizer=tokenizer, batch_size=batch_size,
                              shuffle=False, workers=workers, all_captions=True)
        total = len(batches)
    batches = tqdm(batches, total=total, desc=f"evaluating {dataset.root.name}", unit="batch", disable=quiet)
    image_features, text_features, text_to_image, ids = encode(model, batches, device, input_dtype)
    metrics = retrieval_metrics(image_features, text_features, text_to_image)
    labels = dataset.labels(ids)
    if dataset.classnames and labels is not None:
        metrics.update(zero_shot_metrics(model, tokenizer, dataset.classnames, image_features, labels, device))
    return metrics


def evaluate_checkpoint(data_path: str, *, checkpoint: str, model_name: str, split: str | None = None,
                        batch_size: int = 256, workers: int = 0, device: str | None = None,
                        quiet: bool = True, cache: str = "auto") -> dict[str, float]:
    """Zero-shot retrieval (and classification where the data has labels) of a checkpoint, from
    DATA's decoded cache where CACHE (auto, on, off: cache.open_for_one_pass) has one that covers the split."""
    device = models.device(device)
    dataset = ingest.dataset_at(data_path)
    splits = set(dataset.manifest["split"].to_pylist())
    split = ("test" if "test" in splits else "train") if split is None else split
    if split not in splits:
        raise InputError(f"{data_path} has no {split!r} split (it has {', '.join(sorted(splits))})")
    bundle = models.load_checkpoint(model_name, checkpoint, device)
    return evaluate_dataset(bundle.model, bundle.tokenizer, bundle.preprocess_val, dataset, split,
                            batch_size=batch_size, workers=workers, device=device, quiet=quiet,
                            cache=data_cache.open_for_one_pass(dataset, model_name, bundle, cache, quiet=quiet))


def record_eval(ledger_dir: str, run: str, checkpoint: str, metrics: dict[str, float], prefix: str) -> None:
    """Add a checkpoint's metrics to a run's evals, at the epoch and step the checkpoint was saved."""
    if ledger.Run(ledger_dir, run).record() is None:
        raise InputError(f"run {run!r} is not in {ledger_dir}: `dissect runs --ledger {ledger_dir}` lists them")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    epoch, step = state.get("epoch", 0) - 1, state.get("step", -1)
    with ledger.Run(ledger_dir, run).writer() as writer:
        writer.add("evals", {"run": run, "epoch": epoch}, {
            "step": [step] * len(metrics), "metric": [prefix + m for m in metrics], "value": list(metrics.values())})

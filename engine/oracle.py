"""`dissect score`: every sample of a dataset scored by a reference model into the ledger's oracle table."""

import torch
from open_clip.loss import ClipLoss
from tqdm import tqdm

from dissect import ledger
from dissect.engine import data, models
from dissect.engine.config import ScoreSettings
from dissect.engine.data import cache as data_cache, ingest
from dissect.engine.errors import InputError
from dissect.engine.scores import neg_clip_loss, per_sample_scores


def score(data_path: str, *, checkpoint: str, model_name: str, name: str, ledger_dir: str,
          batch_size: int = ScoreSettings.batch_size, rounds: int = ScoreSettings.rounds,
          seed: int = ScoreSettings.seed, replace: bool = False, workers: int = ScoreSettings.workers,
          device: str | None = None, quiet: bool = False, cache: str = "auto") -> int:
    """Write every sample's CLIPScore, loss (within its batch of batch_size in manifest order)
    and negCLIPLoss (over `rounds` random batchings of batch_size within its split) under a
    reference model to the ledger's `oracle` table as NAME; returns the number of samples scored.

    The new rows are committed at the end, in place of an existing NAME's (--replace):
    readers see the old scores or the new, never a mix. Images and tokens come from DATA's decoded
    cache where CACHE (auto, on, off: cache.open_for_one_pass) has one that covers a split."""
    device = models.device(device)
    ledger.check_name("oracle", name)
    ledger.check_root(ledger_dir)
    dataset = ingest.dataset_at(data_path, require_train=True)
    if ledger.oracle_exists(ledger_dir, name) and not replace:
        raise InputError(f"oracle {name!r} is already in {ledger_dir}: pass --replace or another --name")
    if rounds < 1 or batch_size < 2:
        raise InputError("--rounds must be at least 1 and --batch-size at least 2")
    bundle = models.load_checkpoint(model_name, checkpoint, device)
    ledger.add_samples(ledger_dir, dataset.name, dataset.fingerprint, dataset.manifest)
    loss_fn = ClipLoss()
    model = bundle.model.eval()
    generator = torch.Generator().manual_seed(seed)
    found = data_cache.open_for_one_pass(dataset, model_name, bundle, cache, quiet=quiet)
    n = 0
    with ledger.LedgerWriter(ledger_dir) as writer:
        for split in sorted(set(dataset.manifest["split"].to_pylist())):
            if found is not None and found.covers(dataset, split):
                batches = (batch[:3] for batch in found.eval_batches(dataset, split, batch_size))   # one caption each
            else:
                batches = data.loader(dataset, split, transform=bundle.preprocess_val, tokenizer=bundle.tokenizer,
                                      batch_size=batch_size, shuffle=False, workers=workers)
            parts = []
            for ids, images, tokens in tqdm(batches, desc=f"scoring {split}", unit="batch", disable=quiet):
                with torch.inference_mode():
                    image_features, text_features, logit_scale = model(images.to(device), tokens.to(device))
                    clipscore, loss = per_sample_scores(loss_fn, image_features, text_features, logit_scale)[:2]
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

"""How far a cheaper scoring pass agrees with exact scoring, and what it does to a run.

    .venv/bin/python benchmarks/score_agreement.py [--n 2000] [--epochs 16] [--seeds 0,1]

1. Agreement. One exact dissect-warmup run (T_w = epochs / 2) keeps its weights at the end
   of the warm-up and at the end. Every train pair is scored with both, on the same
   augmented images, by the Trainer's own scoring pass: exact (the model's size, fp32), at
   half the size (--score-image-size), in bf16 (--score-precision amp_bf16), and both.
   Printed: the Spearman correlation with exact scoring of the final CLIPScore and of delta
   (warm-up-end CLIPScore minus final), and the share of exact scoring's top-k picks by
   delta (k = r B in each batch of B) that the cheap pass picks too.
2. Effect. dissect-warmup runs with each scoring pass, per seed: TP accuracy after the
   warm-up (the share of clean pairs among the picks), the final R@Sum, and the step time
   against a full run's (all on the decoded cache, in one process).
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np

from table import print_table

from dissect import ledger
from dissect.engine import distributed, models, train
from dissect.engine.data import cache, synthetic
from dissect.engine.scores import per_sample_scores

HERE = Path(__file__).parent


def variants(half: int) -> dict[str, dict]:
    """Scoring passes by run-name-safe label."""
    return {"exact": {}, f"{half}px": {"score_image_size": half}, "bf16": {"score_precision": "amp_bf16"},
            f"{half}px-bf16": {"score_image_size": half, "score_precision": "amp_bf16"}}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(x, kind="stable"), kind="stable") for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def top_k_overlap(exact: np.ndarray, cheap: np.ndarray, batch: int, ratio: float) -> float:
    k, shared, picked = int(ratio * batch), 0, 0
    for start in range(0, len(exact) - batch + 1, batch):
        mine = set(np.argsort(-exact[start:start + batch])[:k])
        shared += len(mine & set(np.argsort(-cheap[start:start + batch])[:k]))
        picked += k
    return shared / picked


def clipscores(trainer: train.Trainer, state: dict, batches) -> np.ndarray:
    trainer.model.load_state_dict(state)
    out = []
    for ids, images, tokens in batches:
        clipscore = per_sample_scores(trainer.score_loss, *trainer.features(images, tokens)).clipscore
        out.append(clipscore.numpy())
    return np.concatenate(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--model", default="dissect-tiny")
    parser.add_argument("--seeds", type=lambda v: [int(s) for s in v.split(",")], default=[0, 1])
    args = parser.parse_args()
    warmup = args.epochs // 2
    half = models.create(args.model).image_size // 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        synthetic.make_synthetic(data, n=args.n, test_n=500, noise_ratio=0.4, noise_type="shuffle", seed=0)
        ledger_dir = Path(tmp) / "ledger"

        def config(run, strategy="dissect-warmup", seed=0, **scoring):
            return train.TrainConfig(data=str(data), ledger=str(ledger_dir), run=run, strategy=strategy,
                                     model=args.model, ratio=args.ratio, epochs=args.epochs, warmup_epochs=warmup,
                                     batch_size=args.batch_size, seed=seed, workers=0, cache="on", quiet=True,
                                     **scoring)

        # 1. agreement on one exact run's weights
        states = {}

        def keep_weights(trainer):
            if trainer.epoch in (warmup, args.epochs):
                states[trainer.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

        train.train(config("exact-s0"), on_epoch_end=keep_weights)
        rows = []
        scores = {}
        for name, scoring in variants(half).items():
            cfg = config(f"agreement-{name}", **scoring).resolved(device="cpu", is_resnet=models.is_resnet(args.model))
            trainer = train.Trainer(cfg, train.run_of(cfg), train.open_sources(cfg.validated()), distributed.init("cpu"))
            batches = list(cache.Cache(trainer.dataset, args.model, trainer.preprocess_train).batches(
                trainer.dataset, "train", batch_size=args.batch_size, seed=0, epoch=0))
            hist, final = (clipscores(trainer, states[e], batches) for e in (warmup, args.epochs))
            scores[name] = (final, hist - final)
        for name, (final, delta) in scores.items():
            rows.append((name, spearman(final, scores["exact"][0]), spearman(delta, scores["exact"][1]),
                         top_k_overlap(scores["exact"][1], delta, args.batch_size, args.ratio)))
        print_table(["scoring pass", "Spearman, final CLIPScore", "Spearman, delta", "top-k picks shared"], rows,
                    title=f"agreement with exact scoring, {args.model}, {args.n} pairs, weights at epochs {warmup} "
                          f"and {args.epochs}")

        # 2. runs with each scoring pass
        for seed in args.seeds:
            train.train(config(f"full-s{seed}", "full", seed))
            for name, scoring in variants(half).items():
                if (name, seed) != ("exact", 0):
                    train.train(config(f"{name}-s{seed}", seed=seed, **scoring))
        columns, result = ledger.query(ledger_dir, (HERE / "score_agreement.sql").read_text())
    print_table(columns, result, title=f"dissect-warmup runs by scoring pass, r = {args.ratio}, T_w = {warmup}, "
                                      f"{args.epochs} epochs, seeds {args.seeds}")


if __name__ == "__main__":
    main()

"""`dissect score` and `dissect eval`, and the retrieval convention on hand-made features."""
import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import data, evaluate, models
from dissect.engine.data import synthetic


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def checkpoint(tiny_dataset, tmp_path_factory):
    ledger_dir = tmp_path_factory.mktemp("ledger")
    result = run_cli("train", tiny_dataset, "--strategy", "random", "--epochs", 1, "--batch-size", 50,
                     "--ledger", ledger_dir, "--run", "r", "--workers", 0, "--quiet")
    assert result.exit_code == 0, result.output
    return ledger_dir, ledger_dir / "checkpoints" / "r" / "checkpoint.pt"


def test_five_captions_per_image_follow_the_clip_benchmark_convention():
    e = torch.eye(3)
    images = e
    own_caption = e[0]
    misleading = e[1]
    near_image_2 = F.normalize(e[2] + 0.1 * e[1], dim=0)
    texts = torch.stack([own_caption] + [misleading] * 4 + [near_image_2] * 5 + [e[2]] * 5)
    owner = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)
    m = evaluate.retrieval_metrics(images, texts, owner)
    # image 0: one of its five captions ranks first -> hit; image 1: its best caption ranks 5th;
    # image 2: its own captions rank first.
    assert m["tr_r1"] == pytest.approx(200 / 3) and m["tr_r5"] == 100.0 and m["tr_r10"] == 100.0
    # captions: only image 0's first and image 2's five find their image first.
    assert m["ir_r1"] == pytest.approx(40.0) and m["ir_r5"] == 100.0
    assert m["rsum"] == pytest.approx(200 / 3 + 100 + 100 + 40 + 100 + 100)
    assert m["rsum4"] == pytest.approx(200 / 3 + 100 + 40 + 100)     # the paper's: TR@1, TR@10, IR@1, IR@10


def test_retrieval_directions_on_three_images():
    """Three images, one caption each; caption 1 lies nearer image 0 than its own image 1.
    Image queries (tr_*, the paper's IR) all find their caption first; caption queries
    (ir_*, the paper's TR) miss once."""
    e = torch.eye(3)
    texts = torch.stack([e[0], F.normalize(e[0] + 0.5 * e[1], dim=0), e[2]])
    m = evaluate.retrieval_metrics(e, texts, torch.arange(3))
    assert m["tr_r1"] == 100.0                      # image -> text
    assert m["ir_r1"] == pytest.approx(200 / 3)     # text -> image
    assert m["ir_r5"] == 100.0


def test_neg_clip_loss_is_the_similarity_minus_the_batch_normaliser():
    from dissect.engine.scores import neg_clip_loss

    torch.manual_seed(0)
    images, texts = F.normalize(torch.randn(6, 4), dim=1), F.normalize(torch.randn(6, 4), dim=1)
    logit_scale = torch.tensor(10.0)
    one_batch = neg_clip_loss(images, texts, logit_scale, batch_size=6, rounds=3, generator=torch.Generator())
    s = images @ texts.T
    expected = s.diagonal() - 0.1 * (torch.logsumexp(s / 0.1, 1) + torch.logsumexp(s / 0.1, 0)) / 2
    assert torch.allclose(one_batch, expected, atol=1e-6)        # one batch of all: every round the same
    # = -tau * the per-sample InfoNCE loss at that batch
    loss = (F.cross_entropy(10 * s, torch.arange(6), reduction="none")
            + F.cross_entropy(10 * s.T, torch.arange(6), reduction="none")) / 2
    assert torch.allclose(one_batch, -0.1 * loss, atol=1e-6)
    halves = neg_clip_loss(images, texts, logit_scale, batch_size=3, rounds=4, generator=torch.Generator())
    assert halves.shape == (6,) and not torch.allclose(halves, one_batch)


def test_zero_shot_accuracy_on_known_logits():
    logits = torch.tensor([[0.9, 0.1, 0.0, 0.0, 0.0, 0.0],
                           [0.1, 0.9, 0.0, 0.0, 0.0, 0.0],
                           [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
                           [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])
    m = evaluate.classification_metrics(logits, torch.tensor([0, 0, 4, 5]))
    # per class: 0 recalls 1 of 2, 4 and 5 none: a mean of 1/6
    assert m == pytest.approx({"zeroshot_top1": 25.0, "zeroshot_top5": 75.0,
                               "zeroshot_mean_per_class_recall": 100 / 6})
    results = evaluate.clip_benchmark_results({**m, **{f"{d}_r{k}": 50.0 for d in ("ir", "tr") for k in (1, 5, 10)}},
                                              dataset="d", model="RN50", pretrained="c.pt")
    assert [r["task"] for r in results] == ["zeroshot_retrieval", "zeroshot_classification"]
    assert results[0]["metrics"]["image_retrieval_recall@5"] == 0.5 and set(results[0]) >= {
        "dataset", "model", "pretrained", "task", "metrics"}
    assert results[1]["metrics"] == pytest.approx({"acc1": 0.25, "acc5": 0.75, "mean_per_class_recall": 1 / 6})


def test_multi_caption_dataset_through_the_loader(tmp_path):
    def samples():
        for i, s in enumerate(synthetic.generate(0, 6, 0.0, "shuffle", 32, 0)):
            yield data.Sample(s.split, s.image, "png", "\n".join(f"{s.caption} ({k})" for k in range(5)), label=i % 3)
    dataset = data.write_dataset(tmp_path / "multi", samples(), classnames=["zero", "one", "two"])
    bundle = models.create("dissect-tiny")
    batches = data.loader(dataset, "test", transform=bundle.preprocess_val, tokenizer=bundle.tokenizer,
                          batch_size=4, shuffle=False, all_captions=True)
    images, texts, owner, ids = evaluate.encode(bundle.model, batches)
    assert images.shape[0] == 6 and texts.shape[0] == 30
    assert owner.tolist() == [i for i in range(6) for _ in range(5)]
    metrics = evaluate.evaluate_dataset(bundle.model, bundle.tokenizer, bundle.preprocess_val, dataset, "test")
    assert set(metrics) == {"tr_r1", "tr_r5", "tr_r10", "ir_r1", "ir_r5", "ir_r10", "rsum", "rsum4",
                            "zeroshot_top1", "zeroshot_mean_per_class_recall"}   # three classes: no top-5


def test_eval_writes_clip_benchmark_results(checkpoint, tiny_dataset, tmp_path):
    _, ckpt = checkpoint
    out = tmp_path / "result_{task}.json"
    result = run_cli("eval", "--ckpt", ckpt, "--data", tiny_dataset, "--format", "json", "--out", out)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "result_zeroshot_retrieval.json").read_text())
    assert written["task"] == "zeroshot_retrieval" and written["dataset"] == "tiny"
    assert set(written["metrics"]) == {f"{d}_retrieval_recall@{k}" for d in ("image", "text") for k in (1, 5, 10)}
    assert all(0 <= v <= 1 for v in written["metrics"].values())


def test_eval_prints_metrics_and_records_them(checkpoint, tiny_dataset):
    ledger_dir, ckpt = checkpoint
    result = run_cli("eval", "--ckpt", ckpt, "--data", tiny_dataset, "--format", "json")
    assert result.exit_code == 0, result.output
    metrics = {r["metric"]: r["value"] for r in json.loads(result.stdout)}
    assert set(metrics) == {"tr_r1", "tr_r5", "tr_r10", "ir_r1", "ir_r5", "ir_r10", "rsum", "rsum4"}
    assert metrics["tr_r10"] >= metrics["tr_r5"] >= metrics["tr_r1"] >= 0
    assert metrics["rsum4"] == pytest.approx(metrics["tr_r1"] + metrics["tr_r10"] + metrics["ir_r1"]
                                             + metrics["ir_r10"], abs=0.02)   # printed rounded to 2 places
    result = run_cli("eval", "--ckpt", ckpt, "--data", tiny_dataset, "--ledger", ledger_dir, "--run", "r")
    assert result.exit_code == 0, result.output
    _, rows = ledger.query(ledger_dir, "SELECT epoch, metric FROM evals WHERE metric LIKE 'tiny/%' ORDER BY metric")
    assert [m for _, m in rows][:2] == ["tiny/ir_r1", "tiny/ir_r10"] and {e for e, _ in rows} == {0}
    # the training eval at the same epoch is still there
    _, rows = ledger.query(ledger_dir, "SELECT count(*) FROM evals WHERE metric = 'rsum'")
    assert rows == [(1,)]


def test_score_writes_every_sample_and_refuses_a_second_time(checkpoint, tiny_dataset):
    ledger_dir, ckpt = checkpoint
    result = run_cli("score", tiny_dataset, "--ckpt", ckpt, "--name", "o", "--ledger", ledger_dir,
                     "--workers", 0, "--quiet")
    assert result.exit_code == 0, result.output
    query = "SELECT name, count(*), count(DISTINCT sample_id), min(clipscore) >= 0, max(clipscore) <= 100 FROM oracle GROUP BY name"
    assert ledger.query(ledger_dir, query)[1] == [("o", 130, 130, True, True)]
    # the run's epochs already in the ledger get their summaries under the new oracle's split
    _, rows = ledger.query(ledger_dir, "SELECT oracle, count(DISTINCT epoch), sum(n) FROM summaries "
                                       "WHERE run = 'r' GROUP BY ALL ORDER BY ALL")
    epochs = ledger.query(ledger_dir, "SELECT count(DISTINCT epoch) FROM scores WHERE run = 'r'")[1][0][0]
    assert rows == [("o", epochs, 100 * epochs), (None, epochs, 100 * epochs)]
    # negCLIPLoss: a similarity (at most 1) minus a normalisation, so below the pair's own cosine
    _, rows = ledger.query(ledger_dir, "SELECT count(negcliploss), max(negcliploss - clipscore / 100 * 1.0001) < 0 "
                                       "FROM oracle WHERE clipscore > 0")
    assert rows[0][0] > 0 and rows[0][1]
    before = sorted(p.stat().st_mtime_ns for p in (ledger_dir / "oracle").rglob("*.parquet"))
    result = run_cli("score", tiny_dataset, "--ckpt", ckpt, "--name", "o", "--ledger", ledger_dir, "--quiet")
    assert result.exit_code == 2 and "already in" in result.output
    assert sorted(p.stat().st_mtime_ns for p in (ledger_dir / "oracle").rglob("*.parquet")) == before
    result = run_cli("score", tiny_dataset, "--ckpt", ckpt, "--name", "o", "--ledger", ledger_dir,
                     "--replace", "--workers", 0, "--quiet")
    assert result.exit_code == 0
    assert ledger.query(ledger_dir, query)[1] == [("o", 130, 130, True, True)]
    assert not [p for p in ledger_dir.iterdir() if p.name.startswith(".")]
    result = run_cli("report", "--figure", "4c", "--ledger", ledger_dir, "--run", "r", "--oracle", "o")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args,message", [
    (["--model", "dissect-small"], "does not fit model dissect-small"),
    (["--model", "NoNet"], "unknown model 'NoNet'"),
])
def test_score_refuses_a_checkpoint_of_another_architecture(checkpoint, tiny_dataset, args, message):
    ledger_dir, ckpt = checkpoint
    result = run_cli("score", tiny_dataset, "--ckpt", ckpt, "--name", "x", "--ledger", ledger_dir, "--quiet", *args)
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    result = run_cli("eval", "--ckpt", ckpt, "--data", tiny_dataset, *args)
    assert result.exit_code == 2 and message in result.output


def test_missing_checkpoint_and_unknown_run(checkpoint, tiny_dataset, tmp_path):
    ledger_dir, ckpt = checkpoint
    result = run_cli("eval", "--ckpt", tmp_path / "none.pt", "--data", tiny_dataset)
    assert result.exit_code == 2 and "no checkpoint at" in result.output
    result = run_cli("eval", "--ckpt", ckpt, "--data", tiny_dataset, "--ledger", ledger_dir, "--run", "nope")
    assert result.exit_code == 2 and "run 'nope' is not in" in result.output


def test_score_and_eval_read_a_current_cache_and_the_shards_under_no_cache(checkpoint, tiny_dataset, monkeypatch):
    ledger_dir, ckpt = checkpoint   # training read tiny_dataset through its cache (--cache auto), so one is there
    shard_reads = []
    real_loader = data.loader
    monkeypatch.setattr(data, "loader", lambda *a, **kw: shard_reads.append(a[1]) or real_loader(*a, **kw))
    for args in (("eval", "--ckpt", ckpt, "--data", tiny_dataset),
                 ("score", tiny_dataset, "--ckpt", ckpt, "--name", "c", "--ledger", ledger_dir, "--quiet")):
        assert run_cli(*args).exit_code == 0
    assert shard_reads == []
    cached = ledger.query(ledger_dir, "SELECT sample_id, clipscore FROM oracle WHERE name = 'c' ORDER BY 1")[1]
    for args in (("eval", "--ckpt", ckpt, "--data", tiny_dataset, "--no-cache"),
                 ("score", tiny_dataset, "--ckpt", ckpt, "--name", "s", "--ledger", ledger_dir, "--no-cache",
                  "--quiet")):
        assert run_cli(*args).exit_code == 0
    assert shard_reads == ["test", "test", "train"]
    decoded = ledger.query(ledger_dir, "SELECT sample_id, clipscore FROM oracle WHERE name = 's' ORDER BY 1")[1]
    assert [i for i, _ in cached] == [i for i, _ in decoded]   # every sample, the same ids
    # the cache stores each image resized once: its scores track the decoded images' closely
    assert torch.corrcoef(torch.tensor([[c for _, c in cached], [c for _, c in decoded]]))[0, 1] > 0.9

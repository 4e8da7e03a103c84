"""A scoring pass cheaper than exact: --score-precision and --score-image-size."""
import pytest
import torch
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import models


def features(model, images, tokens):
    with torch.inference_mode():
        return model.eval()(images, tokens)


def test_the_twin_at_the_models_own_size_scores_exactly_as_the_model():
    torch.manual_seed(0)
    bundle = models.create("dissect-tiny")
    images, tokens = torch.randn(4, 3, 32, 32), bundle.tokenizer(["a red circle"] * 4)
    same = models.scoring_twin("dissect-tiny", 32, "cpu", "fp32")
    models.copy_weights(bundle.model, same)
    assert all(torch.equal(a, b) for a, b in zip(features(bundle.model, images, tokens), features(same, images, tokens)))
    half = models.scoring_twin("dissect-tiny", 16, "cpu", "fp32")
    models.copy_weights(bundle.model, half)
    image_features, text_features, _ = features(half, images[:, :, ::2, ::2], tokens)
    assert image_features.shape == (4, 96) and torch.equal(text_features, features(bundle.model, images, tokens)[1])


def test_a_resnet_twin_gets_its_attention_pool_grid_resized():
    model = models.scoring_twin("RN50", 64, "cpu", "fp32")
    twin = models.scoring_twin("RN50", 32, "cpu", "fp32")
    models.copy_weights(model, twin)
    assert twin.visual.attnpool.positional_embedding.shape == (2, 2048)   # a 1x1 grid and the class token
    image_features, _, _ = features(twin, torch.randn(2, 3, 32, 32), torch.zeros(2, 77, dtype=torch.long))
    assert image_features.shape == (2, 1024)


def args(data, ledger_dir, run, *extra):
    return ["train", str(data), "--strategy", "dissect-warmup", "--epochs", "2", "--batch-size", "20",
            "--warmup-epochs", "1", "--ledger", str(ledger_dir), "--run", run, "--workers", "0", "--quiet", *extra]


def test_a_cheaper_scoring_pass_trains_and_is_recorded(tiny_dataset, tmp_path):
    result = CliRunner().invoke(cli, args(tiny_dataset, tmp_path, "cheap", "--score-image-size", "16",
                                          "--score-precision", "amp_bf16"))
    assert result.exit_code == 0, result.output
    config = ledger.Run(tmp_path, "cheap").record()["config"]
    assert (config["score_image_size"], config["score_precision"], config["precision"]) == (16, "amp_bf16", "fp32")
    _, rows = ledger.query(tmp_path, "SELECT count(*), count(clipscore) FROM scores WHERE run = 'cheap'")
    assert rows == [(200, 200)]
    result = CliRunner().invoke(cli, args(tiny_dataset, tmp_path, "cheap", "--resume"))
    assert result.exit_code == 2 and "--score-image-size 16 -> None" in result.output


@pytest.mark.parametrize("extra, message", [
    (["--score-image-size", "12"], "--score-image-size 12: give a multiple of 8 from 8 to dissect-tiny's 32 px"),
    (["--score-image-size", "64"], "give a multiple of 8 from 8 to"),
    (["--score-precision", "amp"], "--score-precision amp (fp16 autocast) needs a GPU"),
    (["--score-precision", "pure_bf16"], "--score-precision pure_bf16 goes with --precision pure_bf16 only"),
])
def test_a_scoring_pass_the_model_cannot_run_is_refused(tiny_dataset, tmp_path, extra, message):
    result = CliRunner().invoke(cli, args(tiny_dataset, tmp_path, "bad", *extra))
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()

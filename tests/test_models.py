"""The model configs dissect ships are open_clip configs: the factory builds each at the
resolution and width its JSON names."""
import json
from pathlib import Path

import open_clip
import pytest
import torch

from dissect.engine import models

CONFIGS = sorted((Path(models.__file__).parent / "model_configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_each_shipped_config_builds_at_its_own_size(path):
    config = json.loads(path.read_text())
    bundle = models.create(path.stem)
    size = config["vision_cfg"]["image_size"]
    assert bundle.image_size == size
    images = torch.rand(2, 3, size, size)
    text = bundle.tokenizer(["a red circle", "a blue square"])
    assert text.shape[1] == config["text_cfg"]["context_length"]
    with torch.no_grad():
        image_features, text_features, _ = bundle.model(images, text)
    assert image_features.shape == text_features.shape == (2, config["embed_dim"])


def test_the_cheap_proxies_are_cheaper_than_tiny():
    def parameters(name):
        return sum(p.numel() for p in models.create(name).model.parameters())
    assert parameters("dissect-micro") < parameters("dissect-tiny") < parameters("dissect-tiny-plus")


@pytest.mark.parametrize("name", ["dissect-tiny", "RN50"])
def test_the_text_tower_cut_to_the_longest_caption_gives_open_clips_features(name):
    bundle = models.create(name)
    model = bundle.model.eval()
    captions = ["a red circle", "a small blue square on the left of a large green triangle", "x"]
    text = bundle.tokenizer(captions)
    longest = int(text.argmax(-1).max()) + 1
    assert longest < text.shape[1]    # there is padding to cut
    calls = []
    model.transformer.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[1]))
    with torch.no_grad():
        trimmed = model.encode_text(text)
        whole = open_clip.model.CLIP.encode_text(model, text)   # open_clip's own, over the whole context
        alone = torch.cat([model.encode_text(t[None]) for t in text])   # each at its own length
    assert calls[:2] == [longest, text.shape[1]]
    assert torch.allclose(trimmed, whole, atol=1e-5, rtol=1e-4)
    assert torch.allclose(alone, whole, atol=1e-5, rtol=1e-4)


def test_a_model_from_scratch_is_built_without_open_clips_warning(caplog):
    with caplog.at_level("WARNING"):
        models.create("dissect-micro")
    assert not [r for r in caplog.records if "pretrained" in r.getMessage()]

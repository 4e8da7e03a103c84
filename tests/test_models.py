"""The model configs dissect ships are open_clip configs: the factory builds each at the
resolution and width its JSON names."""
import json
from pathlib import Path

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

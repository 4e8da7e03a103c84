"""Models come from open_clip's factory; dissect only adds small JSON configs.

`dissect-tiny` (32 px) and `dissect-small` (64 px) live in model_configs/ and
are registered with open_clip on import, so every open_clip entry point
(create_model_and_transforms, get_tokenizer) knows them by name.
"""
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch

from dissect.engine.errors import InputError

open_clip.add_model_config(Path(__file__).parent / "model_configs")


class UnknownModel(InputError):
    pass


def check_model_name(name: str) -> None:
    if name not in open_clip.list_models():
        raise UnknownModel(
            f"unknown model {name!r}: use dissect-tiny, dissect-small or an open_clip name "
            "(python -c 'import open_clip; print(open_clip.list_models())')"
        )


def is_resnet(name: str) -> bool:
    """A model whose image tower is a ResNet (open_clip's ModifiedResNet: its config lists the
    layers of each stage); unknown names count as not."""
    config = open_clip.get_model_config(name) or {}
    return isinstance(config.get("vision_cfg", {}).get("layers"), (list, tuple))


@dataclass
class ClipBundle:
    model: torch.nn.Module
    preprocess_train: object
    preprocess_val: object
    tokenizer: object
    image_size: int


def create(name: str, checkpoint: str | None = None, device: str = "cpu", precision: str = "fp32") -> ClipBundle:
    """A freshly initialised model, or one loaded from an open_clip checkpoint; precision as
    open_clip's factory takes it (pure_bf16 casts the weights)."""
    check_model_name(name)
    model, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
        name, pretrained=checkpoint, device=device, precision=precision
    )
    image_size = model.visual.image_size
    image_size = image_size[0] if isinstance(image_size, (tuple, list)) else image_size
    return ClipBundle(model, preprocess_train, preprocess_val, open_clip.get_tokenizer(name), image_size)

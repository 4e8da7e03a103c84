"""Models come from open_clip's factory; dissect only adds small JSON configs.

`dissect-tiny` (32 px), `dissect-small` (64 px) and the variants beside them
(micro, tiny-16, tiny-plus: cheaper proxies and more capacity) live in model_configs/ and
are registered with open_clip on import, so every open_clip entry point
(create_model_and_transforms, get_tokenizer) knows them by name.
"""
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from types import MethodType, SimpleNamespace

import open_clip
import torch
from open_clip.model import CLIP, resize_pos_embed, text_global_pool

from dissect.engine.errors import InputError

open_clip.add_model_config(Path(__file__).parent / "model_configs")


class UnknownModel(InputError):
    pass


def check_model_name(name: str) -> None:
    if name not in open_clip.list_models():
        raise UnknownModel(
            f"unknown model {name!r}: use dissect-tiny, dissect-small (or another of dissect's model_configs) or an open_clip name "
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
    with _quiet(checkpoint is None):   # from scratch is what dissect means: no warning that it is
        model, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
            name, pretrained=checkpoint, device=device, precision=precision
        )
    trim_text_padding(model)
    image_size = model.visual.image_size
    image_size = image_size[0] if isinstance(image_size, (tuple, list)) else image_size
    return ClipBundle(model, preprocess_train, preprocess_val, open_clip.get_tokenizer(name), image_size)


def trim_text_padding(model: torch.nn.Module) -> None:
    """Run MODEL's text tower on each batch up to its longest caption instead of the whole context.

    open_clip's CLIP.encode_text adds the whole positional embedding and causal mask, so every
    caption costs context_length positions (77 for open_clip's models) however short it is. Under
    a causal mask a position attends only to those before it, and argmax pooling reads the
    end-of-text token (the largest id), so no feature depends on the padding after the batch's
    last end-of-text: cutting it changes only what the tower computes, not what it returns (up to
    float rounding; tests/test_models.py checks it against open_clip's own encode_text). Models
    of another kind (a custom or HF text tower, another pooling, no causal mask) keep open_clip's."""
    if type(model) is CLIP and model.text_pool_type == "argmax" and model.attn_mask is not None:
        model.encode_text = MethodType(_encode_text_to_longest, model)


def _encode_text_to_longest(self: CLIP, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """open_clip's CLIP.encode_text, on the tokens up to the batch's last end-of-text."""
    length = int(text.argmax(dim=-1).max()) + 1 if len(text) else text.shape[1]
    text = text[:, :length]
    cast_dtype = self.transformer.get_cast_dtype()
    x = self.token_embedding(text).to(cast_dtype) + self.positional_embedding[:length].to(cast_dtype)
    x = self.ln_final(self.transformer(x, attn_mask=self.attn_mask[:length, :length]))
    x = text_global_pool(x, text, self.text_pool_type, eos_token_id=getattr(self, "text_eos_id", None))
    if self.text_projection is not None:
        x = self.text_projection(x) if isinstance(self.text_projection, torch.nn.Linear) else x @ self.text_projection
    return torch.nn.functional.normalize(x, dim=-1) if normalize else x


@contextlib.contextmanager
def _quiet(quiet: bool):
    """open_clip's factory logs "No pretrained weights loaded ... initialized randomly" for every
    model made from scratch; QUIET holds its warnings back while it builds one."""
    if quiet:
        logging.disable(logging.WARNING)
    try:
        yield
    finally:
        if quiet:
            logging.disable(logging.NOTSET)


def check_score_image_size(name: str, size: int) -> None:
    """A resolution the model's image tower can score at: at most its own, a whole number of
    patches (ViT) or of the ResNet's 32-pixel stride."""
    vision = (open_clip.get_model_config(name) or {}).get("vision_cfg", {})
    full = vision.get("image_size")
    full = full[0] if isinstance(full, (list, tuple)) else full
    stride = 32 if is_resnet(name) else vision.get("patch_size")
    if full is None or stride is None:
        raise InputError(f"--score-image-size works with open_clip's own ViTs and ResNets, not {name}")
    if not stride <= size <= full or size % stride:
        raise InputError(f"--score-image-size {size}: give a multiple of {stride} from {stride} to {name}'s "
                         f"{full} px")


def scoring_twin(name: str, size: int, device: str, precision: str) -> torch.nn.Module:
    """The model's architecture at image size SIZE, for a scoring pass cheaper than training's."""
    with _quiet(True):
        twin = open_clip.create_model(name, force_image_size=size, device=device, precision=precision)
    trim_text_padding(twin)
    return twin


def copy_weights(model: torch.nn.Module, twin: torch.nn.Module) -> None:
    """MODEL's weights into its scoring twin, position embeddings resized by open_clip's
    resize_pos_embed (the ViT's grid, or a ResNet's attention-pool grid)."""
    state = dict(model.state_dict())
    resize_pos_embed(state, twin)
    pool = "visual.attnpool.positional_embedding"
    if pool in state:
        grid = int((twin.visual.attnpool.positional_embedding.shape[0] - 1) ** 0.5)
        view = {"visual.positional_embedding": state[pool]}
        resize_pos_embed(view, SimpleNamespace(visual=SimpleNamespace(grid_size=(grid, grid))))
        state[pool] = view["visual.positional_embedding"]
    twin.load_state_dict(state)


def load_checkpoint(model_name: str, checkpoint: str, device: str = "cpu") -> ClipBundle:
    """An open_clip model with a checkpoint's weights, or an InputError that says why not."""
    check_model_name(model_name)
    if not Path(checkpoint).is_file():
        raise InputError(f"no checkpoint at {checkpoint}")
    try:
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot read checkpoint {checkpoint}: {_first_line(e)}") from e
    try:
        return create(model_name, checkpoint=checkpoint, device=device)
    except Exception as e:  # open_clip raises RuntimeError, AssertionError, KeyError for a mismatch
        raise InputError(f"checkpoint {checkpoint} does not fit model {model_name} ({_first_line(e)}): "
                         "pass the --model it was trained with") from e


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def device(requested: str | None) -> str:
    """REQUESTED (cpu, cuda, cuda:N) where this machine has it, else the default; an InputError
    naming the devices there are."""
    if requested is None:
        return default_device()
    there = ["cpu"] + (["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
                       if torch.cuda.is_available() else [])
    if requested not in there:
        raise InputError(f"--device {requested}: this machine has {', '.join(there)}")
    return requested


def cpu_multiplies_bf16() -> bool:
    """Whether this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX); elsewhere bf16
    matrix products are emulated, slower than fp32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()

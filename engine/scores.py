"""The two per-sample numbers every strategy and analysis is built on."""
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

CLIPSCORE_WEIGHT = 100.0


def per_sample_scores(loss_fn: ClipLoss, image_features, text_features, logit_scale):
    """CLIPScore = 100 * max(cos, 0) (Eq. 2) and the per-sample InfoNCE loss: the mean
    of the image->text and text->image cross-entropy of the sample's row and column."""
    logits_per_image, logits_per_text = loss_fn.get_logits(image_features, text_features, logit_scale)
    labels = torch.arange(image_features.shape[0], device=image_features.device)
    loss = (F.cross_entropy(logits_per_image, labels, reduction="none")
            + F.cross_entropy(logits_per_text, labels, reduction="none")) / 2
    clipscore = CLIPSCORE_WEIGHT * (image_features * text_features).sum(-1).clamp(min=0)
    return clipscore.float(), loss.float()

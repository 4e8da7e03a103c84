"""The per-sample numbers every strategy and analysis is built on."""
from typing import NamedTuple

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

CLIPSCORE_WEIGHT = 100.0


class PairScores(NamedTuple):
    clipscore: torch.Tensor
    loss: torch.Tensor       # the mean of the two directions'
    correct: torch.Tensor
    loss_i2t: torch.Tensor   # the cross-entropy of the image's row (image -> text)
    loss_t2i: torch.Tensor   # and of the caption's (text -> image)


def per_sample_scores(loss_fn: ClipLoss, image_features, text_features, logit_scale) -> PairScores:
    """CLIPScore = 100 * max(cos, 0) (Eq. 2); the per-sample InfoNCE loss: the mean of the
    image->text and text->image cross-entropy of the sample's row and column (each kept too:
    SCAN ranks by both); and whether the pair is "learned" within its batch (forgetting,
    Toneva et al.): its image's most similar text is its own caption and its caption's most
    similar image its own image."""
    logits_per_image, logits_per_text = loss_fn.get_logits(image_features, text_features, logit_scale)
    labels = torch.arange(image_features.shape[0], device=image_features.device)
    loss_i2t = F.cross_entropy(logits_per_image, labels, reduction="none").float()
    loss_t2i = F.cross_entropy(logits_per_text, labels, reduction="none").float()
    clipscore = CLIPSCORE_WEIGHT * (image_features * text_features).sum(-1).clamp(min=0)
    correct = (logits_per_image.argmax(1) == labels) & (logits_per_text.argmax(1) == labels)
    return PairScores(clipscore.float(), (loss_i2t + loss_t2i) / 2, correct, loss_i2t, loss_t2i)


def weighted_clip_loss(loss_fn: ClipLoss, image_features, text_features, logit_scale, weights, part=slice(None)):
    """open_clip's ClipLoss with a weight per sample: the mean over its logit rows of the weight
    times the mean of the image->text and text->image cross-entropy; weights of 1 give ClipLoss's
    value. The logits gather across ranks as ClipLoss does. weights: one per sample of the
    gathered batch; `part`, this rank's rows of it, is used when ClipLoss keeps local rows."""
    logits_per_image, logits_per_text = loss_fn.get_logits(image_features, text_features, logit_scale)
    labels = loss_fn.get_ground_truth(image_features.device, logits_per_image.shape[0])
    rows = weights if logits_per_image.shape[0] == len(weights) else weights[part]
    per_sample = (F.cross_entropy(logits_per_image, labels, reduction="none")
                  + F.cross_entropy(logits_per_text, labels, reduction="none")) / 2
    return (rows * per_sample).mean()


def neg_clip_loss(image_features, text_features, logit_scale, batch_size: int, rounds: int,
                  generator: torch.Generator) -> torch.Tensor:
    """negCLIPLoss (Wang et al., NeurIPS 2024), the paper's CLIPLoss coreset score: the per-sample
    InfoNCE loss times the temperature, negated, averaged over `rounds` random batchings:
        s_ii - tau / 2 * (logsumexp_j s_ij / tau + logsumexp_j s_ji / tau),
    s the cosine similarity, tau = 1 / logit_scale. The pair's similarity minus how similar
    it is to the other pairs of its batch; higher is a better pair."""
    n = image_features.shape[0]
    tau = 1.0 / float(logit_scale)
    total = torch.zeros(n)
    for _ in range(rounds):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            similarity = image_features[rows] @ text_features[rows].T
            normaliser = (torch.logsumexp(similarity / tau, 1) + torch.logsumexp(similarity / tau, 0)) / 2
            total[rows] += similarity.diagonal() - tau * normaliser
    return total / rounds

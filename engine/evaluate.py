"""Zero-shot retrieval: Recall@K both ways, the CLIP_benchmark convention.

With several captions per image, an image query is a hit if any of its captions
is in the top K; a caption query is a hit if its image is in the top K.
"""
import torch

RECALL_KS = (1, 5, 10)


@torch.inference_mode()
def encode(model, batches, device="cpu"):
    """Normalised (image features, text features, sample ids) of every batch."""
    was_training = model.training
    model.eval()
    images, texts, ids = [], [], []
    for batch_ids, image, tokens in batches:
        images.append(model.encode_image(image.to(device), normalize=True).float().cpu())
        texts.append(model.encode_text(tokens.to(device), normalize=True).float().cpu())
        ids.append(batch_ids)
    model.train(was_training)
    return torch.cat(images), torch.cat(texts), torch.cat(ids)


def retrieval_metrics(image_features: torch.Tensor, text_features: torch.Tensor,
                      text_to_image: torch.Tensor) -> dict[str, float]:
    """R@1/5/10 for image->text (tr_*) and text->image (ir_*) retrieval, and their sum.

    text_to_image[j] is the row of image_features that caption j describes.
    """
    similarity = text_features @ image_features.T  # [texts, images]
    n_images = image_features.shape[0]
    metrics = {}
    # text -> image: rank of the caption's own image among all images.
    own = similarity.gather(1, text_to_image[:, None])
    ir_rank = (similarity > own).sum(1)
    # image -> text: the best rank among the image's own captions.
    caption_rank_per_image = _best_caption_rank(similarity, text_to_image, n_images)
    for k in RECALL_KS:
        metrics[f"tr_r{k}"] = 100.0 * (caption_rank_per_image < k).float().mean().item()
        metrics[f"ir_r{k}"] = 100.0 * (ir_rank < k).float().mean().item()
    metrics["rsum"] = sum(metrics[f"{d}_r{k}"] for d in ("tr", "ir") for k in RECALL_KS)
    return metrics


def _best_caption_rank(similarity, text_to_image, n_images):
    """For each image, the rank of its best-ranked own caption among all captions."""
    by_image = similarity.T  # [images, texts]
    order = by_image.argsort(dim=1, descending=True)
    ranked_owner = text_to_image[order]  # owner image of each ranked caption
    is_own = ranked_owner == torch.arange(n_images)[:, None]
    return is_own.float().argmax(dim=1)

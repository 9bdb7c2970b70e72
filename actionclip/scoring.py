"""From label texts to embeddings, and from logits to class scores: template ensembling.

Prompts are template-major: text row ``k * N + c`` holds template k applied to class c. A class described by
several texts (its name and descriptions, see :func:`description_averaged_embeddings`) first becomes one embedding
per template, so every scoring below sees that same layout. Label sets are encoded here, in chunks
(:func:`label_text_embeddings`: any text encoder, the pipeline's and the ONNX runtime's; :func:`encode_label_texts`:
a PyTorch model, for evaluation and training); `descriptions` says what a class's texts and prompts are, and this
module imports it, never the reverse.

Every function takes torch tensors (the PyTorch pipeline, training, evaluation: on any device) or numpy arrays (the
ONNX runtime, which runs without torch) and returns the same kind; torch is imported only for tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .descriptions import class_texts, description_prompts
from .errors import NonFiniteScoresError

# F.normalize's floor on the norm: a zero vector stays zero instead of becoming NaN.
_NORM_EPS = 1e-12


def l2_normalize(embeds):
    """``(..., D)`` rows scaled to unit L2 norm (``F.normalize(x, dim=-1)``; numpy in, numpy out)."""
    if isinstance(embeds, np.ndarray):
        return embeds / np.maximum(np.linalg.norm(embeds, axis=-1, keepdims=True), _NORM_EPS)
    from torch.nn import functional as F

    return F.normalize(embeds, dim=-1)


def _softmax(logits):
    if isinstance(logits, np.ndarray):
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    return logits.softmax(dim=-1)


def _sigmoid(logits):
    if isinstance(logits, np.ndarray):
        return 0.5 * (1.0 + np.tanh(0.5 * logits))  # no overflow warning for large negative logits
    return logits.sigmoid()


def _class_probs(logits, bias):
    """Softmax over the last axis (a label set's scores sum to one), or, with a ``bias`` (a family trained with the
    sigmoid loss), each pair's own probability ``sigmoid(logit + bias)``."""
    if bias is None:
        return _softmax(logits)
    return _sigmoid(logits + (float(bias) if isinstance(logits, np.ndarray) else bias.to(logits.dtype)))


def _float32(values):
    return values.astype(np.float32, copy=False) if isinstance(values, np.ndarray) else values.float()


def template_ensemble_probs(logits_per_video, num_templates: int, bias=None):
    """The paper's test-time ensemble: softmax over classes for every template, then the mean over templates.

    Args:
        logits_per_video: (B, K * N) logits against template-major prompts.
        num_templates: K.
        bias: the logit bias of a family trained with the sigmoid loss (SigLIP): each class then scores
            ``sigmoid(logit + bias)`` per template, a probability of its own (rows need not sum to one); `None`:
            softmax.

    Returns:
        (B, N) probabilities; without a bias each row sums to one.
    """
    batch, total = logits_per_video.shape
    if num_templates < 1 or total % num_templates:
        raise ValueError(f"{total} prompts cannot be split into {num_templates} templates of equal class count")
    per_template = _float32(logits_per_video).reshape(batch, num_templates, total // num_templates)
    return _class_probs(per_template, bias).mean(1)


def template_averaged_embeddings(text_embeds, num_templates: int):
    """One embedding per class: the mean of its L2-normalised prompt embeddings over templates, re-normalised.

    Args:
        text_embeds: (K * N, D) template-major prompt embeddings.

    Returns:
        (N, D) unit-norm class embeddings.
    """
    total, dim = text_embeds.shape
    if num_templates < 1 or total % num_templates:
        raise ValueError(f"{total} prompts cannot be split into {num_templates} templates of equal class count")
    normalised = l2_normalize(_float32(text_embeds)).reshape(num_templates, total // num_templates, dim)
    return l2_normalize(normalised.mean(0))


def description_averaged_embeddings(text_embeds, texts_per_class: Sequence[int], num_templates: int):
    """One embedding per (template, class) from several texts per class: the re-normalised mean of the class's
    L2-normalised prompt embeddings under that template (a class with one text keeps its embedding as is).

    Args:
        text_embeds: (K * M, D) prompt embeddings, template-major, then class by class, then text by text:
            ``M = sum(texts_per_class)``.
        texts_per_class: the number of texts of each of the N classes (each >= 1).
        num_templates: K.

    Returns:
        (K * N, D) unit-norm embeddings, template-major: what `template_ensemble_probs` and
        `template_averaged_embeddings` take.
    """
    counts = np.asarray(list(texts_per_class), dtype=np.int64)
    total, dim = text_embeds.shape
    if counts.size == 0 or bool((counts < 1).any()):
        raise ValueError(f"every class needs at least one text, got counts {counts.tolist()}")
    if num_templates < 1 or total != num_templates * int(counts.sum()):
        raise ValueError(f"{total} prompts are not {num_templates} templates x {int(counts.sum())} texts")
    normalised = l2_normalize(_float32(text_embeds))
    if bool((counts == 1).all()):
        return normalised
    num_classes = counts.size
    class_of_text = np.repeat(np.arange(num_classes), counts)
    per_template = normalised.reshape(num_templates, -1, dim)
    if isinstance(per_template, np.ndarray):
        sums = np.zeros((num_templates, num_classes, dim), dtype=per_template.dtype)
        np.add.at(sums, (slice(None), class_of_text), per_template)
        means = sums / counts.astype(sums.dtype)[None, :, None]
    else:
        import torch

        index = torch.from_numpy(class_of_text).to(per_template.device)
        sums = per_template.new_zeros(num_templates, num_classes, dim).index_add_(1, index, per_template)
        means = sums / torch.from_numpy(counts).to(sums)[None, :, None]
    return l2_normalize(means).reshape(num_templates * num_classes, dim)


def label_scores(video_embeds, text_embeds, num_templates: int, scale, ensemble: str = "probs", bias=None):
    """Video embeddings against prompt embeddings -> label scores: what the zero-shot pipeline and the ONNX runtime
    rank.

    Args:
        video_embeds: (B, D) after the visual prompts, not normalised.
        text_embeds: (K * N, D) L2-normalised, template-major (see :func:`embed_in_chunks`).
        num_templates: K.
        scale: the logit scale (a number, or a 0-d tensor for tensors).
        ensemble: ``"probs"``: softmax over labels per template, then the mean over templates (the paper's);
            ``"embedding"``: one embedding per label (:func:`template_averaged_embeddings`), one softmax.
        bias: the logit bias of a family trained with the sigmoid loss: sigmoid scores (see
            :func:`template_ensemble_probs`); `None`: softmax.

    Returns:
        (B, N) float32 probabilities.
    """
    video_embeds = l2_normalize(video_embeds)
    if ensemble == "embedding":
        class_embeds = template_averaged_embeddings(text_embeds, num_templates)
        class_embeds = l2_normalize(
            class_embeds.astype(video_embeds.dtype)
            if isinstance(class_embeds, np.ndarray)
            else class_embeds.to(video_embeds.dtype)
        )
        return _class_probs(_float32(scale * video_embeds @ class_embeds.T), bias)
    return template_ensemble_probs(scale * video_embeds @ text_embeds.T, num_templates, bias)


def check_finite_scores(scores: np.ndarray, model: str) -> None:
    """Refuse NaN or infinite ``scores`` (any shape) of ``model`` (its path or name): they would rank labels
    arbitrarily and print as invalid JSON.

    Raises:
        NonFiniteScoresError: naming the model.
    """
    if not bool(np.isfinite(scores).all()):
        raise NonFiniteScoresError(
            f"model {model!r} produced NaN or infinite scores: its weights are probably corrupt (check them for NaN), "
            "or its dtype overflows"
        )


def rank_labels(scores, labels: Sequence[str], top_k: int | None = None) -> list[dict]:
    """One video's ``(N,)`` scores -> ``[{"score", "label"}, ...]`` best first (ties keep the label order), the
    ``top_k`` first when given."""
    # One conversion to Python floats (the float32 values): indexing a tensor per label cost about 3 ms a video for
    # 400 labels, more than the model's share on a GPU.
    values = scores.tolist() if hasattr(scores, "tolist") else [float(score) for score in scores]
    order = sorted(range(len(labels)), key=lambda i: -values[i])
    if top_k is not None:
        order = order[:top_k]
    return [{"score": values[i], "label": labels[i]} for i in order]


# Prompts per forward pass of the text tower when a label set is encoded: bounds memory whatever the label count.
TEXT_BATCH_SIZE = 256


def embed_in_chunks(prompts, tokenize, text_features, batch_size: int = TEXT_BATCH_SIZE):
    """L2-normalised text embeddings ``(len(prompts), D)``, tokenized and encoded ``batch_size`` prompts at a time:
    memory is bounded by the chunk whatever the number of prompts (10,000 labels x 16 templates are 160,000), and
    the result equals encoding them all at once.

    Args:
        prompts: the texts, in the order of the output rows.
        tokenize: a list of texts -> a mapping with ``input_ids`` and ``attention_mask`` ``(n, L)`` (tensors or arrays).
        text_features: ``(input_ids, attention_mask)`` -> ``(n, D)`` projected, not normalised, embeddings (a tensor,
            or a numpy array: the result is of the same kind).
        batch_size: prompts per call of ``text_features``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    chunks = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenize(list(prompts[start : start + batch_size]))
        chunks.append(l2_normalize(text_features(batch["input_ids"], batch["attention_mask"])))
    if isinstance(chunks[0], np.ndarray):
        return np.concatenate(chunks, axis=0)
    import torch

    return torch.cat(chunks, dim=0)


def label_text_embeddings(labels, templater, texts, tokenize, text_features, batch_size: int = TEXT_BATCH_SIZE):
    """L2-normalised embeddings of every (template, label) prompt, template-major ``(K * N, D)``.

    Args:
        labels: the N labels; templater: a `prompts.PromptTemplater` (its K templates).
        texts: each label's name and descriptions (`descriptions.class_texts`), or None: with them, every text is put
            into every template and a label's prompts are averaged per template (:func:`description_averaged_embeddings`).
        tokenize, text_features, batch_size: as for :func:`embed_in_chunks` (tensors or numpy arrays).
    """
    prompts = templater.build_prompts(labels) if texts is None else description_prompts(templater.templates, texts)
    embeds = embed_in_chunks(prompts, tokenize, text_features, batch_size)
    if texts is None:
        return embeds
    averaged = description_averaged_embeddings(embeds, [len(group) for group in texts], templater.num_templates)
    return averaged.astype(embeds.dtype) if isinstance(averaged, np.ndarray) else averaged.to(embeds.dtype)


def encode_label_texts(
    model,
    tokenizer,
    labels: Sequence[str],
    templates: Sequence[str],
    descriptions: Mapping[str, Sequence[str]] | None = None,
):
    """Unit-norm text embeddings ``(K * N, D)``, template-major, of ``labels`` under ``templates``, by a PyTorch
    model: its `encode_label_set`, and with ``descriptions`` each label's texts (`descriptions.class_texts`) averaged
    per template (:func:`description_averaged_embeddings`). Evaluation and the trainer's label sets use it."""
    if not descriptions:
        return model.encode_label_set(list(labels), tokenizer, list(templates))
    texts = class_texts(labels, descriptions)
    # encode_label_set is template-major over the texts it gets: flattened class by class, that is the layout
    # description_averaged_embeddings reads.
    embeds = model.encode_label_set([text for group in texts for text in group], tokenizer, list(templates))
    counts = [len(group) for group in texts]
    return description_averaged_embeddings(embeds, counts, len(templates)).to(embeds.dtype)


__all__ = [
    "TEXT_BATCH_SIZE",
    "check_finite_scores",
    "description_averaged_embeddings",
    "embed_in_chunks",
    "encode_label_texts",
    "l2_normalize",
    "label_scores",
    "label_text_embeddings",
    "rank_labels",
    "template_averaged_embeddings",
    "template_ensemble_probs",
]

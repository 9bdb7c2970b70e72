"""The demo's pretrained miniature: a small `CLIPModel` trained contrastively on synthetic captioned images, saved as a
CLIP folder (weights, configuration, image processor, tokenizer) that `ActionCLIPModel.from_backbone` starts from, as
the paper starts from OpenAI's CLIP."""

from __future__ import annotations

from pathlib import Path

from .profiles import DemoProfile


def pretrain_miniature(profile: DemoProfile, output_dir: Path, seed: int, progress: bool = True) -> dict:
    """Pretrain the miniature image-text model and save it in ``output_dir`` as a CLIP folder.

    Each step draws a batch of images and one of each image's captions; the loss is ActionCLIP's symmetric KL
    against caption-equality targets (two images drawn with the same caption are both right for it), which keeps
    the many repeated short captions ("a red circle") from being pushed apart as negatives.

    Returns the figures of the report: the held-out combinations' zero-shot top-1 against every combination's name
    (with its chance level), the seen combinations' (on the last training images), the loss and the time.
    """
    import time

    import numpy as np
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, set_seed
    from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    from ..data.captioned_images import CaptionedImageConfig, generate_captioned_images
    from ..loss import symmetric_kl_loss
    from ..tokenizer import load_clip_tokenizer

    settings = profile.pretraining
    set_seed(seed)
    start = time.perf_counter()
    image_config = CaptionedImageConfig(**settings["images"], size=profile.image_size, seed=seed)
    training, held_out = generate_captioned_images(image_config)
    tokenizer = load_clip_tokenizer()

    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)

    def pixels(images: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - mean) / std

    # Every distinct caption tokenized once; an image's captions are rows of that table.
    captions = training.captions()
    texts = sorted({text for group in captions for text in group})
    text_index = {text: i for i, text in enumerate(texts)}
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    caption_ids = torch.tensor([[text_index[text] for text in group] for group in captions])
    train_pixels = pixels(training.images)

    vision = {**settings["model"]["vision_config"], "image_size": profile.image_size}
    config = CLIPConfig(
        text_config=settings["model"]["text_config"],
        vision_config=vision,
        projection_dim=settings["model"]["projection_dim"],
    )
    model = CLIPModel(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings["learning_rate"], weight_decay=settings["weight_decay"]
    )
    steps, batch_size = settings["steps"], settings["batch_size"]
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(step, steps) / steps)),
    )
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    from tqdm.auto import tqdm

    for _ in tqdm(range(steps), desc="pretraining the miniature", unit="step", disable=not progress):
        batch = torch.randint(len(train_pixels), (batch_size,), generator=generator)
        choice = torch.randint(caption_ids.shape[1], (batch_size,), generator=generator)
        text_ids = caption_ids[batch, choice]
        output = model(
            input_ids=tokens["input_ids"][text_ids],
            attention_mask=tokens["attention_mask"][text_ids],
            pixel_values=train_pixels[batch],
        )
        loss = symmetric_kl_loss(output.logits_per_image.float(), text_ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    train_time = time.perf_counter() - start

    model.eval()
    class_names = image_config.class_names()
    with torch.no_grad():
        text = model.get_text_features(**tokenizer(class_names, padding=True, return_tensors="pt"))
        text = torch.nn.functional.normalize(getattr(text, "pooler_output", text), dim=-1)

        def top1(images) -> float:
            if not len(images.appearances):
                return float("nan")
            image = model.get_image_features(pixel_values=pixels(images.images))
            image = torch.nn.functional.normalize(getattr(image, "pooler_output", image), dim=-1)
            predicted = (image @ text.t()).argmax(dim=1).numpy()
            return float((predicted == images.class_ids(class_names)).mean())

        held_out_top1 = top1(held_out)
        seen_sample = type(training)(
            training.images[-len(held_out.images) or None :], training.appearances[-len(held_out.images) or None :]
        )
        seen_top1 = top1(seen_sample)

    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    size = {"shortest_edge": profile.image_size}
    image_processor = CLIPImageProcessor(
        size=size, crop_size={"height": profile.image_size, "width": profile.image_size}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(output_dir))
    return {
        "held_out_top1": held_out_top1,
        "seen_top1": seen_top1,
        "chance": 1.0 / len(class_names),
        "num_classes": len(class_names),
        "held_out": list(image_config.held_out),
        "num_images": len(training.appearances),
        "num_held_out_images": len(held_out.appearances),
        "num_captions": len(texts),
        "steps": steps,
        "final_loss": float(np.mean(losses[-20:])),
        "runtime_s": train_time,
    }

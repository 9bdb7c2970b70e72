"""Training on every backbone family (CLIP, MetaCLIP 2, Chinese-CLIP, AltCLIP, SigLIP, SigLIP 2): the Trainer with
each objective, LoRA on the family's own attention modules, and the training program from a saved family folder to
an output folder the pipeline loads; the sigmoid objective by hand and across two processes.

Tiny real saved family folders (`backbone_families.make_family_dir`), real encoded videos (conftest's
``video_data``), two steps each."""

import json
import math
import re

import pytest
import torch
from backbone_families import FAMILIES, make_family_dir
from test_training import run_script, script_arguments, training_arguments
from transformers import pipeline

from actionclip import ActionCLIPModel
from actionclip.backbones import backbone_family, text_context_length
from actionclip.data.collator import ActionCLIPCollator
from actionclip.data.datasets import VideoClassificationDataset
from actionclip.loss import sigmoid_pair_loss
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.training.trainer import apply_lora, build_trainer, parameter_group_of

NUM_FRAMES = 2
SIGMOID_FAMILIES = tuple(name for name in FAMILIES if backbone_family(name).sigmoid)


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    """family -> its tiny saved folder, written on first use."""
    root = tmp_path_factory.mktemp("families")
    made = {}

    def get(family):
        if family not in made:
            made[family] = make_family_dir(family, root / family)
        return made[family]

    return get


def _model_and_processor(folder, **options):
    model = ActionCLIPModel.from_backbone(folder, num_frames=NUM_FRAMES, fusion_num_layers=1, **options)
    return model, ActionCLIPProcessor.from_backbone(folder, num_frames=NUM_FRAMES)


def _train_set(video_data, processor):
    return VideoClassificationDataset.from_list_file(
        video_data.list_file("train"),
        video_data.root / "labels.csv",
        num_frames=NUM_FRAMES,
        training=True,
        video_processor=processor.video_processor,
    )


def _train_two_steps(model, processor, dataset, output_dir, **overrides):
    options = dict(max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3, lr_scheduler_type="constant")
    args = training_arguments(output_dir, **{**options, **overrides})
    trainer = build_trainer(model, args, processor, dataset.label_names, train_dataset=dataset)
    trainer.train()
    return trainer


def _snapshot(model):
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def _changed(before, model):
    return {name for name, value in model.named_parameters() if not torch.equal(before[name], value.detach())}


# ----------------------------------------------------------------------------------------------------------------
# Text tokenization follows the family


@pytest.mark.parametrize("family", FAMILIES)
def test_collator_tokenizes_as_the_family_takes_texts(family, family_dirs):
    model, processor = _model_and_processor(family_dirs(family))
    collator = ActionCLIPCollator(
        ["run", "jump", "swim"], processor.tokenizer, ["a video of {}."], config=model.config
    )
    items = [{"pixel_values": torch.zeros(NUM_FRAMES, 3, 32, 32), "labels": i % 3, "sample_seed": i} for i in range(4)]
    batch = collator(items)
    context = text_context_length(model.config)
    for key in ("input_ids", "class_input_ids"):
        length = batch[key].shape[-1]
        # SigLIP pools its last token: texts padded to the context it was trained with; the others to the longest.
        assert length == context if backbone_family(family).pad_to_max_length else length < context, (key, length)
    assert "token_type_ids" not in batch
    texts = processor.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert len(texts) == 4 and all(text.strip() for text in texts)


def test_dropping_bert_token_type_ids_changes_nothing(family_dirs):
    """Chinese-CLIP's tokenizer gives token_type_ids, all zeros for single texts: what its text tower takes when they
    are left out, so the collator passes input_ids and attention_mask only."""
    model, processor = _model_and_processor(family_dirs("chinese_clip"))
    model.eval()  # BERT's dropout off
    tokens = processor.tokenizer(["一个人在游泳的视频。", "一个人在做饭"], padding=True, return_tensors="pt")
    assert "token_type_ids" in tokens and not tokens["token_type_ids"].any()
    with torch.no_grad():
        given = model.get_text_features(**tokens).pooler_output
        left_out = model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
    torch.testing.assert_close(left_out, given, rtol=0, atol=0)


def test_collator_refuses_another_family_without_its_tokenizer(family_dirs):
    from actionclip.errors import ProcessorArgumentError

    model, _ = _model_and_processor(family_dirs("siglip"))
    with pytest.raises(ProcessorArgumentError, match="siglip model needs its tokenizer"):
        ActionCLIPCollator(["run"], config=model.config)


# ----------------------------------------------------------------------------------------------------------------
# The Trainer on every family, with each objective


@pytest.mark.parametrize("contrastive_loss", ["kl", "sigmoid"])
@pytest.mark.parametrize("family", FAMILIES)
def test_trainer_trains_every_family(family, contrastive_loss, family_dirs, video_data, tmp_path):
    model, processor = _model_and_processor(family_dirs(family), contrastive_loss=contrastive_loss)
    dataset = _train_set(video_data, processor)
    before = _snapshot(model)
    trainer = _train_two_steps(model, processor, dataset, tmp_path)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses), losses
    changed = _changed(before, model)
    groups = {parameter_group_of(name) for name in changed}
    assert groups == {"text", "vision", "fusion"}, sorted(changed)
    assert any(name.startswith("text_model.") for name in changed)
    assert any(name.startswith("vision_model.") for name in changed)
    if contrastive_loss == "sigmoid":
        assert "logit_bias" in changed


# ----------------------------------------------------------------------------------------------------------------
# LoRA on the family's own attention modules


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_adapts_the_family_attention_and_trains_the_fusion_in_full(family, family_dirs, video_data, tmp_path):
    model, processor = _model_and_processor(family_dirs(family))
    names = backbone_family(family).lora_target_modules
    model = apply_lora(model, r=2, alpha=4)
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_parameters() if ".lora_A." in name}
    # Every attention projection of every encoder layer: 4 per layer, 2 text and 3 vision layers.
    assert len(adapted) == 4 * (2 + 3), sorted(adapted)
    assert all(any(name.endswith("." + target) for target in names) for name in adapted), sorted(adapted)
    for tower, layers in (("text_model", 2), ("vision_model", 3)):
        in_tower = [name for name in adapted if f".{tower}." in name]
        assert len({re.search(r"\.layers?\.(\d+)\.", name).group(1) for name in in_tower}) == layers
    assert not any(".head." in name or "fusion" in name or "mlp" in name for name in adapted)
    text_ends = {".".join(name.split(".")[-3:]) for name in adapted if ".text_model." in name}
    if family in ("chinese_clip", "altclip"):  # the BERT / RoBERTa text tower's own names, not its feed-forward
        assert text_ends == {f"attention.self.{n}" for n in ("query", "key", "value")} | {"attention.output.dense"}
    else:
        assert {end.rsplit(".", 1)[1] for end in text_ends} == {"q_proj", "k_proj", "v_proj", "out_proj"}

    dataset = _train_set(video_data, processor)
    before = _snapshot(model)
    _train_two_steps(model, processor, dataset, tmp_path)
    changed = _changed(before, model)
    assert changed and all(".lora_" in name or ".fusion.modules_to_save." in name for name in changed), changed
    for tower in ("text_model", "vision_model"):
        assert any(f".{tower}." in name and ".lora_B." in name for name in changed), tower
    # The fusion in full: every one of its weights trained.
    fusion = {name for name, _ in model.named_parameters() if ".fusion.modules_to_save." in name}
    assert fusion and fusion <= changed | {name for name in fusion if name.endswith("bias")}


# ----------------------------------------------------------------------------------------------------------------
# The training program from a saved family folder, to an output folder the pipeline loads


@pytest.mark.parametrize("family", FAMILIES)
def test_program_trains_from_a_family_folder_and_the_output_loads_in_the_pipeline(
    family, family_dirs, video_data, tmp_path
):
    folder, out = family_dirs(family), tmp_path / "out"
    loss = "sigmoid" if family in SIGMOID_FAMILIES else "kl"
    metrics = run_script(script_arguments(folder, video_data, out, "--max_steps", "2", "--num_frames", "2",
                                          "--eval_strategy", "no", "--save_strategy", "no",
                                          "--load_best_model_at_end", "false", "--contrastive_loss", loss))  # fmt: skip
    assert math.isfinite(metrics["train_loss"]) and 0.0 <= metrics["eval_top1_accuracy"] <= 1.0
    saved = json.loads((out / "config.json").read_text())
    assert saved["backbone"] == family and saved["contrastive_loss"] == loss
    saved_tokenizer = ActionCLIPProcessor.from_pretrained(out).tokenizer
    family_tokenizer = ActionCLIPProcessor.from_backbone(folder).tokenizer
    assert type(saved_tokenizer) is type(family_tokenizer)
    assert saved_tokenizer.get_vocab() == family_tokenizer.get_vocab()

    classifier = pipeline("zero-shot-video-classification", model=str(out), device="cpu")
    assert classifier.model.config.backbone == family
    labels = list(video_data.labels)
    result = classifier(str(next((video_data.root / "val").rglob("*.mp4"))), candidate_labels=labels)
    assert sorted(entry["label"] for entry in result) == sorted(labels)
    scores = [entry["score"] for entry in result]
    assert all(0.0 <= score <= 1.0 for score in scores) and scores == sorted(scores, reverse=True)


# ----------------------------------------------------------------------------------------------------------------
# The sigmoid objective


def test_sigmoid_pair_loss_equals_a_hand_computation_with_shared_labels():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.3, 1.5, -2.0], [1.0, 0.0, -0.5]])
    labels = torch.tensor([4, 7, 4])  # videos 0 and 2 share a label: both their prompts are positives for each
    total = 0.0
    for i in range(3):
        for j in range(3):
            sign = 1.0 if labels[i] == labels[j] else -1.0
            total += math.log(1.0 + math.exp(-sign * logits[i, j].item()))  # -log sigmoid(sign * logit)
    expected = total / 3  # summed over the texts, averaged over the videos
    assert sigmoid_pair_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    # Shared labels are positives: treating video 2's prompt as a negative of video 0 gives another loss.
    assert sigmoid_pair_loss(logits, torch.tensor([4, 7, 5])).item() != pytest.approx(expected, rel=1e-3)

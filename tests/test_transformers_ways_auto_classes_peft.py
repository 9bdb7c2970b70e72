"""The ways a transformers user writes code work on ActionCLIP folders (issue 29): closed-set Auto classes, peft."""

import pytest
import torch
from tiny_models import make_tiny_clip_dir, save_tiny_model_dir, token_ids
from transformers import AutoModel, AutoModelForVideoClassification, pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the Auto classes and the task)
from actionclip import ActionCLIPForVideoClassification, ActionCLIPModel
from actionclip.errors import WrongModelKindError
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.tokenizer import load_clip_tokenizer

# -- closed-set Auto classes (issue 29, item 3)

LABELS = ["archery", "juggling balls", "tai chi"]


@pytest.fixture(scope="module")
def open_set_dir(tmp_path_factory):
    """A saved zero-shot `ActionCLIPModel` folder with its processor (what `actionclip convert` writes)."""
    return save_tiny_model_dir(tmp_path_factory.mktemp("open_set"), seed=5, logit_scale=40.0, fusion="conv1d")


@pytest.fixture(scope="module")
def closed_set_dir(open_set_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("closed_set")
    model = ActionCLIPModel.from_pretrained(open_set_dir)
    processor = ActionCLIPProcessor.from_pretrained(open_set_dir)
    ActionCLIPForVideoClassification.from_actionclip(model, LABELS, processor.tokenizer).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return str(write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", num_frames=24, seed=3))


def test_video_classification_pipeline_refuses_an_open_set_folder_without_label_names(open_set_dir):
    with pytest.raises(
        WrongModelKindError, match=r"zero-shot ActionCLIPModel.*id2label=.*zero-shot-video-classification"
    ):
        pipeline("video-classification", model=str(open_set_dir))


def test_video_classification_pipeline_scores_the_named_labels_of_an_open_set_folder(open_set_dir, video):
    classifier = pipeline(
        "video-classification", model=str(open_set_dir), model_kwargs={"id2label": dict(enumerate(LABELS))}
    )
    zero_shot = pipeline("zero-shot-video-classification", model=str(open_set_dir))
    scores = {item["label"]: item["score"] for item in classifier(video, top_k=len(LABELS))}
    expected = {
        item["label"]: item["score"] for item in zero_shot(video, candidate_labels=LABELS, ensemble="embedding")
    }
    assert scores == pytest.approx(expected, abs=1e-4)
    assert max(scores.values()) > 0.5  # not the uniform scores of empty class embeddings


def test_auto_model_for_video_classification_computes_class_embeddings_from_id2label(open_set_dir):
    model = AutoModelForVideoClassification.from_pretrained(open_set_dir, id2label=dict(enumerate(LABELS)))
    assert isinstance(model, ActionCLIPForVideoClassification)
    assert [model.config.id2label[i] for i in range(3)] == LABELS and model.config.label2id["tai chi"] == 2
    by_hand = ActionCLIPForVideoClassification.from_actionclip(
        ActionCLIPModel.from_pretrained(open_set_dir), LABELS, load_clip_tokenizer()
    )
    expected = by_hand.state_dict()
    assert model.state_dict().keys() == expected.keys()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=name)


def test_auto_model_for_video_classification_from_an_open_set_folder_fine_tunes(open_set_dir):
    model = AutoModelForVideoClassification.from_pretrained(open_set_dir, id2label=dict(enumerate(LABELS))).train()
    pixel_values = torch.randn(4, 8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 1])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss = model(pixel_values=pixel_values, labels=labels).loss
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
    assert torch.isfinite(grad_norm) and grad_norm < 1e3  # zero class embeddings gave ~1e12
    optimizer.step()
    assert model(pixel_values=pixel_values, labels=labels).loss < loss


@pytest.mark.parametrize("kwargs", [{}, {"num_labels": 3}], ids=["no_labels", "num_labels"])
def test_auto_model_for_video_classification_refuses_an_open_set_folder_without_label_names(open_set_dir, kwargs):
    with pytest.raises(WrongModelKindError, match=r"no class names were given.*id2label="):
        AutoModelForVideoClassification.from_pretrained(open_set_dir, **kwargs)


def test_auto_model_refuses_a_closed_set_folder_whose_text_tower_was_not_saved(closed_set_dir):
    with pytest.raises(WrongModelKindError, match="closed-set ActionCLIPForVideoClassification.*AutoModelForVideo"):
        AutoModel.from_pretrained(closed_set_dir)
    with pytest.raises(WrongModelKindError, match="no text tower saved"):
        ActionCLIPModel.from_pretrained(closed_set_dir)
    assert isinstance(
        AutoModelForVideoClassification.from_pretrained(closed_set_dir), ActionCLIPForVideoClassification
    )


# -- PEFT (issue 29, item 5)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A model started from a CLIP checkpoint (fresh fusion), saved as a user does before adapting it."""
    clip_dir = make_tiny_clip_dir(tmp_path_factory.mktemp("clip"))
    folder = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    ActionCLIPModel.from_backbone(clip_dir, fusion="transf", num_frames=4, fusion_num_layers=2).save_pretrained(folder)
    return folder


def lora_batch():
    generator = torch.Generator().manual_seed(2)
    return {
        "pixel_values": torch.randn(3, 4, 3, 32, 32, generator=generator),
        "input_ids": token_ids(3, length=9, seed=4),
        "labels": torch.tensor([0, 1, 2]),
    }


def lora_model_after_one_step(base_dir):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        ActionCLIPModel.from_pretrained(base_dir), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    )
    before = {name: value.detach().clone() for name, value in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    model(**lora_batch()).loss.backward()
    optimizer.step()
    return model, before


def test_lora_with_clip_target_names_adapts_the_towers_and_trains_the_fusion(base_dir):
    model, before = lora_model_after_one_step(base_dir)
    adapted = {name.split("base_model.model.", 1)[1].rsplit(".lora_A", 1)[0] for name in before if ".lora_A." in name}
    towers = {
        f"{tower}.encoder.layers.{i}.self_attn.{projection}"
        for tower in ("text_model", "vision_model")
        for i in range(2)
        for projection in ("q_proj", "v_proj")
    }
    assert adapted == towers  # nothing in the fusion
    changed = {name for name, value in model.named_parameters() if not torch.equal(value, before[name])}
    fusion = {name for name, value in model.named_parameters() if ".fusion." in name and value.requires_grad}
    assert fusion and fusion <= changed
    assert any("self_attn.query_proj" in name for name in changed & fusion)
    assert not any(".fusion." in name for name in changed - fusion)  # only the trained copy changes
    assert changed - fusion and all(".lora_" in name for name in changed - fusion)


def test_auto_peft_model_loads_a_saved_adapter_offline(base_dir, tmp_path, no_network):
    from peft import AutoPeftModel

    model, _ = lora_model_after_one_step(base_dir)
    model.save_pretrained(tmp_path / "adapter")
    loaded = AutoPeftModel.from_pretrained(tmp_path / "adapter")
    assert isinstance(loaded.get_base_model(), ActionCLIPModel)
    batch = lora_batch()
    with torch.no_grad():
        expected = model.eval()(**batch).logits_per_video
        torch.testing.assert_close(loaded.eval()(**batch).logits_per_video, expected, rtol=0, atol=1e-6)

"""LoRA (peft) on the CLIP towers' attention, the fusion trained fully: what trains, saving, loading, merging."""

import json

import pytest
import torch
from peft import PeftModel
from test_training import make_trainer, run_script, script_arguments, small_model
from tiny_models import make_tiny_clip_dir
from video_datasets import make_video_data

from actionclip.data.collator import ActionCLIPCollator
from actionclip.data.datasets import VideoClassificationDataset
from actionclip.training.trainer import apply_lora


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def trained(video_data, tmp_path_factory):
    """A LoRA model trained for 3 steps, the weights before, and a batch."""
    model = apply_lora(small_model(seed=2), r=4, alpha=8)
    before = {name: value.detach().clone() for name, value in model.state_dict().items()}
    train = VideoClassificationDataset.from_list_file(video_data.list_file("train"), num_frames=4, image_size=32)
    trainer = make_trainer(model, train, None, tmp_path_factory.mktemp("lora"), max_steps=3, learning_rate=1e-3)
    trainer.train()
    batch = ActionCLIPCollator(train.label_names)([train[i] for i in range(4)])
    return model.eval(), before, batch


def test_lora_targets_only_the_towers_attention_projections():
    model = apply_lora(small_model(), r=4)
    lora_modules = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_parameters() if ".lora_A." in name}
    assert lora_modules and all(
        ("text_model" in name or "vision_model" in name) and name.rsplit(".", 1)[1] in ("q_proj", "k_proj", "v_proj",
                                                                                           "out_proj")
        for name in lora_modules
    )  # fmt: skip
    assert not any("fusion" in name for name in lora_modules)
    assert len(lora_modules) == 4 * (2 + 2)  # 4 projections x (2 text + 2 vision layers)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert all(".lora_" in name or ".fusion.modules_to_save." in name for name in trainable)
    assert any(".fusion.modules_to_save." in name for name in trainable)


def test_training_changes_only_adapter_and_fusion_weights(trained):
    model, before, _ = trained
    after = model.state_dict()
    changed = {name for name, value in before.items() if not torch.equal(value, after[name])}
    assert changed and all(".lora_" in name or ".fusion.modules_to_save." in name for name in changed)
    assert any(".lora_B." in name for name in changed) and any(".fusion.modules_to_save." in name for name in changed)


def test_saved_adapter_loads_onto_a_fresh_base_model(trained, tmp_path):
    model, _, batch = trained
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    loaded = PeftModel.from_pretrained(small_model(seed=2), tmp_path / "adapter").eval()
    with torch.no_grad():
        expected = model(**batch).logits_per_video
        torch.testing.assert_close(loaded(**batch).logits_per_video, expected, rtol=0, atol=1e-6)


def test_merged_model_equals_the_adapted_one(trained, tmp_path):
    model, _, batch = trained
    model.save_pretrained(tmp_path / "adapter")
    copy = PeftModel.from_pretrained(small_model(seed=2), tmp_path / "adapter").eval()
    with torch.no_grad():
        adapted = model(**batch).logits_per_video
        merged = copy.merge_and_unload()
        assert type(merged).__name__ == "ActionCLIPModel"
        assert not any("lora" in name for name, _ in merged.named_parameters())
        torch.testing.assert_close(merged(**batch).logits_per_video, adapted, rtol=0, atol=1e-5)


def test_script_trains_lora_and_saves_adapter_and_merged_model(video_data, tmp_path):
    clip_dir = make_tiny_clip_dir(tmp_path / "clip")
    arguments = script_arguments(clip_dir, video_data, tmp_path / "out", "--max_steps", "2", "--lora_r", "4",
                                 "--lora_alpha", "8", "--lora_dropout", "0.1", "--eval_strategy", "no",
                                 "--save_strategy", "steps", "--save_steps", "1", "--load_best_model_at_end", "false",
                                 "--learning_rate", "1e-3")  # fmt: skip
    run_script(arguments)
    adapter = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8 and adapter["modules_to_save"] == ["fusion"]
    assert (tmp_path / "out" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    from actionclip import ActionCLIPModel

    merged = ActionCLIPModel.from_pretrained(tmp_path / "out" / "merged")
    base = ActionCLIPModel.from_backbone(clip_dir, num_frames=4, fusion_num_layers=1)
    changed = [name for name, value in base.state_dict().items() if not torch.equal(value, merged.state_dict()[name])]
    assert any("self_attn" in name for name in changed) and any(name.startswith("fusion.") for name in changed)
    assert not any("mlp" in name and not name.startswith("fusion.") for name in changed)

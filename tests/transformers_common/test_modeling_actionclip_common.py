"""transformers' common model and configuration tests (`ModelTesterMixin`, `ConfigTester`) for `ActionCLIPModel` and
`ActionCLIPForVideoClassification` on the towers of every backbone family (CLIP, MetaCLIP 2, Chinese-CLIP, AltCLIP,
SigLIP, SigLIP 2), with the visual prompts of `FAMILY_PROMPTS`: one `unittest.TestCase` per (family, prompt), all
made from one definition. Built like transformers' X-CLIP tests; a common test is skipped only where X-CLIP's tests
skip it for the same structural reason, or for one family where a transformers behaviour of that family's towers
makes it fail (`FAMILY_SKIPS`); the reason is written next to the skip.

Run with `make test-transformers` (it fetches transformers' test machinery; see conftest.py).
"""

from __future__ import annotations

import tempfile
import unittest

import numpy as np
import pytest
import torch
from conftest import SOURCE_AVAILABLE, SOURCE_ROOT

if not SOURCE_AVAILABLE:
    pytest.skip(
        f"transformers' source archive is not extracted at {SOURCE_ROOT}: run `make test-transformers`",
        allow_module_level=True,
    )

from tests.test_configuration_common import ConfigTester  # noqa: E402
from tests.test_modeling_common import (  # noqa: E402
    ModelTesterMixin,
    _config_zero_init,
    floats_tensor,
    ids_tensor,
    random_attention_mask,
)
from transformers.testing_utils import torch_device  # noqa: E402

from actionclip import ActionCLIPConfig, ActionCLIPForVideoClassification, ActionCLIPModel  # noqa: E402
from actionclip.backbones import backbone_family  # noqa: E402
from actionclip.modeling_actionclip import SIGMOID_LOGIT_BIAS_INIT  # noqa: E402

# (name, config fields) of every visual prompt: the five post-network fusions, and the in-network Shift and the
# pre-network Joint prompts (each with the default Transf fusion).
VISUAL_PROMPTS = {
    "meanP": {"fusion": "meanP"},
    "conv1d": {"fusion": "conv1d"},
    "lstm": {"fusion": "lstm"},
    "transf": {"fusion": "transf"},
    "transf_cls": {"fusion": "transf_cls"},
    "shift": {"shift": True},
    "joint": {"joint": True},
    # Both prompts inside the vision tower at once, with the default Transf fusion: the other families' one class.
    "shift_joint": {"shift": True, "joint": True},
}


# The image-text families whose towers an ActionCLIP model is built on (`actionclip.backbones`), and the visual
# prompts each is tested with. CLIP runs every prompt. The others run one model with the default post-network prompt
# (transf) and both prompts that work inside the vision tower (shift and joint), which depend on the family's token
# layout (a class token or none) and frame pooling; the other post-network prompts only see the (B, T, D) frame
# embeddings, the same on every family (tests/test_backbones.py trains every prompt on every family). The whole grid
# would run transformers' ~170 common tests 42 times: about 20 minutes on 2 CPU cores, against 5 for these 12.
FAMILY_PROMPTS = {
    "clip": tuple(VISUAL_PROMPTS),
    **{family: ("shift_joint",) for family in ("metaclip_2", "chinese_clip", "altclip", "siglip", "siglip2")},
}

# Tiny towers shared by every family: every width, head count and layer count differs between the towers and from
# the embedding size D, so that a width read from the wrong place (the common tests read the vision width from
# `get_video_features`' `last_hidden_state`) cannot pass by coincidence. Two layers at most
# (transformers' test_num_layers_is_small). Token ids inside the tiny vocabulary (pad 1 as RoBERTa's, whose positions
# start after it).
TEXT_TOWER = dict(
    vocab_size=99,
    hidden_size=24,
    intermediate_size=37,
    num_hidden_layers=1,
    num_attention_heads=3,
    max_position_embeddings=32,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)
VISION_TOWER = dict(
    image_size=16,
    patch_size=4,
    num_channels=3,
    hidden_size=40,
    intermediate_size=43,
    num_hidden_layers=2,
    num_attention_heads=5,
)
# D where the family has projections; divisible by transf_cls's 8 heads (its default) and transf's 2 (set below).
PROJECTION_DIM = 16


def family_towers(family: str) -> tuple[dict, dict, int]:
    """The tiny ``(text tower fields, vision tower fields, D)`` of ``family``: the shared towers with what the family
    does its own way."""
    text, vision = dict(TEXT_TOWER), dict(VISION_TOWER)
    if backbone_family(family).projections:
        projection_dim = PROJECTION_DIM
    else:
        # SigLIP's towers end in their own heads, compared directly: D is the vision width, which the text head
        # projects to.
        projection_dim = text["projection_size"] = vision["hidden_size"]
    if family == "altclip":
        # The RoBERTa tower projects its states to its own output width inside the tower: yet another width.
        text["project_dim"] = 20
    if family == "siglip2":
        # SigLIP 2 takes patch sequences: its position grid is given in patches, not as an image size.
        side = vision.pop("image_size") // vision["patch_size"]
        vision["num_patches"] = side * side
    return text, vision, projection_dim


class ActionCLIPVideoModelTester:
    """The video side alone, for the common `get_video_features` tests (which take the inputs and the vision tower's
    layer count from here)."""

    def __init__(self, parent: ActionCLIPModelTester):
        self.parent = parent
        self.num_hidden_layers = parent.vision_num_hidden_layers

    def prepare_config_and_inputs_for_common(self):
        config, _, _, pixel_values = self.parent.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}


class ActionCLIPTextModelTester:
    """The text side alone, for the common `get_text_features` tests (which take the inputs and the text tower's
    layer count from here)."""

    def __init__(self, parent: ActionCLIPModelTester):
        self.parent = parent
        self.num_hidden_layers = parent.text_num_hidden_layers

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask, _ = self.parent.prepare_config_and_inputs()
        return config, {"input_ids": input_ids, "attention_mask": attention_mask}


class ActionCLIPModelTester:
    """Tiny configurations and inputs of one family's towers (`family_towers`) with one visual prompt: B videos of T
    frames of 16x16 pixels (16 patches), B texts of 7 tokens."""

    def __init__(
        self,
        parent,
        family: str,
        prompt: dict,
        batch_size: int = 2,
        num_frames: int = 3,
        is_training: bool = True,
    ):
        self.parent = parent
        self.family = family
        self.prompt = prompt
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.is_training = is_training
        self.text_tower, self.vision_tower, self.projection_dim = family_towers(family)
        self.image_size, self.patch_size = VISION_TOWER["image_size"], VISION_TOWER["patch_size"]
        self.num_channels = VISION_TOWER["num_channels"]
        self.text_seq_length, self.vocab_size = 7, TEXT_TOWER["vocab_size"]
        self.text_hidden_size = TEXT_TOWER["hidden_size"]
        self.text_num_hidden_layers = TEXT_TOWER["num_hidden_layers"]
        self.text_num_attention_heads = TEXT_TOWER["num_attention_heads"]
        self.vision_hidden_size = VISION_TOWER["hidden_size"]
        self.vision_num_hidden_layers = VISION_TOWER["num_hidden_layers"]
        self.vision_num_attention_heads = VISION_TOWER["num_attention_heads"]
        self.num_labels = 3
        # The mixin's own tests (hidden states of the whole model, ...) read the vision tower's.
        self.hidden_size, self.num_hidden_layers = self.vision_hidden_size, self.vision_num_hidden_layers
        self.num_attention_heads = self.vision_num_attention_heads
        tokens_per_frame = (self.image_size // self.patch_size) ** 2 + backbone_family(family).class_tokens
        # The vision tower's sequences: one per frame, or one per video over all its frames with the joint prompt.
        self.seq_length = tokens_per_frame * (num_frames if prompt.get("joint") else 1)
        self.video_model_tester = ActionCLIPVideoModelTester(self)
        self.text_model_tester = ActionCLIPTextModelTester(self)

    def get_config(self) -> ActionCLIPConfig:
        family = backbone_family(self.family)
        return ActionCLIPConfig(
            backbone=self.family,
            text_config=family.sub_config_class("text_config")(**self.text_tower).to_dict(),
            vision_config=family.sub_config_class("vision_config")(**self.vision_tower).to_dict(),
            projection_dim=self.projection_dim,
            num_frames=self.num_frames,
            fusion_num_layers=1,
            fusion_num_heads=None if self.prompt.get("fusion") == "transf_cls" else 2,
            fusion_intermediate_size=52,
            fusion_max_frames=8,
            # The family's own objective: SigLIP's families learn their pair-logit bias only through the sigmoid
            # loss (a softmax, as in the KL and cross-entropy losses, is the same whatever the bias, so under those
            # the bias gets no gradient, which transformers' gradient tests would flag).
            contrastive_loss="sigmoid" if family.sigmoid else "kl",
            num_labels=self.num_labels,
            **self.prompt,
        )

    def prepare_config_and_inputs(self):
        input_ids = ids_tensor([self.batch_size, self.text_seq_length], self.vocab_size)
        attention_mask = random_attention_mask([self.batch_size, self.text_seq_length])
        pixel_values = floats_tensor(
            [self.batch_size, self.num_frames, self.num_channels, self.image_size, self.image_size]
        )
        return self.get_config(), input_ids, attention_mask, pixel_values

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask, pixel_values = self.prepare_config_and_inputs()
        inputs_dict = {
            "pixel_values": pixel_values,
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "return_loss": True,
        }
        return config, inputs_dict

    def create_and_check_model(self, config, input_ids, attention_mask, pixel_values):
        model = ActionCLIPModel(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask)
        self.parent.assertEqual(result.logits_per_video.shape, (self.batch_size, self.batch_size))
        self.parent.assertEqual(result.logits_per_text.shape, (self.batch_size, self.batch_size))
        self.parent.assertEqual(result.frame_embeds.shape, (self.batch_size, self.num_frames, self.projection_dim))

    def create_and_check_classifier(self, config, pixel_values):
        model = ActionCLIPForVideoClassification(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(pixel_values=pixel_values)
        self.parent.assertEqual(result.logits.shape, (self.batch_size, self.num_labels))


# Common tests that cannot hold for one family, by (family, test name prefix), with the transformers behaviour that
# makes them fail.
FAMILY_SKIPS = {
    ("altclip", "test_get_text_features_output"): (
        "AltCLIP's text tower (transformers' AltCLIPTextModel) returns as last_hidden_state its RoBERTa states "
        "projected to text_config.project_dim (AltCLIPTextModel.transformation), and AltCLIPModel.get_text_features "
        "returns that output, as ActionCLIP's does; the common test expects text_config.hidden_size wide states "
        "(transformers' own AltCLIP tester makes the two widths equal)"
    ),
}


class ActionCLIPCommonTests(ModelTesterMixin):
    """The common tests for one backbone family with one visual prompt; one `unittest.TestCase` per pair of
    `FAMILY_PROMPTS` is made below."""

    all_model_classes = (ActionCLIPModel, ActionCLIPForVideoClassification)
    family: str = "clip"
    prompt: dict = {}
    test_resize_embeddings = False  # as X-CLIP's: the video-text model has no single input embedding to resize
    test_attention_outputs = False  # as X-CLIP's: attentions of the two towers are nested in the tower outputs
    test_torchscript = False  # as X-CLIP's
    # The texts go with the videos in the common attention-implementation tests.
    additional_model_inputs = ["input_ids"]
    maxdiff = None

    def setUp(self):
        for (family, test_name), reason in FAMILY_SKIPS.items():
            if family == self.family and self._testMethodName.startswith(test_name):
                self.skipTest(reason)
        self.model_tester = ActionCLIPModelTester(self, self.family, self.prompt)
        self.config_tester = ConfigTester(
            self,
            config_class=ActionCLIPConfig,
            has_text_modality=False,
            common_properties=["backbone", "projection_dim", "num_frames", "fusion", "eval_logit_scale"],
            backbone=self.family,
        )

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if model_class is ActionCLIPForVideoClassification:
            # The closed-set classifier has no text tower: its classes are fixed embeddings.
            for name in ("input_ids", "attention_mask", "return_loss"):
                inputs_dict.pop(name, None)
            if return_labels:
                inputs_dict["labels"] = torch.zeros(
                    self.model_tester.batch_size, dtype=torch.long, device=torch_device
                )
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_classifier(self):
        config, _, _, pixel_values = self.model_tester.prepare_config_and_inputs()
        self.model_tester.create_and_check_classifier(config, pixel_values)

    @unittest.skip(reason="as X-CLIP's: hidden states are nested in the tower outputs (tested in test_modeling.py)")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="as X-CLIP's: ActionCLIP takes pixel_values and input_ids, not inputs_embeds")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="as X-CLIP's: hidden states are nested in the tower outputs (tested in test_modeling.py)")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    @unittest.skip(reason="as X-CLIP's: the video-text model has no single input/output embedding")
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(reason="as X-CLIP's: CLIP's layers do not support feed-forward chunking")
    def test_feed_forward_chunking(self):
        pass

    # As X-CLIP's override: `logit_scale` starts at ln(1/0.07), not at 0 or 1, under the zero-init config (and
    # SigLIP's `logit_bias` at -10).
    def test_initialization(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        configs_no_init = _config_zero_init(config)
        for model_class in self.all_model_classes:
            model = model_class(config=configs_no_init)
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                if self.family in ("siglip", "siglip2") and name.startswith(("text_model.", "vision_model.")):
                    # SigLIP's towers initialise as the Flax original (lecun-normal and variance-scaling inits that
                    # ignore `initializer_range`, which the zero-init config sets to 0): transformers' own Siglip
                    # and Siglip2 tests skip test_initialization for that reason. ActionCLIP's parts are checked.
                    continue
                if name == "logit_scale":
                    self.assertAlmostEqual(param.item(), np.log(1 / 0.07), delta=1e-3)
                elif name == "logit_bias":
                    # As SigLIP's own: the pair-logit bias starts at -10 (with many more negative pairs than
                    # positive ones, the sigmoid loss starts near its minimum).
                    self.assertEqual(param.item(), SIGMOID_LOGIT_BIAS_INIT)
                elif name == "fusion.conv.weight":
                    # The conv1d prompt starts as the original's fixed temporal channel shift.
                    self.assertEqual(param.sum().item(), param.shape[0])
                elif name.startswith("fusion.lstm."):
                    # PyTorch's own LSTM initialisation, as the original: uniform in +-1/sqrt(hidden), whatever the
                    # configured ranges.
                    bound = config.projection_dim**-0.5
                    self.assertLessEqual(param.abs().max().item(), bound)
                    self.assertGreater(param.abs().max().item(), bound / 2)
                else:
                    self.assertIn(
                        ((param.data.mean() * 1e9).round() / 1e9).item(),
                        [0.0, 1.0],
                        msg=f"Parameter {name} of model {model_class} seems not properly initialized",
                    )

    def test_load_vision_text_config(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        with tempfile.TemporaryDirectory() as directory:
            config.save_pretrained(directory)
            # The family's own tower configuration classes read their part of the saved ActionCLIP config.
            for name in ("vision_config", "text_config"):
                tower_class = backbone_family(self.family).sub_config_class(name)
                self.assertDictEqual(getattr(config, name).to_dict(), tower_class.from_pretrained(directory).to_dict())


for _family, _prompts in FAMILY_PROMPTS.items():
    for _name in _prompts:
        _class_name = f"ActionCLIP_{_family}_{_name}_ModelTest"
        globals()[_class_name] = type(
            _class_name,
            (ActionCLIPCommonTests, unittest.TestCase),
            {"family": _family, "prompt": VISUAL_PROMPTS[_name]},
        )
del _family, _prompts, _name, _class_name

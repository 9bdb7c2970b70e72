"""transformers' common model and configuration tests (`ModelTesterMixin`, `ConfigTester`) for `ActionCLIPModel` and
`ActionCLIPForVideoClassification`, with every visual prompt. Built like transformers' X-CLIP tests; a common test is
skipped only where X-CLIP's tests skip it for the same structural reason, which is written next to the skip.

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
from transformers import CLIPTextConfig, CLIPVisionConfig  # noqa: E402
from transformers.testing_utils import torch_device  # noqa: E402

from actionclip import ActionCLIPConfig, ActionCLIPForVideoClassification, ActionCLIPModel  # noqa: E402

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
}


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
    """Tiny configurations and inputs: B videos of T frames of 16x16 pixels (16 patches), B texts of 7 tokens.

    Every width, head count and layer count differs between the towers and from the embedding size D, so that a
    width read from the wrong place (the common tests read the vision width from `get_video_features`'
    `last_hidden_state`) cannot pass by coincidence.
    """

    def __init__(self, parent, prompt: dict, batch_size: int = 2, num_frames: int = 3, is_training: bool = True):
        self.parent = parent
        self.prompt = prompt
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.is_training = is_training
        self.image_size, self.patch_size, self.num_channels = 16, 4, 3
        self.text_seq_length, self.vocab_size = 7, 99
        # Two layers at most (transformers' test_num_layers_is_small).
        self.text_hidden_size, self.text_num_hidden_layers, self.text_num_attention_heads = 24, 1, 3
        self.vision_hidden_size, self.vision_num_hidden_layers, self.vision_num_attention_heads = 40, 2, 5
        # Divisible by transf_cls's 8 heads (its default) and transf's 2 (set below).
        self.projection_dim, self.num_labels = 16, 3
        # The mixin's own tests (hidden states of the whole model, ...) read the vision tower's.
        self.hidden_size, self.num_hidden_layers = self.vision_hidden_size, self.vision_num_hidden_layers
        self.num_attention_heads = self.vision_num_attention_heads
        tokens_per_frame = (self.image_size // self.patch_size) ** 2 + 1
        # The vision tower's sequences: one per frame, or one per video over all its frames with the joint prompt.
        self.seq_length = tokens_per_frame * (num_frames if prompt.get("joint") else 1)
        self.video_model_tester = ActionCLIPVideoModelTester(self)
        self.text_model_tester = ActionCLIPTextModelTester(self)

    def get_config(self) -> ActionCLIPConfig:
        text_config = CLIPTextConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.text_hidden_size,
            intermediate_size=37,
            num_hidden_layers=self.text_num_hidden_layers,
            num_attention_heads=self.text_num_attention_heads,
            max_position_embeddings=32,
        )
        vision_config = CLIPVisionConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            hidden_size=self.vision_hidden_size,
            intermediate_size=43,
            num_hidden_layers=self.vision_num_hidden_layers,
            num_attention_heads=self.vision_num_attention_heads,
        )
        return ActionCLIPConfig(
            text_config=text_config.to_dict(),
            vision_config=vision_config.to_dict(),
            projection_dim=self.projection_dim,
            num_frames=self.num_frames,
            fusion_num_layers=1,
            fusion_num_heads=None if self.prompt.get("fusion") == "transf_cls" else 2,
            fusion_intermediate_size=52,
            fusion_max_frames=8,
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


class ActionCLIPCommonTests(ModelTesterMixin):
    """The common tests for one visual prompt; one `unittest.TestCase` per prompt is made below."""

    all_model_classes = (ActionCLIPModel, ActionCLIPForVideoClassification)
    prompt: dict = {}
    test_resize_embeddings = False  # as X-CLIP's: the video-text model has no single input embedding to resize
    test_attention_outputs = False  # as X-CLIP's: attentions of the two towers are nested in the tower outputs
    test_torchscript = False  # as X-CLIP's
    # The texts go with the videos in the common attention-implementation tests.
    additional_model_inputs = ["input_ids"]
    maxdiff = None

    def setUp(self):
        self.model_tester = ActionCLIPModelTester(self, self.prompt)
        self.config_tester = ConfigTester(
            self,
            config_class=ActionCLIPConfig,
            has_text_modality=False,
            common_properties=["projection_dim", "num_frames", "fusion", "eval_logit_scale"],
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

    # As X-CLIP's override: `logit_scale` starts at ln(1/0.07), not at 0 or 1, under the zero-init config.
    def test_initialization(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        configs_no_init = _config_zero_init(config)
        for model_class in self.all_model_classes:
            model = model_class(config=configs_no_init)
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                if name == "logit_scale":
                    self.assertAlmostEqual(param.item(), np.log(1 / 0.07), delta=1e-3)
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
            self.assertDictEqual(config.vision_config.to_dict(), CLIPVisionConfig.from_pretrained(directory).to_dict())
            self.assertDictEqual(config.text_config.to_dict(), CLIPTextConfig.from_pretrained(directory).to_dict())


for _name, _prompt in VISUAL_PROMPTS.items():
    _class_name = f"ActionCLIP_{_name}_ModelTest"
    globals()[_class_name] = type(_class_name, (ActionCLIPCommonTests, unittest.TestCase), {"prompt": _prompt})
del _name, _prompt, _class_name

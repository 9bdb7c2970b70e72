"""The contrastive objective (`actionclip.loss`): the paper's KL with label-equality targets, cross-entropy against
the class prompts, and the model's loss wiring."""

import pytest
import torch
from tiny_models import random_videos, tiny_model, token_ids

from actionclip.loss import ActionCLIPLoss, label_equality_targets


def test_kl_targets_share_mass_between_videos_of_the_same_label():
    targets = label_equality_targets(torch.tensor([3, 3, 1]), scale=10.0)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(3))
    assert targets[0, 0] == targets[0, 1] and targets[0, 2] < 1e-4
    assert targets[2, 2] > 0.999


def test_cross_entropy_loss_scores_videos_against_all_class_prompts():
    model = tiny_model(contrastive_loss="cross_entropy")
    out = model(pixel_values=random_videos(3), input_ids=token_ids(4), labels=torch.tensor([0, 3, 1]))
    expected = torch.nn.functional.cross_entropy(out.logits_per_video, torch.tensor([0, 3, 1]))
    torch.testing.assert_close(out.loss, expected)


def test_kl_loss_needs_one_prompt_per_video():
    with pytest.raises(ValueError, match="expected 2 texts"):
        ActionCLIPLoss()(torch.randn(2, 4), torch.randn(3, 4), torch.tensor([0, 1]), 10.0)

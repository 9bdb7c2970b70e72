"""Specification of the prompt templater: labels to the sentences the text encoder sees."""

import numpy as np
import pytest

from actionclip.errors import InvalidLabelsError, InvalidTemplateError
from actionclip.prompts import (
    ACTIONCLIP_TEMPLATES,
    PromptTemplater,
    load_templates,
    normalize_label,
    template_form,
)


def test_default_templates_are_the_16_of_the_original_in_order(reference_inputs):
    assert PromptTemplater().templates == tuple(reference_inputs["templates"])
    assert len(ACTIONCLIP_TEMPLATES) == 16


def test_build_prompts_is_template_major_like_the_original(reference_inputs):
    classes = reference_inputs["classes"]
    templates = reference_inputs["templates"]
    prompts = PromptTemplater().build_prompts(classes)
    assert len(prompts) == 16 * len(classes)
    for k, template in enumerate(templates):
        for c, name in enumerate(classes):
            assert prompts[k * len(classes) + c] == template.format(name)


def test_single_set_has_one_template():
    templater = PromptTemplater("single")
    assert templater.num_templates == 1
    assert templater.build_prompts(["juggling", "surfing"]) == [
        "a video of a person juggling.",
        "a video of a person surfing.",
    ]


def test_user_templates_from_a_list_and_from_a_file(tmp_path):
    path = tmp_path / "templates.txt"
    path.write_text("a clip of {}\n\n  someone doing {} \n{}, on video\n", encoding="utf-8")
    from_file = PromptTemplater(path)
    assert from_file.templates == ("a clip of {}", "someone doing {}", "{}, on video")
    assert PromptTemplater(list(from_file.templates)).templates == from_file.templates
    assert PromptTemplater(str(path)).build_prompts(["x"]) == ["a clip of x", "someone doing x", "x, on video"]


def test_a_single_template_string_is_a_set_of_one():
    assert load_templates("the person is {} now") == ("the person is {} now",)


@pytest.mark.parametrize(
    "templates",
    [["no placeholder"], ["{} and {}"], ["{0} numbered"], ["{label}"], ["a {} b }"], [], ["{}", "{}"], [3]],
)
def test_bad_templates_raise_invalid_template_error(templates):
    with pytest.raises(InvalidTemplateError):
        PromptTemplater(templates)


def test_unknown_template_set_name_names_the_known_sets():
    with pytest.raises(InvalidTemplateError, match="actionclip16"):
        PromptTemplater("actionclip17")


def test_template_file_line_with_no_placeholder_is_reported_with_its_line_number(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a clip of {}\nno label here\n", encoding="utf-8")
    with pytest.raises(InvalidTemplateError, match="line 2"):
        PromptTemplater(path)


def test_empty_template_file_is_rejected(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InvalidTemplateError, match="no template"):
        load_templates(path)


def test_template_forms_follow_where_the_label_stands():
    assert template_form("a photo of action {}") == "prefix"
    assert template_form("Can you recognize the action of {}?") == "prefix"
    assert template_form("{}, an action") == "suffix"
    assert template_form("{} is what the man does") == "suffix"
    assert template_form("the man is {} right now") == "cloze"
    assert template_form("{}") == "bare"
    forms = PromptTemplater().forms
    assert forms.count("suffix") == 3 and forms.count("bare") == 1 and forms.count("prefix") == 12


def test_normalize_label_is_identity_by_default():
    assert normalize_label("ApplyEyeMakeup") == "ApplyEyeMakeup"
    assert normalize_label(" playing_guitar ") == " playing_guitar "


def test_normalize_label_options():
    assert normalize_label("ApplyEyeMakeup", split_camel_case=True, lowercase=True, strip=True) == "apply eye makeup"
    assert normalize_label("YoYo", split_camel_case=True) == "Yo Yo"
    assert normalize_label("HTMLParser", split_camel_case=True) == "HTML Parser"
    assert normalize_label("playing_guitar", underscores_to_spaces=True) == "playing guitar"
    assert normalize_label("  tai   chi \t", strip=True) == "tai chi"
    assert normalize_label("Éclair_Tasting", underscores_to_spaces=True, lowercase=True) == "éclair tasting"


def test_non_ascii_labels_are_kept_as_is():
    assert PromptTemplater("single").build_prompts(["跳舞", "café"]) == [
        "a video of a person 跳舞.",
        "a video of a person café.",
    ]


@pytest.mark.parametrize("labels", [[], ["running", ""], ["running", "   "], "running", ["running", None]])
def test_unusable_labels_raise_invalid_labels_error(labels):
    with pytest.raises(InvalidLabelsError):
        PromptTemplater().build_prompts(labels)


def test_duplicate_labels_after_normalisation_are_rejected_naming_both():
    templater = PromptTemplater(split_camel_case=True, lowercase=True, strip=True)
    with pytest.raises(InvalidLabelsError, match=r"labels\[0\].*labels\[2\]"):
        templater.build_prompts(["ApplyEyeMakeup", "surfing", "apply eye makeup"])
    # Without normalisation they are different classes.
    assert len(PromptTemplater().build_prompts(["ApplyEyeMakeup", "surfing", "apply eye makeup"])) == 48


def test_sample_prompts_gives_one_template_per_sample_and_is_seedable(reference_inputs):
    templates = reference_inputs["templates"]
    labels = ["surfing", "surfing", "tai chi", "abseiling", "surfing"]
    templater = PromptTemplater()
    texts, ids = templater.sample_prompts(labels, rng=np.random.default_rng(0))
    assert ids.shape == (5,) and ids.dtype == np.int64
    assert texts == [templates[k].format(label) for k, label in zip(ids, labels)]
    again, again_ids = templater.sample_prompts(labels, rng=0)
    assert again == texts and np.array_equal(again_ids, ids)


def test_sample_prompts_draws_every_template():
    _, ids = PromptTemplater().sample_prompts(["x"] * 2000, rng=1)
    counts = np.bincount(ids, minlength=16)
    assert counts.min() > 60 and counts.max() < 200


def test_format_prompts_reproduces_the_original_training_texts(reference_inputs):
    classes = reference_inputs["classes"]
    labels = [classes[i] for i in reference_inputs["train_labels"].tolist()]
    ids = reference_inputs["train_template_ids"].tolist()
    texts = PromptTemplater().format_prompts(labels, ids)
    assert texts == [reference_inputs["templates"][k].format(label) for k, label in zip(ids, labels)]
    with pytest.raises(InvalidTemplateError):
        PromptTemplater().format_prompts(labels, [16] * len(labels))

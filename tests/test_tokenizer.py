"""The shipped CLIP tokenizer gives the original tokenizer's ids, offline."""

import numpy as np
import pytest

from actionclip.tokenizer import load_clip_tokenizer


def test_prompt_ids_equal_the_original_tokenizer(reference_inputs):
    tokenizer = load_clip_tokenizer()
    texts = [t.format(c) for t in reference_inputs["templates"] for c in reference_inputs["classes"]]
    encoded = tokenizer(texts, padding="max_length", max_length=77, return_tensors="pt")
    expected = reference_inputs["template_major_token_ids"]
    mask = encoded["attention_mask"].bool()
    assert (encoded["input_ids"][mask] == expected[mask]).all()
    assert (expected[~mask] == 0).all()  # the original padded with 0; ours pads with the end token, masked


def test_training_prompt_ids_equal_the_original_tokenizer(reference_inputs):
    tokenizer = load_clip_tokenizer()
    templates, classes = reference_inputs["templates"], reference_inputs["classes"]
    texts = [
        templates[t].format(classes[c])
        for t, c in zip(reference_inputs["train_template_ids"].tolist(), reference_inputs["train_labels"].tolist())
    ]
    encoded = tokenizer(texts, padding="max_length", max_length=77, return_tensors="pt")
    mask = encoded["attention_mask"].bool()
    assert (encoded["input_ids"][mask] == reference_inputs["train_token_ids"][mask]).all()


def test_vocabulary_size_and_special_tokens():
    tokenizer = load_clip_tokenizer()
    assert len(tokenizer) == 49408
    assert tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"]) == [49406, 49407]
    assert tokenizer.model_max_length == 77


def test_long_text_is_truncated_to_the_context():
    tokenizer = load_clip_tokenizer()
    ids = tokenizer(["word " * 200], truncation=True, max_length=77)["input_ids"][0]
    assert len(ids) == 77 and ids[-1] == 49407


def test_tokenizers_library_alone_gives_the_processor_tokenizer_ids_and_truncation_warning(tmp_path):
    from actionclip.tokenizer import NumpyTokenizer

    tokenizer = load_clip_tokenizer()
    tokenizer.save_pretrained(tmp_path)  # what a saved processor (and so an ONNX export) holds
    texts = ["a video of a person juggling balls.", "Tai  Chi", "tanzen im Café — 太极拳", "a", "word " * 200]
    with pytest.warns(UserWarning, match=r"text\[4\] \(202 tokens\) exceed 77 tokens"):
        got = NumpyTokenizer(tmp_path)(texts)
    expected = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="np")
    assert got["input_ids"].dtype == got["attention_mask"].dtype == np.int64
    assert got["input_ids"].shape == (5, 77)
    np.testing.assert_array_equal(got["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"])
    shorter = NumpyTokenizer(tmp_path)(texts[:4])  # padded to the longest text only
    assert shorter["input_ids"].shape[1] == int(expected["attention_mask"][:4].sum(1).max()) < 77

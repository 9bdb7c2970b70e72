"""The tiny family folders of `tests/backbone_families.py` are sound: transformers' Auto classes load them, their
processors feed their models, and their tokenizers are saved in the family's real format and round-trip prompts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from tests.backbone_families import FAMILIES, PROJECTION, TEXT, VISION, family_texts, make_family_dir

# What each family's model class, tokenizer class and tokenizer file on disk are.
MODEL_CLASS = {
    "clip": "CLIPModel",
    "siglip": "SiglipModel",
    "siglip2": "Siglip2Model",
    "metaclip_2": "MetaClip2Model",
    "chinese_clip": "ChineseCLIPModel",
    "altclip": "AltCLIPModel",
}
TOKENIZER = {
    "clip": ("CLIPTokenizer", "tokenizer.json", "BPE"),
    "siglip": ("SiglipTokenizer", "spiece.model", None),
    "siglip2": ("Siglip2Tokenizer", "tokenizer.json", "BPE"),
    "metaclip_2": ("XLMRobertaTokenizer", "tokenizer.json", "Unigram"),
    "chinese_clip": ("BertTokenizer", "vocab.txt", None),
    "altclip": ("XLMRobertaTokenizer", "tokenizer.json", "Unigram"),
}


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory):
    """Each family's folder, made once for the module's tests."""
    made = {}

    def get(family):
        if family not in made:
            made[family] = make_family_dir(family, tmp_path_factory.mktemp(family))
        return made[family]

    return get


def _embedding_width(family: str) -> int:
    # SigLIP compares the text head's output with the pooled vision states directly; the others project both.
    return VISION["hidden_size"] if family in ("siglip", "siglip2") else PROJECTION


def _features(output) -> torch.Tensor:
    # transformers 5 returns the pooled, projected features as the output's `pooler_output`.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@pytest.mark.parametrize("family", FAMILIES)
def test_processor_output_feeds_the_auto_loaded_model(family, family_dir):
    from transformers import AutoModel, AutoProcessor

    directory = family_dir(family)
    model = AutoModel.from_pretrained(directory).eval()
    processor = AutoProcessor.from_pretrained(directory)
    assert type(model).__name__ == MODEL_CLASS[family] and model.config.model_type == family
    text_config, vision_config = model.config.text_config, model.config.vision_config
    assert (text_config.hidden_size, vision_config.hidden_size) == (TEXT["hidden_size"], VISION["hidden_size"])
    assert text_config.num_hidden_layers != vision_config.num_hidden_layers
    assert text_config.vocab_size >= len(processor.tokenizer)

    texts = family_texts(family)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    inputs = processor(text=texts, images=[image], padding="max_length", truncation=True, return_tensors="pt")
    assert inputs["input_ids"].shape[1] <= text_config.max_position_embeddings
    text_keys = {"input_ids", "attention_mask", "token_type_ids"}
    text_inputs = {key: value for key, value in inputs.items() if key in text_keys}
    image_inputs = {key: value for key, value in inputs.items() if key not in text_keys}
    width = _embedding_width(family)
    with torch.no_grad():
        text_features = _features(model.get_text_features(**text_inputs))
        image_features = _features(model.get_image_features(**image_inputs))
        logits = model(**inputs).logits_per_image
    assert text_features.shape == (len(texts), width)
    assert image_features.shape == (1, width)
    assert logits.shape == (1, len(texts)) and torch.isfinite(logits).all()
    # The prompts differ, so a text tower that pools the right token gives different features.
    assert not torch.allclose(text_features[0], text_features[1])


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_is_saved_in_the_family_format(family, family_dir):
    from transformers import AutoConfig, AutoTokenizer

    directory = family_dir(family)
    tokenizer_class, file_name, json_model = TOKENIZER[family]
    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert type(tokenizer).__name__ == tokenizer_class
    assert (directory / file_name).is_file()
    if json_model is not None:
        model = json.loads((directory / file_name).read_text(encoding="utf-8"))["model"]
        assert model["type"] == json_model
        if family == "siglip2":  # Gemma: byte fallback over the 256 byte pieces
            assert model["byte_fallback"] and "<0x00>" in model["vocab"]
            assert [model["vocab"][token] for token in ("<pad>", "<eos>", "<bos>", "<unk>")] == [0, 1, 2, 3]
    if family == "siglip":
        import sentencepiece as spm

        model = spm.SentencePieceProcessor(model_file=str(directory / file_name))
        assert model.get_piece_size() == tokenizer.vocab_size and model.id_to_piece(1) == "</s>"
    if family == "chinese_clip":
        lines = (directory / file_name).read_text(encoding="utf-8").splitlines()
        assert lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and "视" in lines
        assert not (directory / "tokenizer.json").exists()  # loaded from vocab.txt, as a published folder is
    if family in ("metaclip_2", "altclip"):
        assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    # The text tower pools on (or pads with) the tokenizer's own special ids.
    text_config = AutoConfig.from_pretrained(directory).text_config
    assert text_config.pad_token_id == tokenizer.pad_token_id
    if family != "chinese_clip":  # BERT-style: pools the [CLS] position, no eos
        assert text_config.eos_token_id == tokenizer.eos_token_id


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_round_trips_the_prompts(family, family_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_dir(family))
    for text in family_texts(family):
        pieces = tokenizer.tokenize(text)  # (CLIP's unknown token is also its end token, so not the ids)
        assert pieces and tokenizer.unk_token not in pieces, pieces
        ids = tokenizer(text)["input_ids"]
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        if family == "chinese_clip":  # BERT splits Chinese characters apart and decodes them space-separated
            assert "".join(decoded.split()) == text
        else:  # SigLIP lower-cases and drops punctuation
            assert re.findall(r"\w+", decoded.lower()) == re.findall(r"\w+", text.lower())

"""Tiny, real, saved image-text model folders of six transformers families, each with its processor.

No pretrained weights or Hub files exist offline, so every tokenizer is built here in its family's real file format
(CLIP's BPE from the package's own vocabulary, SigLIP's SentencePiece ``spiece.model``, SigLIP 2's Gemma-style byte
fallback BPE ``tokenizer.json``, XLM-R's Unigram ``tokenizer.json``, Chinese-CLIP's BERT ``vocab.txt``), trained on a
small corpus of prompts. Every width differs (text 48, vision 40, projection 24; 3 text heads and 2 layers, 2 vision
heads and 3 layers) so that a tower or projection mix-up cannot pass by coincidence.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

FAMILIES: tuple[str, ...] = ("clip", "siglip", "siglip2", "metaclip_2", "chinese_clip", "altclip")

IMAGE_SIZE, PATCH_SIZE = 32, 8
# The text context: what the tokenizers pad and truncate to, and the text towers' position table (AltCLIP's RoBERTa
# tower needs two more, since its positions start after the padding id). The trained vocabularies are small (100-700
# pieces), so the multilingual prompts take up to ~25 tokens.
MAX_LENGTH = 32
TEXT = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=3)
VISION = dict(hidden_size=40, intermediate_size=80, num_hidden_layers=3, num_attention_heads=2, patch_size=PATCH_SIZE)
PROJECTION = 24
# SigLIP 2 takes a sequence of patches: a 32x32 image is 4x4 patches of 8.
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2

# Kinetics-like actions and ActionCLIP-like templates: the English corpus the tokenizers are trained on.
LABELS = tuple(
    label.strip()
    for label in """playing guitar, riding a bike, swimming, cooking pasta, jumping rope, reading a book,
    playing basketball, walking the dog, brushing teeth, climbing a rope, dancing ballet, eating cake, washing dishes,
    throwing a ball, skiing, surfing water, driving a car, painting a fence, writing a letter, singing, drinking coffee,
    folding clothes, kicking a soccer ball, tying a tie, pushing a cart, opening a bottle, juggling balls,
    shaving the head, skateboarding, hugging a baby""".split(",")
)
TEMPLATES = (
    "a video of a person {}.",
    "a photo of someone {}.",
    "a clip of {}.",
    "an example of a person {}.",
    "human action of {}",
    "{}, an action",
    "look, the human is {}",
    "playing action of {}",
)
MULTILINGUAL = (
    "a video of a person playing guitar.",
    "une vidéo d'une personne qui fait du vélo.",
    "ein Video von einer Person, die schwimmt.",
    "un vídeo de una persona cocinando pasta.",
    "一个人在跳绳的视频。",
)
CHINESE = ("一个人在弹吉他的视频。", "一个人在骑自行车的视频。", "一个人在游泳的视频。", "一个人在做饭的视频。")


def family_texts(family: str) -> list[str]:
    """A few label prompts in the family's language (Chinese for chinese_clip, mixed for the multilingual ones)."""
    if family == "chinese_clip":
        return list(CHINESE)
    if family in ("metaclip_2", "altclip"):
        return list(MULTILINGUAL)
    if family in FAMILIES:
        return [TEMPLATES[0].format(label) for label in LABELS[:4]]
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def _corpus() -> list[str]:
    """Every prompt of every family, so that no test prompt tokenizes to unknown pieces."""
    english = [template.format(label) for template in TEMPLATES for label in LABELS]
    # Repeated so that their words weigh like the English ones and become pieces, not single characters.
    return english + 8 * (list(MULTILINGUAL) + list(CHINESE))


# --- tokenizers and processors, one function per family ---------------------------------------------------------


def _clip_image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )


def _clip_processor():
    """CLIP's real BPE vocabulary (49408 tokens) ships with the package, so CLIP keeps its real ids."""
    from transformers import CLIPProcessor

    from actionclip.tokenizer import load_clip_tokenizer

    return CLIPProcessor(
        image_processor=_clip_image_processor(), tokenizer=load_clip_tokenizer(model_max_length=MAX_LENGTH)
    )


def _sentencepiece(texts: list[str], **special_ids: int) -> bytes:
    """A SentencePiece unigram model (the serialized ``.model``) trained on ``texts``; the corpus is small, so it
    keeps the pieces the corpus supports (100-150) rather than failing on the 300 asked for."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="unigram",
        vocab_size=300,
        hard_vocab_limit=False,
        character_coverage=1.0,  # keep every Chinese and accented character: none may become <unk>
        minloglevel=2,
        **special_ids,
    )
    return model.getvalue()


def _siglip_processor():
    """SigLIP's tokenizer is an English SentencePiece ``spiece.model`` (T5's layout: pad 0, eos 1, unk 2, no bos)
    that lower-cases; its pad token is the eos."""
    import tempfile

    from transformers import SiglipImageProcessor, SiglipProcessor, SiglipTokenizer

    english = [text.lower() for text in _corpus() if text.isascii()]
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = Path(scratch) / "spiece.model"
        vocab_file.write_bytes(_sentencepiece(english, pad_id=0, eos_id=1, unk_id=2, bos_id=-1))
        tokenizer = SiglipTokenizer(vocab_file=str(vocab_file), model_max_length=MAX_LENGTH)
    image_processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _trained_bpe(texts: list[str], vocab_size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """BPE pieces and merges learned on ``texts`` with spaces written as "▁" (SentencePiece's, and Gemma's, space)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False))
    model = json.loads(tokenizer.to_str())["model"]
    return list(model["vocab"]), [tuple(merge) for merge in model["merges"]]


def _siglip2_processor():
    """SigLIP 2 uses Gemma's tokenizer: BPE with byte fallback, ids <pad> 0, <eos> 1, <bos> 2, <unk> 3, <mask> 4,
    then the 256 byte pieces <0x00>..<0xFF>, then the learned pieces; lower-cased, no <bos> added (as the real one,
    ``add_bos_token: false``), padded on the left so that the last position, which the text tower pools, is text."""
    from transformers import Siglip2ImageProcessor, Siglip2Processor, Siglip2Tokenizer

    pieces, merges = _trained_bpe([text.lower() for text in _corpus()], vocab_size=400)
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    byte_pieces = [f"<0x{byte:02X}>" for byte in range(256)]
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(specials + byte_pieces + pieces))}
    # Siglip2Processor's class defaults (text max_length 64; patch_size 16, max_num_patches 256) override the image
    # processor's own settings at call time; only the tokenizer's init kwargs rank above them (ProcessorMixin's
    # `_merge_kwargs`, step 5), so the tiny sizes are recorded there too, for a plain processor call to fit the model.
    tiny_defaults = dict(max_length=MAX_LENGTH, patch_size=PATCH_SIZE, max_num_patches=NUM_PATCHES)
    tokenizer = Siglip2Tokenizer(vocab=vocab, merges=merges, model_max_length=MAX_LENGTH, **tiny_defaults)
    image_processor = Siglip2ImageProcessor(patch_size=PATCH_SIZE, max_num_patches=NUM_PATCHES)
    return Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer)


def _xlm_roberta_tokenizer():
    """XLM-R's tokenizer: a SentencePiece unigram model as a ``tokenizer.json`` (the layout transformers converts
    XLM-R to): <s> 0, <pad> 1, </s> 2, <unk> 3, the learned pieces with their scores, <mask> last."""
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer

    model = spm.SentencePieceProcessor(model_proto=_sentencepiece(_corpus(), bos_id=0, pad_id=1, eos_id=2, unk_id=3))
    pieces = [(model.id_to_piece(i), model.get_score(i)) for i in range(model.get_piece_size())]
    return XLMRobertaTokenizer(vocab=pieces + [("<mask>", 0.0)], model_max_length=MAX_LENGTH)


def _metaclip_2_processor():
    """MetaCLIP 2 pairs CLIP's processor with XLM-R's tokenizer; its text tower pools on the first </s> (id 2)."""
    from transformers import CLIPProcessor

    return CLIPProcessor(image_processor=_clip_image_processor(), tokenizer=_xlm_roberta_tokenizer())


def _altclip_processor():
    from transformers import AltCLIPProcessor

    return AltCLIPProcessor(image_processor=_clip_image_processor(), tokenizer=_xlm_roberta_tokenizer())


def _chinese_clip_processor():
    """Chinese-CLIP uses BERT's WordPiece ``vocab.txt``: BERT splits every Chinese character apart, so the vocabulary
    is the specials, the characters, and English words with a few "##" continuations."""
    import tempfile

    from transformers import BertTokenizer, ChineseCLIPImageProcessor, ChineseCLIPProcessor

    corpus = _corpus()
    characters = sorted({char for text in corpus for char in text if not char.isspace() and not char.isascii()})
    words = sorted({word.strip(".,'").lower() for text in corpus for word in text.split() if word.isascii()})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "'"] + characters + words + ["##s", "##ing"]
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "vocab.txt").write_text("\n".join(dict.fromkeys(tokens)) + "\n", encoding="utf-8")
        # Loaded the way a Hub folder holding only ``vocab.txt`` is (the constructor takes a vocab dict, not a file).
        tokenizer = BertTokenizer.from_pretrained(scratch, model_max_length=MAX_LENGTH)
    image_processor = ChineseCLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return ChineseCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


PROCESSORS = {
    "clip": _clip_processor,
    "siglip": _siglip_processor,
    "siglip2": _siglip2_processor,
    "metaclip_2": _metaclip_2_processor,
    "chinese_clip": _chinese_clip_processor,
    "altclip": _altclip_processor,
}


# --- models -------------------------------------------------------------------------------------------------------


def _config(family: str, tokenizer):
    """The family's tiny config, its special-token ids taken from ``tokenizer`` (the text towers pool on them)."""
    import transformers

    ids = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    text = dict(TEXT, max_position_embeddings=MAX_LENGTH, **ids)
    vision = dict(VISION, image_size=IMAGE_SIZE)
    if family in ("siglip", "siglip2"):
        # Both embeddings are compared directly: the text head projects to the vision width.
        text["projection_size"] = VISION["hidden_size"]
        if family == "siglip2":
            vision = dict(VISION, num_patches=NUM_PATCHES)
        config_class = transformers.SiglipConfig if family == "siglip" else transformers.Siglip2Config
        return config_class(text_config=text, vision_config=vision)
    if family == "altclip":
        # A RoBERTa text tower: positions start after the padding id; ``project_dim`` is its own output width.
        text.update(max_position_embeddings=MAX_LENGTH + 2, project_dim=TEXT["hidden_size"] + 8)
    config_class = {
        "clip": transformers.CLIPConfig,
        "metaclip_2": transformers.MetaClip2Config,
        "chinese_clip": transformers.ChineseCLIPConfig,
        "altclip": transformers.AltCLIPConfig,
    }[family]
    return config_class(text_config=text, vision_config=vision, projection_dim=PROJECTION)


def make_family_dir(family: str, directory: Path, seed: int = 0) -> Path:
    """Save a tiny random <Family>Model and its processor in ``directory``; return it. transformers' own
    ``AutoModel.from_pretrained`` / ``AutoProcessor.from_pretrained`` load it."""
    import transformers

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    processor = PROCESSORS[family]()
    config = _config(family, processor.tokenizer)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    if family == "chinese_clip":
        _keep_only_vocab_txt(processor.tokenizer, directory)
    return directory


def _keep_only_vocab_txt(tokenizer, directory: Path) -> None:
    """transformers 5 saves a BERT tokenizer as ``tokenizer.json`` alone; Chinese-CLIP's published folders hold
    ``vocab.txt`` (and no ``tokenizer.json``), so save that instead, for loading to take the real path."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    (directory / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    (directory / "tokenizer.json").unlink()

"""Everything downstream of the model on every backbone family: ONNX export and its runtime, index and search,
localisation, streaming, weight-space ensembling and the closed-set head, each on a real saved ActionCLIP folder of
the family (`backbone_families.make_family_dir`, then `from_backbone`) and real encoded videos."""

import json

import numpy as np
import onnx
import pytest
import torch
from backbone_families import FAMILIES, make_family_dir
from transformers import AutoModelForVideoClassification, pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the task and the Auto classes)
from actionclip import ActionCLIPForVideoClassification
from actionclip.apps.localization import localize
from actionclip.apps.search import VideoIndex
from actionclip.apps.streaming import StreamingClassifier
from actionclip.backbones import backbone_family
from actionclip.commands import main
from actionclip.modeling_actionclip import ActionCLIPModel
from actionclip.onnx.runtime import ActionCLIPOnnxModel, export_tokenizer, read_export_metadata
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.training.weight_ensembling import wise_ft

NUM_FRAMES, FPS = 4, 25
SIGMOID = {family for family in FAMILIES if backbone_family(family).sigmoid}
# Labels each family's tiny tokenizer knows (its vocabulary is trained on these words).
ENGLISH = ["playing guitar", "riding a bike", "swimming", "cooking pasta"]
LABELS = {family: ENGLISH for family in FAMILIES} | {"chinese_clip": ["弹吉他", "骑自行车", "游泳", "做饭"]}


def fusion_of(family: str) -> str:
    """Half the families with the transformer fusion (position embeddings, attention), half with the mean."""
    return "transf" if FAMILIES.index(family) % 2 == 0 else "meanP"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``folder(family)``: a saved ActionCLIP model folder of the family with its processor (built on first use),
    its logit scale raised so that the scores differ visibly between labels."""
    root = tmp_path_factory.mktemp("families")
    built = {}

    def folder(family: str):
        if family not in built:
            backbone = make_family_dir(family, root / f"{family}-backbone")
            model = ActionCLIPModel.from_backbone(backbone, fusion=fusion_of(family), num_frames=NUM_FRAMES)
            with torch.no_grad():
                model.logit_scale.fill_(np.log(30.0))
            processor = ActionCLIPProcessor.from_backbone(backbone, num_frames=NUM_FRAMES)
            model.save_pretrained(root / family)
            processor.save_pretrained(root / family)
            built[family] = root / family
        return built[family]

    return folder


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two short real videos in one folder (1.6 s and 1.2 s at 25 fps, of other sizes than the models')."""
    folder = tmp_path_factory.mktemp("videos")
    write_test_video(folder / "a.mp4", num_frames=40, height=48, width=56, fps=FPS, seed=1)
    write_test_video(folder / "b.mp4", num_frames=30, height=40, width=64, fps=FPS, seed=2)
    return folder


def by_label(results: list[dict]) -> dict:
    return {item["label"]: item["score"] for item in results}


def test_siglip_sentencepiece_tokenizer_converts_to_a_tokenizer_json_with_its_ids(tmp_path):
    """SigLIP's saved tokenizer is only ``spiece.model``; the export's ``tokenizer.json`` tokenizes as
    `SiglipTokenizer`, canonicalisation included (case, punctuation, whitespace runs, leading spaces)."""
    from tokenizers import Tokenizer
    from transformers import SiglipTokenizer

    from actionclip.tokenizer import tokenizer_json

    backbone = make_family_dir("siglip", tmp_path / "siglip")
    assert not (backbone / "tokenizer.json").exists() and (backbone / "spiece.model").is_file()
    slow = SiglipTokenizer.from_pretrained(backbone)
    converted = Tokenizer.from_str(tokenizer_json(slow))
    texts = [
        "a video of a person playing guitar.",
        "  Playing,  GUITAR!! it's ok ",
        "a\tclip\nof (juggling) balls",
        "",
    ]
    texts += ["café naïve", "一个人", "swimming; cooking-pasta"]
    for text in texts:
        assert converted.encode(text).ids == slow(text)["input_ids"], text


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_export_scores_as_pytorch(family, folders, videos, tmp_path, capsys):
    model_dir, export_dir = folders(family), tmp_path / "onnx"
    assert main(["export", str(model_dir), str(export_dir)]) == 0
    model = ActionCLIPModel.from_pretrained(model_dir).eval()
    processor = ActionCLIPProcessor.from_pretrained(model_dir)
    metadata = read_export_metadata(export_dir)
    # The runtime tokenizes with the model's context and padding, and scores with its logit bias.
    assert {key: metadata["text"][key] for key in ("context_length", "padding")} == {
        "context_length": processor.context_length,
        "padding": "max_length" if family in ("siglip", "siglip2") else "longest",
    }
    if family in SIGMOID:
        assert metadata["logit_bias"] == pytest.approx(model.score_bias().item())
    else:
        assert metadata["logit_bias"] is None
    # The text graph takes ids and mask alone (BERT/RoBERTa towers default token_type_ids to the zeros of one text).
    text_graph = onnx.load(str(export_dir / "text_encoder.onnx"))
    assert [tensor.name for tensor in text_graph.graph.input] == ["input_ids", "attention_mask"]
    # The frame graph takes frames on every family (SigLIP 2's patch sequences are cut inside it).
    (frames,) = onnx.load(str(export_dir / "frame_encoder.onnx")).graph.input
    assert [dim.dim_value for dim in frames.type.tensor_type.shape.dim][1:] == [3, 32, 32]

    texts = [template.replace("{}", label, 1) for template in processor.templates[:3] for label in LABELS[family]]
    expected = processor(text=texts, padding=True, return_tensors="pt")
    got = export_tokenizer(export_dir)(texts)
    np.testing.assert_array_equal(got["input_ids"], expected["input_ids"].numpy())
    np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"].numpy())
    onnx_model = ActionCLIPOnnxModel.from_pretrained(export_dir)
    with torch.no_grad():
        text_embeds = model.get_text_features(**expected).pooler_output.numpy()
        pixel_values = processor(videos=str(videos / "a.mp4"))["pixel_values"]
        video_embeds = model.get_video_features(pixel_values).pooler_output.numpy()
    np.testing.assert_allclose(onnx_model.encode_text(got["input_ids"], got["attention_mask"]), text_embeds, atol=1e-4)
    np.testing.assert_allclose(onnx_model.encode_video(pixel_values.numpy()), video_embeds, atol=1e-4)

    # `actionclip classify` on the export (onnxruntime and numpy alone) gives the PyTorch pipeline's scores.
    video, labels = str(videos / "a.mp4"), LABELS[family]
    capsys.readouterr()
    assert main(["classify", video, "--model", str(export_dir), "--labels", ",".join(labels), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    reference = classifier(video, candidate_labels=labels)
    assert [item["label"] for item in result["predictions"]] == [item["label"] for item in reference]
    scores = by_label(result["predictions"])
    assert [scores[label] for label in labels] == pytest.approx([by_label(reference)[x] for x in labels], abs=1e-4)
    # Sigmoid families score each label on its own; the others' scores are a softmax over the labels.
    if family not in SIGMOID:
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_index_two_videos_and_search_them_by_text(family, folders, videos, tmp_path, capsys):
    model_dir, index_path = folders(family), tmp_path / "videos.index"
    assert main(["index", str(videos), "--out", str(index_path), "--model", str(model_dir)]) == 0
    assert "2 of 2 files, 2 vectors (2 added)" in capsys.readouterr().out
    text = LABELS[family][0]
    assert main(["search", str(index_path), text, "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert sorted(hit["path"].rsplit("/", 1)[-1] for hit in hits) == ["a.mp4", "b.mp4"]
    # The score is the cosine of the text and the video embeddings on every family (sigmoid families included:
    # their scores are a monotonic function of it, so the ranking is theirs).
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    labels, templater, _ = classifier.prepare_labels([text], ["{}"])
    query = torch.nn.functional.normalize(classifier.text_embeddings(labels, templater).float(), dim=-1)[0]
    index = VideoIndex.open(index_path)
    for hit in hits:
        vector = index.embeddings[index.paths.index(hit["path"].rsplit("/", 1)[-1])].astype(np.float32)
        assert hit["score"] == pytest.approx(float(vector @ query.numpy()), abs=2e-3)
    assert hits[0]["score"] >= hits[1]["score"]


@pytest.mark.parametrize("family", FAMILIES)
def test_localize_and_stream_score_windows_as_the_pipeline(family, folders, videos):
    classifier = pipeline("zero-shot-video-classification", model=str(folders(family)), device="cpu")
    labels, video = LABELS[family], str(videos / "a.mp4")
    offline = localize(classifier, video, labels, window=0.8, stride=0.4)
    assert offline.scores.shape == (len(offline.grid.starts), len(labels)) and len(offline.grid.starts) >= 2
    assert np.isfinite(offline.scores).all() and ((offline.scores > 0) & (offline.scores < 1)).all()
    if family not in SIGMOID:
        np.testing.assert_allclose(offline.scores.sum(1), 1.0, atol=1e-5)
    stream = StreamingClassifier(classifier, labels, window=0.8, stride=0.4)
    results = list(stream.run(video, timeout=5))
    streamed = np.array([[result["scores"][label] for label in labels] for result in results])
    np.testing.assert_allclose(streamed, offline.scores, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_wise_ft_command_interpolates_the_family_weights(family, folders, videos, tmp_path):
    zero_shot_dir = folders(family)
    fine_tuned = ActionCLIPModel.from_pretrained(zero_shot_dir)
    with torch.no_grad():  # a "fine-tuned" model: every weight moved
        for parameter in fine_tuned.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    fine_tuned.save_pretrained(tmp_path / "fine_tuned")
    ActionCLIPProcessor.from_pretrained(zero_shot_dir).save_pretrained(tmp_path / "fine_tuned")
    out = tmp_path / "half"
    assert main(["wise-ft", str(zero_shot_dir), str(tmp_path / "fine_tuned"), str(out), "--alpha", "0.5"]) == 0
    mixed = ActionCLIPModel.from_pretrained(out)
    assert mixed.config.backbone == family
    # The two folders as loaded (a BERT tower's padding row is zeroed on loading: the reloaded fine-tuned model's).
    zero_shot, fine_tuned = (
        ActionCLIPModel.from_pretrained(path) for path in (zero_shot_dir, tmp_path / "fine_tuned")
    )
    expected = wise_ft(zero_shot, fine_tuned, 0.5).state_dict()
    for name, tensor in mixed.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], msg=name)
    # The ensembled folder classifies with the family's tokenizer (its processor was saved beside it).
    results = pipeline("zero-shot-video-classification", model=str(out), device="cpu")(
        str(videos / "a.mp4"), candidate_labels=LABELS[family]
    )
    assert {item["label"] for item in results} == set(LABELS[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_closed_set_head_from_the_folder_scores_as_the_zero_shot_embedding_ensemble(family, folders, videos, tmp_path):
    model_dir, labels, video = folders(family), LABELS[family], str(videos / "b.mp4")
    head = ActionCLIPForVideoClassification.from_pretrained(model_dir, id2label=dict(enumerate(labels)))
    head.save_pretrained(tmp_path / "closed")
    ActionCLIPProcessor.from_pretrained(model_dir).save_pretrained(tmp_path / "closed")
    assert isinstance(AutoModelForVideoClassification.from_pretrained(tmp_path / "closed"), type(head))
    results = pipeline("video-classification", model=str(tmp_path / "closed"), device="cpu")(video, top_k=len(labels))
    zero_shot = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    expected = by_label(zero_shot(video, candidate_labels=labels, ensemble="embedding"))
    # The same scores: a softmax over the labels, or each label's sigmoid with the family's logit bias.
    assert [by_label(results)[label] for label in labels] == pytest.approx([expected[x] for x in labels], abs=1e-4)


@pytest.mark.parametrize("family", ["chinese_clip", "siglip"])
def test_classify_counts_description_tokens_with_the_model_tokenizer(family, folders, videos, tmp_path, capsys):
    """Long descriptions are counted in the model's own tokens against its own context (32 in these tiny models),
    for a model folder and for its ONNX export."""
    model_dir = folders(family)
    labels = LABELS[family]
    long = " ".join([labels[0]] * 12)  # over 32 tokens in every family's vocabulary, under CLIP's 77
    (tmp_path / "descriptions.json").write_text(
        json.dumps({labels[0]: [long], labels[1]: [labels[1]]}, ensure_ascii=False), encoding="utf-8"
    )
    models = [str(model_dir)]
    if family == "siglip":
        assert main(["export", str(model_dir), str(tmp_path / "onnx")]) == 0
        models.append(str(tmp_path / "onnx"))
    for model in models:
        capsys.readouterr()
        arguments = ["classify", str(videos / "a.mp4"), "--model", model, "--json"]
        assert main([*arguments, "--descriptions", str(tmp_path / "descriptions.json"), "--templates", "{}"]) == 0
        captured = capsys.readouterr()
        assert "1 of 2 description prompts exceed 32 tokens" in captured.err, captured.err
        assert {item["label"] for item in json.loads(captured.out)[0]["predictions"]} == set(labels[:2])


@pytest.mark.parametrize("family", FAMILIES)
def test_eval_runs_the_closed_set_protocol_on_the_family(family, folders, video_data, tmp_path):
    out = tmp_path / "eval"
    main(
        ["eval", "--model", str(folders(family)), "--output_dir", str(out), "--protocol", "closed_set",
         "--dataset_format", "list", "--eval_path", str(video_data.list_file("val")),
         "--class_names", str(video_data.root / "labels.csv"), "--num_clips", "1", "--num_crops", "1",
         "--no_progress"]
    )  # fmt: skip
    report = json.loads((out / "closed_set" / "test" / "evaluation.json").read_text())
    assert report["num_videos"] == len(video_data.videos("val"))
    assert report["metadata"]["frames"] == NUM_FRAMES
    assert 0.0 <= report["metrics"]["top1_accuracy"] <= 1.0


@pytest.mark.parametrize("family", FAMILIES)
def test_the_web_app_ranks_labels_as_the_family_s_pipeline(family, folders, videos):
    from actionclip.apps.web_app import VideoClassifierApp

    classifier = pipeline("zero-shot-video-classification", model=str(folders(family)), device="cpu")
    ranked, strip = VideoClassifierApp(classifier).classify(str(videos / "a.mp4"), "\n".join(LABELS[family]), top_k=3)
    assert ranked == classifier(str(videos / "a.mp4"), candidate_labels=LABELS[family], top_k=3)
    assert len(strip) == NUM_FRAMES

"""The ways a transformers user works: the processor called as `ProcessorMixin` processors are, and the plain
`transformers.Trainer` evaluating class accuracy (issue 29), on real encoded videos and tiny real models."""

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

from actionclip import errors
from actionclip.data.video_writer import write_video
from actionclip.processing_actionclip import ActionCLIPProcessor

# -- processor keywords (issue 29, item 1)

TEXTS = ["a", "a video of a person juggling balls"]  # 3 and 10 tokens with the start and end tokens


@pytest.fixture(scope="module")
def processor():
    return ActionCLIPProcessor.from_settings(image_size=32, num_frames=4)


@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    """12 frames of 40x56 noise, H.264: a real file the processor decodes and TSN-samples to 4 frames."""
    frames = np.random.default_rng(0).integers(0, 256, size=(12, 40, 56, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    write_video(path, frames, fps=12.0)
    return str(path)


def test_standard_call_with_padding_and_truncation(processor, video_file):
    out = processor(videos=video_file, text=TEXTS, padding=True, truncation=True, return_tensors="pt")
    assert out["pixel_values"].shape == (1, 4, 3, 32, 32)
    assert out["input_ids"].shape == out["attention_mask"].shape == (2, 10)
    assert out["attention_mask"].sum(dim=1).tolist() == [3, 10]


def test_text_is_not_padded_unless_asked_as_clip_processor(processor):
    assert processor(text="a video of a person juggling balls")["input_ids"].shape == (1, 10)
    out = processor(text=TEXTS, return_tensors=None)
    assert [len(ids) for ids in out["input_ids"]] == [3, 10]


@pytest.mark.parametrize(
    ("padding", "max_length", "length"), [(True, None, 10), ("longest", None, 10), ("max_length", 16, 16)]
)
def test_padding_keywords(processor, video_file, padding, max_length, length):
    options = {} if max_length is None else {"max_length": max_length}
    out = processor(videos=video_file, text=TEXTS, padding=padding, truncation=True, **options)
    assert out["input_ids"].shape == (2, length)
    assert out["attention_mask"].sum(dim=1).tolist() == [3, 10]


def test_padding_false_gives_lists_or_equal_lengths_and_a_typed_error_for_a_ragged_tensor(processor, video_file):
    out = processor(videos=video_file, text=TEXTS, padding=False, return_tensors=None)
    assert [len(ids) for ids in out["input_ids"]] == [3, 10]
    same_length = processor(text=["tai chi", "playing guitar"], padding=False)
    assert same_length["input_ids"].shape == (2, 4)
    with pytest.raises(errors.ProcessorArgumentError, match=r"padding=False.*padding=True"):
        processor(videos=video_file, text=TEXTS, padding=False, return_tensors="pt")


def test_truncation_and_max_length(processor):
    long_text = "juggling " * 30  # 62 tokens
    with pytest.warns(UserWarning, match="truncated"):
        cut = processor(text=[long_text], truncation=True, max_length=10)
    assert cut["input_ids"].shape == (1, 10) and cut["input_ids"][0, -1] == processor.tokenizer.eos_token_id
    whole = processor(text=[long_text], truncation=False, max_length=10)
    assert whole["input_ids"].shape == (1, 62)
    with pytest.raises(errors.InvalidLabelsError, match=r"77 tokens and truncation=False"):
        processor(text=["juggling " * 100], truncation=False)


@pytest.mark.parametrize("return_tensors", ["pt", "np", None])
def test_return_tensors(processor, video_file, return_tensors):
    out = processor(videos=video_file, text=TEXTS, padding=True, truncation=True, return_tensors=return_tensors)
    if return_tensors == "pt":
        assert isinstance(out["pixel_values"], torch.Tensor) and isinstance(out["input_ids"], torch.Tensor)
    elif return_tensors == "np":
        assert isinstance(out["pixel_values"], np.ndarray) and isinstance(out["input_ids"], np.ndarray)
        assert out["pixel_values"].shape == (1, 4, 3, 32, 32) and out["input_ids"].shape == (2, 10)
    else:
        assert isinstance(out["input_ids"], list) and isinstance(out["input_ids"][0], list)
        assert isinstance(out["pixel_values"], list) and out["pixel_values"][0].shape == (4, 3, 32, 32)


def test_modality_kwargs_are_routed_to_their_modality(processor, video_file):
    out = processor(
        videos=video_file,
        text=TEXTS,
        text_kwargs={"padding": "max_length", "max_length": 12},
        videos_kwargs={"return_tensors": "np"},
    )
    assert isinstance(out["input_ids"], torch.Tensor) and out["input_ids"].shape == (2, 12)
    assert isinstance(out["pixel_values"], np.ndarray)
    flat = processor(videos=video_file, training=True, seed=3)["pixel_values"]
    routed = processor(videos=video_file, videos_kwargs={"training": True, "seed": 3})["pixel_values"]
    assert torch.equal(flat, routed)
    assert not torch.equal(routed, processor(videos=video_file)["pixel_values"])


def test_common_kwargs_reach_both_modalities_and_flat_keywords_win(processor, video_file):
    out = processor(videos=video_file, text=TEXTS, padding=True, common_kwargs={"return_tensors": "np"})
    assert isinstance(out["pixel_values"], np.ndarray) and isinstance(out["input_ids"], np.ndarray)
    out = processor(
        videos=video_file, text=TEXTS, padding=True, return_tensors="pt", common_kwargs={"return_tensors": "np"}
    )
    assert isinstance(out["pixel_values"], torch.Tensor) and isinstance(out["input_ids"], torch.Tensor)
    with pytest.raises(errors.ProcessorArgumentError, match="padding was passed two times"):
        processor(text=TEXTS, padding=True, text_kwargs={"padding": False})


def test_images_is_x_clips_name_for_the_frames(processor, video_file):
    by_images = processor(images=video_file, text=TEXTS, padding=True)
    by_videos = processor(videos=video_file, text=TEXTS, padding=True)
    assert torch.equal(by_images["pixel_values"], by_videos["pixel_values"])
    with pytest.raises(errors.ProcessorArgumentError, match="not both"):
        processor(videos=video_file, images=video_file)


def test_text_only_calls_honour_the_keywords(processor):
    out = processor(text=TEXTS, text_kwargs={"padding": "max_length", "max_length": 11})
    assert out["input_ids"].shape == (2, 11)
    out = processor(text=TEXTS, padding=True, common_kwargs={"return_tensors": "np"})
    assert isinstance(out["input_ids"], np.ndarray) and out["input_ids"].shape == (2, 10)
    with pytest.raises(errors.ProcessorArgumentError, match="do_flipp"):
        processor(text=TEXTS, padding=True, videos_kwargs={"do_flipp": False})


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (dict(truncate=True), "truncate"),
        (dict(text_kwargs={"paddng": True}), "paddng"),
        (dict(common_kwargs={"retrun_tensors": "np"}), "retrun_tensors"),
        (dict(images_kwargs={"crop_size": 32}), "images_kwargs"),
    ],
)
@pytest.mark.parametrize("with_video", [True, False])
def test_unknown_keyword_is_a_typed_error_naming_it(processor, video_file, call, named, with_video):
    videos = video_file if with_video else None
    with pytest.raises(errors.ProcessorArgumentError, match=named):
        processor(videos=videos, text=TEXTS, padding=True, **call)


# -- plain Trainer (issue 29, item 4)

EVAL_TEMPLATES = ["a video of {}.", "{}, in a clip"]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """3 classes (red, green, blue square moving left), 2 training and 2 validation clips each, 32x32, real H.264."""
    from actionclip.data.synthetic import SyntheticActionConfig, generate_synthetic_dataset

    root = tmp_path_factory.mktemp("three_classes")
    config = SyntheticActionConfig(
        colors=("red", "green", "blue"),
        shapes=("square",),
        motions=("moving left",),
        num_frames=8,
        size=(32, 32),
        videos_per_class=2,
        val_videos_per_class=2,
        zeroshot_videos_per_class=0,
        zeroshot_fraction=0.0,
    )
    generate_synthetic_dataset(root, config)
    return root


def three_class_datasets(root, **options):
    from actionclip.data.datasets import VideoClassificationDataset

    labels = root / "labels.csv"
    train = VideoClassificationDataset.from_folder(root / "train", labels, num_frames=4, image_size=32, **options)
    val = VideoClassificationDataset.from_folder(root / "val", labels, num_frames=4, image_size=32, **options)
    assert len(val.label_names) == 3 and len(val) == 6
    return train, val


def plain_arguments(output_dir, batch_size=2, **overrides):
    from transformers import TrainingArguments

    values = dict(
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        remove_unused_columns=False,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    values.update(overrides)
    return TrainingArguments(str(output_dir), **values)


def eval_model():
    model = tiny_model(seed=1, num_frames=4, fusion_num_layers=1, templates=EVAL_TEMPLATES)
    with torch.no_grad():
        model.logit_scale.fill_(np.log(50.0))  # scores away from uniform, so a wrong scoring shows
    return model


@pytest.mark.parametrize("batch_size", [2, 4])
def test_plain_trainer_evaluates_class_scores_like_actionclip_trainer(three_classes, tmp_path, batch_size):
    """Batch sizes other than the 3 classes (4 gives a partial last batch): the predictions are (6, 3) class
    scores, equal to ActionCLIPTrainer's, and so are the accuracies."""
    from transformers import Trainer

    from actionclip.data.collator import ActionCLIPCollator
    from actionclip.evaluation.metrics import make_compute_metrics
    from actionclip.training.trainer import ActionCLIPTrainer

    train, val = three_class_datasets(three_classes)
    model = eval_model()
    collator = ActionCLIPCollator(val.label_names, templates=EVAL_TEMPLATES)
    common = dict(
        model=model,
        args=plain_arguments(tmp_path, batch_size),
        train_dataset=train,
        eval_dataset=val,
        data_collator=collator,
        compute_metrics=make_compute_metrics(ks=(1, 3)),
    )
    plain, ours = Trainer(**common), ActionCLIPTrainer(**common)
    plain_scores, ours_scores = plain.predict(val).predictions, ours.predict(val).predictions
    assert plain_scores.shape == ours_scores.shape == (6, 3)
    np.testing.assert_allclose(plain_scores, ours_scores, atol=1e-5)
    np.testing.assert_allclose(plain_scores.sum(axis=1), 1.0, atol=1e-5)
    metrics, expected = plain.evaluate(), ours.evaluate()
    names = {"eval_top1_accuracy", "eval_top3_accuracy", "eval_mean_class_accuracy"}
    assert names == {key for key in metrics if key.endswith("accuracy")}
    for name in names:
        assert metrics[name] == pytest.approx(expected[name]), name


def test_plain_trainer_with_the_default_collator_says_what_to_pass(three_classes, tmp_path):
    from transformers import Trainer

    train, val = three_class_datasets(three_classes)
    trainer = Trainer(model=eval_model(), args=plain_arguments(tmp_path), train_dataset=train, eval_dataset=val)
    with pytest.raises(errors.ModelInputError, match=r"data_collator=ActionCLIPCollator.*remove_unused_columns=False"):
        trainer.evaluate()


def test_plain_trainer_removing_unused_columns_says_what_to_pass(three_classes, tmp_path):
    """transformers' default `remove_unused_columns=True` drops the uint8 frames of a dataset that transforms on
    the device (the model's forward does not name them)."""
    from transformers import Trainer

    from actionclip.data.collator import ActionCLIPCollator

    train, val = three_class_datasets(three_classes, transform_on_device=True)
    trainer = Trainer(
        model=eval_model(),
        args=plain_arguments(tmp_path, remove_unused_columns=True),
        train_dataset=train,
        eval_dataset=val,
        data_collator=ActionCLIPCollator(val.label_names, templates=EVAL_TEMPLATES),
    )
    with pytest.raises(errors.DatasetFormatError, match=r"remove_unused_columns=False"):
        trainer.evaluate()


def test_plain_trainer_without_the_label_set_prompts_says_what_to_pass(three_classes, tmp_path):
    """A collator of the user's own that gives prompts but not the label set's: no class scores, and
    compute_metrics says so instead of scoring video-by-prompt logits."""
    from transformers import Trainer

    from actionclip.data.collator import CLASS_PROMPT_KEYS, ActionCLIPCollator
    from actionclip.evaluation.metrics import make_compute_metrics

    train, val = three_class_datasets(three_classes)
    collator = ActionCLIPCollator(val.label_names, templates=EVAL_TEMPLATES)

    def prompts_only(features):
        return {key: value for key, value in collator(features).items() if key not in CLASS_PROMPT_KEYS}

    trainer = Trainer(
        model=eval_model(),
        args=plain_arguments(tmp_path),
        train_dataset=train,
        eval_dataset=val,
        data_collator=prompts_only,
        compute_metrics=make_compute_metrics(),
    )
    with pytest.raises(errors.EvaluationSetupError, match=r"ActionCLIPCollator"):
        trainer.evaluate()

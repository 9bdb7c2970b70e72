"""Model folders checked before their weights are read, and the model with its processor loaded from them: the typed
errors every caller (pipeline, evaluation, ONNX export, commands) gets."""

import pytest
from tiny_models import make_tiny_clip_dir, tiny_model

from actionclip import ActionCLIPForVideoClassification
from actionclip.errors import MissingProcessorError, ModelFolderError, WrongModelKindError
from actionclip.model_kinds import IMAGE_TEXT, ZERO_SHOT
from actionclip.model_loading import (
    check_model_folder,
    check_model_path,
    check_saved_processor,
    load_model_and_processor,
    load_saved_processor,
)
from actionclip.processing_actionclip import ActionCLIPProcessor

SAVED_MEAN = [0.25, 0.5, 0.75]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """An ActionCLIP folder with its processor (other than the config's default), one without, a closed-set one and
    a plain CLIP one."""
    root = tmp_path_factory.mktemp("folders")
    saved = tiny_model(seed=1, num_frames=12)
    saved.save_pretrained(root / "actionclip")
    ActionCLIPProcessor.from_model_config(saved.config, image_mean=SAVED_MEAN).save_pretrained(root / "actionclip")
    model = tiny_model(seed=2, num_frames=6)
    processor = ActionCLIPProcessor.from_model_config(model.config)
    model.save_pretrained(root / "no_processor")
    classifier = ActionCLIPForVideoClassification.from_actionclip(model, ["a", "b", "c"], processor.tokenizer)
    classifier.save_pretrained(root / "closed_set")
    make_tiny_clip_dir(root / "clip")
    return root


def test_a_mistyped_local_folder_is_refused_naming_the_close_match(tmp_path, monkeypatch):
    (tmp_path / "runs" / "model_transf").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFolderError, match=r"'runs/model_tranf': no such directory \(did you mean 'runs/model_tr"):
        check_model_path("runs/model_tranf")
    check_model_path("runs/model_transf")
    check_model_path("org/name")  # a Hub id: transformers' business


def test_a_folder_is_checked_for_its_kind_and_processor_before_any_weight_is_read(folders):
    assert check_model_folder(str(folders / "actionclip")) == ZERO_SHOT
    assert check_model_folder(str(folders / "clip")) == IMAGE_TEXT  # converted, with CLIP's processor, on the fly
    assert check_model_folder("org/name") is None
    with pytest.raises(WrongModelKindError, match="closed-set ActionCLIPForVideoClassification"):
        check_model_folder(str(folders / "closed_set"))
    with pytest.raises(MissingProcessorError, match=r"no processor_config.json: .*ActionCLIPProcessor.from_model"):
        check_model_folder(str(folders / "no_processor"))


def test_only_an_open_set_actionclip_folder_needs_a_saved_processor(folders):
    for name in ("actionclip", "closed_set", "clip"):
        check_saved_processor(str(folders / name))
    with pytest.raises(MissingProcessorError, match="no_processor"):
        check_saved_processor(str(folders / "no_processor"))


def test_an_unreadable_config_is_a_typed_error_naming_the_folder(tmp_path):
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFolderError, match=r"unreadable config.json"):
        check_model_folder(str(tmp_path))


def test_the_saved_processor_is_found_where_the_model_was_loaded_from(folders):
    model, processor = load_model_and_processor(folders / "actionclip")
    assert model.config.num_frames == processor.num_frames == 12
    assert list(processor.video_processor.image_mean) == SAVED_MEAN
    assert list(load_saved_processor(model).video_processor.image_mean) == SAVED_MEAN
    with pytest.raises(MissingProcessorError, match="not loaded from a directory"):
        load_saved_processor(tiny_model(seed=3))


def test_evaluation_gets_the_configs_default_processor_where_none_was_saved(folders, tmp_path):
    model, processor = load_model_and_processor(folders / "no_processor")
    assert processor.num_frames == model.config.num_frames == 6
    assert list(processor.video_processor.image_mean) == list(
        ActionCLIPProcessor.from_settings().video_processor.image_mean
    )
    assert not model.training
    with pytest.raises(ModelFolderError, match="no config.json: not a saved model directory"):
        load_model_and_processor(tmp_path)

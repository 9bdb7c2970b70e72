"""Model cards for ActionCLIP checkpoints: Hub metadata (`model-index` filled from evaluation JSONs) and a
README body describing the architecture, prompts, evaluation protocol, intended use and limitations.

Everything here works offline. `ModelCard.validate()` posts the card to the Hub, so `check_model_card` does the
checks that need no network: the YAML parses into `ModelCardData`, and the `model-index` survives
`model_index_to_eval_results` / `eval_results_to_model_index` unchanged.

The pipeline tag is `video-classification`: the Hub's task list (huggingface.js `PIPELINE_DATA`) has no
`zero-shot-video-classification`, and `huggingface_hub` does not check tags offline, so an unknown tag would
only fail when the Hub validates the card. `zero-shot-video-classification` goes into `tags` instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from huggingface_hub.utils import HFValidationError, validate_repo_id

from ..errors import ModelCardError, ModelConfigNotFoundError
from ..evaluation.reports import load_evaluation_report, read_json_file

# Hub license identifiers: lowercase letters, digits, '.', '+' and '-' ('mit', 'apache-2.0', 'openrail++', 'other').
_LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")

TEMPLATE_PATH: Path = Path(__file__).resolve().parent / "model_card_template.md"

PIPELINE_TAG = "video-classification"
TASK_TYPE = "video-classification"
TAGS: tuple[str, ...] = ("actionclip", "video", "action-recognition", "zero-shot-video-classification")
# How a card names each image-text family the model is built on (`ActionCLIPConfig.backbone`).
BACKBONE_NAMES = {
    "clip": "CLIP",
    "metaclip_2": "MetaCLIP 2",
    "chinese_clip": "Chinese-CLIP",
    "altclip": "AltCLIP",
    "siglip": "SigLIP",
    "siglip2": "SigLIP 2",
}
FUSION_TYPES: tuple[str, ...] = ("meanP", "conv1d", "lstm", "transf", "transf_cls")

# Report metadata keys copied into the dataset `args` of a model-index result: how the numbers were obtained.
PROTOCOL_KEYS: tuple[str, ...] = ("protocol", "views", "frames", "templates")

DEFAULT_INTENDED_USE = (
    "Recognising human actions in short video clips, either among the classes it was trained on or, zero-shot, "
    "among any class names given as text. Intended for research, for indexing and searching video collections, "
    "and as a starting point for fine-tuning on a new action vocabulary."
)

DEFAULT_LIMITATIONS: tuple[str, ...] = (
    "Accuracy depends on the evaluation protocol: the number of frames, of spatial and temporal views and of "
    "prompt templates all change the numbers; compare only numbers obtained with the same protocol.",
    "It sees a few sparsely sampled frames per clip, so actions that differ only in fine motion or temporal "
    "order (e.g. opening vs. closing) are harder, especially with the `meanP` fusion, which ignores frame order.",
    "Class names are read as text through the backbone's tokenizer, in the languages it was trained on; names in "
    "other languages, jargon or ambiguous names lower zero-shot accuracy, and the template wording matters.",
    "The image-text backbone was trained on web image-text pairs and carries their social biases; action datasets such as "
    "Kinetics over-represent some sports, countries and demographics. Accuracy can differ between groups of "
    "people and settings that the training data covers unevenly.",
)

SYNTHETIC_TRAINING_LIMITATION = (
    "This checkpoint was trained on synthetic videos (coloured shapes in motion, from `actionclip.data.synthetic`), not on real footage: it "
    "demonstrates and tests the training code and is not expected to recognise real human actions."
)
SYNTHETIC_EVALUATION_LIMITATION = (
    "Some evaluation numbers were measured on synthetic videos; they check the pipeline end to end and say "
    "nothing about accuracy on real videos."
)


def read_model_config(model_dir: str | Path) -> dict:
    """The `config.json` of an ActionCLIP model folder, checked for the keys a model card describes."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ModelConfigNotFoundError(f"no config.json in model folder {model_dir}: save the model there first")
    config = read_json_file(path, ModelConfigNotFoundError, ModelCardError, "model config")
    if not isinstance(config, dict):
        raise ModelCardError(f"{path} must hold a JSON object, got {type(config).__name__}")
    if config.get("model_type") != "actionclip":
        raise ModelCardError(f"{path} has model_type {config.get('model_type')!r}, expected 'actionclip'")
    fusion = config.get("fusion", "transf")
    if fusion not in FUSION_TYPES:
        raise ModelCardError(f"{path} has fusion {fusion!r}, expected one of {list(FUSION_TYPES)}")
    num_frames = config.get("num_frames")
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ModelCardError(f"{path} must give num_frames as a positive integer, got {num_frames!r}")
    templates = config.get("templates", [])
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise ModelCardError(f"{path} must give templates as a list of strings, got {templates!r}")
    for key in ("vision_config", "text_config"):
        if not isinstance(config.get(key, {}), dict):
            raise ModelCardError(f"{path} must give {key} as an object, got {type(config[key]).__name__}")
    for key in ("joint", "shift"):
        if not isinstance(config.get(key, False), bool):
            raise ModelCardError(f"{path} must give {key} as true or false, got {config[key]!r}")
    return config


def _collect_reports(eval_results) -> list[dict]:
    """Evaluation reports from dicts, `evaluation.json` paths or folders holding one (or a list of those)."""
    if eval_results is None:
        return []
    if isinstance(eval_results, (str, Path, dict)):
        eval_results = [eval_results]
    if not isinstance(eval_results, Sequence):
        raise TypeError(
            f"eval_results must be report dicts or paths to evaluation JSONs, got {type(eval_results).__name__}"
        )
    reports = []
    for index, item in enumerate(eval_results):
        if isinstance(item, (str, Path)):
            reports.append(load_evaluation_report(item))
        elif isinstance(item, dict):
            if "metrics" not in item or "metadata" not in item:
                raise ModelCardError(
                    f"eval_results[{index}] lacks 'metrics' or 'metadata': pass write_evaluation_report's output"
                )
            reports.append(item)
        else:
            raise TypeError(f"eval_results[{index}] must be a report dict or a path, got {type(item).__name__}")
    return reports


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _metric_type_and_name(key: str) -> tuple[str, str, dict | None]:
    """model-index metric `type`, display `name` and `args` for a report metric key."""
    if key == "top1_accuracy":
        return "accuracy", "Top-1 Accuracy", None
    match = re.fullmatch(r"top(\d+)_accuracy", key)
    if match:
        k = int(match.group(1))
        return f"top-{k}-accuracy", f"Top-{k} Accuracy", {"k": k}
    if key == "mean_class_accuracy":
        return "mean-class-accuracy", "Mean Class Accuracy", None
    return _slug(key), key.replace("_", " ").title(), None


def _protocol_args(metadata: dict) -> dict | None:
    args = {}
    for key in PROTOCOL_KEYS:
        value = metadata.get(key)
        if isinstance(value, list):  # a list of templates: the card states how many
            value = len(value)
        if value is not None:
            args[key] = value
    return args or None


def eval_results_from_reports(reports: Sequence[dict]) -> list[EvalResult]:
    """One `EvalResult` per metric of each report; the report's `metadata` names the dataset and protocol.

    Needs `metadata["dataset"]` (display name); uses `dataset_type` (Hub dataset id; defaults to the name in
    lowercase with dashes), `dataset_config`, `split`, `dataset_revision`, and puts `protocol`, `views`, `frames`
    and `templates` into the dataset `args`. Two reports may not share task, dataset, config, split and
    revision: the Hub metadata would merge them under the first one's protocol.
    """
    results: list[EvalResult] = []
    seen: dict[tuple, int] = {}
    for index, report in enumerate(reports):
        metadata = report.get("metadata") or {}
        dataset_name = metadata.get("dataset")
        if not isinstance(dataset_name, str) or not dataset_name.strip():
            raise ModelCardError(f"evaluation report {index} has no metadata['dataset'] naming the evaluated dataset")
        protocol = metadata.get("protocol")
        common = {
            "task_type": TASK_TYPE,
            "task_name": "Zero-Shot Video Classification"
            if isinstance(protocol, str) and "zero-shot" in protocol.lower()
            else "Video Classification",
            "dataset_type": metadata.get("dataset_type") or _slug(dataset_name),
            "dataset_name": dataset_name,
            "dataset_config": metadata.get("dataset_config"),
            "dataset_split": metadata.get("split"),
            "dataset_revision": metadata.get("dataset_revision"),
            "dataset_args": _protocol_args(metadata),
        }
        report_results = []
        for key, value in report["metrics"].items():
            metric_type, metric_name, metric_args = _metric_type_and_name(key)
            report_results.append(
                EvalResult(
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=value,
                    metric_args=metric_args,
                    **common,
                )
            )
        if not report_results:
            raise ModelCardError(f"evaluation report {index} ({dataset_name}) has no metrics")
        identifier = report_results[0].unique_identifier
        if identifier in seen:
            raise ModelCardError(
                f"evaluation reports {seen[identifier]} and {index} both describe {dataset_name} "
                f"(config {common['dataset_config']!r}, split {common['dataset_split']!r}); the Hub metadata would "
                "merge them under one protocol. Give them distinct metadata['dataset_config'] values "
                "(e.g. 'split1-zero-shot')."
            )
        seen[identifier] = index
        results.extend(report_results)
    return results


def _percent(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "\u2014"


def _tower_text(tower: dict, kind: str) -> str:
    layers = tower.get("num_hidden_layers")
    fields = [("num_hidden_layers", "{} layer" if layers == 1 else "{} layers"), ("hidden_size", "width {}")]
    if kind == "vision":
        fields += [("patch_size", "patch {}"), ("image_size", "{} px input")]
    parts = [text.format(tower[key]) for key, text in fields if tower.get(key) is not None]
    return ", ".join(parts) if parts else "see config.json"


def _eval_rows(reports: Sequence[dict]) -> tuple[list[str], list[dict]]:
    keys: list[str] = []
    for report in reports:
        keys += [key for key in report["metrics"] if key not in keys]
    columns = [_metric_type_and_name(key)[1] for key in keys]
    rows = []
    for report in reports:
        metadata = report.get("metadata") or {}
        templates = metadata.get("templates")
        rows.append(
            {
                "dataset": metadata.get("dataset", "\u2014"),
                "split": metadata.get("split", "\u2014"),
                "protocol": metadata.get("protocol", "\u2014"),
                "views": metadata.get("views", "\u2014"),
                "frames": metadata.get("frames", "\u2014"),
                "templates": len(templates)
                if isinstance(templates, list)
                else (templates if templates is not None else "\u2014"),
                "num_videos": report.get("num_videos", "\u2014"),
                "num_classes": report.get("num_classes", "\u2014"),
                "metric_values": [_percent(report["metrics"].get(key)) for key in keys],
                "chance": _percent(report.get("chance_level")),
            }
        )
    return columns, rows


def _is_synthetic(report: dict) -> bool:
    metadata = report.get("metadata") or {}
    return bool(metadata.get("synthetic")) or "synthetic" in str(metadata.get("dataset", "")).lower()


def _read_weight_ensembling(model_dir: Path) -> dict | None:
    """The `wise_ft.json` report `actionclip wise-ft` leaves in the model folder, if any."""
    path = model_dir / "wise_ft.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelCardError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(report, dict) or "chosen_alpha" not in report or not isinstance(report.get("table"), list):
        raise ModelCardError(f"{path} is not a wise-ft report (no chosen_alpha and table)")
    return report


def _retention_rows(reports: Sequence[dict]) -> list[dict]:
    """The Trainer's retention history (held-out classes' top-1 beside the training classes') from the reports."""
    for report in reports:
        history = (report.get("metadata") or {}).get("retention_history")
        if isinstance(history, list) and history:
            return [
                {
                    "step": row.get("step", "\u2014"),
                    "base": _percent(row.get("base_top1_accuracy")),
                    "novel": _percent(row.get("novel_top1_accuracy")),
                }
                for row in history
                if isinstance(row, dict)
            ]
    return []


def generate_model_card(
    model_dir: str | Path,
    eval_results: Sequence[dict | str | Path] | dict | str | Path | None = None,
    base_model: str | None = None,
    *,
    model_name: str | None = None,
    repo_id: str | None = None,
    summary: str | None = None,
    datasets: Sequence[str] | None = None,
    training_data: str | None = None,
    synthetic_training_data: bool = False,
    intended_use: str | None = None,
    limitations: Sequence[str] = (),
    license: str = "mit",
    language: str | None = "en",
    tags: Sequence[str] = (),
    pipeline_tag: str = PIPELINE_TAG,
    template_path: str | Path | None = None,
    weight_ensembling: dict | None = None,
) -> ModelCard:
    """A `ModelCard` for the ActionCLIP model saved in `model_dir` (its `config.json` is read).

    Args:
        model_dir: folder with the model's `config.json`.
        eval_results: evaluation reports (`write_evaluation_report`'s dicts), or paths to `evaluation.json`
            files or to folders holding one; they fill the `model-index` and the evaluation table.
        base_model: Hub id of the CLIP checkpoint it started from (e.g. `openai/clip-vit-base-patch32`).
        model_name: name in the card's title and `model-index`; defaults to the folder name.
        repo_id: what the usage example loads (a Hub id, or a local folder for a model that is not on the Hub);
            defaults to `model_name`.
        summary: the opening paragraph.
        datasets: Hub ids of the training datasets, for the metadata.
        training_data: a sentence or two on what it was trained on; defaults to the config's `training_data`.
        synthetic_training_data: trained on synthetic videos: says so under Limitations.
        intended_use: replaces the default intended-use paragraph.
        limitations: extra limitations, listed after the default ones.
        license, language, tags, pipeline_tag: Hub metadata (`tags` extends the ActionCLIP tags).
        template_path: a Jinja2 markdown template; defaults to the packaged one (`model_cards/TEMPLATE.md`).
        weight_ensembling: the report of `actionclip wise-ft` (alpha, sources, sweep table); defaults to the
            folder's `wise_ft.json` when there is one.
    """
    if not isinstance(license, str) or not _LICENSE_ID.fullmatch(license):
        raise ModelCardError(
            f"license must be a Hub license identifier such as 'mit', 'apache-2.0', 'cc-by-4.0' or 'other', "
            f"got {license!r}"
        )
    model_dir = Path(model_dir)
    config = read_model_config(model_dir)
    reports = _collect_reports(eval_results)
    if base_model is not None:
        try:
            validate_repo_id(base_model)
        except HFValidationError as error:
            raise ModelCardError(
                f"base_model must be a Hub model id such as 'openai/clip-vit-base-patch32': {error}"
            ) from None
    model_name = model_name or model_dir.resolve().name
    results = eval_results_from_reports(reports)

    backbone = config.get("backbone", "clip")
    card_data = ModelCardData(
        base_model=base_model,
        datasets=list(datasets) if datasets else None,
        eval_results=results or None,
        model_name=model_name if results else None,
        language=language,
        library_name="transformers",
        license=license,
        metrics=["accuracy"] if results else None,
        pipeline_tag=pipeline_tag,
        tags=[*TAGS, backbone, *(t for t in tags if t not in (*TAGS, backbone))],
    )

    synthetic_eval = any(_is_synthetic(report) for report in reports)
    all_limitations = list(DEFAULT_LIMITATIONS)
    if synthetic_training_data:
        all_limitations.insert(0, SYNTHETIC_TRAINING_LIMITATION)
    if synthetic_eval:
        all_limitations.insert(1 if synthetic_training_data else 0, SYNTHETIC_EVALUATION_LIMITATION)
    all_limitations += list(limitations)
    if training_data is None:
        training_data = config.get("training_data") or (
            "Synthetic videos generated by `actionclip.data.synthetic`."
            if synthetic_training_data
            else "Not documented for this checkpoint."
        )

    metric_columns, eval_rows = _eval_rows(reports)
    if weight_ensembling is None:
        weight_ensembling = _read_weight_ensembling(model_dir)
    templates = config.get("templates", [])
    fusion = config.get("fusion", "transf")
    try:
        return ModelCard.from_template(
            card_data,
            template_path=str(template_path or TEMPLATE_PATH),
            model_name=model_name,
            repo_id=repo_id or model_name,
            summary=summary
            or f"An ActionCLIP video-text model that classifies actions in videos of {config['num_frames']} frames.",
            backbone_text=BACKBONE_NAMES.get(backbone, backbone),
            base_model_text=f"[{base_model}](https://huggingface.co/{base_model})" if base_model else "not recorded",
            vision_text=_tower_text(config.get("vision_config", {}), "vision"),
            text_text=_tower_text(config.get("text_config", {}), "text"),
            projection_dim=config.get("projection_dim", "\u2014"),
            num_frames=config["num_frames"],
            joint="yes" if config.get("joint", False) else "no",
            shift="yes" if config.get("shift", False) else "no",
            fusion=fusion,
            templates=templates,
            metric_columns=metric_columns,
            eval_rows=eval_rows,
            training_data=training_data,
            intended_use=intended_use or DEFAULT_INTENDED_USE,
            limitations=all_limitations,
            weight_ensembling=weight_ensembling,
            retention=_retention_rows(reports),
        )
    except ImportError:
        raise
    except Exception as error:  # jinja2's syntax and undefined-variable errors: the template is broken
        where = str(template_path) if template_path else "the packaged template"
        raise ModelCardError(f"model card template {where!r} cannot be rendered: {error}") from None


def check_model_card(card: ModelCard | str) -> None:
    """Offline checks of a model card; raises `ModelCardError` (a `ValueError`) saying what is wrong.

    The metadata must parse as YAML into `ModelCardData`, name `library_name` and `pipeline_tag`, and its
    `model-index` must come back unchanged through `model_index_to_eval_results` / `eval_results_to_model_index`.
    (`ModelCard.validate()` does the Hub's own checks but needs the network.)
    """
    text = str(card)
    try:
        reparsed = ModelCard(text)
    except Exception as error:  # yaml errors and ModelCardData's ValueErrors alike
        raise ModelCardError(f"model card metadata does not parse: {error}") from error
    metadata = reparsed.data.to_dict()
    for key in ("library_name", "pipeline_tag"):
        if not metadata.get(key):
            raise ModelCardError(f"model card metadata lacks {key}")
    model_index = metadata.get("model-index")
    if model_index is not None:
        name, results = model_index_to_eval_results(model_index)
        if eval_results_to_model_index(name, results) != model_index:
            raise ModelCardError(
                "model card model-index does not survive a round trip through huggingface_hub's EvalResult"
            )


def write_model_card(model_dir: str | Path, eval_results=None, base_model: str | None = None, **kwargs) -> Path:
    """Generate the model card (see `generate_model_card`), check it offline and write `model_dir/README.md`."""
    card = generate_model_card(model_dir, eval_results, base_model, **kwargs)
    check_model_card(card)
    path = Path(model_dir) / "README.md"
    card.save(path)
    return path

"""Weight-space ensembling (WiSE-FT): a model between a zero-shot model and its fine-tuned descendant.

Fine-tuning raises accuracy on the fine-tuned classes and lowers zero-shot accuracy on the others. Interpolating
the two models' weights, ``theta(alpha) = (1 - alpha) * theta_zero_shot + alpha * theta_fine_tuned`` (Wortsman et
al., "Robust fine-tuning of zero-shot models", 2022), gives models in between; a sweep over ``alpha`` on the
fine-tuned ("base") classes and on held-out ("novel") classes picks the one with the best harmonic mean.

- :func:`interpolate_state_dicts`: the interpolation of two state dicts, exact at ``alpha`` 0 and 1.
- :func:`wise_ft`: the interpolated `ActionCLIPModel`, with the policy below for weights only the fine-tuned
  model has.
- :func:`run_wise_ft`: the sweep, and a model folder with the chosen model, its processor, the sweep's JSON report
  (``wise_ft.json``), a plot (``wise_ft.png``), the chosen model's evaluation reports and a model card.

Weights only in the fine-tuned model (``fusion_policy``): a zero-shot CLIP model pools frames by their mean
(``meanP``, no weights) while a fine-tuned ActionCLIP usually has a temporal fusion (``transf``, ``conv1d``,
``lstm``). These three are residual: with every fusion weight at zero their output is proportional to the mean of
the frame embeddings, so after L2 normalisation the model *is* the mean-pooling model. That all-zero state is the
fusion's identity-like initial state, and

- ``"identity"`` (default) interpolates the fusion between it and the fine-tuned fusion, so ``alpha = 0`` is the
  zero-shot model in function (its weights, and a fusion that does nothing) and every weight moves along one
  straight line;
- ``"keep"`` keeps the fine-tuned fusion at every ``alpha``.

``transf_cls`` has no such state (its class token goes through LayerNorm): it needs ``"keep"``. Any other weight
missing from the zero-shot model, or any zero-shot weight missing from the fine-tuned model or of another shape,
is an :class:`~actionclip.errors.IncompatibleModelsError`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import IncompatibleModelsError

FUSION_POLICIES: tuple[str, ...] = ("identity", "keep")
# Fusions whose output is the frames' mean (up to a positive factor) when all their weights are zero.
IDENTITY_AT_ZERO_FUSIONS: tuple[str, ...] = ("transf", "conv1d", "lstm")
FUSION_PREFIX = "fusion."
REPORT_NAME = "wise_ft.json"
PLOT_NAME = "wise_ft.png"


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise IncompatibleModelsError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def _lerp(start: torch.Tensor, end: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(1 - alpha) * start + alpha * end`` in ``end``'s dtype; exact copies at 0 and 1."""
    if alpha == 0.0:
        return start.detach().clone().to(end.dtype)
    if alpha == 1.0:
        return end.detach().clone()
    if not end.is_floating_point():  # integer buffers (position ids): equal in both, checked by the caller
        return end.detach().clone()
    mixed = torch.lerp(start.detach().float(), end.detach().float(), alpha)
    return mixed.to(end.dtype)


def interpolate_state_dicts(
    zero_shot: Mapping[str, torch.Tensor],
    fine_tuned: Mapping[str, torch.Tensor],
    alpha: float,
    fine_tuned_only_start: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Interpolate every weight of ``fine_tuned`` from its ``zero_shot`` counterpart.

    Args:
        zero_shot, fine_tuned: state dicts (name -> tensor).
        alpha: 0 gives ``zero_shot``'s tensors, 1 ``fine_tuned``'s, bit for bit; in between the straight line
            (computed in float32, stored in the fine-tuned tensor's dtype).
        fine_tuned_only_start: for weights only ``fine_tuned`` has, the state they start from at ``alpha = 0``
            (e.g. zeros); weights not named here are kept as fine-tuned.

    Returns:
        a new state dict with ``fine_tuned``'s names.

    Raises:
        IncompatibleModelsError: a zero-shot weight missing from ``fine_tuned``, a shape that differs, or an integer
            buffer whose values differ.
    """
    alpha = _check_alpha(alpha)
    missing = sorted(set(zero_shot) - set(fine_tuned))
    if missing:
        raise IncompatibleModelsError(
            f"the fine-tuned model lacks {len(missing)} weight(s) of the zero-shot model, e.g. {missing[:5]}"
        )
    starts = dict(fine_tuned_only_start or {})
    result = {}
    for name, end in fine_tuned.items():
        start = zero_shot.get(name)
        if start is None:
            start = starts.get(name)
            if start is None:
                result[name] = end.detach().clone()
                continue
        if start.shape != end.shape:
            raise IncompatibleModelsError(
                f"weight {name!r} has shape {tuple(start.shape)} in the zero-shot model and {tuple(end.shape)} in "
                "the fine-tuned one: the models do not share an architecture"
            )
        if not end.is_floating_point() and not torch.equal(start.to(end.dtype), end):
            raise IncompatibleModelsError(f"buffer {name!r} differs between the models")
        result[name] = _lerp(start, end, alpha)
    return result


def fusion_identity_state(model) -> dict[str, torch.Tensor]:
    """Zeros for every fusion weight of ``model``: the state in which its fusion reduces to mean pooling.

    Raises:
        IncompatibleModelsError: the fusion has no such state (``transf_cls``).
    """
    fusion = model.config.fusion
    state = {name: tensor for name, tensor in model.state_dict().items() if name.startswith(FUSION_PREFIX)}
    if state and fusion not in IDENTITY_AT_ZERO_FUSIONS:
        raise IncompatibleModelsError(
            f"the fine-tuned fusion {fusion!r} has no identity-like state to interpolate from (only "
            f"{', '.join(IDENTITY_AT_ZERO_FUSIONS)} do): use fusion_policy='keep'"
        )
    return {name: torch.zeros_like(tensor) for name, tensor in state.items()}


def check_compatible(zero_shot_model, fine_tuned_model) -> None:
    """Refuse models that cannot be interpolated: another model class, a different in-network prompt (``shift``),
    or weights of the fine-tuned model outside the fusion that the zero-shot model lacks (e.g. ``joint``).

    Shapes are checked weight by weight in :func:`interpolate_state_dicts`.
    """
    for role, model in (("zero-shot", zero_shot_model), ("fine-tuned", fine_tuned_model)):
        if getattr(getattr(model, "config", None), "model_type", None) != "actionclip":
            raise IncompatibleModelsError(f"the {role} model is not an ActionCLIP model ({type(model).__name__})")
    if type(zero_shot_model) is not type(fine_tuned_model):
        raise IncompatibleModelsError(
            f"the zero-shot model is a {type(zero_shot_model).__name__}, the fine-tuned one a "
            f"{type(fine_tuned_model).__name__}"
        )
    zero_config, fine_config = zero_shot_model.config, fine_tuned_model.config
    if bool(zero_config.shift) != bool(fine_config.shift):
        raise IncompatibleModelsError(
            f"temporal shift is {bool(zero_config.shift)} in the zero-shot model and {bool(fine_config.shift)} in "
            "the fine-tuned one: their layers compute different functions"
        )
    zero_names = set(zero_shot_model.state_dict())
    extra = sorted(
        name for name in fine_tuned_model.state_dict() if name not in zero_names and not name.startswith(FUSION_PREFIX)
    )
    if extra:
        raise IncompatibleModelsError(
            f"the fine-tuned model has {len(extra)} weight(s) outside the fusion that the zero-shot model lacks, "
            f"e.g. {extra[:5]}"
        )


def wise_ft(zero_shot_model, fine_tuned_model, alpha: float, fusion_policy: str = "identity"):
    """The model with weights ``(1 - alpha) * zero_shot + alpha * fine_tuned`` (see the module docstring).

    Args:
        zero_shot_model, fine_tuned_model: `ActionCLIPModel`s of one architecture (the fine-tuned one may add a
            fusion).
        alpha: in [0, 1]; 0 gives the zero-shot model's weights, 1 the fine-tuned model's, bit for bit.
        fusion_policy: ``"identity"`` or ``"keep"``, for fusion weights the zero-shot model lacks.

    Returns:
        a new model with the fine-tuned model's configuration (fusion, label names, templates) and class.
    """
    alpha = _check_alpha(alpha)
    if fusion_policy not in FUSION_POLICIES:
        raise IncompatibleModelsError(f"fusion_policy must be one of {FUSION_POLICIES}, got {fusion_policy!r}")
    check_compatible(zero_shot_model, fine_tuned_model)
    fine_state = fine_tuned_model.state_dict()
    zero_state = zero_shot_model.state_dict()
    starts = {}
    if fusion_policy == "identity":
        starts = {
            name: zero for name, zero in fusion_identity_state(fine_tuned_model).items() if name not in zero_state
        }
    state = interpolate_state_dicts(zero_state, fine_state, alpha, starts)
    model = copy.deepcopy(fine_tuned_model)
    model.load_state_dict(state, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# The sweep


def parse_alphas(text: str) -> list[float]:
    """Alphas from ``"0,0.5,1"`` or an arithmetic progression written ``"0,0.1,...,1"``; sorted, unique, in [0, 1].

    Raises:
        IncompatibleModelsError: not numbers, outside [0, 1], or a progression that does not reach its end.
    """
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise IncompatibleModelsError(f"no alpha in {text!r}")
    try:
        if "..." in parts:
            where = parts.index("...")
            if where != 2 or len(parts) != 4:
                raise IncompatibleModelsError(f"write a progression as 'first,second,...,last', got {text!r}")
            first, second, last = float(parts[0]), float(parts[1]), float(parts[3])
            step = second - first
            if not step > 0:
                raise IncompatibleModelsError(f"the progression {text!r} must increase")
            count = (last - first) / step
            if abs(count - round(count)) > 1e-6:
                raise IncompatibleModelsError(f"the progression {text!r} does not reach {parts[3]} in equal steps")
            values = [round(first + i * step, 10) for i in range(int(round(count)) + 1)]
        else:
            values = [float(part) for part in parts]
    except ValueError:
        raise IncompatibleModelsError(f"alphas must be numbers separated by commas, got {text!r}") from None
    for value in values:
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise IncompatibleModelsError(f"alpha {value} in {text!r} is outside [0, 1]")
    return sorted(set(values))


def choose_alpha(rows: Sequence[Mapping]) -> Mapping:
    """The row with the best harmonic mean; ties go to the better base accuracy, then to the smaller alpha."""
    return max(rows, key=lambda row: (row["harmonic_mean"], row["base_top1"], -row["alpha"]))


def plot_sweep(rows: Sequence[Mapping], path: str | os.PathLike, chosen_alpha: float | None = None) -> Path:
    """Top-1 on the base and novel classes and their harmonic mean against alpha, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    alphas = [row["alpha"] for row in rows]
    fig = Figure(figsize=(6.0, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, label, style in (
        ("base_top1", "base classes (fine-tuned)", "o-"),
        ("novel_top1", "novel classes (zero-shot)", "s-"),
        ("harmonic_mean", "harmonic mean", "^--"),
    ):
        ax.plot(alphas, [100 * row[key] for row in rows], style, label=label)
    if chosen_alpha is not None:
        ax.axvline(chosen_alpha, color="grey", linestyle=":", label=f"chosen alpha = {chosen_alpha:g}")
    ax.set_xlabel("alpha (0: zero-shot weights, 1: fine-tuned weights)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_title("WiSE-FT: weight-space ensembling")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _top1(scores, labels) -> float:
    from ..evaluation.reports import predicted_classes

    return float((predicted_classes(scores) == labels).mean())


def run_wise_ft(
    zero_shot_dir: str | os.PathLike,
    fine_tuned_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    alphas: Sequence[float],
    base=None,
    novel=None,
    video_root: str | os.PathLike | None = None,
    novel_video_root: str | os.PathLike | None = None,
    fusion_policy: str = "identity",
    num_frames: int | None = None,
    templates: Sequence[str] | None = None,
    logit_scale: float | None = None,
    batch_size: int = 8,
    device: str | None = None,
    dataset_name: str = "wise-ft evaluation",
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Interpolate two saved models at each alpha, evaluate each on the base and novel sets, and save the chosen one.

    Args:
        zero_shot_dir, fine_tuned_dir: saved model folders; the fine-tuned folder's processor (or the matching
            default) goes with the output.
        output_dir: the new model folder; written under a temporary name and renamed when complete.
        alphas: one alpha (no evaluation needed) or several (``base`` and ``novel`` needed).
        base, novel: `EvalSplit`s (``protocols.EvalSplit``): the classes trained on with their test videos, and
            held-out classes with theirs; videos relative to ``video_root`` / ``novel_video_root``.
        fusion_policy: see the module docstring.
        num_frames, templates, logit_scale, batch_size, device: how the videos are evaluated (default: the
            fine-tuned model's frames and templates, its learned scale).

    Returns:
        the JSON report written to ``output_dir/wise_ft.json``: ``alphas``, ``table`` (one row per alpha:
        ``alpha``, ``base_top1``, ``novel_top1``, ``harmonic_mean``, fractions), ``chosen_alpha``, the sources and
        the policy.
    """
    from ..evaluation.protocols import harmonic_mean
    from ..evaluation.runner import (
        EvaluationSetupError,
        ProtocolEvaluator,
        ViewSettings,
        write_split_report,
    )
    from ..model_loading import load_model_and_processor
    from ..modeling_actionclip import ActionCLIPModel

    alphas = sorted({_check_alpha(alpha) for alpha in alphas})
    if not alphas:
        raise IncompatibleModelsError("no alpha given")
    if (base is None) != (novel is None):
        raise EvaluationSetupError("give both evaluation sets (base and novel classes) or neither")
    if len(alphas) > 1 and base is None:
        raise EvaluationSetupError("a sweep over several alphas needs the base and novel evaluation sets")
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise EvaluationSetupError(f"output {str(output_dir)!r} exists: pass overwrite (--overwrite) to replace it")
    for role, directory in (("zero-shot", zero_shot_dir), ("fine-tuned", fine_tuned_dir)):
        if not (Path(directory) / "config.json").is_file():
            raise EvaluationSetupError(f"{role} model {str(directory)!r} has no config.json: not a saved model folder")

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    fine_tuned, processor = load_model_and_processor(fine_tuned_dir, device)
    zero_shot = ActionCLIPModel.from_pretrained(zero_shot_dir).eval().to(device)
    wise_ft(zero_shot, fine_tuned, alphas[0], fusion_policy)  # refuse incompatible models before any video

    table: list[dict] = []
    best_scores = None
    views = ViewSettings(num_frames or fine_tuned.config.num_frames)
    for alpha in alphas:
        model = wise_ft(zero_shot, fine_tuned, alpha, fusion_policy)
        if base is None:
            continue
        evaluator = ProtocolEvaluator(
            model, processor, views, templates, logit_scale, batch_size,
            model_name=f"wise-ft alpha={alpha:g}", progress=progress,
        )  # fmt: skip
        row = {"alpha": alpha}
        scores = {}
        for key, split, root in (("base", base, video_root), ("novel", novel, novel_video_root or video_root)):
            if not split.videos:
                raise EvaluationSetupError(f"the {key} evaluation set has no videos")
            sources = [str(Path(root) / path) if root is not None else path for path, _ in split.videos]
            labels = np.array([label for _, label in split.videos], dtype=np.int64)
            scores[key] = (evaluator.scores(sources, split.class_names).numpy(), labels)
            row[f"{key}_top1"] = _top1(*scores[key])
        row["harmonic_mean"] = harmonic_mean(row["base_top1"], row["novel_top1"])
        table.append(row)
        if choose_alpha(table) is row:
            best_scores = (scores, evaluator)
        del model

    chosen = choose_alpha(table)["alpha"] if table else alphas[0]
    report = {
        "method": "wise-ft",
        "zero_shot_model": str(zero_shot_dir),
        "fine_tuned_model": str(fine_tuned_dir),
        "fusion_policy": fusion_policy,
        "alphas": alphas,
        "chosen_alpha": chosen,
        "chosen_by": "best harmonic mean of base and novel top-1 (ties: better base top-1, then smaller alpha)"
        if table
        else "given",
        "metric_units": "fraction",
        "dataset": dataset_name if table else None,
        "base_classes": list(base.class_names) if base is not None else None,
        "novel_classes": list(novel.class_names) if novel is not None else None,
        "table": table,
    }

    staging = output_dir.parent / f".tmp-{output_dir.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model = wise_ft(zero_shot, fine_tuned, chosen, fusion_policy)
        model.config.wise_ft_alpha = chosen  # recorded in config.json too, next to the weights it describes
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        reports = []
        if best_scores is not None:
            scores, evaluator = best_scores
            for key, split in (("base", base), ("novel", novel)):
                kind = "closed-set (base classes)" if key == "base" else "zero-shot (novel classes)"
                metadata = evaluator.metadata("wise_ft", key, dataset_name, kind, {"wise_ft_alpha": chosen})
                reports.append(write_split_report(staging / "evaluation" / key, *scores[key], split, metadata))
            plot_sweep(table, staging / PLOT_NAME, chosen)
        (staging / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        from ..hub.model_card import write_model_card

        write_model_card(staging, reports, model_name=output_dir.name)
        if output_dir.exists():
            shutil.rmtree(output_dir) if output_dir.is_dir() else output_dir.unlink()
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def format_sweep(report: Mapping) -> str:
    """The sweep table in percent, the chosen alpha marked."""
    lines = [f"{'alpha':>6}  {'base':>7}  {'novel':>7}  {'HM':>7}"]
    for row in report["table"]:
        mark = "  <- chosen" if row["alpha"] == report["chosen_alpha"] else ""
        lines.append(
            f"{row['alpha']:>6g}  {100 * row['base_top1']:>6.2f}%  {100 * row['novel_top1']:>6.2f}%  "
            f"{100 * row['harmonic_mean']:>6.2f}%{mark}"
        )
    return "\n".join(lines)


__all__ = [
    "FUSION_POLICIES",
    "IDENTITY_AT_ZERO_FUSIONS",
    "check_compatible",
    "choose_alpha",
    "format_sweep",
    "fusion_identity_state",
    "interpolate_state_dicts",
    "parse_alphas",
    "plot_sweep",
    "run_wise_ft",
    "wise_ft",
]

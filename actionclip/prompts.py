"""Labels to sentences: the prompt templates of ActionCLIP and the text normalisation of class names.

Evaluation uses every template for every class, in template-major order (row ``k * num_classes + c`` is template
``k`` applied to class ``c``), and the class scores are averaged over templates. Training gives each sample one
template drawn at random.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from .descriptions import check_descriptions, class_texts
from .errors import InvalidLabelsError, InvalidTemplateError
from .files import read_text_file

PLACEHOLDER = "{}"

# The 16 textual prompts of the paper, in the order of the authors' release (prefix, cloze and suffix forms), which
# fixes the evaluation rows; the configuration's default `templates`. Here rather than with the configuration: the
# ONNX runtime builds prompts without importing transformers.
ACTIONCLIP_TEMPLATES: tuple[str, ...] = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)

SINGLE_TEMPLATE: tuple[str, ...] = ("a video of a person {}.",)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "actionclip16": ACTIONCLIP_TEMPLATES,
    "single": SINGLE_TEMPLATE,
}

DEFAULT_TEMPLATE_SET = "actionclip16"

TemplateForm = Literal["prefix", "cloze", "suffix", "bare"]
TemplatesLike = str | os.PathLike | Sequence[str]

_WORD_CHARACTER = re.compile(r"\w")
# A boundary inside a CamelCase word: lower/digit -> upper ("EyeMakeup"), or the last capital of an acronym
# before a capitalised word ("HTMLParser" -> "HTML Parser").
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WHITESPACE_RUN = re.compile(r"\s+")


def validate_template(template: str, *, where: str = "template") -> str:
    """Return ``template`` if it holds exactly one ``{}`` and no other brace, else raise `InvalidTemplateError`."""
    if not isinstance(template, str):
        raise InvalidTemplateError(f"{where} must be a string, got {type(template).__name__}: {template!r}")
    count = template.count(PLACEHOLDER)
    if count != 1:
        raise InvalidTemplateError(
            f"{where} {template!r} must contain exactly one '{{}}' placeholder for the label, found {count}"
        )
    rest = template.replace(PLACEHOLDER, "", 1)
    if "{" in rest or "}" in rest:
        raise InvalidTemplateError(
            f"{where} {template!r} has a brace besides its '{{}}' placeholder; named or numbered fields such as "
            "'{0}' or '{label}' are not supported"
        )
    return template


def template_form(template: str) -> TemplateForm:
    """Where the label stands in ``template``.

    ``"prefix"``: words only before the label ("a video of {}", "Can you recognize the action of {}?");
    ``"suffix"``: words only after it ("{}, an action"); ``"cloze"``: words on both sides ("{} is what the man
    does"); ``"bare"``: the template is the label alone ("{}"). Punctuation and spaces do not count as words, so a
    closing "." or "?" does not turn a prefix into a cloze.
    """
    validate_template(template)
    before, after = template.split(PLACEHOLDER)
    has_before = _WORD_CHARACTER.search(before) is not None
    has_after = _WORD_CHARACTER.search(after) is not None
    if has_before and has_after:
        return "cloze"
    if has_before:
        return "prefix"
    if has_after:
        return "suffix"
    return "bare"


def load_templates(templates: TemplatesLike = DEFAULT_TEMPLATE_SET) -> tuple[str, ...]:
    """Resolve a template specification to a tuple of validated templates.

    ``templates`` is the name of a set (``"actionclip16"``, ``"single"``), a single template string containing
    ``{}``, the path of a UTF-8 text file with one template per line (blank lines skipped, ends stripped), or a
    sequence of template strings. Raises `InvalidTemplateError` for unknown names, missing files, empty sets,
    duplicates and templates without exactly one ``{}``.
    """
    if isinstance(templates, str) and templates in TEMPLATE_SETS:
        return TEMPLATE_SETS[templates]
    if isinstance(templates, str) and PLACEHOLDER in templates:
        return (validate_template(templates),)
    if isinstance(templates, (str, os.PathLike)):
        path = Path(templates)
        if not path.is_file():
            raise InvalidTemplateError(
                f"templates {str(templates)!r} is neither a known template set ({', '.join(sorted(TEMPLATE_SETS))}), "
                "a template containing '{}', nor an existing text file with one template per line"
            )
        try:
            lines = read_text_file(path, "template file").splitlines()
        except UnicodeDecodeError:
            raise InvalidTemplateError(f"template file {str(path)!r} is not UTF-8 text") from None
        except OSError as error:
            raise InvalidTemplateError(f"template file {str(path)!r} cannot be read: {error.strerror}") from None
        candidates = [line.strip() for line in lines]
        numbered = [(number, line) for number, line in enumerate(candidates, start=1) if line]
        if not numbered:
            raise InvalidTemplateError(f"template file {str(path)!r} holds no template (it is empty or blank)")
        resolved = []
        for number, line in numbered:
            try:
                resolved.append(validate_template(line))
            except InvalidTemplateError:
                # The file may be anything the caller can read (a typo'd path, /etc/passwd): never quote it.
                raise InvalidTemplateError(
                    f"line {number} of template file {str(path)!r} is not a template: each line needs exactly one "
                    "'{}' where the label goes and no other brace (did you mean to pass a file of templates?)"
                ) from None
    elif isinstance(templates, Iterable):
        resolved = [validate_template(t, where=f"templates[{index}]") for index, t in enumerate(templates)]
        if not resolved:
            raise InvalidTemplateError("templates is an empty list: give at least one template containing '{}'")
    else:
        raise InvalidTemplateError(
            f"templates must be a set name, a template, a file path or a list of templates, got {type(templates).__name__}"
        )
    duplicates = sorted({t for t in resolved if resolved.count(t) > 1})
    if duplicates:
        raise InvalidTemplateError(f"templates contain duplicates, which would weigh them twice: {duplicates}")
    return tuple(resolved)


def normalize_label(
    label: str,
    *,
    split_camel_case: bool = False,
    underscores_to_spaces: bool = False,
    lowercase: bool = False,
    strip: bool = False,
) -> str:
    """Turn a class name into the text put in a template. Every option is off by default (the original's behaviour).

    ``split_camel_case``: ``"ApplyEyeMakeup"`` -> ``"Apply Eye Makeup"``; ``underscores_to_spaces``:
    ``"playing_guitar"`` -> ``"playing guitar"``; ``lowercase``; ``strip``: trim the ends and collapse runs of
    whitespace to one space. Non-ASCII text is kept as is. With all four, ``"ApplyEyeMakeup"`` ->
    ``"apply eye makeup"``.
    """
    if not isinstance(label, str):
        raise InvalidLabelsError(f"a label must be a string, got {type(label).__name__}: {label!r}")
    if underscores_to_spaces:
        label = label.replace("_", " ")
    if split_camel_case:
        label = _CAMEL_BOUNDARY.sub(" ", label)
    if lowercase:
        label = label.lower()
    if strip:
        label = _WHITESPACE_RUN.sub(" ", label).strip()
    return label


def same_text_key(label: str) -> str:
    """What CLIP's tokenizer sees of ``label``: lower case, whitespace runs as one space, ends trimmed. Labels with
    the same key get the same tokens, hence the same embedding and score."""
    return _WHITESPACE_RUN.sub(" ", label).strip().lower()


class PromptTemplater:
    """Builds the sentences the text encoder sees from class names.

    Args:
        templates: what `load_templates` accepts; defaults to the 16 ActionCLIP templates.
        split_camel_case, underscores_to_spaces, lowercase, strip: label normalisation, see `normalize_label`.
    """

    def __init__(
        self,
        templates: TemplatesLike = DEFAULT_TEMPLATE_SET,
        *,
        split_camel_case: bool = False,
        underscores_to_spaces: bool = False,
        lowercase: bool = False,
        strip: bool = False,
    ):
        self.templates: tuple[str, ...] = load_templates(templates)
        self.normalization = {
            "split_camel_case": split_camel_case,
            "underscores_to_spaces": underscores_to_spaces,
            "lowercase": lowercase,
            "strip": strip,
        }

    @property
    def num_templates(self) -> int:
        return len(self.templates)

    @property
    def forms(self) -> tuple[TemplateForm, ...]:
        """The form (prefix / cloze / suffix / bare) of each template, in order."""
        return tuple(template_form(t) for t in self.templates)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_templates} templates, normalization={self.normalization})"

    def normalize_labels(self, labels: Sequence[str], *, allow_duplicates: bool = False) -> list[str]:
        """Validate and normalise ``labels``.

        Raises `InvalidLabelsError` if ``labels`` is not a list of strings, is empty, holds an empty (or blank)
        label, or, unless ``allow_duplicates``, holds the same label twice after normalisation.
        """
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
            raise InvalidLabelsError(f"labels must be a list of strings, got {type(labels).__name__}: {labels!r}")
        labels = list(labels)
        if not labels:
            raise InvalidLabelsError("labels is empty: give at least one class name")
        normalized = []
        for index, label in enumerate(labels):
            if not isinstance(label, str):
                raise InvalidLabelsError(f"labels[{index}] must be a string, got {type(label).__name__}: {label!r}")
            text = normalize_label(label, **self.normalization)
            if not text.strip():
                raise InvalidLabelsError(f"labels[{index}] is empty ({label!r}): every class needs a name")
            normalized.append(text)
        if not allow_duplicates:
            first_seen: dict[str, int] = {}
            for index, text in enumerate(normalized):
                key = same_text_key(text)
                if key in first_seen:
                    raise InvalidLabelsError(
                        f"labels[{first_seen[key]}] {labels[first_seen[key]]!r} and labels[{index}] "
                        f"{labels[index]!r} are the same class to the text encoder (it ignores case and repeated "
                        f"spaces: both read {key!r}), so they would always score the same: remove one"
                    )
                first_seen[key] = index
        return normalized

    def build_prompts(self, labels: Sequence[str]) -> list[str]:
        """Every template applied to every class, template-major: item ``k * len(labels) + c`` is template ``k`` of
        class ``c``. ``len(result) == num_templates * len(labels)``."""
        normalized = self.normalize_labels(labels)
        return [template.replace(PLACEHOLDER, label, 1) for template in self.templates for label in normalized]

    def format_prompts(self, labels: Sequence[str], template_ids: Sequence[int]) -> list[str]:
        """The prompt of each sample: template ``template_ids[i]`` applied to ``labels[i]`` (labels may repeat)."""
        normalized = self.normalize_labels(labels, allow_duplicates=True)
        ids = np.asarray(template_ids).reshape(-1)
        if ids.shape[0] != len(normalized):
            raise InvalidTemplateError(f"template_ids has {ids.shape[0]} entries for {len(normalized)} labels")
        if not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= self.num_templates:
            raise InvalidTemplateError(
                f"template_ids must be integers in [0, {self.num_templates}), got {ids.tolist()}"
            )
        return [self.templates[int(k)].replace(PLACEHOLDER, label, 1) for k, label in zip(ids, normalized)]

    def sample_prompts(
        self, labels: Sequence[str], rng: np.random.Generator | int | None = None
    ) -> tuple[list[str], np.ndarray]:
        """One template drawn uniformly at random for each training sample.

        ``labels`` holds one class name per sample (repeats allowed). ``rng`` is a numpy ``Generator`` or a seed.
        Returns ``(texts, template_ids)`` with ``template_ids`` int64 of shape ``(len(labels),)``.
        """
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        count = len(self.normalize_labels(labels, allow_duplicates=True))
        template_ids = rng.integers(0, self.num_templates, size=count, dtype=np.int64)
        return self.format_prompts(labels, template_ids), template_ids


def resolve_candidates(
    candidate_labels, templates, default_templates: Sequence[str]
) -> tuple[list[str], PromptTemplater, list[list[str]] | None]:
    """What the zero-shot classifiers (the pipeline, the ONNX runtime) make of their text inputs, checked before any
    video is decoded.

    Args:
        candidate_labels: a list of labels, a string of comma-separated labels, or ``{label: [description, ...]}``.
        templates: what `load_templates` takes, or None for ``default_templates`` (the model's).

    Returns:
        ``(labels, templater, texts)``: ``texts`` is each label's name and descriptions (`descriptions.class_texts`)
        when descriptions were given, else None.

    Raises:
        InvalidLabelsError, InvalidTemplateError, InvalidDescriptionsError: naming what is wrong.
    """
    texts = None
    labels = candidate_labels
    if isinstance(labels, Mapping):  # {label: [description, ...]}: descriptions as extra prompts
        descriptions = check_descriptions(labels, "candidate_labels")
        labels = list(descriptions)
        texts = class_texts(labels, descriptions)
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",")]
    if isinstance(labels, (bytes, bytearray)) or not isinstance(labels, Iterable):
        raise InvalidLabelsError(f"candidate_labels must be a list of strings, got {type(labels).__name__}")
    labels = list(labels)
    if templates is None:
        templates = list(default_templates)
    elif isinstance(templates, (list, tuple)) and not templates:
        raise InvalidTemplateError("hypothesis_template is an empty list: give at least one template containing '{}'")
    templater = PromptTemplater(templates)
    templater.normalize_labels(labels)  # empty, blank, non-string, duplicates -> InvalidLabelsError
    return labels, templater, texts


__all__ = [
    "ACTIONCLIP_TEMPLATES",
    "DEFAULT_TEMPLATE_SET",
    "SINGLE_TEMPLATE",
    "TEMPLATE_SETS",
    "PromptTemplater",
    "load_templates",
    "normalize_label",
    "resolve_candidates",
    "same_text_key",
    "template_form",
    "validate_template",
]

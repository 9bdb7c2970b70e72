"""A Hugging Face Space folder that serves the web app (`actionclip.apps.web_app`) for a model on the Hub, written by
``actionclip space`` and checked offline.

The folder holds ``app.py`` (which calls `actionclip.apps.web_app.launch_app`), ``requirements.txt`` (this package's
own requirements and its ``app`` extra's, read from the installed package's metadata, i.e. setup.py's lists),
``README.md`` whose YAML block is the Space's configuration, and, unless a pip requirement for this package is given, a
copy of the whole package (``actionclip/``, its source and data files), so the Space runs the very code that wrote it.
What the app is made of (its request limits, the Gradio version it runs on) the caller passes in: this module writes
and checks a folder, and imports nothing of the app.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from ..errors import SpaceFolderError

SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")  # the Hub's choices
SHORT_DESCRIPTION_MAX = 60  # characters, the Hub's limit
PACKAGE_NAME = "actionclip"
APP_EXTRA = "app"  # setup.py's extra for the web app (Gradio)
# The package folder, copied whole into the Space: this module lives in its hub/.
PACKAGE_DIR = Path(__file__).resolve().parents[1]

APP_TEMPLATE = '''"""Hugging Face Space: zero-shot video action recognition with the ActionCLIP model {model}.

Written by `actionclip space`; the app itself is actionclip/apps/web_app.py. Environment overrides: ACTIONCLIP_MODEL
(another Hub id or a local model directory), GRADIO_SERVER_NAME, GRADIO_SERVER_PORT.
"""

import os

from actionclip.apps.web_app import AppLimits, launch_app

MODEL = os.environ.get("ACTIONCLIP_MODEL", {model!r})
LIMITS = AppLimits({limits})

if __name__ == "__main__":
    launch_app(
        MODEL,
        host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        limits=LIMITS,
    )
'''

README_BODY = """
# {title}

Zero-shot video action recognition with the ActionCLIP model [`{model}`](https://huggingface.co/{model}): upload a
video, name any actions, and get them ranked, with the frames the model looked at.

Limits per request: uploads up to {max_upload_mb:g} MB, videos up to {max_duration_s:g} s; {concurrency_limit}
request(s) at a time, up to {max_queue} waiting.

Written by `actionclip space`. To run it locally: `pip install -r requirements.txt gradio=={sdk_version}` and
`python app.py` (`ACTIONCLIP_MODEL=path/to/model` serves another model).
"""


def package_requirements(extra: str = APP_EXTRA) -> list[str]:
    """What the package needs to run, with its ``extra``: its install requirements and that extra's, from its installed
    metadata (setup.py's ``install_requires`` and ``extras_require``, the one list), without the extra's marker."""
    from packaging.requirements import Requirement

    try:
        requires = metadata.requires(PACKAGE_NAME) or []
    except metadata.PackageNotFoundError:
        raise SpaceFolderError(
            f"the {PACKAGE_NAME} package metadata is missing (install the package) so its requirements are unknown"
        ) from None
    wanted = []
    for text in requires:
        requirement = Requirement(text)
        if requirement.marker is None:
            wanted.append(text)
        elif requirement.marker.evaluate({"extra": extra}):
            requirement.marker = None  # pip reads requirements.txt without extras
            wanted.append(str(requirement))
    return wanted


def space_metadata(model: str, title: str, sdk_version: str) -> dict:
    """The README's YAML block: the Space's configuration."""
    return {
        "title": title,
        "emoji": "🎬",
        "colorFrom": "indigo",
        "colorTo": "blue",
        "sdk": "gradio",
        "sdk_version": sdk_version,
        "app_file": "app.py",
        "pinned": False,
        "license": "mit",
        "models": [model],
        "tags": ["video-classification", "zero-shot-video-classification", "actionclip"],
        "short_description": "Zero-shot video action recognition (ActionCLIP)",
    }


def check_space_folder(folder: str | Path) -> dict:
    """Offline checks of a Space folder; returns its metadata, or raises `SpaceFolderError` saying what is wrong.

    The README's YAML must parse with huggingface_hub's `SpaceCard` into `SpaceCardData`, name a known SDK with
    its version, an ``app_file`` that exists, the Hub's colours and a short description within its limit.
    (`SpaceCard.validate()` asks the Hub and needs the network.)
    """
    from huggingface_hub import SpaceCard

    folder = Path(folder)
    readme = folder / "README.md"
    if not readme.is_file():
        raise SpaceFolderError(f"Space folder {str(folder)!r} has no README.md")
    try:
        card = SpaceCard.load(readme)
    except Exception as error:  # yaml errors and SpaceCardData's ValueErrors alike
        raise SpaceFolderError(f"Space README metadata does not parse: {error}") from error
    data = card.data.to_dict()
    if data.get("sdk") not in ("gradio", "streamlit", "docker", "static"):
        raise SpaceFolderError(f"Space metadata sdk is {data.get('sdk')!r}, not one the Hub knows")
    if data.get("sdk") in ("gradio", "streamlit") and not data.get("sdk_version"):
        raise SpaceFolderError("Space metadata lacks sdk_version")
    app_file = data.get("app_file")
    if not app_file or not (folder / app_file).is_file():
        raise SpaceFolderError(f"Space metadata app_file {app_file!r} is not a file in {str(folder)!r}")
    for key in ("colorFrom", "colorTo"):
        if data.get(key) not in SPACE_COLORS:
            raise SpaceFolderError(f"Space metadata {key} is {data.get(key)!r}; the Hub takes one of {SPACE_COLORS}")
    if len(data.get("short_description") or "") > SHORT_DESCRIPTION_MAX:
        raise SpaceFolderError(f"Space metadata short_description is over {SHORT_DESCRIPTION_MAX} characters")
    if not data.get("title"):
        raise SpaceFolderError("Space metadata lacks a title")
    return data


def write_space(
    model: str,
    out_dir: str | Path,
    limits,
    sdk_version: str,
    *,
    title: str | None = None,
    requirement: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Space folder serving the app for the Hub model ``model`` into ``out_dir``; returns ``out_dir``.

    Args:
        model: a Hub model id (``org/name``).
        out_dir: the folder to write; it must not exist unless ``overwrite``.
        limits: the app's request limits (an `actionclip.apps.web_app.AppLimits`), written into ``app.py`` field by
            field and stated in the README.
        sdk_version: the Gradio version the Space runs on (the Hub installs it): the installed one,
            `actionclip.apps.web_app.import_gradio().__version__`.
        title: the Space's title (default from the model's name).
        requirement: a pip requirement for this package (``actionclip==0.1.0``, ``actionclip @ git+https://...``)
            to put in ``requirements.txt`` instead of copying the package into the folder.
        overwrite: replace an existing ``out_dir``.

    The folder is written next to ``out_dir`` and moved into place when complete, and checked with
    `check_space_folder` first: no half-written Space is left behind.
    """
    from huggingface_hub import SpaceCard, SpaceCardData
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError as error:
        raise SpaceFolderError(f"model {model!r} is not a Hub model id (org/name): {error}") from None
    if "/" not in model and Path(model).exists():
        raise SpaceFolderError(f"model {model!r} is a local path; a Space needs a Hub model id (org/name)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise SpaceFolderError(f"output {str(out_dir)!r} exists: pass --overwrite to replace it")
    title = title or f"ActionCLIP {model.split('/')[-1]}"

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the Space folder is for sharing
    try:
        limit_args = ", ".join(f"{field.name}={getattr(limits, field.name)!r}" for field in dataclasses.fields(limits))
        (staging / "app.py").write_text(APP_TEMPLATE.format(model=model, limits=limit_args), encoding="utf-8")
        requirements = package_requirements()
        if requirement:
            requirements.append(requirement)
        else:
            shutil.copytree(PACKAGE_DIR, staging / PACKAGE_NAME, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (staging / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        body = README_BODY.format(title=title, model=model, sdk_version=sdk_version, **dataclasses.asdict(limits))
        card_data = SpaceCardData(**space_metadata(model, title, sdk_version))
        SpaceCard(f"---\n{card_data.to_yaml()}\n---\n{body}").save(staging / "README.md")
        check_space_folder(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir

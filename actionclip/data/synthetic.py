"""A synthetic action dataset: coloured shapes doing actions, written as real H.264 MP4 files.

Each class is a composition ``(colour, shape, motion)`` named by a sentence, ``"a red square moving left"``.
Several motions come in *order-only pairs*: ``moving left``/``moving right``, ``moving up``/``moving down``,
``growing``/``shrinking``, ``rotating clockwise``/``rotating counter-clockwise``, ``fading in``/``fading out``.
A clip of the second member is exactly a time-reversed clip of the first (same random draws, frames in reverse
order), so the unordered set of frames has the same distribution for both members: a model that ignores frame
order (mean pooling of per-frame features) is at chance between them, and only temporal modelling separates them.

A zero-shot split holds out whole compositions whose words are all seen in training but never together: for a
held-out ``"a green square moving left"``, training has green squares (doing other things), green things moving
left and squares moving left. Both members of an order pair are held out together so the zero-shot split has
order pairs too.

Layout written by :func:`generate_synthetic_dataset`::

    output_dir/
        train/<label_with_underscores>/0000.mp4 ...    # folder per class, usable by datasets' "videofolder"
        val/<label_with_underscores>/0000.mp4 ...
        zeroshot/<label_with_underscores>/0000.mp4 ...
        train.txt val.txt zeroshot.txt                  # "relative/path.mp4 label_id" per line
        labels.csv                                      # id,name of the seen classes (train and val)
        zeroshot_labels.csv                             # id,name of the held-out classes (zeroshot.txt ids)
        metadata.json                                   # config, label sets, order pairs, counts, encoding

Clips are encoded intra-only (a keyframe every frame) at a constant quantiser: each decoded frame is then a
function of its rendered frame alone, so encoding does not make the first frame of a clip sharper than the last
(which would leak time order into the unordered set of frames).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidLabelsError, InvalidSyntheticConfigError
from ..video_decode_pool import START_METHOD
from .labels import write_label_csv

SPLITS = ("train", "val", "zeroshot")
METADATA_FORMAT_VERSION = 1

# Saturated colours, far from the low-saturation backgrounds. Each clip jitters its colour a little.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 80, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 50, 200),
    "orange": (245, 140, 20),
    "cyan": (30, 210, 220),
}

# Regular polygons by number of sides; 0 is a disc. The disc carries an off-centre dark dot so that its
# rotation is visible (otherwise "a circle rotating clockwise" could not be told from counter-clockwise).
SHAPES: dict[str, int] = {"square": 4, "circle": 0, "triangle": 3}


@dataclass(frozen=True)
class Motion:
    """One motion word. ``kind`` names the animated parameter; ``reverse`` plays the animation backwards."""

    name: str
    kind: str
    reverse: bool = False


# Image coordinates have y pointing down, so an increasing angle turns clockwise on screen.
MOTIONS: dict[str, Motion] = {
    motion.name: motion
    for motion in (
        Motion("moving right", "translate_x"),
        Motion("moving left", "translate_x", reverse=True),
        Motion("moving down", "translate_y"),
        Motion("moving up", "translate_y", reverse=True),
        Motion("growing", "scale"),
        Motion("shrinking", "scale", reverse=True),
        Motion("rotating clockwise", "rotate"),
        Motion("rotating counter-clockwise", "rotate", reverse=True),
        Motion("fading in", "fade"),
        Motion("fading out", "fade", reverse=True),
        Motion("standing still", "still"),
    )
}


@dataclass(frozen=True)
class ActionLabel:
    """A class of the synthetic dataset: a composition of a colour, a shape and a motion."""

    color: str
    shape: str
    motion: str

    @property
    def name(self) -> str:
        """The sentence naming the class, e.g. ``"a red square moving left"``."""
        return f"a {self.color} {self.shape} {self.motion}"

    @property
    def appearance(self) -> str:
        """What one frame shows, ``"red square"``: the class without its motion."""
        return f"{self.color} {self.shape}"

    @property
    def folder(self) -> str:
        """The class folder name: the sentence with underscores for spaces."""
        return self.name.replace(" ", "_")

    @classmethod
    def parse(cls, name: str) -> ActionLabel:
        """Inverse of :attr:`name` over the known colours, shapes and motions."""
        words = name.strip().replace("_", " ").split(" ")
        if len(words) >= 4 and words[0] == "a" and words[1] in COLORS and words[2] in SHAPES:
            motion = " ".join(words[3:])
            if motion in MOTIONS:
                return cls(words[1], words[2], motion)
        raise InvalidLabelsError(
            f"{name!r} is not a synthetic action label: expected 'a <colour> <shape> <motion>' with a colour in "
            f"{sorted(COLORS)}, a shape in {sorted(SHAPES)} and a motion in {sorted(MOTIONS)}"
        )


@dataclass(frozen=True)
class SyntheticActionConfig:
    """What to generate. Every field is data; the same config (seed included) gives the same clips."""

    colors: tuple[str, ...] = ("red", "green", "blue")
    """Colour words (keys of :data:`COLORS`)."""
    shapes: tuple[str, ...] = ("square", "circle", "triangle")
    """Shape words (keys of :data:`SHAPES`)."""
    motions: tuple[str, ...] = ("moving left", "moving right", "growing", "shrinking")
    """Motion words (keys of :data:`MOTIONS`); both members of an order pair are usually wanted."""
    num_frames: int = 16
    """Frames per clip (at least 4, so a rotation step stays below half the shapes' symmetry angle)."""
    size: tuple[int, int] = (64, 64)
    """Frame ``(height, width)`` in pixels; both even (H.264 with 4:2:0 chroma needs even sizes)."""
    fps: float = 8.0
    """Frame rate written into the files, frames per second."""
    videos_per_class: int = 8
    """Training clips per seen class."""
    val_videos_per_class: int = 2
    """Validation clips per seen class (same classes as training, different clips)."""
    zeroshot_videos_per_class: int = 4
    """Clips per held-out class in the zero-shot split."""
    zeroshot_fraction: float = 0.25
    """Fraction of the (colour, shape, motion pair) units held out for the zero-shot split (0 for none); unused
    when ``novel_appearances`` or ``novel_motions`` choose the split."""
    novel_appearances: tuple[str, ...] = ()
    """A base-to-novel split instead: appearances (``"<colour> <shape>"``) none of whose classes are trained on; with
    ``novel_motions``, the zero-shot split holds every class new in its appearance, its motion or both."""
    novel_motions: tuple[str, ...] = ()
    """Motions (of ``motions``) none of whose classes are trained on (see ``novel_appearances``)."""
    noise: float = 6.0
    """Standard deviation of the Gaussian pixel noise, in 0-255 units, drawn independently per frame."""
    qp: int = 20
    """Constant H.264 quantiser (0 is lossless, 51 the coarsest)."""
    seed: int = 0
    """Seed of every random draw: the held-out split and each clip's parameters and noise."""

    def __post_init__(self):
        for field in ("colors", "shapes", "motions", "novel_appearances", "novel_motions"):
            value = getattr(self, field)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, field, tuple(value))
        object.__setattr__(self, "size", tuple(int(v) for v in self.size))

    def validate(self) -> None:
        """Raise :class:`InvalidLabelsError` or :class:`InvalidSyntheticConfigError` if unusable."""
        for field, known in (("colors", COLORS), ("shapes", SHAPES), ("motions", MOTIONS)):
            values = getattr(self, field)
            if not values:
                raise InvalidLabelsError(f"config.{field} is empty; choose from {sorted(known)}")
            unknown = [value for value in values if value not in known]
            if unknown:
                raise InvalidLabelsError(f"unknown {field} {unknown}; choose from {sorted(known)}")
            if len(set(values)) != len(values):
                raise InvalidLabelsError(f"config.{field} has duplicates: {list(values)}")
        if self.num_frames < 4:
            raise InvalidSyntheticConfigError(f"num_frames must be >= 4, got {self.num_frames}")
        if len(self.size) != 2 or min(self.size) < 16 or any(v % 2 for v in self.size):
            raise InvalidSyntheticConfigError(f"size must be (height, width), both even and >= 16, got {self.size}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise InvalidSyntheticConfigError(f"fps must be a positive number, got {self.fps}")
        for field in ("videos_per_class", "val_videos_per_class", "zeroshot_videos_per_class"):
            if getattr(self, field) < 0:
                raise InvalidSyntheticConfigError(f"{field} must be >= 0, got {getattr(self, field)}")
        if not 0.0 <= self.zeroshot_fraction < 1.0:
            raise InvalidSyntheticConfigError(f"zeroshot_fraction must be in [0, 1), got {self.zeroshot_fraction}")
        appearances = {f"{c} {s}" for c in self.colors for s in self.shapes}
        unknown = [a for a in self.novel_appearances if a not in appearances]
        if unknown:
            raise InvalidLabelsError(
                f"novel_appearances {unknown} are not '<colour> <shape>' of the config's colours and shapes"
            )
        unknown = [m for m in self.novel_motions if m not in self.motions]
        if unknown:
            raise InvalidLabelsError(
                f"novel_motions {unknown} are not among the config's motions {list(self.motions)}"
            )
        if len(set(self.novel_appearances)) == len(appearances) or len(set(self.novel_motions)) == len(self.motions):
            raise InvalidSyntheticConfigError(
                "novel_appearances / novel_motions hold out every class: none is left to train"
            )
        if self.noise < 0:
            raise InvalidSyntheticConfigError(f"noise must be >= 0, got {self.noise}")
        if not 0 <= self.qp <= 51:
            raise InvalidSyntheticConfigError(f"qp must be in [0, 51], got {self.qp}")

    def to_dict(self) -> dict:
        return {field.name: _jsonable(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> SyntheticActionConfig:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(
            **{
                key: tuple(value) if isinstance(value, list) else value
                for key, value in values.items()
                if key in names
            }
        )


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _stable_int(*parts) -> int:
    """A 64-bit integer from the parts' text; unlike ``hash`` it is the same in every process and Python."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# ----------------------------------------------------------------------------------------------------------------
# Label space: compositions, order pairs, the held-out split


def all_compositions(config: SyntheticActionConfig) -> list[ActionLabel]:
    """Every (colour, shape, motion) of the config, colour-major in the config's word order."""
    return [ActionLabel(c, s, m) for c in config.colors for s in config.shapes for m in config.motions]


def _motion_group(motion: str, motions: Sequence[str]) -> tuple[str, ...]:
    """The motions of ``motions`` that differ from ``motion`` only in time order, ``motion`` included."""
    kind = MOTIONS[motion].kind
    if kind == "still":
        return (motion,)
    return tuple(m for m in motions if MOTIONS[m].kind == kind)


def order_pairs_of(labels: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of indices into ``labels`` whose clips differ only in time order."""
    parsed = [ActionLabel.parse(name) for name in labels]
    pairs = []
    for i, a in enumerate(parsed):
        for j in range(i + 1, len(parsed)):
            b = parsed[j]
            ma, mb = MOTIONS[a.motion], MOTIONS[b.motion]
            if (a.color, a.shape) == (b.color, b.shape) and ma.kind == mb.kind != "still" and ma.reverse != mb.reverse:
                pairs.append((i, j))
    return pairs


def split_compositions(config: SyntheticActionConfig) -> tuple[list[ActionLabel], list[ActionLabel]]:
    """Split the compositions into seen (train/val) and held-out (zero-shot) classes.

    Units of (colour, shape, motion group) are held out in a seeded order, skipping any unit whose removal
    would leave a colour-shape, colour-motion or shape-motion combination unseen in training, until
    ``round(zeroshot_fraction * units)`` (at least one when the fraction is positive) are held out.

    Raises:
        InvalidSyntheticConfigError: the vocabulary is too small to hold out that many units.
    """
    config.validate()
    if config.novel_appearances or config.novel_motions:
        return _base_novel_split(config)
    groups = list(dict.fromkeys(_motion_group(m, config.motions) for m in config.motions))
    units = [(c, s, g) for c in config.colors for s in config.shapes for g in groups]
    wanted = round(config.zeroshot_fraction * len(units))
    if config.zeroshot_fraction > 0:
        wanted = max(1, wanted)
    seen = {ActionLabel(c, s, m) for c, s, g in units for m in g}
    held_out: set[ActionLabel] = set()
    count = 0
    for unit in sorted(units, key=lambda u: _stable_int("holdout", config.seed, u[0], u[1], *u[2])):
        if count == wanted:
            break
        c, s, group = unit
        candidate = seen - {ActionLabel(c, s, m) for m in group}
        if _covers_pairs(candidate, config):
            seen = candidate
            held_out |= {ActionLabel(c, s, m) for m in group}
            count += 1
    if count < wanted:
        raise InvalidSyntheticConfigError(
            f"cannot hold out {wanted} (colour, shape, motion) units while keeping every colour-shape, colour-motion "
            f"and shape-motion combination in training (managed {count}); add colours, shapes or motions, or "
            f"lower zeroshot_fraction (now {config.zeroshot_fraction})"
        )
    order = {label: index for index, label in enumerate(all_compositions(config))}
    return sorted(seen, key=order.__getitem__), sorted(held_out, key=order.__getitem__)


def _base_novel_split(config: SyntheticActionConfig) -> tuple[list[ActionLabel], list[ActionLabel]]:
    seen, held_out = [], []
    for label in all_compositions(config):
        novel = novelty(label, config)
        (held_out if novel else seen).append(label)
    return seen, held_out


def novelty(label: str | ActionLabel, config: SyntheticActionConfig) -> str | None:
    """What is new in a class of a base-to-novel split (``novel_appearances`` / ``novel_motions``):
    ``"appearance"``, ``"motion"``, ``"both"``, or None for a base class."""
    label = ActionLabel.parse(label) if isinstance(label, str) else label
    new_appearance = label.appearance in config.novel_appearances
    new_motion = label.motion in config.novel_motions
    if new_appearance and new_motion:
        return "both"
    return "appearance" if new_appearance else "motion" if new_motion else None


def _covers_pairs(labels: set[ActionLabel], config: SyntheticActionConfig) -> bool:
    color_shape = {(x.color, x.shape) for x in labels}
    color_motion = {(x.color, x.motion) for x in labels}
    shape_motion = {(x.shape, x.motion) for x in labels}
    return (
        len(color_shape) == len(config.colors) * len(config.shapes)
        and len(color_motion) == len(config.colors) * len(config.motions)
        and len(shape_motion) == len(config.shapes) * len(config.motions)
    )


# ----------------------------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class _ClipParams:
    """Per-frame parameters of one clip, in pixels / radians / opacity; arrays have shape (T,)."""

    center_x: np.ndarray
    center_y: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    opacity: np.ndarray
    color: np.ndarray  # (3,) float
    background: np.ndarray  # (H, W, 3) float


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A low-saturation background: a grey level, a small tint and a linear gradient; float ``(H, W, 3)``."""
    gray = rng.uniform(30, 220)
    tint = rng.uniform(-20, 20, size=3)
    gradient_angle = rng.uniform(0, 2 * np.pi)
    gradient_amplitude = rng.uniform(0, 40)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    ramp = ((xs / width - 0.5) * np.cos(gradient_angle) + (ys / height - 0.5) * np.sin(gradient_angle))[..., None]
    return np.clip(gray + tint + gradient_amplitude * ramp, 0, 255)


def _sample_params(kind: str, color: str, config: SyntheticActionConfig, rng) -> _ClipParams:
    """Draw a clip's parameters. The draws depend on the motion's kind only, never on its direction."""
    height, width = config.size
    side = min(height, width)
    u = np.linspace(0.0, 1.0, config.num_frames)
    ones = np.ones_like(u)

    rgb = np.clip(np.asarray(COLORS[color], dtype=np.float64) + rng.uniform(-15, 15, size=3), 0, 255)
    background = random_background(rng, height, width)

    radius = rng.uniform(0.11, 0.17) * side * ones
    angle = rng.uniform(0, 2 * np.pi) * ones
    opacity = ones.copy()
    # The triangle's circumradius is 1.1 radius (see shape_coverage); keep the whole shape inside the frame.
    extent = 1.15

    def position(max_radius: float, length: float, travel: float = 0.0) -> float:
        margin = extent * max_radius + 1.0
        return rng.uniform(margin, max(margin, length - margin - travel))

    if kind in ("translate_x", "translate_y"):
        length = width if kind == "translate_x" else height
        travel = rng.uniform(0.3, 0.5) * length
        start = position(radius[0], length, travel)
        moving = start + travel * u
        fixed = position(radius[0], height if kind == "translate_x" else width) * ones
        center_x, center_y = (moving, fixed) if kind == "translate_x" else (fixed, moving)
    else:
        if kind == "scale":
            small, ratio = rng.uniform(0.07, 0.1) * side, rng.uniform(1.8, 2.5)
            radius = small * ratio**u
        elif kind == "rotate":
            angle = angle + np.deg2rad(rng.uniform(50, 80)) * u
        elif kind == "fade":
            start, end = rng.uniform(0.0, 0.1), rng.uniform(0.9, 1.0)
            opacity = start + (end - start) * u
        center_x = position(radius.max(), width) * ones
        center_y = position(radius.max(), height) * ones
    return _ClipParams(center_x, center_y, radius, angle, opacity, rgb, background)


def shape_coverage(
    shape: str,
    center_x: np.ndarray,
    center_y: np.ndarray,
    radius: np.ndarray,
    angle: np.ndarray,
    height: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Anti-aliased coverage ``(T, H, W)`` in [0, 1] of a shape of :data:`SHAPES` per frame (centre, radius in
    pixels, angle in radians: arrays of shape ``(T,)``), and of the disc's orientation dot (or None)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dx = xs[None] - np.asarray(center_x)[:, None, None]
    dy = ys[None] - np.asarray(center_y)[:, None, None]
    radius = np.asarray(radius)[:, None, None]
    angle = np.asarray(angle)[:, None, None]
    sides = SHAPES[shape]
    marker = None
    if sides == 0:
        distance = np.hypot(dx, dy) - radius
        dot_x = dx - 0.5 * radius * np.cos(angle)
        dot_y = dy - 0.5 * radius * np.sin(angle)
        marker = np.clip(0.5 - (np.hypot(dot_x, dot_y) - 0.3 * radius), 0, 1)
    else:
        # Signed distance to a regular polygon: the largest distance past any of its edges' lines.
        apothem = radius * (0.85 if sides == 4 else 0.55)
        distance = np.full(dx.shape, -np.inf)
        for k in range(sides):
            normal = angle + np.pi / 2 + 2 * np.pi * k / sides
            distance = np.maximum(distance, dx * np.cos(normal) + dy * np.sin(normal) - apothem)
    return np.clip(0.5 - distance, 0, 1), marker


def render_clip(
    label: str | ActionLabel,
    config: SyntheticActionConfig | None = None,
    *,
    seed: int | Sequence[int] | np.random.Generator = 0,
) -> np.ndarray:
    """Render one clip without writing it.

    Args:
        label: a class name (``"a red square moving left"``) or an :class:`ActionLabel`; its words need not be
            in ``config`` (only the config's sizes, frame count and noise are used).
        config: frame count, size and noise (defaults when ``None``).
        seed: seeds every draw (position, size, speed, colour jitter, background, noise); a ``Generator`` is
            used as is. The two members of an order pair with the same seed give the same frames in reverse
            order.

    Returns:
        uint8 ``(num_frames, height, width, 3)`` RGB frames.
    """
    config = config or SyntheticActionConfig()
    label = ActionLabel.parse(label) if isinstance(label, str) else label
    if label.color not in COLORS or label.shape not in SHAPES or label.motion not in MOTIONS:
        ActionLabel.parse(label.name)  # raises the descriptive error
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    motion = MOTIONS[label.motion]
    height, width = config.size
    params = _sample_params(motion.kind, label.color, config, rng)
    cover, marker = shape_coverage(
        label.shape, params.center_x, params.center_y, params.radius, params.angle, height, width
    )
    alpha = (cover * params.opacity[:, None, None])[..., None]
    frames = params.background[None] * (1 - alpha) + params.color * alpha
    if marker is not None:
        dot = (marker * cover * params.opacity[:, None, None])[..., None]
        frames = frames * (1 - dot) + (0.3 * params.color) * dot
    if config.noise > 0:
        frames = frames + rng.normal(0.0, config.noise, size=frames.shape)
    frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    # The reverse member plays the very same animation backwards: same draws, frames in reverse order.
    return np.ascontiguousarray(frames[::-1]) if motion.reverse else frames


# ----------------------------------------------------------------------------------------------------------------
# Writing a dataset


@dataclass
class SyntheticDataset:
    """A generated dataset on disk: where it is, its classes and its clips."""

    root: Path
    config: SyntheticActionConfig
    labels: list[str]
    """Seen classes (train and val), in label-id order."""
    zeroshot_labels: list[str]
    """Held-out classes (zero-shot split), in label-id order."""
    samples: dict[str, list[tuple[str, int]]]
    """Split name -> ``(path relative to root, label id)``; zero-shot ids index :attr:`zeroshot_labels`."""

    def label_names(self, split: str = "train") -> list[str]:
        """The class names that the split's label ids index."""
        self._check_split(split)
        return list(self.zeroshot_labels if split == "zeroshot" else self.labels)

    def order_pairs(self, split: str = "train") -> list[tuple[int, int]]:
        """Pairs of label ids of the split whose classes differ only in time order (e.g. moving left/right)."""
        return order_pairs_of(self.label_names(split))

    def list_file(self, split: str) -> Path:
        """The split's list file (lines ``relative/path.mp4 label_id``)."""
        self._check_split(split)
        return self.root / f"{split}.txt"

    def videos(self, split: str) -> list[tuple[Path, int]]:
        """``(absolute path, label id)`` of the split's clips."""
        self._check_split(split)
        return [(self.root / path, label) for path, label in self.samples[split]]

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise InvalidSyntheticConfigError(f"unknown split {split!r}; the splits are {list(SPLITS)}")

    @classmethod
    def load(cls, root: str | os.PathLike) -> SyntheticDataset:
        """Read a dataset written by :func:`generate_synthetic_dataset` from its ``metadata.json`` and lists."""
        root = Path(root)
        metadata_path = root / "metadata.json"
        if not metadata_path.is_file():
            raise FileNotFoundError(f"{metadata_path} not found: not a synthetic dataset directory")
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        samples = {}
        for split in SPLITS:
            lines = (root / f"{split}.txt").read_text(encoding="utf-8").splitlines()
            samples[split] = [(path, int(label)) for path, label in (line.rsplit(" ", 1) for line in lines if line)]
        return cls(
            root=root,
            config=SyntheticActionConfig.from_dict(metadata["config"]),
            labels=list(metadata["labels"]),
            zeroshot_labels=list(metadata["zeroshot_labels"]),
            samples=samples,
        )


def write_clip(
    destination: str | os.PathLike,
    label: str | ActionLabel,
    config: SyntheticActionConfig | None = None,
    *,
    seed: int | Sequence[int] = 0,
) -> Path:
    """Render one clip (:func:`render_clip`) and write it as an H.264 MP4 the way the dataset's clips are written.

    Every frame is a keyframe at the constant quantiser ``config.qp`` (see the module docstring), so the decoded
    frames of the two members of an order pair written with the same seed are each other's reverse, exactly.
    """
    from .video_writer import write_video

    config = config or SyntheticActionConfig()
    frames = render_clip(label, config, seed=seed)
    write_video(destination, frames, fps=config.fps, codec="libx264", gop_size=1, options={"qp": str(config.qp)})
    return Path(destination)


def _write_clip(task: tuple[str, str, list[int], SyntheticActionConfig]) -> None:
    path, name, seed, config = task
    write_clip(path, name, config, seed=seed)


def generate_synthetic_dataset(
    output_dir: str | os.PathLike,
    config: SyntheticActionConfig | None = None,
    *,
    num_workers: int = 0,
    overwrite: bool = False,
) -> SyntheticDataset:
    """Render and write the dataset (layout in the module docstring).

    Args:
        output_dir: where to write; created if missing.
        config: what to generate (defaults when ``None``).
        num_workers: processes that encode clips in parallel (0: in this process). The files do not depend on it.
        overwrite: replace the splits, lists and metadata of a dataset already in ``output_dir``; without it an
            existing ``metadata.json`` there is an error.

    Returns:
        the :class:`SyntheticDataset` written.

    Raises:
        InvalidLabelsError, InvalidSyntheticConfigError: an unusable config.
        FileExistsError: ``output_dir`` already holds a dataset and ``overwrite`` is false.
    """
    config = config or SyntheticActionConfig()
    config.validate()
    root = Path(output_dir)
    if (root / "metadata.json").exists():
        if not overwrite:
            raise FileExistsError(f"{root} already holds a synthetic dataset; pass overwrite=True to replace it")
        for split in SPLITS:
            shutil.rmtree(root / split, ignore_errors=True)
    seen, held_out = split_compositions(config)
    per_class = {"train": config.videos_per_class, "val": config.val_videos_per_class}
    per_class["zeroshot"] = config.zeroshot_videos_per_class

    tasks = []
    samples: dict[str, list[tuple[str, int]]] = {}
    for split in SPLITS:
        classes = held_out if split == "zeroshot" else seen
        samples[split] = []
        for label_id, label in enumerate(classes):
            (root / split / label.folder).mkdir(parents=True, exist_ok=True)
            for index in range(per_class[split]):
                relative = f"{split}/{label.folder}/{index:04d}.mp4"
                # Seeded by (seed, split, class name, index) so a clip does not change when classes are added.
                seed = [config.seed, _stable_int("clip", split, label.name, index)]
                tasks.append((str(root / relative), label.name, seed, config))
                samples[split].append((relative, label_id))

    if num_workers > 0 and len(tasks) > 1:
        # Not forked: a fork of a process whose threads (the encoder's, OpenMP's) hold a lock hangs in the child.
        context = multiprocessing.get_context(START_METHOD)
        with ProcessPoolExecutor(max_workers=num_workers, mp_context=context) as pool:
            list(pool.map(_write_clip, tasks, chunksize=max(1, len(tasks) // (4 * num_workers))))
    else:
        for task in tasks:
            _write_clip(task)

    labels = [label.name for label in seen]
    zeroshot_labels = [label.name for label in held_out]
    for split in SPLITS:
        lines = "".join(f"{path} {label}\n" for path, label in samples[split])
        (root / f"{split}.txt").write_text(lines, encoding="utf-8")
    write_label_csv(root / "labels.csv", labels)
    write_label_csv(root / "zeroshot_labels.csv", zeroshot_labels)
    metadata = {
        "format_version": METADATA_FORMAT_VERSION,
        "generator": "actionclip.data.synthetic",
        "config": config.to_dict(),
        "seed": config.seed,
        "labels": labels,
        "zeroshot_labels": zeroshot_labels,
        "compositions": {
            "seen": [[x.color, x.shape, x.motion] for x in seen],
            "zeroshot": [[x.color, x.shape, x.motion] for x in held_out],
        },
        "order_pairs": {
            split: [list(pair) for pair in order_pairs_of(labels if split != "zeroshot" else zeroshot_labels)]
            for split in SPLITS
        },
        "counts": {split: len(samples[split]) for split in SPLITS},
        "videos_per_class": per_class,
        "encoding": {"codec": "libx264", "container": "mp4", "gop_size": 1, "qp": config.qp, "pix_fmt": "yuv420p"},
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return SyntheticDataset(root, config, labels, zeroshot_labels, samples)


# ----------------------------------------------------------------------------------------------------------------
# Untrimmed videos (temporal localisation)


def render_untrimmed(
    labels: Sequence[str],
    config: SyntheticActionConfig | None = None,
    *,
    num_segments: int | tuple[int, int] = (3, 5),
    clips_per_segment: int | tuple[int, int] = (2, 4),
    seed: int = 0,
) -> tuple[np.ndarray, list[dict]]:
    """An untrimmed video: ``num_segments`` actions one after another, with known boundaries.

    Each segment is one label of ``labels`` (drawn at random, never the same as the segment before) played as
    ``clips_per_segment`` consecutive clips of :func:`render_clip` (each with its own draws), so a segment lasts
    a whole number of clips, ``config.num_frames / config.fps`` seconds each. Counts given as ``(low, high)`` are
    drawn uniformly, both ends included.

    Returns:
        uint8 ``(T, H, W, 3)`` frames and the segments ``[{"start", "end", "label"}]`` in seconds.
    """
    config = config or SyntheticActionConfig()
    labels = list(labels)
    if len(labels) < 2:
        raise InvalidLabelsError(f"an untrimmed video needs at least 2 labels to alternate, got {labels}")
    rng = np.random.default_rng(_stable_int("untrimmed", seed))

    def draw(count, name: str) -> int:
        low, high = (count, count) if isinstance(count, int) else count
        if not 1 <= low <= high:
            raise InvalidSyntheticConfigError(f"{name} must be a positive count or a (low, high) range, got {count}")
        return int(rng.integers(low, high + 1))

    segments, parts, frames_so_far, previous = [], [], 0, None
    for index in range(draw(num_segments, "num_segments")):
        label = labels[int(rng.choice([i for i in range(len(labels)) if labels[i] != previous]))]
        previous = label
        clips = draw(clips_per_segment, "clips_per_segment")
        for clip in range(clips):
            parts.append(render_clip(label, config, seed=[seed, index, clip, _stable_int(label)]))
        length = clips * config.num_frames
        segments.append(
            {"start": frames_so_far / config.fps, "end": (frames_so_far + length) / config.fps, "label": label}
        )
        frames_so_far += length
    return np.concatenate(parts), segments


def write_untrimmed_video(
    destination: str | os.PathLike, labels: Sequence[str], config: SyntheticActionConfig | None = None, **kwargs
) -> list[dict]:
    """:func:`render_untrimmed` written as an H.264 MP4 the way the dataset's clips are; returns the segments."""
    from .video_writer import write_video

    config = config or SyntheticActionConfig()
    frames, segments = render_untrimmed(labels, config, **kwargs)
    write_video(destination, frames, fps=config.fps, codec="libx264", gop_size=1, options={"qp": str(config.qp)})
    return segments


__all__ = [
    "COLORS",
    "render_untrimmed",
    "write_untrimmed_video",
    "MOTIONS",
    "SHAPES",
    "ActionLabel",
    "InvalidSyntheticConfigError",
    "Motion",
    "SyntheticActionConfig",
    "SyntheticDataset",
    "all_compositions",
    "generate_synthetic_dataset",
    "novelty",
    "order_pairs_of",
    "random_background",
    "render_clip",
    "shape_coverage",
    "split_compositions",
    "write_clip",
]

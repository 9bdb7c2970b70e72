"""Synthetic captioned images: coloured shapes of a size, at a position, with a texture, each with several captions.

What the demo's miniature image-text model is pretrained on (`actionclip.demo.pretrain`), the way CLIP is pretrained
on captioned photos before ActionCLIP starts from it. An image shows one shape of :data:`~.synthetic.SHAPES` in one
colour of :data:`~.synthetic.COLORS` on the backgrounds the synthetic videos use, so a frame of a video looks like an
image of this set. Its captions name the colour and shape, and some of them the size, position and texture, in
several phrasings (:data:`CAPTION_TEMPLATES`).

Some colour-shape combinations are held out (``held_out``): no training image shows them, while their colour and
their shape each appear with other partners. Images of them measure zero-shot recognition of new combinations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidLabelsError, InvalidSyntheticConfigError
from .synthetic import COLORS, SHAPES, random_background, shape_coverage

# Shape radius as a fraction of the image's side.
SIZES: dict[str, tuple[float, float]] = {"small": (0.09, 0.13), "large": (0.19, 0.25)}
# Where the centre lies, as fractions of (width, height): ranges drawn uniformly.
POSITIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "on the left": ((0.15, 0.35), (0.3, 0.7)),
    "on the right": ((0.65, 0.85), (0.3, 0.7)),
    "at the top": ((0.3, 0.7), (0.15, 0.35)),
    "at the bottom": ((0.3, 0.7), (0.65, 0.85)),
    "in the middle": ((0.4, 0.6), (0.4, 0.6)),
}
# Texture name -> the word captions use for it.
TEXTURES: dict[str, str] = {"plain": "plain", "striped": "striped", "dotted": "spotted"}
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a {color} {shape}",
    "a {size} {color} {shape}",
    "a {color} {shape} {position}",
    "a {texture} {color} {shape}",
    "a {size} {texture} {color} {shape} {position}",
    "{position}, a {size} {color} {shape}",
    "a picture of a {color} {shape}",
    "a {color} {shape}, {texture} and {size}",
)


@dataclass(frozen=True)
class ImageAppearance:
    """What one image shows: a colour, a shape, a size, a position and a texture (keys of the tables above)."""

    color: str
    shape: str
    size: str
    position: str
    texture: str

    @property
    def name(self) -> str:
        """The combination's class name, ``"a red circle"``: what zero-shot classification scores."""
        return f"a {self.color} {self.shape}"

    def captions(self) -> list[str]:
        """The image's captions, one per :data:`CAPTION_TEMPLATES` entry."""
        words = dict(color=self.color, shape=self.shape, size=self.size, position=self.position)
        return [template.format(texture=TEXTURES[self.texture], **words) for template in CAPTION_TEMPLATES]


@dataclass(frozen=True)
class CaptionedImageConfig:
    """What to generate; the same config (seed included) gives the same images."""

    colors: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
    shapes: tuple[str, ...] = ("circle", "triangle", "square")
    sizes: tuple[str, ...] = tuple(SIZES)
    positions: tuple[str, ...] = tuple(POSITIONS)
    textures: tuple[str, ...] = tuple(TEXTURES)
    held_out: tuple[str, ...] = ("purple circle", "orange triangle", "purple square")
    """``"<colour> <shape>"`` combinations no training image shows (the zero-shot images show only them)."""
    num_images: int = 4096
    """Training images (seen combinations, every other attribute drawn uniformly)."""
    num_held_out_images: int = 256
    """Images of the held-out combinations."""
    size: int = 32
    """Side of the square images, in pixels."""
    noise: float = 6.0
    """Standard deviation of the Gaussian pixel noise, in 0-255 units (as the videos')."""
    seed: int = 0

    def __post_init__(self):
        for field in ("colors", "shapes", "sizes", "positions", "textures", "held_out"):
            object.__setattr__(self, field, tuple(getattr(self, field)))

    def validate(self) -> None:
        """Raise :class:`InvalidLabelsError` or :class:`InvalidSyntheticConfigError` if unusable."""
        for field, known in (
            ("colors", COLORS),
            ("shapes", SHAPES),
            ("sizes", SIZES),
            ("positions", POSITIONS),
            ("textures", TEXTURES),
        ):
            values = getattr(self, field)
            unknown = [value for value in values if value not in known]
            if not values or unknown or len(set(values)) != len(values):
                raise InvalidLabelsError(f"config.{field} {list(values)}: choose distinct values of {sorted(known)}")
        combinations = {f"{c} {s}" for c in self.colors for s in self.shapes}
        unknown = [name for name in self.held_out if name not in combinations]
        if unknown:
            raise InvalidLabelsError(f"held_out {unknown} are not '<colour> <shape>' of the config's words")
        seen = [pair for pair in self.combinations() if f"{pair[0]} {pair[1]}" not in self.held_out]
        for c, s in (pair.split(" ") for pair in self.held_out):
            if not any(x == c for x, _ in seen) or not any(y == s for _, y in seen):
                raise InvalidSyntheticConfigError(
                    f"held-out {c} {s}: its colour and its shape must each appear in a seen combination"
                )
        if self.num_images < 1 or self.num_held_out_images < 0 or self.size < 16 or self.noise < 0:
            raise InvalidSyntheticConfigError(
                f"num_images >= 1, num_held_out_images >= 0, size >= 16 and noise >= 0 are needed, got "
                f"{self.num_images}, {self.num_held_out_images}, {self.size}, {self.noise}"
            )

    def combinations(self) -> list[tuple[str, str]]:
        """Every ``(colour, shape)``, colour-major."""
        return [(c, s) for c in self.colors for s in self.shapes]

    def class_names(self) -> list[str]:
        """Every combination's class name, ``"a red circle"``, colour-major: the zero-shot label set."""
        return [f"a {c} {s}" for c, s in self.combinations()]


def render_image(appearance: ImageAppearance, size: int = 32, noise: float = 6.0, *, rng: np.random.Generator):
    """One image, uint8 ``(size, size, 3)`` RGB; every draw (jitter, background, place, angle, noise) from ``rng``."""
    rgb = np.clip(np.asarray(COLORS[appearance.color], dtype=np.float64) + rng.uniform(-15, 15, size=3), 0, 255)
    background = random_background(rng, size, size)
    low, high = SIZES[appearance.size]
    radius = rng.uniform(low, high) * size
    (x_low, x_high), (y_low, y_high) = POSITIONS[appearance.position]
    margin = 1.15 * radius + 1.0  # the triangle's circumradius is 1.1 radius: keep the shape inside
    center_x = np.clip(rng.uniform(x_low, x_high) * size, margin, size - margin)
    center_y = np.clip(rng.uniform(y_low, y_high) * size, margin, size - margin)
    angle = rng.uniform(0, 2 * np.pi)
    cover, marker = shape_coverage(
        appearance.shape, np.array([center_x]), np.array([center_y]), np.array([radius]), np.array([angle]), size, size
    )
    cover = cover[0][..., None]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    color = np.broadcast_to(rgb, (size, size, 3)).copy()
    if appearance.texture != "plain":
        # Darker marks every 4 pixels: diagonal stripes, or a grid of dots; their phase and direction are random.
        turn, phase = rng.uniform(0, np.pi), rng.uniform(0, 4, size=2)
        if appearance.texture == "striped":
            marks = ((xs * np.cos(turn) + ys * np.sin(turn) + phase[0]) % 4.0) < 2.0
        else:
            marks = np.hypot((xs + phase[0]) % 4.0 - 2.0, (ys + phase[1]) % 4.0 - 2.0) < 1.0
        color[marks] *= 0.45
    image = background * (1 - cover) + color * cover
    if marker is not None:
        dot = (marker[0] * cover[..., 0])[..., None]
        image = image * (1 - dot) + (0.3 * rgb) * dot
    if noise > 0:
        image = image + rng.normal(0.0, noise, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@dataclass
class CaptionedImages:
    """Images in memory with what they show: ``images`` uint8 ``(N, H, W, 3)``, ``appearances`` (N,)."""

    images: np.ndarray
    appearances: list[ImageAppearance]

    def captions(self) -> list[list[str]]:
        """Each image's captions (:meth:`ImageAppearance.captions`)."""
        return [appearance.captions() for appearance in self.appearances]

    def class_ids(self, class_names: Sequence[str]) -> np.ndarray:
        """Each image's index in ``class_names`` (by :attr:`ImageAppearance.name`)."""
        index = {name: i for i, name in enumerate(class_names)}
        return np.array([index[appearance.name] for appearance in self.appearances], dtype=np.int64)


def generate_captioned_images(config: CaptionedImageConfig | None = None) -> tuple[CaptionedImages, CaptionedImages]:
    """``(training images, held-out images)``: the seen combinations with every other attribute drawn uniformly,
    and ``num_held_out_images`` of the held-out combinations."""
    config = config or CaptionedImageConfig()
    config.validate()
    rng = np.random.default_rng([config.seed, 0x1A6E])
    held = [tuple(name.split(" ")) for name in config.held_out]
    seen = [pair for pair in config.combinations() if pair not in held]

    def draw(pairs, count: int) -> CaptionedImages:
        appearances, images = [], []
        for _ in range(count):
            color, shape = pairs[int(rng.integers(len(pairs)))]
            appearance = ImageAppearance(
                color,
                shape,
                config.sizes[int(rng.integers(len(config.sizes)))],
                config.positions[int(rng.integers(len(config.positions)))],
                config.textures[int(rng.integers(len(config.textures)))],
            )
            appearances.append(appearance)
            images.append(render_image(appearance, config.size, config.noise, rng=rng))
        empty = np.zeros((0, config.size, config.size, 3), np.uint8)
        return CaptionedImages(np.stack(images) if images else empty, appearances)

    training = draw(seen, config.num_images)
    return training, draw(held, config.num_held_out_images) if held else draw(seen, 0)


__all__ = [
    "CAPTION_TEMPLATES",
    "POSITIONS",
    "SIZES",
    "TEXTURES",
    "CaptionedImageConfig",
    "CaptionedImages",
    "ImageAppearance",
    "generate_captioned_images",
    "render_image",
]

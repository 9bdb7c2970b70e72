"""Synthetic captioned images (the demo's pretraining data): what an image shows, its captions, the held-out
combinations."""

import numpy as np
import pytest

from actionclip.data.captioned_images import (
    CAPTION_TEMPLATES,
    CaptionedImageConfig,
    ImageAppearance,
    generate_captioned_images,
    render_image,
)
from actionclip.data.synthetic import COLORS
from actionclip.errors import InvalidLabelsError, InvalidSyntheticConfigError

SMALL = CaptionedImageConfig(
    colors=("red", "green", "blue"),
    shapes=("circle", "square"),
    held_out=("green square",),
    num_images=60,
    num_held_out_images=12,
    size=24,
    seed=3,
)


def test_training_images_never_show_a_held_out_combination_and_held_out_images_show_only_them():
    training, held_out = generate_captioned_images(SMALL)
    assert training.images.shape == (60, 24, 24, 3) and training.images.dtype == np.uint8
    assert held_out.images.shape == (12, 24, 24, 3)
    assert all(a.name != "a green square" for a in training.appearances)
    assert {a.name for a in held_out.appearances} == {"a green square"}
    # The held-out colour and shape are each seen with other partners.
    names = {a.name for a in training.appearances}
    assert "a green circle" in names and "a red square" in names


def test_every_caption_names_the_colour_and_shape_and_the_phrasings_differ():
    appearance = ImageAppearance("red", "circle", "large", "on the left", "striped")
    captions = appearance.captions()
    assert len(captions) == len(set(captions)) == len(CAPTION_TEMPLATES)
    assert all("red circle" in caption for caption in captions)
    assert any("large" in c for c in captions) and any("on the left" in c for c in captions)
    assert any("striped" in c for c in captions)


def test_class_ids_index_the_zero_shot_label_set():
    training, held_out = generate_captioned_images(SMALL)
    names = SMALL.class_names()
    assert names[held_out.class_ids(names)[0]] == "a green square"
    assert [names[i] for i in training.class_ids(names)] == [a.name for a in training.appearances]


def test_the_shape_has_its_colour_and_a_large_one_covers_more_pixels():
    def coloured_pixels(size: str) -> int:
        image = render_image(
            ImageAppearance("blue", "square", size, "in the middle", "plain"), 32, 0.0, rng=np.random.default_rng(0)
        )
        return int((np.abs(image.astype(int) - COLORS["blue"]).max(axis=-1) < 30).sum())

    assert coloured_pixels("large") > 2 * coloured_pixels("small") > 0


def test_a_position_puts_the_shape_on_its_side():
    def centre_x(position: str) -> float:
        image = render_image(
            ImageAppearance("red", "circle", "small", position, "plain"), 32, 0.0, rng=np.random.default_rng(1)
        )
        mask = np.abs(image.astype(int) - COLORS["red"]).max(axis=-1) < 30
        return float(np.nonzero(mask)[1].mean())

    assert centre_x("on the left") < 16 < centre_x("on the right")


def test_a_texture_darkens_part_of_the_shape():
    def dark_share(texture: str) -> float:
        image = render_image(
            ImageAppearance("yellow", "square", "large", "in the middle", texture),
            32,
            0.0,
            rng=np.random.default_rng(2),
        ).astype(int)
        centre = image[14:18, 14:18]
        return float((centre.sum(axis=-1) < 0.7 * sum(COLORS["yellow"])).mean())

    assert dark_share("plain") == 0.0 and dark_share("striped") > 0.2 and dark_share("dotted") > 0.05


def test_the_same_seed_gives_the_same_images():
    first, second = generate_captioned_images(SMALL)[0], generate_captioned_images(SMALL)[0]
    assert np.array_equal(first.images, second.images) and first.appearances == second.appearances


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"colors": ("pink",)}, InvalidLabelsError),
        ({"held_out": ("red triangle",)}, InvalidLabelsError),
        ({"held_out": ("red circle", "red square")}, InvalidSyntheticConfigError),
        ({"num_images": 0}, InvalidSyntheticConfigError),
    ],
)
def test_unusable_configs_are_refused(overrides, error):
    import dataclasses

    with pytest.raises(error):
        dataclasses.replace(SMALL, **overrides).validate()

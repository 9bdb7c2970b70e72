"""Frame folders: videos stored as one image per frame, the original ActionCLIP's format (``img_00001.jpg``, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import FrameIndexError, VideoDecodeError, VideoTooLargeError
from .video_common import MAX_FRAME_PIXELS, check_size_request, output_size


def read_frame_folder(
    folder,
    indices: Sequence[int],
    *,
    template: str = "img_{:05d}.jpg",
    start_index: int = 1,
    shorter_side: int | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read frames stored as one image per frame (the original ActionCLIP's format: ``img_00001.jpg``, ...).

    Frame ``i`` (0-based) is the file ``template.format(i + start_index)`` in ``folder``.

    Returns:
        uint8 ``indices.shape + (H, W, 3)`` RGB; resized with PIL bicubic when ``shorter_side``/``size`` is set.

    Raises:
        VideoDecodeError: missing folder or frame file, unreadable image, frames of different sizes.
    """
    from PIL import Image, UnidentifiedImageError

    folder_path = Path(folder)
    if not folder_path.is_dir():
        raise VideoDecodeError(folder, "no such frame folder")
    array = np.asarray(indices)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise FrameIndexError(folder, f"frame indices must be integers, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise FrameIndexError(folder, f"frame index {int(array.min())} is negative")
    target = check_size_request(folder, shorter_side, size)
    cache: dict[int, np.ndarray] = {}
    shape = None
    flat = array.reshape(-1).astype(np.int64)
    for index in np.unique(flat).tolist():
        path = folder_path / template.format(index + start_index)
        if not path.is_file():
            raise VideoDecodeError(folder, f"frame {index} ({path.name}) is missing")
        try:
            with Image.open(path) as image:
                # The size is in the header: checked before `convert` decodes the pixels.
                if image.width * image.height > MAX_FRAME_PIXELS:
                    raise VideoTooLargeError(folder, f"{path.name} is larger than {MAX_FRAME_PIXELS} pixels")
                image = image.convert("RGB")
                width, height = output_size(target, (image.width, image.height), 0)
                if (width, height) != (image.width, image.height):
                    image = image.resize((width, height), Image.BICUBIC)
                frame = np.asarray(image, dtype=np.uint8)
        except Image.DecompressionBombError as error:  # PIL's own pixel limit, from the header too
            raise VideoTooLargeError(folder, f"{path.name}: {error}") from None
        except (UnidentifiedImageError, OSError) as error:
            raise VideoDecodeError(folder, f"{path.name} is not a readable image ({error})") from None
        if shape is not None and frame.shape != shape:
            raise VideoDecodeError(folder, f"{path.name} is {frame.shape}, earlier frames were {shape}")
        shape = frame.shape
        cache[index] = frame
    if not cache:
        return np.empty((*array.shape, 0, 0, 3), dtype=np.uint8)
    return np.stack([cache[index] for index in flat.tolist()]).reshape(*array.shape, *shape)

"""What a served image is: bytes plus a declared colour order, decoded to RGB (or gray) or refused in one line.

Peer tools guess the channel order and lose accuracy silently when the guess is
wrong. Here every image carries an explicit `colour_order`:

- `file`: the bytes are an encoded image file (PNG, JPEG, BMP, TIFF, WebP; 8 or
  16 bit; gray, RGB or RGBA). The format itself fixes the channel order.
- `rgb`, `bgr`, `gray`: the bytes are a NumPy `.npy` array of raw pixels
  (H x W x 3, or H x W / H x W x 1 for gray), uint8 (0..255) or uint16
  (0..65535). Float arrays are refused: 0..1 and 0..255 cannot be told apart.

Whatever can be checked is checked (an encoded file declared `rgb`, a
3-channel array declared `gray`, an unknown order): one error naming the
image. RGB and BGR cannot be told apart from the pixels, so a swapped
declaration is never corrected: the pixels are read as declared, i.e. red and
blue trade places (for a gray model, a slightly different luminance).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd

from ferops.data.formats._images import decode_image
from ferops.errors import FeropsError, shown, shown_key

COLOUR_ORDERS = ("file", "rgb", "bgr", "gray")
_NPY_MAGIC = b"\x93NUMPY"


def to_rgb(array: np.ndarray, colour_order: str, what: str) -> np.ndarray:
    """Raw pixels in the declared order -> uint8 H x W x 3 RGB or H x W x 1 gray."""
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise FeropsError(f"{what}: pixel type {array.dtype}; expected uint8 (0..255) or uint16 (0..65535) "
                          f"(float pixels are refused: 0..1 and 0..255 cannot be told apart)")
    if colour_order == "gray":
        if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
            return array.reshape(array.shape[0], array.shape[1], 1)
        raise FeropsError(f"{what}: colour_order 'gray' needs H x W or H x W x 1 pixels, got shape {array.shape}")
    if array.ndim != 3 or array.shape[2] != 3:
        raise FeropsError(f"{what}: colour_order {colour_order!r} needs H x W x 3 pixels, got shape {array.shape}")
    return np.ascontiguousarray(array) if colour_order == "rgb" else cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def header_pixels(data: bytes) -> int | None:
    """Width x height from an encoded image's header, without decoding it (None when no header is readable).

    A 776 KB PNG can hold 16000 x 16000 pixels (1.5 GB decoded), so size is judged before decoding.
    """
    if bytes(data[:8]) == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big") * int.from_bytes(data[20:24], "big")
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # lazy: reads the header only
                return image.size[0] * image.size[1]
    except Image.DecompressionBombError:  # over twice PIL's own 89 MP limit
        return 2 * Image.MAX_IMAGE_PIXELS + 1
    except Exception:  # not a format PIL knows: OpenCV's decoder (and its own 2**30 limit) decides
        return None


def _check_pixels(pixels: int | None, max_pixels: int | None, what: str) -> None:
    if max_pixels is not None and pixels is not None and pixels > max_pixels:
        raise FeropsError(f"{what}: {pixels:,} pixels is over serving.max_pixels ({max_pixels:,}); send a smaller "
                          f"image")


def decode(data: bytes, colour_order: str, what: str, max_pixels: int | None = None) -> np.ndarray:
    """One served image's bytes and declared colour order -> uint8 RGB (H x W x 3) or gray (H x W x 1).

    `max_pixels` is checked from the header (file) or the array's shape (.npy) before anything is decoded.
    """
    if colour_order not in COLOUR_ORDERS:
        raise FeropsError(f"{what}: colour_order {shown(colour_order, 20)}; expected one of {list(COLOUR_ORDERS)} "
                          f"(file: an encoded image file; rgb, bgr, gray: a .npy array of raw pixels)")
    is_array = bytes(data[:6]) == _NPY_MAGIC
    if colour_order == "file":
        if is_array:
            raise FeropsError(f"{what}: a .npy array declared colour_order 'file'; declare its channel order: "
                              f"rgb, bgr or gray")
        _check_pixels(header_pixels(data), max_pixels, what)
        return decode_image(bytes(data), what)
    if not is_array:
        raise FeropsError(f"{what}: colour_order {colour_order!r} declares raw pixels, but the bytes are not a "
                          f".npy array; an encoded image file (PNG, JPEG, ...) takes colour_order 'file'")
    try:
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape = read_header(stream)[0]
        _check_pixels(int(np.prod(shape[:2])) if len(shape) >= 2 else None, max_pixels, what)
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FeropsError(f"{what}: not a readable .npy array ({shown_key(str(exc), 60)})") from None
    return to_rgb(array, colour_order, what)


def encode_array(pixels: np.ndarray) -> bytes:
    """Raw pixels -> .npy bytes (what the `image` column carries for colour orders rgb, bgr and gray)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(pixels), allow_pickle=False)
    return buffer.getvalue()


def pipeline_input(images: Sequence, colour_order: str | Sequence[str],
                   image_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The fer-pipeline model's input: arrays (raw pixels), bytes or paths (encoded files) -> a DataFrame.

    `colour_order` is one value for all images or one per image: 'file' for bytes and paths, the arrays'
    channel order ('rgb', 'bgr' or 'gray') for arrays.
    """
    orders = [colour_order] * len(images) if isinstance(colour_order, str) else list(colour_order)
    if len(orders) != len(images):
        raise FeropsError(f"pipeline_input: {len(images)} images but {len(orders)} colour orders")
    data = []
    for image in images:
        if isinstance(image, np.ndarray):
            data.append(encode_array(image))
        elif isinstance(image, (str, Path)):
            data.append(Path(image).read_bytes())
        else:
            data.append(bytes(image))
    ids = [str(i) for i in image_ids] if image_ids is not None else [str(i) for i in range(len(images))]
    return pd.DataFrame({"image": data, "colour_order": orders, "image_id": ids})

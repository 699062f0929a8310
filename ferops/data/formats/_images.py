"""Image decoding, checking and stacking shared by the format modules.

OpenCV is lenient: it returns None for garbage and happily decodes a truncated
JPEG into a half-grey picture. Real dataset copies are often damaged in
transfer, so every decode here checks the file's end marker as well, and every
path is resolved and checked against the dataset root so a symlink or `..`
cannot pull in files from elsewhere. Colour images are returned RGB (OpenCV's
BGR is converted at this one boundary) so the rest of ferops never sees BGR.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ferops.data.formats.errors import DatasetFormatError

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def inside(path: Path, root: Path, what: str) -> Path:
    """Resolve `path` (following symlinks) and refuse it if it leaves `root`."""
    real = Path(path).resolve()
    real_root = Path(root).resolve()
    if not real.is_relative_to(real_root):
        raise DatasetFormatError(
            f"{what}: {path} resolves to {real}, which is outside the dataset root {real_root}"
        )
    return real


def _check_complete(data: bytes, path: Path) -> None:
    """Catch truncated PNG/JPEG files that OpenCV would partially decode."""
    if data.startswith(_PNG_SIGNATURE):
        if b"IEND" not in data[-64:]:
            raise DatasetFormatError(f"{path}: truncated PNG (no IEND chunk at the end of the file)")
    elif data.startswith(b"\xff\xd8"):
        eoi = data.rfind(b"\xff\xd9")
        if eoi < 0 or eoi < data.rfind(b"\xff\xda") or len(data) - eoi > 1024:
            raise DatasetFormatError(f"{path}: truncated JPEG (no end-of-image marker after the scan data)")


def read_image(path: Path, root: Path) -> np.ndarray:
    """Decode one file to uint8 H x W x 1 (gray) or H x W x 3 (RGB)."""
    real = inside(path, root, "image")
    try:
        data = real.read_bytes()
    except OSError as exc:
        raise DatasetFormatError(f"{path}: cannot read image file ({exc.strerror})") from exc
    return decode_image(data, path)


def decode_image(data: bytes, path) -> np.ndarray:
    """An encoded image file's bytes (PNG, JPEG, TIFF, ...) -> uint8 H x W x 1 (gray) or H x W x 3 (RGB).

    `path` only names the image in errors (ferops.serving decodes uploaded bytes with it too).
    """
    if not data:
        raise DatasetFormatError(f"{path}: image file is empty")
    _check_complete(data, path)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetFormatError(f"{path}: not a readable image (OpenCV could not decode it)")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise DatasetFormatError(f"{path}: pixel type {img.dtype} is not supported, expected 8- or 16-bit")
    if img.ndim == 2:
        return img[:, :, None]
    if img.shape[2] == 1:
        return img
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise DatasetFormatError(f"{path}: {img.shape[2]} channels, expected 1, 3 or 4")


def convert_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Gray <-> RGB for an H x W x C image (RGB in, RGB out)."""
    if img.shape[2] == channels:
        return img
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
    if channels == 3:
        return np.repeat(img, 3, axis=2)
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def parse_size(size) -> tuple[int, int] | None:
    """None, an int (square) or (height, width)."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def stack_images(images: Sequence[np.ndarray], channels: int | None = None, size=None):
    """Make one N x H x W x C array; returns (array, original heights, original widths).

    channels None keeps colour if any image has it. size None keeps native
    size; if native sizes differ (CK+ mixes 640x490 and 640x480) images are
    zero-padded bottom/right rather than resized, so faces keep their geometry
    for detection and the original size stays in the manifest.
    """
    if not images:
        raise DatasetFormatError("no images to stack")
    if channels is None:
        channels = 3 if any(im.shape[2] == 3 for im in images) else 1
    hw = parse_size(size)
    heights = np.array([im.shape[0] for im in images])
    widths = np.array([im.shape[1] for im in images])
    out_h, out_w = hw if hw else (int(heights.max()), int(widths.max()))
    out = np.zeros((len(images), out_h, out_w, channels), np.uint8)
    for i, im in enumerate(images):
        im = convert_channels(im, channels)
        if hw and im.shape[:2] != hw:
            im = cv2.resize(im, (out_w, out_h), interpolation=cv2.INTER_AREA).reshape(out_h, out_w, channels)
        out[i, : im.shape[0], : im.shape[1]] = im
    return out, heights, widths


def load_images(paths: Sequence[Path], root: Path, channels: int | None = None, size=None):
    """Decode many files in threads (OpenCV releases the GIL) and stack them."""
    workers = min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        images = list(pool.map(lambda p: read_image(p, root), paths))
    return stack_images(images, channels, size)


def write_image(path: Path, img: np.ndarray, jpeg_quality: int | None = None) -> None:
    """Write an RGB or gray H x W x C image, converting to OpenCV's BGR."""
    if img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.shape[2] == 1:
        img = img[:, :, 0]
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if jpeg_quality is not None else []
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img, params)
    if not ok:
        raise DatasetFormatError(f"{path}: OpenCV could not encode the image")
    path.write_bytes(buf.tobytes())


def safe_name(value, what: str) -> str:
    """A string usable as one path component; refuse anything that could escape."""
    text = str(value)
    if not text or text in {".", ".."} or "/" in text or "\\" in text or "\x00" in text:
        raise DatasetFormatError(f"{what} {value!r} cannot be used as a file or folder name")
    return text

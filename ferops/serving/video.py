"""Images and videos streamed through the Analyzer: decode, detect and infer overlap; memory stays flat.

Peer tools read a whole video, then detect and call `model.predict` per face,
frame by frame. Here three stages run at once, joined by bounded queues:

    reader thread   decode frames (cv2.VideoCapture, never the whole file) or image files
    detector thread shrink, detect, align and crop (OpenCV releases the GIL)
    caller          batch the faces of `window` frames into one forward pass per model

A queue holds at most `queue` frames, so memory does not grow with video
length; frames are dropped after cropping unless they are to be annotated.
Unreadable inputs travel down the stream as Problem items, so one bad file is
reported by name while the rest is scored.
"""

from __future__ import annotations

import queue as queues
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from ferops.data.formats._images import read_image
from ferops.errors import FeropsError
from ferops.serving.analyzer import Analyzer, Faces
from ferops.serving.pixels import to_rgb

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
_POLL_S = 0.1


@dataclass
class Frame:
    source: str
    index: int  # frame number in the video (0 for a still image)
    image: np.ndarray  # uint8 RGB or gray, H x W x C


@dataclass
class Problem:
    """An input that could not be read, or only in part (`partial`: what was read is scored)."""
    source: str
    message: str
    partial: bool = False

    def line(self) -> str:
        return f"{self.source}: {self.message}"


def image_frames(path: Path) -> Iterator[Frame | Problem]:
    """One image file as a frame (any size; gray, RGB, RGBA, 16 bit), or the reason it is unreadable."""
    try:
        yield Frame(str(path), 0, read_image(Path(path).resolve(), Path(path).resolve().parent))
    except FeropsError as exc:
        yield Problem(str(path), str(exc).removeprefix(f"{Path(path).resolve()}: "))


def video_frames(path: Path, stride: int) -> Iterator[Frame | Problem]:
    """Every `stride`-th frame of a video, decoded one at a time; a broken or truncated file becomes a Problem."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            yield Problem(str(path), "cannot open as a video (not a video, corrupt, or a codec OpenCV's FFmpeg lacks)")
            return
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        index = 0
        while True:
            ok = capture.grab()
            if not ok:
                break
            if index % stride == 0:
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    break
                yield Frame(str(path), index, to_rgb(frame, "bgr" if frame.ndim == 3 else "gray", str(path)))
            index += 1
        if index == 0:
            yield Problem(str(path), "no frame could be decoded (corrupt file or unsupported codec)")
        elif declared and index < declared:
            yield Problem(str(path), f"video ended after {index} of the {declared} frames its header declares "
                                     f"(truncated or corrupt); the frames read were scored", partial=True)
    finally:
        capture.release()


def video_info(path: Path, stride: int) -> tuple[int, float]:
    """(frames a video will yield at `stride`, frames/s of that output) from its header; (0, 0.0) if unknown."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return 0, 0.0
        declared, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), float(capture.get(cv2.CAP_PROP_FPS) or 0)
    finally:
        capture.release()
    return -(-declared // stride), (fps or 30.0) / stride


class _Crash:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


def _put(q: queues.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queues.Full:
            continue
    return False


def _get(q: queues.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=_POLL_S)
        except queues.Empty:
            continue
    return _END


def _stage(inbox: Iterable | queues.Queue, work: Callable, outbox: queues.Queue, stop: threading.Event) -> None:
    """A thread body: items from an iterable or a queue, `work` on each, results to `outbox`, then _END."""
    try:
        items = iter(lambda: _get(inbox, stop), _END) if isinstance(inbox, queues.Queue) else inbox
        for item in items:
            if isinstance(item, _Crash):  # an earlier stage failed: pass it on and stop
                _put(outbox, item, stop)
                return
            if not _put(outbox, work(item), stop):
                return
    except BaseException as exc:  # re-raised in the caller's thread
        _put(outbox, _Crash(exc), stop)
        return
    _put(outbox, _END, stop)


def stream(analyzer: Analyzer, items: Iterable[Frame | Problem], *, detect: bool, max_faces: int, window: int,
           queue: int, keep_images: bool = False) -> Iterator[tuple[Faces, list[dict]] | Problem]:
    """(faces, rows) per frame, in order, plus Problems; decoding, detection and inference run concurrently."""
    stop = threading.Event()
    decoded, detected = queues.Queue(maxsize=queue), queues.Queue(maxsize=queue)

    def find(item):
        if isinstance(item, Problem):
            return item
        return analyzer.find(item.image, item.source, item.index, detect, max_faces, keep_image=keep_images)

    threads = [threading.Thread(target=_stage, args=(items, lambda item: item, decoded, stop), daemon=True),
               threading.Thread(target=_stage, args=(decoded, find, detected, stop), daemon=True)]
    for thread in threads:
        thread.start()
    pending: list[Faces] = []
    try:
        while True:
            item = detected.get()
            if item is _END:
                break
            if isinstance(item, _Crash):
                raise item.exc
            if isinstance(item, Problem):
                yield item
                continue
            pending.append(item)
            if len(pending) >= window:
                yield from zip(pending, analyzer.score(pending))
                pending = []
        yield from zip(pending, analyzer.score(pending))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


# ---------------------------------------------------------------------------- annotation


def draw(image: np.ndarray, rows: list[dict]) -> np.ndarray:
    """A BGR copy of an RGB/gray frame with each face's box and top emotion, for people who would rather look."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.shape[2] == 1 else cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(canvas.shape[:2]) / 320))
    for row in rows:
        x, y, w, h = row["x"], row["y"], row["w"], row["h"]
        label = f"{row['prediction']} {row['p_' + row['prediction']]:.2f}"
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 220, 0), thickness)
        cv2.putText(canvas, label, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (0, 220, 0),
                    thickness, cv2.LINE_AA)
    return canvas


class Annotator:
    """Writes annotated frames: one video per video input (stride-thinned), one PNG per image input.

    `target` is a video file (exactly one video input) or a folder, where outputs mirror the inputs' names.
    """

    def __init__(self, target: Path, names: dict[str, Path], fps: dict[str, float]):
        self.target, self.names, self.fps = Path(target), names, fps
        self.writers: dict[str, cv2.VideoWriter] = {}
        self.written: list[Path] = []

    def path_for(self, source: str) -> Path:
        if self.target.suffix.lower() in VIDEO_SUFFIXES:
            return self.target
        rel = self.names[source]
        return self.target / rel.with_suffix(".mp4" if source in self.fps else ".png")

    def add(self, faces: Faces, rows: list[dict]) -> None:
        canvas = draw(faces.image, rows)
        path = self.path_for(faces.source)
        path.parent.mkdir(parents=True, exist_ok=True)
        if faces.source not in self.fps:
            if not cv2.imwrite(str(path), canvas):
                raise FeropsError(f"{path}: OpenCV could not write the annotated image")
            self.written.append(path)
            return
        writer = self.writers.get(faces.source)
        if writer is None:
            height, width = canvas.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps[faces.source],
                                     (width, height))
            if not writer.isOpened():
                raise FeropsError(f"{path}: OpenCV cannot write this video (use a .mp4 or .avi name)")
            self.writers[faces.source] = writer
            self.written.append(path)
        writer.write(canvas)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.release()
        self.writers.clear()

"""The paper's pictures (Figs. 5-6): filter images over faces, a P(j,u) heatmap, first-layer kernels.

Attributions are input gradients w.r.t. raw pixels: the chain rule runs through
the model's own Rescaling layer, so the in-model [-1, 1] scaling is undone by
construction and a saliency map sits on the image exactly as stored. First-layer
kernels act on rescaled pixels; multiplying by the layer's scale maps them back
to pixel space (the offset only adds a constant response).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ferops.evaluation import save_figure  # noqa: E402


def rescaling(model: keras.Model) -> tuple[float, float]:
    """(scale, offset) of the model's input Rescaling layer; (1, 0) when it has none."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Rescaling):
            return float(np.ravel(layer.scale)[0]), float(np.ravel(layer.offset)[0])
    return 1.0, 0.0


def to_pixels(x: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """Model-space values (after Rescaling) back to 0..255 pixels."""
    return np.clip((np.asarray(x, np.float64) - offset) / scale, 0, 255)


def _gray(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, np.float64)
    return (img.mean(axis=-1) if img.ndim == 3 else img) / 255.0


def overlay(image: np.ndarray, gradient: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """H x W x 3 RGB in 0..1: the gray face with the gradient energy (slightly blurred, normalised) as heat."""
    heat = cv2.GaussianBlur((np.asarray(gradient, np.float64) ** 2).sum(axis=-1), (0, 0), 1.0)  # visible at 48 px
    heat = heat / heat.max() if heat.max() > 0 else heat
    gray = np.repeat(_gray(image)[..., None], 3, axis=-1)
    colour = plt.get_cmap("inferno")(heat)[..., :3]
    weight = alpha * np.sqrt(heat)[..., None]
    return (1 - weight) * gray + weight * colour


def _save(fig, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=100)


def heatmap(p: np.ndarray, row_labels: list[str], au_names: list[str], path: str | Path, title: str) -> Path:
    """Filters x AUs P(j,u) as a PNG: AUs as rows and filters (in the order given) as columns.

    A hundred filters as rows made a figure taller than a screen with the AU axis below it; as
    columns the figure is wide and short, and both axes are on screen at once.
    """
    n = max(len(row_labels), 4)
    fig, ax = plt.subplots(figsize=(min(16.0, 3.0 + 0.13 * n), 1.8 + 0.3 * max(len(au_names), 4)))
    im = ax.imshow(np.asarray(p).T.reshape(len(au_names), -1), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                   interpolation="nearest")
    ax.set_yticks(range(len(au_names)), au_names, fontsize=9)
    step = max(1, int(np.ceil(len(row_labels) / 60)))  # at most 60 filter labels: each stays legible
    ax.set_xticks(range(0, len(row_labels), step), row_labels[::step], rotation=90, fontsize=7)
    ax.set_ylabel("Action Unit")
    ax.set_xlabel("alive filter (best AU, P)")
    ax.set_title(title, fontsize=11)
    fig.colorbar(im, ax=ax, label="P(j,u)", fraction=0.03, pad=0.01)
    fig.tight_layout()
    return _save(fig, path)


def _mosaic(cells: list[np.ndarray], cols: int, gap: int = 2) -> np.ndarray:
    """Equal-size RGB cells tiled row by row on white, `gap` pixels apart (one imshow, not one axes per cell)."""
    h, w = cells[0].shape[:2]
    rows = int(np.ceil(len(cells) / cols))
    out = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, 3))
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = cell
    return out


def _draw(tiles: np.ndarray, cols: int, cell: tuple[int, int], labels: dict[int, str], inch_per_cell: float,
          path: str | Path, title: str, gap: int = 2, fontsize: float = 6) -> Path:
    """Show a mosaic with a small label above the cells named in `labels` (index -> text)."""
    rows = int(np.ceil(tiles.shape[0] / (cell[0] + gap)))
    fig, ax = plt.subplots(figsize=(inch_per_cell * cols, inch_per_cell * 1.15 * rows + 0.4))
    ax.imshow(tiles, interpolation="nearest")
    for i, text in labels.items():
        r, c = divmod(i, cols)
        ax.text(c * (cell[1] + gap), r * (cell[0] + gap) + 1, text, fontsize=fontsize, va="top", color="white",
                bbox={"facecolor": "black", "alpha": 0.55, "pad": 0.8, "linewidth": 0})
    ax.set_axis_off()
    ax.set_title(title, fontsize=fontsize + 2)
    fig.tight_layout(pad=0.2)
    return _save(fig, path)


def topk_figure(images: np.ndarray, guided: np.ndarray, deconv: np.ndarray, titles: list[str],
                path: str | Path) -> Path:
    """Paper Fig. 5: per filter (row), each top image, its deconvnet and its guided-backprop overlay.

    images / guided / deconv: F x K x H x W x C for F filters and their K top images.
    """
    f, k = images.shape[:2]
    cells = []
    for r in range(f):
        for c in range(k):
            cells += [np.repeat(_gray(images[r, c])[..., None], 3, -1), overlay(images[r, c], deconv[r, c]),
                      overlay(images[r, c], guided[r, c])]
    cols = 3 * k
    return _draw(_mosaic(cells, cols), cols, images.shape[2:4], {r * cols: titles[r] for r in range(f)}, 0.9, path,
                 "top images | deconvnet | guided backprop, per filter")


FILTERS_PER_PAGE = 16  # 4 x 4 cells of 2.4 in: labels at 10 pt, readable at 100% zoom on a 1600-px screen


def filter_grid(images: np.ndarray, guided: np.ndarray, titles: list[str], out_dir: str | Path,
                stem: str = "filter_grid") -> list[Path]:
    """Paper Fig. 6: one cell per filter (its top image's guided-backprop overlay), labelled with best AU and P.

    About a hundred filters in one figure made labels too small to read, so the grid is split into
    pages of FILTERS_PER_PAGE (`<stem>_01.png`, ...), in the order given (the most AU-specific first).
    """
    cells = [overlay(image, g) for image, g in zip(images, guided)] or [np.ones((*images.shape[1:3], 3))]
    pages = [range(i, min(i + FILTERS_PER_PAGE, len(cells))) for i in range(0, len(cells), FILTERS_PER_PAGE)]
    cols = int(np.ceil(np.sqrt(FILTERS_PER_PAGE)))
    written = []
    for number, page in enumerate(pages, 1):
        labels = {k: titles[i] for k, i in enumerate(page) if i < len(titles)}
        written.append(_draw(_mosaic([cells[i] for i in page], cols), cols, images.shape[1:3], labels, 2.4,
                             Path(out_dir) / f"{stem}_{number:02d}.png",
                             f"each filter's top image, guided backprop (best AU, P): filters "
                             f"{page.start + 1}-{page.stop} of {len(cells)}", fontsize=10))
    return written


def kernel_grid(kernels: np.ndarray, scale: float, path: str | Path) -> Path:
    """First-layer kernels (kh x kw x C x F) in pixel space, averaged over input channels, one cell each."""
    k = np.asarray(kernels, np.float64).mean(axis=2) * scale
    n = k.shape[-1]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(0.6 * cols, 0.6 * rows + 0.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            lim = np.abs(k[..., i]).max() or 1.0
            ax.imshow(k[..., i], cmap="gray", vmin=-lim, vmax=lim, interpolation="nearest")
    fig.suptitle("conv1 kernels (pixel space)", fontsize=8)
    return _save(fig, path)

"""Every PNG ferops logs reads at 100% zoom: at least 800 px wide and no label cut by the canvas edge."""

import cv2
import matplotlib.pyplot as plt

from ferops.evaluation import MIN_WIDTH_PX, reaches_past_canvas, save_figure
from infra.ui_screenshot import drawn_to_the_edge, png_width


def _figure_with_a_label_past_the_edge():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_ylabel("a long label " * 8)  # taller than the figure: both ends fall off the canvas
    ax.text(1.15, 0.5, "right of the canvas", transform=ax.transAxes)
    return fig


def test_a_label_past_the_edge_is_seen_and_the_saved_png_holds_it(tmp_path):
    fig = _figure_with_a_label_past_the_edge()
    assert reaches_past_canvas(fig)
    cut = tmp_path / "cut.png"
    fig.savefig(cut, dpi=200)  # what a plain savefig does with it
    assert drawn_to_the_edge(cut)
    saved = save_figure(fig, tmp_path / "whole.png")
    assert not drawn_to_the_edge(saved)
    assert png_width(saved) >= MIN_WIDTH_PX
    height, width = cv2.imread(str(saved)).shape[:2]
    assert height / width > 3 / 4  # taller in shape than the 4x3-in canvas: the whole label is in


def test_a_figure_that_fits_keeps_its_size_and_grows_to_the_minimum_width(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("fits")
    fig.tight_layout()
    assert not reaches_past_canvas(fig)
    saved = save_figure(fig, tmp_path / "fits.png")
    assert png_width(saved) == MIN_WIDTH_PX  # 4 in at the dpi that makes 800 px
    assert cv2.imread(str(saved)).shape[0] == 600
    assert not drawn_to_the_edge(saved)

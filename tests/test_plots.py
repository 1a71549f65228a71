"""The pictures a run and a curve draw (real matplotlib drawings: elsewhere in this process tests
get a PNG signature for history.png, tests/conftest.py)."""

from __future__ import annotations

import pytest
from PIL import Image

from cftrain.plots import curve_png, history_png

pytestmark = pytest.mark.real_plots


def history(terms: tuple, epochs: int = 4) -> list:
    return [{"epoch": e, "task_loss": 1 / e, **{t: 0.5 / e for t in terms}, **{f"{t}_rows": 6 for t in terms},
             "val_accuracy": 50.0 + e % 3, "seconds": 0.1} for e in range(1, epochs + 1)]


@pytest.mark.parametrize("terms", [(), ("gs",), ("gs", "clp")])
def test_history_draws_a_panel_per_loss_term_and_the_val_metric(tmp_path, terms):
    history_png(history(terms), tmp_path / "h.png", "accuracy", "toy gs")
    with Image.open(tmp_path / "h.png") as image:
        assert image.format == "PNG"
        assert image.size == (round(3.4 * (2 + len(terms)) * 80), 3 * 80)  # 3.4 x 3 inches a panel, at 80 dpi
        colours = len(image.convert("RGB").getcolors(maxcolors=1 << 16) or [])
    assert colours > 20  # lines, labels and the best-epoch marker, not a blank canvas


def test_a_refit_without_val_draws_no_best_epoch(tmp_path):
    lines = [dict(h, val_accuracy=None) for h in history(("gs",))]
    history_png(lines, tmp_path / "h.png", "accuracy", "toy gs refit")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_curve_draws_a_line_and_band_per_mode_with_the_fractions_as_ticks(tmp_path):
    points = {"original": [(0.25, 60.0, 58.0, 62.0), (1.0, 70.0, 69.0, 71.0)],
              "gs": [(0.25, 64.0, 61.0, 67.0), (1.0, 74.0, 73.5, 74.5)]}
    curve_png(points, tmp_path / "c.png", "accuracy", "test", "toy: test accuracy")
    with Image.open(tmp_path / "c.png") as image:
        assert image.format == "PNG" and image.size == (round(5.5 * 90), round(3.8 * 90))  # 5.5 x 3.8 inches, 90 dpi
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 16) or []
        # matplotlib's first two line colours (C0 blue, C1 orange), one per mode
        drawn = {rgb for _, rgb in colours}
    assert (31, 119, 180) in drawn and (255, 127, 14) in drawn
    assert len(colours) > 20  # bands, ticks and labels, not a blank canvas

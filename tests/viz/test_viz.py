"""Overlay mosaics, training curves and the HTML report."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from versaseg.errors import InputError
from versaseg.viz.curves import panel_of, plot_curves, read_metrics_csv
from versaseg.viz.overlays import label_colormap, overlay_mosaic, slice_positions
from versaseg.viz.report import write_html_report


def _volume(size: int = 32):
    """A cube image (X, Y, Z) with label 1 at low X and label 2 at high X (same Y/Z range)."""
    image = np.random.default_rng(0).normal(0.5, 0.05, (size, size, size)).astype(np.float32)
    label = np.zeros((size, size, size), np.uint8)
    label[4:12, 10:22, 10:22] = 1
    label[20:28, 10:22, 10:22] = 2
    return image, label


def _coloured(rgb: np.ndarray) -> np.ndarray:
    """Pixels (H, W) that are clearly not grey."""
    return rgb.max(-1) - rgb.min(-1) > 0.2


def test_label_colormap_fixed_distinct_background_transparent():
    colours = label_colormap(40)
    assert colours.shape == (40, 4) and colours.dtype == np.float32
    assert colours[0, 3] == 0 and np.all(colours[1:, 3] == 1)
    assert np.array_equal(label_colormap(5), colours[:5])  # a value keeps its colour whatever n is
    assert len({tuple(np.round(c, 3)) for c in colours[1:, :3]}) == 39
    with pytest.raises(ValueError):
        label_colormap(0)


def test_slice_positions_within_label_extent():
    mask = np.zeros((10, 20, 30), bool)
    mask[:, 5:16, :] = True
    assert slice_positions(mask, 1, 1) == [10]
    assert slice_positions(mask, 1, 3) == [8, 10, 12]
    assert slice_positions(np.zeros((10, 20, 30), bool), 2, 1) == [14]


def test_overlay_mosaic_png_and_colours_where_labels_are(tmp_path):
    image, label = _volume()
    out = overlay_mosaic(image, [("ground truth", label)], tmp_path / "mosaic.png", slices=1)
    assert out == tmp_path / "mosaic.png" and out.exists()
    rgb = imread(out)[..., :3]
    height, width = rgb.shape[:2]
    assert height > width  # 3 rows of square panels, 2 columns
    left, right = rgb[:, : width // 2], rgb[:, width // 2:]
    assert _coloured(left).sum() == 0  # the plain image column is grey
    # first row (axial): label 1 (red) left of label 2 (green), both in the label column
    axial = right[: height // 3]
    colours = label_colormap(3)[:, :3]
    red = _coloured(axial) & (axial[..., 0] > axial[..., 1] + 0.2)
    green = _coloured(axial) & (axial[..., 1] > axial[..., 0] + 0.2)
    assert red.sum() > 50 and green.sum() > 50
    assert np.argwhere(red)[:, 1].mean() < np.argwhere(green)[:, 1].mean()
    assert colours[1, 0] > colours[1, 1] and colours[2, 1] > colours[2, 0]
    # the coloured area matches the label's share of the panel (8x12 of 32x32 voxels each)
    panel_pixels = (width // 2) * (height // 3)
    assert 0.5 * (96 / 1024) < red.sum() / panel_pixels < 1.5 * (96 / 1024)


def test_overlay_mosaic_size_order_aspect_and_contour(tmp_path):
    image, label = _volume()
    one = imread(overlay_mosaic(image, [("gt", label)], tmp_path / "one.png", slices=1))
    three = imread(overlay_mosaic(image, [("gt", label), ("pred", label)], tmp_path / "three.png", slices=3,
                                  title="case 1"))
    assert three.shape[0] > 2 * one.shape[0]  # 9 rows instead of 3
    assert three.shape[1] > one.shape[1]  # 3 columns instead of 2
    # a 3 mm slice spacing stretches coronal and sagittal panels vertically
    stretched = imread(overlay_mosaic(image, [("gt", label)], tmp_path / "aniso.png", slices=1,
                                      spacing=(1.0, 1.0, 3.0)))
    assert stretched.shape[0] > 1.8 * one.shape[0] and stretched.shape[1] == one.shape[1]
    contour = imread(overlay_mosaic(image, [("gt", label)], tmp_path / "contour.png", slices=1, mode="contour"))
    filled = imread(tmp_path / "one.png")
    assert 0 < _coloured(contour[..., :3]).sum() < _coloured(filled[..., :3]).sum()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aniso.png", "contour.png", "one.png", "three.png"]


def test_overlay_mosaic_rejects_mismatched_label(tmp_path):
    image, label = _volume()
    with pytest.raises(ValueError, match="shape"):
        overlay_mosaic(image, [("gt", label[:-1])], tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_overlay_mosaic_legend_and_empty_label(tmp_path):
    image, label = _volume()
    out = overlay_mosaic(image, [("empty", np.zeros_like(label))], tmp_path / "m.png", slices=2,
                         class_names={0: "background", 1: "left", 2: "right"})
    rgb = imread(out)[..., :3]
    # no overlay in the panels, but the legend swatches are coloured (bottom strip)
    assert _coloured(rgb[: int(rgb.shape[0] * 0.9)]).sum() == 0
    assert _coloured(rgb[int(rgb.shape[0] * 0.9):]).sum() > 0


def _write_csv(path, text):
    path.write_text(text)
    return path


def test_plot_curves_full_csv(tmp_path):
    rows = ["epoch,train_loss,val_loss,val_dice_cerebrum,val_dice_vessels,lr,seconds"]
    for epoch in range(12):
        rows.append(f"{epoch},{1 / (epoch + 1):.4f},{1.2 / (epoch + 1):.4f},{0.5 + epoch / 30:.3f},"
                    f"{0.1 + epoch / 20:.3f},{1e-3 * 0.9**epoch:.6g},{3.2 + epoch % 2}")
    csv_path = _write_csv(tmp_path / "metrics.csv", "\n".join(rows) + "\n")
    out = plot_curves(csv_path, tmp_path / "curves.png")
    full = imread(out)
    assert full.ndim == 3 and full.shape[1] > 3 * full.shape[0]  # four panels side by side
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_plot_curves_missing_columns_and_bad_cells(tmp_path):
    csv_path = _write_csv(tmp_path / "metrics.csv", "epoch,train_loss,phase,lr\n0,1.0,warmup,0.01\n1,,train,0.01\n"
                                                    "2,0.5,train,nan\n")
    columns = read_metrics_csv(csv_path)
    assert set(columns) == {"epoch", "train_loss", "lr"}  # 'phase' is not numeric
    assert np.isnan(columns["train_loss"][1])
    partial = imread(plot_curves(csv_path, tmp_path / "partial.png"))
    only_loss = imread(plot_curves(_write_csv(tmp_path / "loss.csv", "train_loss\n1.0\n0.7\n"), tmp_path / "l.png"))
    assert partial.shape[1] > 1.5 * only_loss.shape[1]  # two panels (loss, lr) vs one
    empty = plot_curves(_write_csv(tmp_path / "empty.csv", "epoch,train_loss\n"), tmp_path / "empty.png")
    assert imread(empty).shape[0] > 0
    with pytest.raises(InputError, match="not found"):
        plot_curves(tmp_path / "missing.csv", tmp_path / "x.png")
    with pytest.raises(InputError, match="empty"):
        plot_curves(_write_csv(tmp_path / "blank.csv", ""), tmp_path / "x.png")


def test_panel_grouping():
    assert [panel_of(c) for c in ("train_loss", "val_loss", "val_dice_vessels", "lr", "seconds", "val_hd95")] == [
        "loss", "loss", "dice", "lr", "other", "other"]


def test_html_report(tmp_path):
    image, label = _volume()
    figures = tmp_path / "figures"
    png = overlay_mosaic(image, [("gt", label)], figures / "case 1.png", slices=1)
    out = write_html_report(
        tmp_path / "report" / "index.html",
        "Evaluation <run 1>",
        [
            ("Summary", ["Mean Dice & friends.\n\nSecond paragraph.", {"cases": 12, "mean dice": 0.912345}]),
            ("Per class", [{"cerebrum": {"dice": 0.9731, "hd95": 2.5}, "vessels": {"dice": 0.4012}}]),
            ("Per case", [[{"case": "phantom_000", "dice": 0.88}, {"case": "phantom_001", "dice": float("nan")}]]),
            ("Figures", [png, tmp_path / "metrics.csv"]),
        ],
    )
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Evaluation &lt;run 1&gt;" in text
    assert "Mean Dice &amp; friends." in text and text.count("<p>") >= 3
    for value in ("0.9123", "0.9731", "2.5", "0.4012", "phantom_001", "0.88", "nan", "hd95", "12"):
        assert f">{value}<" in text, value
    assert 'src="../figures/case%201.png"' in text and 'href="../metrics.csv"' in text
    assert text.count("<table>") == 3 and text.count("<section>") == 4
    with pytest.raises(TypeError):
        write_html_report(tmp_path / "bad.html", "x", [("s", [object()])])
    assert not (tmp_path / "bad.html").exists()

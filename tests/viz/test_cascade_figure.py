"""The cascade figure: planes through the labelled part of the ROI, the ROI box drawn, shape errors."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from versaseg.viz.cascade import ROI_COLOUR, _slice_positions, cascade_figure


def _scene():
    """Image (X, Y, Z), stage-1 mask, ROI, labels: one label blob inside the ROI, off the ROI's centre in X."""
    image = np.random.default_rng(0).normal(0.5, 0.05, (40, 36, 30)).astype(np.float32)
    labels = np.zeros(image.shape, np.int16)
    labels[12:15, 14:20, 10:16] = 1
    labels[13, 20:23, 11:14] = 2  # slice x=13 holds the most labelled voxels
    stage1 = np.zeros(image.shape, np.uint8)
    stage1[10:18, 12:22, 8:18] = 1
    roi = (slice(6, 30), slice(8, 26), slice(4, 22))
    return image, stage1, roi, labels


def test_planes_go_through_the_labels_not_the_roi_centre():
    image, _, roi, labels = _scene()
    positions = _slice_positions(roi, [labels > 0])
    assert positions[0] == 13  # not the ROI centre 17
    assert roi[1].start <= positions[1] < roi[1].stop and roi[2].start <= positions[2] < roi[2].stop
    assert labels[positions[0], :, :].any() and labels[:, positions[1], :].any() and labels[:, :, positions[2]].any()
    assert _slice_positions(roi, [np.zeros_like(labels, bool)]) == [17, 16, 12]  # nothing labelled: the centre


def test_figure_draws_the_roi_box_and_one_column_per_label_map(tmp_path):
    image, stage1, roi, labels = _scene()
    without = imread(cascade_figure(image, stage1, roi, labels, tmp_path / "a.png"))
    with_truth = imread(cascade_figure(image, stage1, roi, labels, tmp_path / "b.png", truth=labels,
                                       class_names={1: "one", 2: "two"}, title="t"))
    assert with_truth.shape[1] > without.shape[1]  # the ground-truth column
    cyan = np.array([int(ROI_COLOUR[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    near = np.abs(with_truth[..., :3] - cyan).max(-1) < 0.1
    assert near.sum() > 200  # box edges and panel frames
    assert not (tmp_path / "b.png.tmp").exists()


def test_figure_rejects_mismatched_shapes_and_bad_roi(tmp_path):
    image, stage1, roi, labels = _scene()
    with pytest.raises(ValueError, match="labels has shape"):
        cascade_figure(image, stage1, roi, labels[:-1], tmp_path / "x.png")
    with pytest.raises(ValueError, match="roi"):
        cascade_figure(image, stage1, (slice(0, 50), roi[1], roi[2]), labels, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()

"""Shape priors between annotated slices: signed distances, interpolation, tapering, leave-one-out, nearest copy."""

from __future__ import annotations

import numpy as np
import pytest

from versaseg.data.slice_interpolation import (
    EMPTY_DISTANCE_MM,
    distances_to_labels,
    interpolate_distances,
    leave_one_out_distances,
    nearest_slice_copy,
    shape_interpolation,
    slice_signed_distances,
)


def disk(radius: float, size: int = 41, centre: tuple[float, float] = (20, 20), value: int = 1) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.where((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2, value, 0).astype(np.int16)


def radius_of(mask: np.ndarray) -> float:
    return float(np.sqrt(mask.sum() / np.pi))


def test_signed_distance_is_negative_inside_and_scaled_by_spacing():
    d = slice_signed_distances(disk(8)[None], [1], (1.0, 1.0))[0, 0]
    assert d[20, 20] == pytest.approx(-7.5, abs=0.6)  # centre: about one radius inside (boundary half a pixel out)
    assert d[20, 0] == pytest.approx(20 - 8 - 0.5, abs=0.6)  # 12 px outside the boundary
    d2 = slice_signed_distances(disk(8)[None], [1], (2.0, 2.0))[0, 0]
    assert d2[20, 0] == pytest.approx(2 * (20 - 8) - 1.0, abs=1.2)  # mm, not pixels


def test_absent_and_full_classes_get_the_sentinel_distance():
    d = slice_signed_distances(np.stack([disk(5), np.full((41, 41), 2, np.int16)]), [2, 3], (1.0, 1.0))
    assert np.all(d[0, 0] == EMPTY_DISTANCE_MM)  # class 2 absent from slice 0
    assert np.all(d[1, 0] == -EMPTY_DISTANCE_MM)  # class 2 fills slice 1
    assert np.all(d[:, 1] == EMPTY_DISTANCE_MM)  # class 3 absent everywhere


def test_interpolation_morphs_between_two_disks():
    slices = np.stack([disk(6), disk(14)])
    d = slice_signed_distances(slices, [1], (1.0, 1.0))
    middle = distances_to_labels(interpolate_distances(d, [0, 10], [5], 1.0), [1])[0]
    assert radius_of(middle == 1) == pytest.approx(10, abs=0.7)
    exact = interpolate_distances(d, [0, 10], [0, 10], 1.0)
    np.testing.assert_array_equal(exact, d)  # annotated slices return their own distances


def test_interpolation_moves_a_shifted_disk_half_way():
    slices = np.stack([disk(8, centre=(20, 15)), disk(8, centre=(20, 25))])
    d = slice_signed_distances(slices, [1], (1.0, 1.0))
    middle = distances_to_labels(interpolate_distances(d, [0, 8], [4], 1.0), [1])[0]
    ys, xs = np.nonzero(middle)
    assert xs.mean() == pytest.approx(20, abs=0.5)


def test_class_present_on_one_side_tapers_like_a_cone():
    slices = np.stack([np.zeros((41, 41), np.int16), disk(10)])
    d = slice_signed_distances(slices, [1], (1.0, 1.0))
    # 4 slices of 1 mm from the disk towards the empty slice: radius shrinks by about 4 mm (45-degree cone)
    labels = distances_to_labels(interpolate_distances(d, [0, 10], [6], 1.0), [1])[0]
    assert radius_of(labels == 1) == pytest.approx(6, abs=0.8)


def test_beyond_the_ends_shapes_taper_off():
    d = slice_signed_distances(np.stack([disk(9), disk(9)]), [1], (1.0, 1.0))
    labels = distances_to_labels(interpolate_distances(d, [5, 10], [2, 13, 30], 2.0), [1])
    assert radius_of(labels[0] == 1) == pytest.approx(9 - 3 * 2, abs=0.8)  # 3 slices of 2 mm before the first
    assert radius_of(labels[1] == 1) == pytest.approx(9 - 3 * 2, abs=0.8)
    assert not labels[2].any()  # far beyond: gone


def test_leave_one_out_ignores_the_slice_itself():
    slices = np.stack([disk(6), disk(14), disk(6)])  # the middle slice is an outlier
    d = slice_signed_distances(slices, [1], (1.0, 1.0))
    loo = leave_one_out_distances(d, [0, 4, 8], 1.0)
    assert radius_of(distances_to_labels(loo[1:2], [1])[0] == 1) == pytest.approx(6, abs=0.7)
    with pytest.raises(ValueError, match="at least two"):
        leave_one_out_distances(d[:1], [0], 1.0)


def test_multi_class_labels_pick_the_deepest_class():
    slices = np.stack([disk(12, value=1), disk(12, value=1)])
    slices[:, 18:23, 18:23] = 2
    d = slice_signed_distances(slices, [1, 2], (1.0, 1.0))
    labels = distances_to_labels(interpolate_distances(d, [0, 4], [2], 1.0), [1, 2])[0]
    assert labels[20, 20] == 2 and labels[20, 10] == 1 and labels[0, 0] == 0


def test_shape_interpolation_recovers_a_sphere():
    zz, yy, xx = np.mgrid[:41, :41, :41]
    sphere = ((zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 15**2).astype(np.int16)
    ids = list(range(4, 41, 6))
    dense = shape_interpolation(sphere[ids], ids, 41, [1], (1.0, 1.0, 1.0))
    dice = 2 * np.sum((dense == 1) & (sphere == 1)) / (np.sum(dense == 1) + np.sum(sphere == 1))
    assert dice > 0.93


def test_interpolation_rejects_unsorted_ids():
    d = slice_signed_distances(np.stack([disk(5), disk(5)]), [1], (1.0, 1.0))
    with pytest.raises(ValueError, match="sorted"):
        interpolate_distances(d, [5, 1], [3], 1.0)


def test_nearest_slice_copy_reaches_half_a_gap_beyond_the_ends():
    slices = np.stack([disk(5, value=1), disk(5, value=2)])
    dense = nearest_slice_copy(slices, [4, 8], 16)
    assert not dense[1].any() and dense[2].max() == 1 and dense[5].max() == 1  # reach = 2 slices
    assert dense[7].max() == 2 and dense[10].max() == 2 and not dense[11].any()
    assert dense[6].max() == 1  # a tie goes to the lower slice

"""Signed distance maps: values on hand-made shapes, ignore voxels, in-plane maps, cropping and augmentation with the
label."""

from __future__ import annotations

import math

import numpy as np
import pytest

from versaseg.data.augment import build_augmentation
from versaseg.data.distance import signed_distance_maps
from versaseg.data.sampling import PatchSampler, TrainingVolume


def test_values_on_a_row_in_mm():
    label = np.array([[0, 0, 1, 1, 1, 0, 0]])
    maps = signed_distance_maps(label, 2, spacing=(1.0, 2.0))
    assert maps.dtype == np.float32 and maps.shape == (2, 1, 7)
    assert maps[1, 0].tolist() == [4, 2, -2, -4, -2, 2, 4]
    assert maps[0, 0].tolist() == [-4, -2, 2, 4, 2, -2, -4]


def test_ignore_voxels_define_no_boundary_and_absent_classes_get_the_diagonal():
    label = np.array([[0, 9, 1, 1, 1, 0, 0]])  # 9: unannotated
    maps = signed_distance_maps(label, 3, spacing=(1.0, 2.0), ignore_label=9)
    # voxel 2's nearest annotated non-1 voxel is voxel 0 (4 mm), not the ignore voxel next to it
    assert maps[1, 0].tolist() == [4, 2, -4, -4, -2, 2, 4]
    assert maps[2, 0].tolist() == pytest.approx([math.hypot(1, 14)] * 7)  # class 2 absent: diagonal, positive
    everything = signed_distance_maps(np.ones((3, 3), int), 2, (1.0, 1.0))
    assert np.allclose(everything[1], -math.hypot(3, 3))  # no annotated voxel outside class 1
    assert np.isfinite(signed_distance_maps(np.full((3, 3), 9), 2, (1.0, 1.0), ignore_label=9)).all()


def test_sphere_in_3d_and_in_plane_maps():
    grid = np.indices((21, 21, 9)).astype(float)
    radius = np.sqrt((grid[0] - 10) ** 2 + (grid[1] - 10) ** 2 + ((grid[2] - 4) * 2) ** 2)
    label = (radius <= 6).astype(np.int16)
    maps = signed_distance_maps(label, 2, spacing=(1.0, 1.0, 2.0))
    assert maps[1, 10, 10, 4] == pytest.approx(-math.sqrt(37))  # centre: nearest outside voxel at offset (6, 1, 0)
    assert maps[1, 10, 0, 4] == pytest.approx(4)  # nearest inside voxel: (10, 4, 4)
    assert (maps[1][label == 1] < 0).all() and (maps[1][label == 0] > 0).all()
    planes = signed_distance_maps(label, 2, spacing=(1.0, 1.0, 2.0), plane_axis=2)
    for z in (0, 4, 8):
        assert np.array_equal(planes[:, :, :, z], signed_distance_maps(label[:, :, z], 2, spacing=(1.0, 1.0)))
    assert planes[1, 10, 10, 0] > 0  # slice z=0 holds no sphere: in-plane, the outside distance is the diagonal


def _volume(distance_stand_in: bool = False) -> TrainingVolume:
    rng = np.random.default_rng(0)
    label = np.zeros((20, 22, 6), np.int16)
    label[4:12, 6:15] = 1
    label[13:17, 2:9] = 2
    image = rng.normal(size=(1, *label.shape)).astype(np.float32)
    volume = TrainingVolume.from_arrays("v", image, label, None, rng, spacing=(1.0, 1.0, 3.0))
    volume.ensure_distance(3, 2)
    if distance_stand_in:  # channel 0 = the label itself, to check exact co-transformation
        volume.distance = volume.distance.copy()
        volume.distance[0] = label
    return volume


def test_training_volume_computes_the_maps_once():
    volume = _volume()
    first = volume.distance
    assert first.shape == (3, 20, 22, 6) and volume.distance_key == (3, 2)
    assert volume.ensure_distance(3, 2) is first


def test_sampler_crops_maps_with_the_label():
    volume = _volume()
    sampler = PatchSampler([volume], 2, 2, (16, 16), 4, 0.5, None, seed=0, distance=True)
    batch = next(iter(sampler))
    assert batch["distance"].shape == (4, 3, 16, 16) and batch["distance"].dtype.is_floating_point
    label, mask, distance = batch["label"].numpy(), batch["mask"].numpy(), batch["distance"].numpy()
    for k in range(3):
        inside = (label[:, 0] == k) & (mask[:, 0] > 0)
        assert (distance[:, k][inside] < 0).all() and (distance[:, k][~inside & (mask[:, 0] > 0)] > 0).all()
    plain = next(iter(PatchSampler([volume], 2, 2, (16, 16), 4, 0.5, None, seed=0)))
    assert set(plain) == {"image", "label", "mask"}
    assert np.array_equal(plain["label"].numpy(), label)  # same patches with and without the maps


def test_flips_move_the_maps_with_the_label_and_intensity_transforms_leave_them():
    volume = _volume(distance_stand_in=True)
    sampler = PatchSampler([volume], 2, 2, (16, 16), 32, 0.5, None, seed=3, augment=build_augmentation("light", 2),
                           distance=True)
    batch = next(iter(sampler))
    label, distance = batch["label"].numpy(), batch["distance"].numpy()
    assert np.array_equal(distance[:, 0], label[:, 0].astype(np.float32))  # flips, gamma and noise applied
    assert not np.array_equal(batch["image"].numpy(), np.zeros_like(batch["image"].numpy()))
    unflipped = next(iter(PatchSampler([volume], 2, 2, (16, 16), 32, 0.5, None, seed=3, distance=True)))
    assert not np.array_equal(unflipped["label"].numpy(), label)  # some samples were flipped


def test_affine_and_elastic_move_the_maps_with_the_label():
    volume = _volume(distance_stand_in=True)
    sampler = PatchSampler([volume], 2, 2, (16, 16), 32, 0.5, None, seed=4,
                           augment=build_augmentation("default", 2), distance=True)
    batch = next(iter(sampler))
    label, mask, distance = batch["label"].numpy()[:, 0], batch["mask"].numpy()[:, 0], batch["distance"].numpy()
    inside = mask > 0
    agree = np.abs(distance[:, 0] - label)[inside] < 0.5  # bilinear vs nearest differ only along class edges
    assert agree.mean() > 0.9
    # the sign of a real map still marks the class on the annotated voxels away from its edge
    away = inside & (np.abs(distance[:, 1]) > 1.5)
    assert ((distance[:, 1] < 0) == (label == 1))[away].all()

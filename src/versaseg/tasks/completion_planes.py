"""Completion from annotated slices on several planes: a few axial *and* a few sagittal (or coronal) slices.

Slices on a second plane cross every slice of the first: a sagittal slice shows where each structure starts and ends
along the axial direction, exactly where interpolation between axial slices is weakest. This module fuses the planes
in the shape prior and trains the voxel classifier of :mod:`versaseg.tasks.completion_models` on all of them:

1. **One prior per plane.** For each plane (canonical axis ``a`` with its annotated slices) the signed distances of
   its slices are interpolated along ``a`` over the whole working region, as for one plane
   (:func:`versaseg.data.slice_interpolation.interpolate_distances`, tapered beyond the end slices).
2. **Fusion.** At each voxel the planes' signed distances are averaged with weights ``(d_a + h)^-4``, where ``d_a``
   is the voxel's distance (mm, along ``a``) to the nearest annotated slice of plane ``a`` and ``h`` = 2 mm: the
   plane whose annotation is closest decides, and on an annotated slice its own annotation dominates. A plane's
   distance is first capped at ``d_a + h``: a voxel that far from the plane's slices may lie inside a structure that
   none of them shows (a signed distance changes by at most the distance moved), so "absent from my slices" must not
   outvote a nearer plane that shows it. (Fused prior alone, synthetic brain, 7 axial + 8 sagittal slices: mean
   Dice 0.812 with these weights against 0.786 with ``(d_a + h)^-1``; axial slices alone 0.711.)
3. **Training.** Every annotated slice of every plane is a training example whose prior is the fusion *without that
   slice* (the other slices of its plane - leave-one-out - and the other planes), plus copies with the slice's own
   distances perturbed (a prior close to an annotated slice), as for one plane.
4. **Prediction.** ``final_models`` seeds average their probabilities over the working region (the annotated
   foreground's bounding box plus ``margin_mm``, and one annotation gap along each plane's axis); annotated voxels
   keep their annotation, voxels outside the region are background.

The slice check of one plane (fold models judging each other's slices) is not run across planes yet: the report
says ``checked: false``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from versaseg.data.slice_interpolation import interpolate_distances, slice_signed_distances
from versaseg.tasks.completion_models import CompletionSettings, VoxelModel, perturbed_distances, prior_channels
from versaseg.tasks.completion_suggest import voxel_doubt

NEAR_MM = 2.0  # ``h`` of the fusion weights (d + h)^-POWER
POWER = 4


@dataclass
class Plane:
    """Annotated slices along one canonical axis: ``ids`` (N,) sorted slice indices, ``slices`` (N, H, W) class
    indices in the axis-first frame (``np.moveaxis(volume, axis, 0)[ids]``)."""

    axis: int
    ids: np.ndarray
    slices: np.ndarray


def nearest_slice_mm(ids: np.ndarray, length: int, spacing: float) -> np.ndarray:
    """(length,) distance in mm from each index along an axis to the nearest of ``ids``."""
    positions = np.arange(length)[:, None]
    return np.abs(positions - np.asarray(ids)[None, :]).min(axis=1).astype(np.float32) * spacing


def _axis_spacing(spacing: tuple, axis: int) -> tuple[float, tuple[float, float]]:
    return spacing[axis], tuple(spacing[d] for d in range(3) if d != axis)


class PlaneFusion:
    """The fused shape prior of several planes over a working region of shape (X, Y, Z) in canonical order."""

    def __init__(self, planes: list[Plane], foreground: list[int], shape: tuple, spacing: tuple):
        self.planes, self.foreground, self.shape, self.spacing = planes, foreground, shape, spacing
        self.slice_distances = []  # per plane: (N, K, H, W) signed distances of its slices
        self.volumes = []  # per plane: (K, X, Y, Z) interpolated along its axis
        self.near_mm = []  # per plane: (length along its axis,) mm to its nearest annotated slice
        for plane in planes:
            along, in_plane = _axis_spacing(spacing, plane.axis)
            distances = slice_signed_distances(plane.slices, foreground, in_plane)
            volume = interpolate_distances(distances, plane.ids, range(shape[plane.axis]), along)  # (S, K, H, W)
            near = nearest_slice_mm(plane.ids, shape[plane.axis], along)
            volume = np.minimum(volume, (near + NEAR_MM)[:, None, None, None])  # the cap of step 2
            self.slice_distances.append(distances)
            self.volumes.append(np.moveaxis(volume.transpose(1, 0, 2, 3), 1, plane.axis + 1))
            self.near_mm.append(near)

    def _weight(self, p: int, region: tuple) -> np.ndarray:
        """Fusion weight of plane ``p`` on ``region`` (a tuple of three slices/indices), broadcastable to it."""
        view = [1, 1, 1]
        view[self.planes[p].axis] = -1
        weight = (self.near_mm[p] + NEAR_MM) ** -float(POWER)
        return weight.reshape(view)[tuple(r if d == self.planes[p].axis else slice(None)
                                          for d, r in enumerate(region))]

    def fused(self, region: tuple) -> np.ndarray:
        """Fused signed distances (K, *region shape) on ``region`` (three slices of the working region)."""
        total = weights = 0.0
        for p in range(len(self.planes)):
            w = self._weight(p, region)
            total = total + w * self.volumes[p][(slice(None), *region)]
            weights = weights + w
        return (total / weights).astype(np.float32)

    def held_out(self, p: int, n: int) -> np.ndarray:
        """Fused distances (K, H, W) on slice ``n`` of plane ``p`` without that slice: the leave-one-out
        interpolation of its own plane (left out when the plane has one slice) and the other planes."""
        plane = self.planes[p]
        index = int(plane.ids[n])
        region = tuple(index if d == plane.axis else slice(None) for d in range(3))
        in_plane_shape = [self.shape[d] for d in range(3) if d != plane.axis]
        total = np.zeros((len(self.foreground), *in_plane_shape), np.float32)
        weights = np.zeros(in_plane_shape, np.float32)
        if len(plane.ids) > 1:
            along = self.spacing[plane.axis]
            keep = np.arange(len(plane.ids)) != n
            own = interpolate_distances(self.slice_distances[p][keep], plane.ids[keep], [index], along)[0]
            reach = float(np.abs(plane.ids[keep] - index).min()) * along + NEAR_MM
            own = np.minimum(own, reach)
            w = reach ** -float(POWER)
            total += w * own
            weights += w
        for q in range(len(self.planes)):
            if q != p:
                w = np.squeeze(self._weight(q, region), axis=plane.axis)  # (H, W) broadcastable
                total += w[None] * self.volumes[q][(slice(None), *region)]
                weights += w
        if not weights.any():
            raise ValueError("a single annotated slice of a single plane cannot be held out")
        return total / weights[None]


def training_rows(fusion: PlaneFusion, features: np.ndarray, settings: CompletionSettings,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows (N, F + P) and class indices (N,) from every annotated slice of every plane: the held-out fused
    prior, plus ``perturbed_copies`` copies with the slice's own distances perturbed. features: (F, X, Y, Z)."""
    rows, labels = [], []
    for p, plane in enumerate(fusion.planes):
        _, in_plane = _axis_spacing(fusion.spacing, plane.axis)
        image = np.moveaxis(features, plane.axis + 1, 1)[:, plane.ids]  # (F, N, H, W)
        examples = [np.stack([fusion.held_out(p, n) for n in range(len(plane.ids))])]
        examples += [perturbed_distances(fusion.slice_distances[p], in_plane, rng)
                     for _ in range(settings.perturbed_copies)]
        for distances in examples:  # (N, K, H, W)
            prior = prior_channels(distances, settings)  # (P, N, H, W)
            block = np.concatenate([image, prior]).reshape(image.shape[0] + prior.shape[0], -1)
            rows.append(block.T)
            labels.append(plane.slices.ravel())
    return np.concatenate(rows), np.concatenate(labels).astype(np.int64)


def complete_planes(classes: np.ndarray, features: np.ndarray, planes: list[Plane], num_classes: int,
                    spacing: tuple, settings: CompletionSettings, progress=print) -> tuple[np.ndarray, dict]:
    """Dense class indices (X, Y, Z) of the working region from annotated slices on several planes.

    classes: (X, Y, Z) class indices, ``num_classes`` where unannotated; features: (F, X, Y, Z) image features;
    planes: the annotated slices (class indices) per canonical axis. Returns the dense classes and facts for the
    report (training rows) and, with ``settings.suggest``, "doubt": (X, Y, Z) per-voxel doubt of the ensemble.
    """
    foreground = list(range(1, num_classes))
    fusion = PlaneFusion(planes, foreground, classes.shape, spacing)
    rng = np.random.default_rng(settings.seed)
    rows, labels = training_rows(fusion, features, settings, rng)
    models = []
    for number in range(settings.final_models):
        model = VoxelModel(None, num_classes, settings, settings.seed + 10 * number)
        keep = model.sample_rows(labels)
        model.fit_rows(rows[keep], labels[keep])
        models.append(model)
    progress(f"{len(models)} completion model(s) trained on {len(planes)} planes")
    dense = np.empty(classes.shape, np.int16)
    doubt = np.zeros(classes.shape, np.float32) if settings.suggest > 0 else None
    for start in range(0, classes.shape[0], 16):
        region = (slice(start, min(start + 16, classes.shape[0])), slice(None), slice(None))
        distances = fusion.fused(region)  # (K, T, Y, Z)
        prior = prior_channels(distances.transpose(1, 0, 2, 3), settings)
        inputs = np.concatenate([features[(slice(None), *region)], prior])
        each = [model.predict(inputs) for model in models]
        dense[region] = (sum(each) / len(each)).argmax(0).numpy()
        if doubt is not None:
            doubt[region] = voxel_doubt(each)
    annotated = classes != num_classes
    dense[annotated] = classes[annotated]
    facts = {"training_rows": int(len(labels))}
    if doubt is not None:
        facts["doubt"] = doubt
    return dense, facts

"""The slice ``versaseg explain`` looks at: the network input for it and how feature maps map back onto it.

2D runs see the slice itself, padded (centred) as the predictor pads it; 3D runs see a ``patch_size`` window centred
on the slice's predicted foreground (or its centre), and a 3D feature map is shown by its slice through the window's
slice. Volumes are canonical ``(X, Y, Z)`` (images ``(C, X, Y, Z)``); a displayed plane is ``(A, B)``: the two axes
other than the run's axis, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from versaseg.data.normalization import normalize
from versaseg.data.sampling import crop, patch_start
from versaseg.errors import InputError
from versaseg.inference.window import pad_to_multiple


@dataclass
class SliceView:
    """The network input for the chosen slice and how to map feature maps back to it."""

    x: torch.Tensor  # (1, C, *S) padded network input
    valid: list[tuple[int, int]]  # per spatial dim of x: the [low, high) part that shows the image
    depth_axis: int | None  # 3D runs: the dim of x along the run's axis; 2D runs: None
    depth_index: int  # 3D runs: the slice's index inside the window
    image: np.ndarray  # (A, B) channel 0 of the slice, as displayed
    box: tuple[slice, ...]  # where the displayed (A, B) plane lies in the volume's remaining axes


def build_view(image: np.ndarray, config, network, axis: int, index: int, foreground: np.ndarray) -> SliceView:
    """The network input for slice ``index`` of normalised ``image (C, X, Y, Z)`` along ``axis``; ``foreground
    (X, Y, Z)`` bool centres a 3D run's window (in-plane) on the slice's foreground."""
    divisor = int(getattr(network, "required_divisor", 1))
    other = [a for a in range(3) if a != axis]
    if config.spatial_dims == 2:
        plane = np.take(image, index, axis=axis + 1)  # (C, A, B)
        # padded (centred) exactly as the predictor pads a slice, so the maps are those of a real prediction
        x, inside = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(plane))[None], divisor,
                                    config.patch_size or ())
        valid = [(c.start, c.stop) for c in inside]
        box = tuple(slice(0, c.stop - c.start) for c in inside)
        return SliceView(x.float(), valid, None, 0, plane[0], box)
    spatial = image.shape[1:]
    plane_fg = np.take(foreground, index, axis=axis)
    centre = [0, 0, 0]
    centre[axis] = index
    if plane_fg.any():
        coords = np.argwhere(plane_fg).mean(0)
    else:
        coords = [spatial[a] / 2 for a in other]
    for a, c in zip(other, coords, strict=True):
        centre[a] = int(round(c))
    size = list(config.patch_size) if config.patch_size else [-(-s // divisor) * divisor for s in spatial]
    start = patch_start(centre, size, spatial)
    window = crop(image, start, size, 0.0)
    x, _ = pad_to_multiple(torch.from_numpy(window)[None], divisor)
    valid = [(max(0, -s), min(n, sp - s)) for s, n, sp in zip(start, size, spatial, strict=True)]
    local = index - start[axis]
    plane = np.take(window[0], local, axis=axis)
    lo = [valid[a] for a in other]
    box = tuple(slice(start[a] + lo[k][0], start[a] + lo[k][1]) for k, a in enumerate(other))
    plane = plane[lo[0][0]:lo[0][1], lo[1][0]:lo[1][1]]
    return SliceView(x.float(), valid, axis, local, plane, box)


def valid_part(feature: torch.Tensor, view: SliceView) -> np.ndarray:
    """The part of a feature map ``(1, C, *S_l)`` that covers the image: ``(C, *S')`` (what the statistics use)."""
    data = feature[0].numpy()
    index = [slice(None)]
    for dim, (low, high) in enumerate(view.valid):
        scale = view.x.shape[2 + dim] / data.shape[1 + dim]
        index.append(slice(int(np.floor(low / scale)), max(int(np.ceil(high / scale)), int(np.floor(low / scale)) + 1)))
    return data[tuple(index)]


def view_plane(cropped: np.ndarray, view: SliceView) -> np.ndarray:
    """(C, *S') -> (C, A, B): the cropped map itself for 2D runs, its slice through the window's slice for 3D."""
    if view.depth_axis is None:
        return cropped
    size_in = view.valid[view.depth_axis][1] - view.valid[view.depth_axis][0]
    n = cropped.shape[1 + view.depth_axis]
    local = view.depth_index - view.valid[view.depth_axis][0]
    k = min(max(int(round((local + 0.5) * n / size_in - 0.5)), 0), n - 1)
    return np.take(cropped, k, axis=1 + view.depth_axis)


def cam_plane(cam_map: np.ndarray, view: SliceView) -> np.ndarray:
    """A Grad-CAM map at the input's size ``(*S)`` -> ``(A, B)`` on the displayed plane."""
    cropped = cam_map[tuple(slice(lo, hi) for lo, hi in view.valid)]
    if view.depth_axis is None:
        return cropped
    return np.take(cropped, view.depth_index - view.valid[view.depth_axis][0], axis=view.depth_axis)


def choose_slice(prediction: np.ndarray, axis: int, classes: list[int], requested: int | None, image: Path) -> int:
    """``requested`` (checked against the extent of ``prediction (X, Y, Z)`` along ``axis``), or the slice with the
    most predicted voxels of ``classes`` (empty: any foreground), or the middle slice when nothing is predicted."""
    count = prediction.shape[axis]
    if requested is None:
        selected = np.isin(prediction, classes) if classes else prediction > 0
        per_slice = selected.sum(axis=tuple(a for a in range(3) if a != axis))
        return int(np.argmax(per_slice)) if per_slice.any() else count // 2
    if not 0 <= requested < count:
        raise InputError(f"--slice {requested} is out of range 0..{count - 1} (axis {axis} of the image in canonical "
                         "RAS order)", image)
    return int(requested)


@dataclass
class Scene:
    """Everything the figures need about the chosen slice."""

    network: torch.nn.Module
    config: object  # TrainConfig
    view: SliceView
    x: torch.Tensor  # the network input on the run's device
    display: np.ndarray  # (A, B) channel 0, raw intensities
    prediction: np.ndarray  # (A, B) predicted labels of the final model
    label: np.ndarray | None  # (A, B) ground truth
    aspect: float
    class_names: list[str]
    predict_volume: Callable[[], torch.Tensor]  # class probabilities (K, X, Y, Z) of the network's current weights
    volume_label: np.ndarray | None  # (X, Y, Z) ground truth


def slice_scene(predictor, case, classes: list[int], requested_slice: int | None, image_path: Path
                ) -> tuple[Scene, int]:
    """Predict ``case`` with ``predictor`` (a :class:`~versaseg.inference.predictor.Predictor`, as `versaseg
    predict` does, without TTA), choose the slice (:func:`choose_slice`) and build its view; returns the scene and
    the slice index."""
    network, config = predictor.network, predictor.config
    image = normalize(case.image, config.normalization)

    def predict_probabilities() -> torch.Tensor:
        return predictor.run(image)

    prediction = predict_probabilities().argmax(0).numpy()
    axis = config.axis
    index = choose_slice(prediction, axis, classes, requested_slice, image_path)
    foreground = np.isin(prediction, classes) if classes else prediction > 0
    view = build_view(image, config, network, axis, index, foreground)
    other = [a for a in range(3) if a != axis]

    def plane(volume: np.ndarray) -> np.ndarray:
        return np.take(volume, index, axis=axis)[view.box]

    scene = Scene(network, config, view, view.x.to(predictor.device), plane(case.image[0]), plane(prediction),
                  None if case.label is None else plane(case.label), case.spacing[other[1]] / case.spacing[other[0]],
                  config.class_names, predict_probabilities, case.label)
    return scene, index

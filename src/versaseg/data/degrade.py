"""Simulate incomplete, noisy teacher labels: sparse slice annotation plus hurried-annotation corruptions.

A fully annotated label map ``(X, Y, Z)`` becomes what a busy annotator hands over: only every K-th slice is annotated,
and a fraction of the annotated slices carry a typical mistake. Corruption kinds (:data:`CORRUPTIONS`), each a small
function on one 2D slice ``(H, W)`` taking ``(slice_labels, image_slice | None, rng)`` and returning
``(new_slice, params)``:

* ``leak``: region growing that ran past a weak edge - one class grows a tongue (ending in a blob) from its boundary
  into the neighbouring background/other classes along a random direction; with an intensity image the tongue keeps
  only the voxels whose intensity resembles the class (a real weak edge), when that leaves a visible leak;
* ``over``: over-segmentation - one class dilated by 1-3 px (disk);
* ``under``: under-segmentation - one class eroded by 1-3 px; the lost voxels take the label of the nearest voxel
  outside the class (background, or the class around it);
* ``jitter``: boundary jitter - the whole slice warped by a smooth random displacement field (RMS 1-2.5 px, Gaussian
  smoothness sigma 2-5 px, nearest-neighbour resampling), so every contour wobbles;
* ``shift``: a shifted slice - the annotation of an adjacent slice stored here (drawn on the wrong slice), or the
  annotation translated by 1-4 px;
* ``missed``: a missed small structure - one connected component (8-connected, never the largest of the slice)
  dropped, smaller components being likelier; it takes the label of its surroundings.

Axis convention: ``axis`` is the array axis of the volume *as stored*, i.e. of the ``(I, J, K)`` voxel array that
:func:`versaseg.io.image.read_volume` returns (no reorientation): ``axis=2`` annotates the slices ``label[:, :, k]``.
Which anatomical plane that is depends on the file's orientation (for most axially acquired scans, axis 2 is axial).

Output conventions: with ``ignore_label`` (nnU-Net v2), every voxel of an unannotated slice gets that value, which must
be larger than every label value present; without it (3D Slicer), unannotated slices are all background 0. Annotated
slices that are not corrupted equal the input exactly; corruptions never touch unannotated slices.

Everything is deterministic for a given seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

CORRUPTIONS: tuple[str, ...] = ("leak", "over", "under", "jitter", "shift", "missed")
_EIGHT = np.ones((3, 3), dtype=bool)


# ---------------------------------------------------------------------------------------------------------------------
# Slices
# ---------------------------------------------------------------------------------------------------------------------


def annotated_slices(shape: Sequence[int], axis: int, every: int, offset: int = 0) -> list[int]:
    """Indices along ``axis`` of the annotated slices: ``offset, offset + every, ...`` below ``shape[axis]``.

    ``shape`` is the volume shape (3 entries), ``axis`` the array axis as stored (0, 1 or 2). Raises ValueError for
    ``every < 1``, an axis out of range, or an offset outside ``[0, shape[axis])``.
    """
    shape = tuple(int(s) for s in shape)
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not 0 <= axis < len(shape):
        raise ValueError(f"axis must be one of 0..{len(shape) - 1}, got {axis!r}")
    size = shape[axis]
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset < size:
        raise ValueError(
            f"offset must be in 0..{size - 1} (the volume has {size} slices along axis {axis}), got {offset!r}"
        )
    return list(range(int(offset), size, int(every)))


def num_corrupted(num_annotated: int, noisy_fraction: float) -> int:
    """How many of ``num_annotated`` slices get corrupted: ``noisy_fraction * num_annotated`` rounded half up."""
    return int(math.floor(noisy_fraction * num_annotated + 0.5))


# ---------------------------------------------------------------------------------------------------------------------
# Helpers on 2D slices (H, W)
# ---------------------------------------------------------------------------------------------------------------------


def _classes(labels: np.ndarray) -> list[int]:
    """Non-zero label values present in ``labels``."""
    return [int(v) for v in np.unique(labels) if v != 0]


def _disk(radius: int) -> np.ndarray:
    """Boolean disk structuring element of shape (2r+1, 2r+1)."""
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


def _equivalent_radius(mask: np.ndarray) -> float:
    """Radius in px of the disk with the area of ``mask`` (H, W)."""
    return math.sqrt(float(mask.sum()) / math.pi)


def _fill_from_outside(labels: np.ndarray, region: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Copy of ``labels`` (H, W) where ``pixels`` take the label of the nearest pixel outside ``region`` (H, W bool).

    ``pixels`` must lie inside ``region``; if ``region`` covers the whole slice they become background.
    """
    out = labels.copy()
    if not pixels.any():
        return out
    if region.all():
        out[pixels] = 0
        return out
    nearest = ndimage.distance_transform_edt(region, return_distances=False, return_indices=True)
    out[pixels] = labels[nearest[0][pixels], nearest[1][pixels]]
    return out


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` (H, W bool) with a 4-neighbour outside it (the slice border counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _translate(labels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``labels`` (H, W) moved by (dy, dx) px; uncovered pixels become background."""
    out = np.zeros_like(labels)
    h, w = labels.shape
    src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    out[dst_y, dst_x] = labels[src_y, src_x]
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Corruption operators: (slice_labels (H, W) int, image_slice (H, W) float | None, rng) -> (new_slice (H, W), params)
# An operator that cannot change the slice returns it unchanged; the caller then tries another kind.
# ---------------------------------------------------------------------------------------------------------------------


def leak(labels: np.ndarray, image: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Region growing past a weak edge: one class grows a tapering tongue ending in a blob into its neighbours.

    A random class and direction ``theta`` are drawn; the tongue starts at the class boundary pixel furthest along
    ``theta`` (among the outermost few), is ``0.5-1.2`` equivalent radii long and ``0.2-0.45`` radii wide, and ends in
    a disk of ``1-1.5`` widths. With ``image`` (H, W), only tongue pixels whose intensity lies within ``k`` (1.5-3)
    standard deviations of the class median and that connect to the class are kept, if at least
    ``max(3, 2 %)`` of the class area remain (else the purely geometric tongue is used). Overwrites background and
    other classes. Returns ``(new_slice, {"class", "theta_deg", "length_px", "width_px", "guided"})``.
    """
    classes = _classes(labels)
    if not classes:
        return labels.copy(), {}
    cls = int(rng.choice(classes))
    mask = labels == cls
    radius = max(_equivalent_radius(mask), 2.0)
    theta = float(rng.uniform(0.0, 2.0 * math.pi))
    direction = np.array([math.sin(theta), math.cos(theta)])  # (dy, dx)
    ys, xs = np.nonzero(_boundary(mask))
    projection = ys * direction[0] + xs * direction[1]
    outermost = np.argsort(projection)[::-1][: max(1, len(projection) // 20)]
    pick = int(rng.choice(outermost))
    start = np.array([ys[pick], xs[pick]], dtype=float)
    length = max(2.0, float(rng.uniform(0.5, 1.2)) * radius)
    width = max(1.0, float(rng.uniform(0.2, 0.45)) * radius)
    tip_radius = width * float(rng.uniform(1.0, 1.5))

    yy, xx = np.indices(labels.shape, dtype=float)
    rel_y, rel_x = yy - start[0], xx - start[1]
    along = rel_y * direction[0] + rel_x * direction[1]
    across = np.abs(rel_y * direction[1] - rel_x * direction[0])
    taper = 1.0 - 0.5 * np.clip(along / length, 0.0, 1.0)
    tongue = (along >= -width) & (along <= length) & (across <= width * taper)
    tip = start + length * direction
    tongue |= (yy - tip[0]) ** 2 + (xx - tip[1]) ** 2 <= tip_radius**2
    gain = tongue & ~mask

    guided = False
    if image is not None and gain.any():
        values = image[mask]
        k = float(rng.uniform(1.5, 3.0))
        tolerance = k * max(float(values.std()), 1e-6 * max(1.0, float(np.abs(values).max())))
        similar = gain & (np.abs(image - float(np.median(values))) <= tolerance)
        components, _ = ndimage.label(similar | mask, structure=_EIGHT)
        connected = np.isin(components, np.unique(components[mask]))
        guided_gain = similar & connected
        if guided_gain.sum() >= max(3, 0.02 * mask.sum()):
            gain, guided = guided_gain, True
    out = labels.copy()
    out[gain] = cls
    params = {
        "class": cls,
        "theta_deg": round(math.degrees(theta), 1),
        "length_px": round(length, 2),
        "width_px": round(width, 2),
        "guided": guided,
    }
    return out, params


def over_segment(labels: np.ndarray, image: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Over-segmentation: one random class dilated by a disk of radius 1-3 px (at most its equivalent radius, >= 1).

    ``image`` is unused. Returns ``(new_slice (H, W), {"class", "radius_px"})``.
    """
    classes = _classes(labels)
    if not classes:
        return labels.copy(), {}
    cls = int(rng.choice(classes))
    mask = labels == cls
    radius = int(min(rng.integers(1, 4), max(1, math.ceil(_equivalent_radius(mask)))))
    grown = ndimage.binary_dilation(mask, structure=_disk(radius))
    out = labels.copy()
    out[grown] = cls
    return out, {"class": cls, "radius_px": radius}


def under_segment(labels: np.ndarray, image: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Under-segmentation: one random class eroded by a disk of radius 1-3 px, never erasing it completely.

    The radius is reduced until something of the class remains; classes that even a 1 px erosion would erase are not
    chosen. Lost pixels take the label of the nearest pixel outside the class. ``image`` is unused. Returns
    ``(new_slice (H, W), {"class", "radius_px"})``.
    """
    wanted = int(rng.integers(1, 4))
    candidates = [c for c in _classes(labels) if ndimage.binary_erosion(labels == c, _disk(1), border_value=1).any()]
    if not candidates:
        return labels.copy(), {}
    cls = int(rng.choice(candidates))
    mask = labels == cls
    for radius in range(wanted, 0, -1):
        kept = ndimage.binary_erosion(mask, structure=_disk(radius), border_value=1)
        if kept.any():
            break
    out = _fill_from_outside(labels, mask, mask & ~kept)
    return out, {"class": cls, "radius_px": radius}


def jitter(labels: np.ndarray, image: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Boundary jitter: the slice (H, W) warped by a smooth random displacement field, nearest-neighbour resampled.

    Each displacement component is white noise smoothed with a Gaussian of sigma 2-5 px and scaled to an RMS of
    1-2.5 px. ``image`` is unused. Returns ``(new_slice, {"rms_px", "sigma_px"})``.
    """
    sigma = float(rng.uniform(2.0, 5.0))
    rms = float(rng.uniform(1.0, 2.5))
    field_ = np.stack([ndimage.gaussian_filter(rng.standard_normal(labels.shape), sigma) for _ in range(2)])
    field_ *= rms / max(float(np.sqrt(np.mean(field_**2))), 1e-12)
    coords = np.indices(labels.shape, dtype=float) + field_
    out = ndimage.map_coordinates(labels, coords, order=0, mode="nearest", output=labels.dtype)
    return out, {"rms_px": round(rms, 2), "sigma_px": round(sigma, 2)}


def shift(
    labels: np.ndarray, image: np.ndarray | None, rng: np.random.Generator, neighbour: np.ndarray | None = None
) -> tuple[np.ndarray, dict]:
    """Shifted slice: the ``neighbour`` slice's annotation (H, W) stored here, or the slice translated by 1-4 px.

    The neighbour variant is one of the two choices when ``neighbour`` is given and differs from ``labels``. ``image``
    is unused. Returns ``(new_slice, {"variant": "neighbour"})`` or ``(new_slice, {"variant": "translate", "dy_px",
    "dx_px"})``.
    """
    variants = ["translate"]
    if neighbour is not None and not np.array_equal(neighbour, labels):
        variants.append("neighbour")
    if rng.choice(variants) == "neighbour":
        return neighbour.astype(labels.dtype, copy=True), {"variant": "neighbour"}
    magnitude = float(rng.uniform(1.5, 4.0))
    theta = float(rng.uniform(0.0, 2.0 * math.pi))
    dy, dx = int(round(magnitude * math.sin(theta))), int(round(magnitude * math.cos(theta)))
    if dy == 0 and dx == 0:
        dx = 1
    return _translate(labels, dy, dx), {"variant": "translate", "dy_px": dy, "dx_px": dx}


def miss_structure(labels: np.ndarray, image: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Missed small structure: one 8-connected component of some class dropped (never the slice's largest).

    Needs at least two components in the slice; a component is drawn with probability proportional to 1 / size. Its
    pixels take the label of the nearest pixel outside it. ``image`` is unused. Returns ``(new_slice (H, W),
    {"class", "size_px", "centroid"})``.
    """
    components = []  # (class, component mask)
    for cls in _classes(labels):
        labelled, count = ndimage.label(labels == cls, structure=_EIGHT)
        components.extend((cls, labelled == index) for index in range(1, count + 1))
    if len(components) < 2:
        return labels.copy(), {}
    sizes = np.array([mask.sum() for _, mask in components], dtype=float)
    largest = int(np.argmax(sizes))
    choices = [i for i in range(len(components)) if i != largest]
    weights = 1.0 / sizes[choices]
    index = int(rng.choice(choices, p=weights / weights.sum()))
    cls, mask = components[index]
    out = _fill_from_outside(labels, mask, mask)
    centroid = [round(float(c), 1) for c in ndimage.center_of_mass(mask)]
    return out, {"class": int(cls), "size_px": int(sizes[index]), "centroid": centroid}


_OPERATORS: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {
    "leak": leak,
    "over": over_segment,
    "under": under_segment,
    "jitter": jitter,
    "shift": shift,
    "missed": miss_structure,
}


def corrupt_slice(
    kind: str,
    labels: np.ndarray,
    image: np.ndarray | None,
    rng: np.random.Generator,
    neighbour: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Apply the corruption ``kind`` (one of :data:`CORRUPTIONS`) to a slice (H, W); ``neighbour`` only for shift."""
    if kind not in _OPERATORS:
        raise ValueError(f"unknown corruption '{kind}'; valid: {', '.join(CORRUPTIONS)}")
    if kind == "shift":
        return shift(labels, image, rng, neighbour=neighbour)
    return _OPERATORS[kind](labels, image, rng)


# ---------------------------------------------------------------------------------------------------------------------
# Volumes
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class SliceReport:
    """What happened to one annotated slice: ``kind`` None means kept exactly (or nothing could change it)."""

    index: int
    corrupted: bool = False
    kind: str | None = None
    params: dict = field(default_factory=dict)
    voxels_changed: int = 0
    foreground_voxels: int = 0


@dataclass
class DegradeReport:
    """Parameters of a :func:`degrade_label` run and one :class:`SliceReport` per annotated slice."""

    shape: tuple[int, ...]
    axis: int
    every: int
    offset: int
    noisy_fraction: float
    seed: int | list[int]
    ignore_label: int | None
    kinds: list[str]
    requested_corrupted: int
    slices: list[SliceReport]

    @property
    def convention(self) -> str:
        """'ignore' (unannotated voxels = ignore label) or 'empty' (unannotated slices are background)."""
        return "ignore" if self.ignore_label is not None else "empty"

    @property
    def annotated(self) -> list[int]:
        return [s.index for s in self.slices]

    @property
    def corrupted(self) -> list[int]:
        return [s.index for s in self.slices if s.corrupted]

    def counts(self) -> dict[str, int]:
        """Number of corrupted slices per kind."""
        result: dict[str, int] = {}
        for s in self.slices:
            if s.corrupted:
                result[s.kind] = result.get(s.kind, 0) + 1
        return result

    def to_dict(self) -> dict:
        """JSON-ready dict: parameters, annotated/corrupted indices, counts per kind and the per-slice list."""
        return {
            "shape": list(self.shape),
            "axis": self.axis,
            "every": self.every,
            "offset": self.offset,
            "noisy_fraction": self.noisy_fraction,
            "seed": self.seed,
            "convention": self.convention,
            "ignore_label": self.ignore_label,
            "kinds": self.kinds,
            "num_slices": int(self.shape[self.axis]),
            "num_annotated": len(self.slices),
            "requested_corrupted": self.requested_corrupted,
            "num_corrupted": len(self.corrupted),
            "corrupted_per_kind": self.counts(),
            "annotated": self.annotated,
            "corrupted": self.corrupted,
            "slices": [asdict(s) for s in self.slices],
        }

    def summary(self) -> str:
        """One line: annotated and corrupted slice counts."""
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.counts().items()))
        return (
            f"{len(self.slices)}/{self.shape[self.axis]} slices annotated along axis {self.axis}, "
            f"{len(self.corrupted)} corrupted" + (f" ({kinds})" if kinds else "")
        )


def output_dtype(max_value: int, dtype: np.dtype) -> np.dtype:
    """``dtype`` if it is an integer type holding ``max_value``, else the smallest of uint8/uint16/uint32 that does."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and np.iinfo(dtype).max >= max_value:
        return dtype
    for candidate in (np.uint8, np.uint16, np.uint32):
        if np.iinfo(candidate).max >= max_value:
            return np.dtype(candidate)
    raise ValueError(f"label value {max_value} does not fit in 32 bits")


def degrade_label(
    label: np.ndarray,
    every: int,
    axis: int = 2,
    offset: int = 0,
    noisy_fraction: float = 0.0,
    seed: int | Sequence[int] | None = 0,
    ignore_label: int | None = None,
    image: np.ndarray | None = None,
    kinds: Sequence[str] | None = None,
) -> tuple[np.ndarray, DegradeReport]:
    """Keep only every ``every``-th slice of ``label`` along ``axis`` and corrupt a fraction of the kept slices.

    Args:
        label: (X, Y, Z) non-negative integer (or bool) label map, fully annotated.
        every: annotate every K-th slice (K >= 1).
        axis: array axis of ``label`` as stored (0, 1 or 2) along which slices are taken.
        offset: index of the first annotated slice (0 <= offset < label.shape[axis]).
        noisy_fraction: fraction F in [0, 1] of annotated slices to corrupt; ``round(F * annotated)`` (half up) slices
            are drawn, slices with foreground first (a corruption cannot change an empty slice except by copying a
            neighbour), each gets one corruption kind drawn at random; a kind that would leave the slice unchanged is
            replaced by another one.
        seed: seed (or seed sequence) of ``numpy.random.default_rng``; None draws fresh entropy, which is recorded in
            the report so the run can be repeated.
        ignore_label: value for every voxel of an unannotated slice (nnU-Net ignore label); must exceed every value in
            ``label``. None: unannotated slices are all background 0 (3D Slicer convention).
        image: optional (X, Y, Z) intensity image guiding ``leak`` corruptions (same shape as ``label``).
        kinds: corruption kinds to draw from (default: all of :data:`CORRUPTIONS`).

    Returns:
        ``(degraded, report)``: degraded (X, Y, Z) array (the input dtype, widened if the ignore label needs it) and a
        :class:`DegradeReport` listing every annotated slice with its corruption kind, parameters and changed voxels.

    Raises:
        ValueError: for invalid parameters, non-integer or negative labels, or an ignore label not above every label.
    """
    label = np.asarray(label)
    if label.ndim != 3:
        raise ValueError(f"label must be a 3D array, got shape {label.shape}")
    if label.dtype == np.bool_:
        label = label.astype(np.uint8)
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"label must hold integers, got dtype {label.dtype}")
    if label.size and int(label.min()) < 0:
        raise ValueError(f"label values must be non-negative, found {int(label.min())}")
    slices = annotated_slices(label.shape, axis, every, offset)
    if not 0.0 <= float(noisy_fraction) <= 1.0:
        raise ValueError(f"noisy_fraction must be in [0, 1], got {noisy_fraction!r}")
    max_label = int(label.max()) if label.size else 0
    if ignore_label is not None:
        if isinstance(ignore_label, bool) or not isinstance(ignore_label, (int, np.integer)):
            raise ValueError(f"ignore_label must be an integer, got {ignore_label!r}")
        if ignore_label <= max_label:
            raise ValueError(
                f"ignore label {ignore_label} collides with the label values (max {max_label}); "
                f"use a value above {max_label}"
            )
        ignore_label = int(ignore_label)
    kinds = list(CORRUPTIONS if kinds is None else kinds)
    unknown = [k for k in kinds if k not in CORRUPTIONS]
    if unknown or not kinds:
        raise ValueError(f"unknown corruption kinds {unknown}; valid: {', '.join(CORRUPTIONS)}")
    if image is not None:
        image = np.asarray(image)
        if image.shape != label.shape:
            raise ValueError(f"image shape {image.shape} does not match label shape {label.shape}")
    sequence = np.random.SeedSequence(seed)
    recorded_seed = [int(s) for s in seed] if isinstance(seed, Sequence) else int(sequence.entropy)
    rng = np.random.default_rng(sequence)

    dtype = output_dtype(max(max_label, ignore_label or 0), label.dtype)
    degraded = np.full(label.shape, ignore_label or 0, dtype=dtype)
    source = np.moveaxis(label, axis, 0)  # views: (S, H, W)
    target = np.moveaxis(degraded, axis, 0)
    images = None if image is None else np.moveaxis(image, axis, 0)
    reports = {}
    for index in slices:
        target[index] = source[index]
        reports[index] = SliceReport(index, foreground_voxels=int(np.count_nonzero(source[index])))

    requested = num_corrupted(len(slices), float(noisy_fraction))
    with_foreground = [i for i in slices if reports[i].foreground_voxels > 0]
    empty = [i for i in slices if reports[i].foreground_voxels == 0]
    order = [int(i) for i in rng.permutation(with_foreground)] + [int(i) for i in rng.permutation(empty)]
    for index in sorted(order[:requested]):
        original = source[index].astype(dtype)
        report = reports[index]
        for kind in rng.permutation(kinds):
            kind = str(kind)
            neighbour, source_index = None, None
            if kind == "shift":
                deltas = [d for d in (-1, 1) if 0 <= index + d < source.shape[0]]
                for delta in rng.permutation(deltas):
                    if not np.array_equal(source[index + int(delta)], source[index]):
                        source_index = index + int(delta)
                        neighbour = source[source_index].astype(dtype)
                        break
            image_slice = None if images is None else images[index].astype(np.float64)
            new, params = corrupt_slice(kind, original, image_slice, rng, neighbour=neighbour)
            changed = int(np.count_nonzero(new != original))
            if changed:
                if params.get("variant") == "neighbour":
                    params["source_slice"] = source_index
                target[index] = new
                report.corrupted, report.kind, report.params, report.voxels_changed = True, kind, params, changed
                break
        else:
            report.params = {"note": "no corruption kind changes this slice"}
    report = DegradeReport(
        shape=tuple(label.shape),
        axis=int(axis),
        every=int(every),
        offset=int(offset),
        noisy_fraction=float(noisy_fraction),
        seed=recorded_seed,
        ignore_label=ignore_label,
        kinds=kinds,
        requested_corrupted=requested,
        slices=[reports[i] for i in slices],
    )
    return degraded, report

"""Label completion and cleansing from sparse, noisy slice annotations.

A clinician annotates every K-th slice of a volume (some hurriedly and wrongly). This task returns a dense label
volume:

1. **Find the annotation.** With an ignore label, voxels equal to it are unannotated; without one (3D Slicer's
   convention) slices holding any non-zero label are the annotated ones and the annotation axis is detected as the
   axis along which annotated and empty slices alternate. Work is cropped to the annotated foreground's in-plane
   bounding box (plus ``margin_mm``) and to one annotation gap beyond the first and last annotated slice.
2. **A shape prior.** Each class's signed distance map on the annotated slices is interpolated linearly between them
   and tapered off (45-degree cone) beyond the end slices and towards a slice where the class is absent
   (:mod:`versaseg.data.slice_interpolation`).
3. **A prior-guided network.** A 2D network reads the image channels *and* the prior (one channel per class) and
   outputs a correction of the prior's logits (:class:`PriorResidualNetwork`), so where the image is ambiguous the
   interpolation stands and where the image shows the boundary the network moves it - between and beyond the
   annotated slices. It trains on the annotated slices with the prior each would get from the *other* annotated
   slices (leave-one-out: twice the real gap) and with its own prior perturbed by smooth few-mm errors (what a prior
   close to an annotated slice looks like).
4. **Cleanse.** The annotated slices are split into two interleaved folds (non-adjacent slices, as the research
   selected them); one model trains on each fold and checks the other fold's slices. A slice whose agreement with
   its held-out prediction is an outlier (robust z-score below -3 and under half the median) is judged wrong, its
   confidently contradicted voxels are corrected, and the check is repeated with the corrected slice (a wrong slice
   spoils its neighbours' priors too). The first and last annotated slice are never judged (one-sided context).
5. **Complete.** The prior is rebuilt from the cleansed slices and the two models' probabilities are averaged over
   every slice of the working region; annotated slices keep their cleansed annotation, everything outside the
   working region is background.

It composes the library's stages: :func:`versaseg.data.case.load_case` (checks, canonical orientation),
normalisation, :class:`versaseg.training.trainer.Trainer` and :func:`versaseg.inference.window.predict_probabilities`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from versaseg.data.augment import build_augmentation
from versaseg.data.case import Case
from versaseg.data.normalization import fit_normalization, normalize
from versaseg.data.sampling import TrainingVolume
from versaseg.data.slice_interpolation import (
    interpolate_distances,
    leave_one_out_distances,
    slice_signed_distances,
)
from versaseg.data.voxel_features import image_features
from versaseg.errors import InputError
from versaseg.inference.window import predict_probabilities
from versaseg.networks.registry import build_network
from versaseg.training.config import TrainConfig
from versaseg.training.distributed import DistInfo
from versaseg.training.run import default_patch_size
from versaseg.training.trainer import Trainer
from versaseg.training.voxel import fit_voxels, predict_voxels, voxel_mlp

MODELS = ("voxel", "cnn")


@dataclass
class CompletionSettings:
    """How hard to work. Iterations are batches of ``batch_size`` slices."""

    model: str = "voxel"  # "voxel": MLP on multi-scale 3D features (seconds); "cnn": 2D network (minutes)
    network: str = "unet"  # model "cnn": the registry network
    network_kwargs: dict = field(default_factory=lambda: {"depth": 4, "base_width": 8})
    iterations: int = 120  # model "cnn": batches of ``batch_size`` slices per fold model
    hidden: int = 96  # model "voxel": MLP width
    epochs: int = 12  # model "voxel": passes over the sampled voxels
    voxel_batch: int = 8192  # model "voxel": voxels per optimiser step
    max_voxels: int = 300_000  # model "voxel": training voxels sampled per model (bounds the time at small K)
    background_fraction: float = 0.3  # model "voxel": share of background voxels kept before the cap
    wide_prior_mm: float = 12.0  # model "voxel": softness of the second, wide prior channel per class
    refit: bool = True  # after the check, models on all cleansed slices predict (else the two fold models' mean)
    final_models: int = 2  # models (seeds) averaged for the dense prediction
    batch_size: int = 16
    learning_rate: float = 3e-3
    check: bool = True  # judge every annotated slice with models that did not train on it (reported)
    cleanse: bool = False  # also correct the slices judged wrong (measured: more harm than good, see the docs)
    confidence: float = 0.9
    seed: int = 0
    augmentation: str = "light"
    margin_mm: float = 15.0
    prior_softness_mm: float = 3.0
    prior_strength: float = 3.0
    perturbed_copies: int = 2
    device: str = "cpu"


@dataclass
class SliceVerdict:
    """One annotated slice checked against a model that did not train on it. Maps are (H, W) in the working region."""

    index: int
    agreement: float
    judged_wrong: bool
    voxels_corrected: int
    predicted: np.ndarray
    confident: np.ndarray
    mismatch: int = 0  # foreground voxels of either map labelled differently
    union: int = 0  # foreground voxels of either map


@dataclass
class CompletionResult:
    """labels: (X, Y, Z) in the input's stored axis order; report: JSON-able summary."""

    labels: np.ndarray
    report: dict


def annotation_mask(label: np.ndarray, ignore_label: int | None, axis: int | str) -> tuple[np.ndarray, int]:
    """Annotated voxels (X, Y, Z) bool and the annotation axis.

    With ``ignore_label``: voxels != ignore_label; ``axis='auto'`` picks the axis along which the annotated voxels
    form whole slices. Without: slices holding any non-zero label along the chosen (or detected) axis.
    """
    if ignore_label is not None:
        annotated = label != ignore_label
        if not annotated.any():
            raise InputError("every voxel has the ignore label: nothing is annotated")
        if annotated.all():
            raise InputError(f"no voxel has the ignore label {ignore_label}: nothing to complete")
        if axis == "auto":
            whole = [a for a in range(3) if _whole_slices(annotated, a)]
            if not whole:
                raise InputError("annotated voxels do not form whole slices along any axis; pass --axis")
            axis = min(whole, key=lambda a: _slice_fraction(annotated, a))
        return annotated, int(axis)
    nonzero = label != 0
    if not nonzero.any():
        raise InputError("the label holds no non-zero voxel: nothing is annotated")
    if axis == "auto":
        axis = min(range(3), key=lambda a: _slice_fraction(nonzero, a))
    axis = int(axis)
    has_label = nonzero.any(axis=tuple(d for d in range(3) if d != axis))
    if has_label.all():
        raise InputError(f"every slice along axis {axis} holds labels: nothing to complete (dense label?)")
    annotated = np.zeros(label.shape, bool)
    index = [slice(None)] * 3
    index[axis] = np.flatnonzero(has_label)
    annotated[tuple(index)] = True
    return annotated, axis


def _whole_slices(mask: np.ndarray, axis: int) -> bool:
    other = tuple(d for d in range(3) if d != axis)
    return bool(np.all(mask.all(axis=other) == mask.any(axis=other)))


def _slice_fraction(mask: np.ndarray, axis: int) -> float:
    """Fraction of slices (within the extent of the mask along ``axis``) that hold any True voxel."""
    has = mask.any(axis=tuple(d for d in range(3) if d != axis))
    idx = np.flatnonzero(has)
    return float(has.sum() / (idx[-1] - idx[0] + 1)) if len(idx) else 1.0


def _slice_agreement(annotation: np.ndarray, prediction: np.ndarray) -> float:
    """Foreground voxels labelled alike / foreground voxels of either map (1.0 when both are empty): a multi-class
    overlap dominated by the large structures, which a held-out model predicts reliably."""
    union = (annotation > 0) | (prediction > 0)
    if not union.any():
        return 1.0
    return float(np.sum(union & (annotation == prediction)) / np.sum(union))


class PriorResidualNetwork(torch.nn.Module):
    """Logits = ``prior_strength`` x prior + network(image, prior): the network learns a correction of the prior.

    The prior channels (the last K - 1 input channels, in [-1, 1]) become foreground logits (background 0), so an
    untrained model (whose logits are small) reproduces the shape interpolation and training only learns where the
    image says otherwise: a strong start with the few hundred iterations a completion can afford, and no small class
    forgotten early on.

    ``forward(x: (B, C + K - 1, *spatial)) -> (B, K, *spatial)``.
    """

    def __init__(self, network: torch.nn.Module, num_classes: int, prior_strength: float = 3.0):
        super().__init__()
        self.network, self.num_classes, self.prior_strength = network, num_classes, prior_strength
        self.required_divisor = int(getattr(network, "required_divisor", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C + K - 1, *spatial) or feature rows (N, F + K - 1) -> logits (B, K, *spatial) or (N, K)."""
        prior = x[:, x.shape[1] - (self.num_classes - 1):] * self.prior_strength
        prior_logits = torch.cat([torch.zeros_like(prior[:, :1]), prior], dim=1)
        return prior_logits + self.network(x)


class _PriorGuidedModel:
    """A 2D network along S that reads the image *and* the interpolated shape prior and outputs class probabilities.

    image: (C + K - 1, S, H, W) float32: normalised image channels followed by one prior channel per foreground class.
    """

    def __init__(self, image: np.ndarray, num_classes: int, settings: CompletionSettings, seed: int):
        self.image, self.num_classes, self.settings, self.seed = image, num_classes, settings, seed
        self.network: torch.nn.Module | None = None
        self.patch_size: list[int] = []

    def fit(self, train_label: np.ndarray, iterations: int) -> None:
        """train_label: (S, H, W) class indices, ``num_classes`` where not used for training."""
        s = self.settings
        torch.manual_seed(self.seed)
        network = PriorResidualNetwork(
            build_network(s.network, 2, self.image.shape[0], self.num_classes, **s.network_kwargs), self.num_classes,
            s.prior_strength)
        self.patch_size = default_patch_size([self.image.shape[1:]], "2d", 0, network.required_divisor)
        epochs = max(1, iterations // 25)
        config = TrainConfig(network=s.network, network_kwargs=s.network_kwargs, dim="2d", axis=0,
                             patch_size=self.patch_size, batch_size=s.batch_size, epochs=epochs,
                             iterations_per_epoch=max(1, iterations // epochs), learning_rate=s.learning_rate,
                             augmentation=s.augmentation, seed=self.seed, val_fraction=0.0,
                             labels={**{f"class_{k}": k for k in range(self.num_classes)},
                                     "ignore": self.num_classes},
                             ignore_label=self.num_classes)
        volume = TrainingVolume.from_arrays("case", self.image, train_label, self.num_classes,
                                            np.random.default_rng(self.seed))
        with tempfile.TemporaryDirectory(prefix="versaseg-complete-") as run_dir:
            trainer = Trainer(config, network, [volume], [], Path(run_dir), torch.device(s.device), DistInfo(),
                              augment=build_augmentation(s.augmentation, 2), persist=False)
            trainer.fit()
        self.network = trainer.network

    def predict(self, image: np.ndarray) -> torch.Tensor:
        """image: (C + K - 1, T, H, W) -> probabilities (K, T, H, W)."""
        return predict_probabilities(self.network, torch.from_numpy(np.ascontiguousarray(image)), "2d", 0,
                                     self.patch_size, batch_size=self.settings.batch_size,
                                     device=torch.device(self.settings.device))


def _prior_channels(distances: np.ndarray, settings: CompletionSettings) -> np.ndarray:
    """(T, K, H, W) signed distances (mm) -> prior channels in [-1, 1] (+1 deep inside the class), class-first.

    Model "cnn": (K, T, H, W) ``tanh(-d / prior_softness_mm)``. Model "voxel": (2K, T, H, W), a wide
    ``tanh(-d / wide_prior_mm)`` per class first (where a structure roughly is, which a voxel classifier cannot see
    otherwise), then the sharp channels; the last K channels are always the sharp prior that
    :class:`PriorResidualNetwork` adds to the logits.
    """
    sharp = np.tanh(-distances / settings.prior_softness_mm).transpose(1, 0, 2, 3).astype(np.float32)
    if settings.model != "voxel":
        return sharp
    wide = np.tanh(-distances / settings.wide_prior_mm).transpose(1, 0, 2, 3).astype(np.float32)
    return np.concatenate([wide, sharp])


class _VoxelModel:
    """A per-voxel MLP on the image features *and* the prior channels, as a residual of the prior.

    image: (F + P, S, H, W) float32: multi-scale image features (:func:`versaseg.data.voxel_features.image_features`)
    followed by the prior channels of :func:`_prior_channels`. Same interface as :class:`_PriorGuidedModel`.
    """

    def __init__(self, image: np.ndarray, num_classes: int, settings: CompletionSettings, seed: int):
        self.image, self.num_classes, self.settings, self.seed = image, num_classes, settings, seed
        self.network: torch.nn.Module | None = None

    def fit(self, train_label: np.ndarray, iterations: int | None = None) -> None:
        """train_label: (S, H, W) class indices, ``num_classes`` where not used for training. ``iterations`` is
        ignored (the voxel model counts epochs over a bounded voxel sample)."""
        s = self.settings
        rng = np.random.default_rng(self.seed)
        labelled = train_label != self.num_classes
        keep = labelled & ((train_label > 0) | (rng.random(train_label.shape) < s.background_fraction))
        rows = np.flatnonzero(keep.ravel())
        if len(rows) > s.max_voxels:
            rows = np.sort(rng.choice(rows, s.max_voxels, replace=False))
        features = self.image.reshape(self.image.shape[0], -1)[:, rows].T
        labels = train_label.ravel()[rows]
        torch.manual_seed(self.seed)
        network = PriorResidualNetwork(voxel_mlp(self.image.shape[0], self.num_classes, s.hidden),
                                       self.num_classes, s.prior_strength)
        self.network = fit_voxels(network, features, labels, epochs=s.epochs, batch_size=s.voxel_batch,
                                  seed=self.seed, device=s.device)

    def predict(self, image: np.ndarray) -> torch.Tensor:
        """image: (F + P, T, H, W) -> probabilities (K, T, H, W)."""
        return torch.from_numpy(predict_voxels(self.network, image, device=self.settings.device))


def _perturbed(distances: np.ndarray, spacing_2d: tuple, rng: np.random.Generator) -> np.ndarray:
    """The annotated slices' own signed distances (N, K, H, W) with smooth random errors: what an interpolated prior
    close to an annotated slice looks like (boundaries off by a few mm), as opposed to the leave-one-out prior from
    twice the annotation gap away. Both kinds teach the network how far to trust the prior."""
    out = distances.copy()
    sigma = 10.0 / np.asarray(spacing_2d)  # ~10 mm smooth error fields
    for n in range(out.shape[0]):
        for k in range(out.shape[1]):
            field = ndimage.gaussian_filter(rng.standard_normal(out.shape[2:]), sigma)
            field *= rng.uniform(0.5, 3.0) / max(float(field.std()), 1e-6)
            out[n, k] += (field + rng.uniform(-2.0, 2.0)).astype(np.float32)
    return out


def _crop_box(classes: np.ndarray, slice_ids: np.ndarray, ignore: int, spacing: tuple, margin_mm: float) -> tuple:
    """Slices of the slice-first volume (S, H, W) worth predicting: the annotated foreground's in-plane bounding box
    plus ``margin_mm``, and along S one gap beyond the first and last annotated slice."""
    annotated = classes[slice_ids]
    foreground = (annotated > 0) & (annotated != ignore)
    gap = int(np.max(np.diff(slice_ids))) if len(slice_ids) > 1 else 1
    box = [slice(max(0, int(slice_ids[0]) - gap), min(classes.shape[0], int(slice_ids[-1]) + gap + 1))]
    for d in (1, 2):
        other = tuple(a for a in (0, 1, 2) if a != d)
        hits = np.flatnonzero(foreground.any(axis=other))
        margin = int(np.ceil(margin_mm / spacing[d]))
        box.append(slice(max(0, int(hits[0]) - margin), min(classes.shape[d], int(hits[-1]) + margin + 1)))
    return tuple(box)


def complete_case(case: Case, ignore_label: int | None, axis: int | str = "auto",
                  settings: CompletionSettings | None = None, progress=print) -> CompletionResult:
    """Complete and cleanse ``case.label`` (sparse, canonical orientation). Returns labels in the stored order.

    ``axis`` refers to the *stored* array axis of the input files ('auto' detects it).
    """
    settings = settings or CompletionSettings()
    if settings.model not in MODELS:
        raise InputError(f"unknown completion model '{settings.model}'; valid: {', '.join(MODELS)}")
    started = time.perf_counter()
    timer = _StepTimer()
    sparse = case.label
    stored_sparse = case.to_original(sparse)
    annotated_stored, stored_axis = annotation_mask(stored_sparse, ignore_label, axis)
    canonical_axis = int(case.orientation[stored_axis, 0])  # the canonical axis the stored annotation axis became
    annotated = _to_canonical_mask(annotated_stored, case)
    values = np.unique(sparse[annotated])
    values = values[values != ignore_label] if ignore_label is not None else values
    values = np.union1d([0], values).astype(int)
    num_classes = len(values)
    if num_classes < 2:
        raise InputError("the annotated slices hold no foreground label")
    index_of = {int(v): i for i, v in enumerate(values)}
    ignore = num_classes
    classes = np.full(sparse.shape, ignore, np.int16)
    classes[annotated] = np.vectorize(index_of.get)(sparse[annotated])
    channels = [f"ch{i}" for i in range(case.image.shape[0])]
    image = normalize(case.image, fit_normalization([case.image], [classes], channels, ignore))

    # slice-first arrays: S along the annotation axis
    classes_s = np.moveaxis(classes, canonical_axis, 0)
    image_s = np.moveaxis(image, canonical_axis + 1, 1)
    spacing = tuple(float(case.spacing[a]) for a in (canonical_axis, *(d for d in range(3) if d != canonical_axis)))
    all_ids = np.flatnonzero(np.moveaxis(annotated, canonical_axis, 0).any(axis=(1, 2)))
    if len(all_ids) < 2:
        raise InputError(f"only {len(all_ids)} annotated slice along axis {stored_axis}: completion needs at least 2")
    box = _crop_box(classes_s, all_ids, ignore, spacing, settings.margin_mm)
    classes_c = classes_s[box]
    image_c = np.ascontiguousarray(image_s[(slice(None), *box)])
    ids = all_ids - box[0].start
    foreground = list(range(1, num_classes))
    model_class = _VoxelModel if settings.model == "voxel" else _PriorGuidedModel
    if settings.model == "voxel":
        image_c = image_features(image_c, spacing)
    timer.lap("features")
    progress(f"{len(ids)} annotated slices along stored axis {stored_axis}; {num_classes - 1} classes; "
             f"working region {classes_c.shape}")

    def network_input(priors: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Image + prior channels (C + K - 1, len(at), H, W)."""
        return np.concatenate([image_c[:, at], priors], axis=0)

    annotations = classes_c[ids].copy()  # (N, H, W)
    rng = np.random.default_rng(settings.seed)
    source = np.tile(np.arange(len(ids)), 1 + settings.perturbed_copies)  # example -> annotated slice position

    def training_examples(slices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each annotated slice (N, H, W) with its leave-one-out prior, plus copies with perturbed priors: the
        network input (C + P, len(source), H, W) and the slices' signed distances (N, K - 1, H, W)."""
        slice_distances = slice_signed_distances(slices, foreground, spacing[1:])
        examples = [leave_one_out_distances(slice_distances, ids, spacing[0])]
        examples += [_perturbed(slice_distances, spacing[1:], rng) for _ in range(settings.perturbed_copies)]
        inputs = np.concatenate([image_c[:, ids[source]], _prior_channels(np.concatenate(examples), settings)])
        return inputs, slice_distances

    train_image, distances = training_examples(annotations)
    timer.lap("priors")

    verdicts: list[SliceVerdict] = []
    models: list[_VoxelModel | _PriorGuidedModel] = []
    checking = (settings.check or settings.cleanse) and len(ids) >= 4
    folds = [np.arange(0, len(ids), 2), np.arange(1, len(ids), 2)] if checking else []
    for fold in range(len(folds)):
        use = np.isin(source, folds[1 - fold])
        train_label = np.where(use[:, None, None], annotations[source], ignore).astype(np.int16)
        # a check model only judges slices: half the voxel budget keeps the time flat in K
        model = model_class(train_image, num_classes, replace(settings, max_voxels=settings.max_voxels // 2),
                            settings.seed + 1 + fold)
        model.fit(train_label, settings.iterations)
        models.append(model)
        progress(f"check model {fold + 1}/2 trained ({time.perf_counter() - started:.0f} s)")
    timer.lap("training")
    cleansed = annotations.copy()
    if folds:
        def check(current: np.ndarray) -> list[SliceVerdict]:
            current_distances = slice_signed_distances(current, foreground, spacing[1:])
            return _check_slices(models, folds, image_c, current, ids, current_distances, spacing, settings)

        # one wrong slice spoils the priors of its neighbours too: flag the worst outlier, correct it in a working
        # copy, re-check the others with the corrected slice, and repeat until no slice stands out. Only with
        # ``cleanse`` do the corrections reach the output. The first and last annotated slices have neighbours on
        # one side only; they are checked and reported but never judged wrong.
        flagged: set[int] = set()
        working = annotations.copy()
        verdicts = check(working)
        for _ in range(len(ids) // 2):
            candidates = [v for v in _outliers(verdicts) if ids[0] < v.index < ids[-1] and v.index not in flagged]
            if not candidates:
                break
            worst = max(candidates, key=lambda v: v.mismatch)
            flagged.add(worst.index)
            n = int(np.flatnonzero(ids == worst.index)[0])
            fix = worst.confident & (worst.predicted != annotations[n])
            working[n][fix] = worst.predicted[fix]
            verdicts = check(working)
        if settings.cleanse:
            cleansed = working
        for v in verdicts:
            v.judged_wrong = v.index in flagged
            n = int(np.flatnonzero(ids == v.index)[0])
            v.voxels_corrected = int(np.sum(cleansed[n] != annotations[n]))
            v.agreement = _slice_agreement(annotations[n], v.predicted) if v.judged_wrong else v.agreement
        progress(f"checked the annotated slices: {len(flagged)} judged wrong"
                 + ("" if settings.cleanse else " (reported, not changed: --cleanse corrects them)"))
        timer.lap("check")
    if not folds or settings.refit:  # models on every (cleansed) annotated slice predict the volume
        train_image, distances = training_examples(cleansed)
        models = []
        for number in range(settings.final_models):
            model = model_class(train_image, num_classes, settings, settings.seed + 10 * number)
            model.fit(cleansed[source].astype(np.int16), settings.iterations)
            models.append(model)
        progress(f"{len(models)} completion model(s) trained ({time.perf_counter() - started:.0f} s)")
        timer.lap("training")
    else:
        distances = slice_signed_distances(cleansed, foreground, spacing[1:])

    # dense prediction: every model of the ensemble reads the image and the prior from the cleansed slices
    probs = None
    for start in range(0, classes_c.shape[0], 32):
        at = np.arange(start, min(start + 32, classes_c.shape[0]))
        priors = _prior_channels(interpolate_distances(distances, ids, at, spacing[0]), settings)
        chunk = sum(model.predict(network_input(priors, at)) for model in models) / len(models)
        probs = chunk if probs is None else torch.cat([probs, chunk], dim=1)
    dense_c = probs.argmax(0).numpy().astype(np.int16)
    dense_c[ids] = cleansed
    timer.lap("prediction")
    extrapolated = {}  # per class: share of its output voxels past the first/last annotated slice that holds it
    for k in foreground:
        holding = ids[(cleansed == k).any(axis=(1, 2))]
        inside = np.zeros(dense_c.shape[0], bool)
        if len(holding):
            inside[holding[0]:holding[-1] + 1] = True
        total = int(np.sum(dense_c == k))
        extrapolated[str(int(values[k]))] = round(float(np.sum(dense_c[~inside] == k)) / max(1, total), 4)
    dense_s = np.zeros(classes_s.shape, np.int16)
    dense_s[box] = dense_c
    dense = np.moveaxis(dense_s, 0, canonical_axis)
    labels = values[dense].astype(sparse.dtype if np.issubdtype(sparse.dtype, np.integer) else np.int16)
    seconds = time.perf_counter() - started
    slice_ids = all_ids
    report = {
        "annotation_axis": stored_axis,
        "annotated_slices": [_stored_slice(int(s), canonical_axis, case) for s in slice_ids],
        "classes": [int(v) for v in values[1:]],
        "checked": bool(verdicts),
        "cleansed": bool(verdicts) and settings.cleanse,
        "slices_judged_wrong": [
            {"slice": _stored_slice(v.index + box[0].start, canonical_axis, case), "agreement": round(v.agreement, 4),
             "voxels_corrected": v.voxels_corrected} for v in sorted(verdicts, key=lambda v: v.index)
            if v.judged_wrong],
        "slices": [{"slice": _stored_slice(v.index + box[0].start, canonical_axis, case),
                    "agreement": round(v.agreement, 4), "judged_wrong": v.judged_wrong,
                    "voxels_corrected": v.voxels_corrected} for v in sorted(verdicts, key=lambda v: v.index)],
        "voxels_corrected": int(sum(v.voxels_corrected for v in verdicts)),
        "seconds": round(seconds, 1),
        "time_split_s": timer.seconds,
        "extrapolated_fraction": extrapolated,
        "settings": settings.__dict__,
    }
    return CompletionResult(case.to_original(labels), report)


class _StepTimer:
    """Wall time of consecutive steps: ``lap(name)`` adds the time since the previous lap to ``seconds[name]``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 2)
        self._last = now


def _check_slices(models: list, folds: list[np.ndarray], image_c: np.ndarray,
                  annotations: np.ndarray, ids: np.ndarray, distances: np.ndarray, spacing: tuple,
                  settings: CompletionSettings) -> list[SliceVerdict]:
    """Predict every annotated slice with the model that did not train on it, from the image and the prior
    interpolated from the other annotated slices; compare with its annotation. annotations: (N, H, W)."""
    verdicts = []
    for fold, held_out in enumerate(folds):
        priors = []
        for n in held_out:
            keep = [m for m in range(len(ids)) if m != n]
            priors.append(interpolate_distances(distances[keep], ids[keep], [ids[n]], spacing[0]))
        prior = _prior_channels(np.concatenate(priors), settings)
        probs = models[fold].predict(np.concatenate([image_c[:, ids[held_out]], prior], axis=0))
        confident = (probs.max(0).values >= settings.confidence).numpy()
        predicted = probs.argmax(0).numpy().astype(np.int16)
        for j, n in enumerate(held_out):
            union = (annotations[n] > 0) | (predicted[j] > 0)
            mismatch = int(np.sum(union & (annotations[n] != predicted[j])))
            verdicts.append(SliceVerdict(int(ids[n]), _slice_agreement(annotations[n], predicted[j]), False, 0,
                                         predicted[j], confident[j], mismatch, int(union.sum())))
    return sorted(verdicts, key=lambda v: v.index)


def _outliers(verdicts: list[SliceVerdict]) -> list[SliceVerdict]:
    """Slices whose held-out disagreement stands out: mismatched voxels, in units of the typical slice's foreground
    area (so small slices at a structure's end, which are hard to predict but carry few voxels, do not stand out),
    above the median by 3 robust standard deviations (MAD, at least 0.05) and above twice the median."""
    unions = np.array([v.union for v in verdicts if v.union > 0])
    typical = float(np.median(unions)) if len(unions) else 1.0
    errors = np.array([v.mismatch for v in verdicts]) / typical
    median = float(np.median(errors))
    mad = float(np.median(np.abs(errors - median))) * 1.4826
    cutoff = max(median + 3 * max(mad, 0.05), 2 * median)
    return [v for v, e in zip(verdicts, errors, strict=True) if e > cutoff]


def _slice_index(axis: int, index: int) -> tuple:
    sl = [slice(None)] * 3
    sl[axis] = int(index)
    return tuple(sl)


def _copy_slices(target: np.ndarray, source: np.ndarray, indices, axis: int) -> None:
    for i in indices:
        sl = _slice_index(axis, i)
        target[sl] = source[sl]


def _to_canonical_mask(mask_stored: np.ndarray, case: Case) -> np.ndarray:
    from versaseg.io.image import to_canonical

    return to_canonical(mask_stored.astype(np.uint8), case.reference.affine)[0].astype(bool)


def _stored_slice(canonical_index: int, canonical_axis: int, case: Case) -> int:
    """Map a canonical slice index back to the stored array's index along the annotation axis."""
    row = int(np.flatnonzero(case.orientation[:, 0] == canonical_axis)[0])
    flipped = case.orientation[row, 1] < 0
    size = case.reference.shape[row]
    return size - 1 - canonical_index if flipped else canonical_index

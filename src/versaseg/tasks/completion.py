"""Label completion and cleansing from sparse, noisy slice annotations.

A clinician annotates every K-th slice of a volume (some hurriedly and wrongly). This task returns a dense label
volume:

1. **Find the annotation.** With an ignore label, voxels equal to it are unannotated; without one (3D Slicer's
   convention) slices holding any non-zero label are the annotated ones and the annotation axis is detected as the
   axis along which annotated and empty slices alternate.
2. **Cleanse.** The annotated slices are split into two interleaved folds (so each fold's slices are non-adjacent,
   as the research selected them). A 2D network trained on one fold predicts the other fold's slices; where that
   held-out prediction confidently (probability >= ``confidence``) contradicts an annotated voxel, the voxel is
   corrected. A slice whose agreement with its held-out prediction is far below the others is reported as wrong.
3. **Complete.** A 2D network trained on all cleansed annotated slices predicts every slice, between and beyond the
   first and last annotated slice (the image, not the neighbouring annotation, places the boundaries). Annotated
   slices keep their cleansed annotation.

It composes the library's stages: :func:`versaseg.data.case.load_case` (checks, canonical orientation),
normalisation, :class:`versaseg.training.trainer.Trainer` and :func:`versaseg.inference.window.predict_probabilities`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from versaseg.data.case import Case
from versaseg.data.normalization import fit_normalization, normalize
from versaseg.data.sampling import TrainingVolume
from versaseg.errors import InputError
from versaseg.inference.window import predict_probabilities
from versaseg.networks.registry import build_network
from versaseg.training.config import TrainConfig
from versaseg.training.distributed import DistInfo
from versaseg.training.run import default_patch_size
from versaseg.training.trainer import Trainer


@dataclass
class CompletionSettings:
    """How hard to work. Iterations are batches of ``batch_size`` slices."""

    network: str = "unet"
    network_kwargs: dict = field(default_factory=lambda: {"depth": 4, "base_width": 16})
    iterations: int = 240
    cleanse_iterations: int = 100
    batch_size: int = 16
    learning_rate: float = 3e-3
    cleanse: bool = True
    confidence: float = 0.9
    seed: int = 0
    augmentation: str = "light"
    device: str = "cpu"


@dataclass
class SliceVerdict:
    index: int
    agreement: float
    judged_wrong: bool
    voxels_corrected: int


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
    """Mean Dice over the classes present in either 2D map (1.0 when both are empty)."""
    classes = np.union1d(np.unique(annotation), np.unique(prediction))
    classes = classes[classes > 0]
    if not len(classes):
        return 1.0
    scores = [2 * np.sum((annotation == c) & (prediction == c)) / (np.sum(annotation == c) +
                                                                  np.sum(prediction == c)) for c in classes]
    return float(np.mean(scores))


class _SliceModel:
    """Trains a 2D network along ``axis`` on the voxels of ``train_label`` that are not ``ignore`` and predicts."""

    def __init__(self, image: np.ndarray, num_classes: int, axis: int, settings: CompletionSettings, seed: int):
        self.image, self.num_classes, self.axis, self.settings, self.seed = image, num_classes, axis, settings, seed

    def fit_predict(self, train_label: np.ndarray, iterations: int) -> torch.Tensor:
        """train_label: (X, Y, Z) with class indices and ``num_classes`` as ignore. Returns probs (K, X, Y, Z)."""
        s = self.settings
        torch.manual_seed(self.seed)
        network = build_network(s.network, 2, self.image.shape[0], self.num_classes, **s.network_kwargs)
        divisor = int(getattr(network, "required_divisor", 1))
        epochs = max(1, iterations // 20)
        config = TrainConfig(network=s.network, network_kwargs=s.network_kwargs, dim="2d", axis=self.axis,
                             patch_size=default_patch_size([self.image.shape[1:]], "2d", self.axis, divisor),
                             batch_size=s.batch_size, epochs=epochs,
                             iterations_per_epoch=max(1, iterations // epochs), learning_rate=s.learning_rate,
                             augmentation=s.augmentation, seed=self.seed, val_fraction=0.0,
                             labels={**{f"class_{k}": k for k in range(self.num_classes)},
                                     "ignore": self.num_classes},
                             ignore_label=self.num_classes)
        rng = np.random.default_rng(self.seed)
        volume = TrainingVolume.from_arrays("case", self.image, train_label, self.num_classes, rng)
        from versaseg.data.augment import build_augmentation

        device = torch.device(s.device)
        with tempfile.TemporaryDirectory(prefix="versaseg-complete-") as run_dir:
            trainer = Trainer(config, network, [volume], [], Path(run_dir), device, DistInfo(),
                              augment=build_augmentation(s.augmentation, 2), persist=False)
            trainer.fit()
        return predict_probabilities(trainer.network, torch.from_numpy(self.image), "2d", self.axis,
                                     config.patch_size, batch_size=s.batch_size, device=device)


def complete_case(case: Case, ignore_label: int | None, axis: int | str = "auto",
                  settings: CompletionSettings | None = None, progress=print) -> CompletionResult:
    """Complete and cleanse ``case.label`` (sparse, canonical orientation). Returns labels in the stored order.

    ``axis`` refers to the *stored* array axis of the input files ('auto' detects it).
    """
    settings = settings or CompletionSettings()
    started = time.perf_counter()
    sparse = case.label
    stored_sparse = case.to_original(sparse)
    annotated_stored, stored_axis = annotation_mask(stored_sparse, ignore_label, axis)
    # the canonical axis that the stored annotation axis became
    canonical_axis = int(case.orientation[stored_axis, 0])
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
    lut = np.vectorize(index_of.get)
    classes[annotated] = lut(sparse[annotated])
    image = normalize(case.image, fit_normalization([case.image], [classes], [f"ch{i}" for i in
                                                                             range(case.image.shape[0])], ignore))
    slice_ids = np.flatnonzero(annotated.any(axis=tuple(d for d in range(3) if d != canonical_axis)))
    progress(f"{len(slice_ids)} annotated slices along stored axis {stored_axis}; {num_classes - 1} classes")

    verdicts: list[SliceVerdict] = []
    cleansed = classes.copy()
    if settings.cleanse and len(slice_ids) >= 4:
        folds = [slice_ids[0::2], slice_ids[1::2]]
        for fold, held_out in enumerate(folds):
            train_label = np.full_like(classes, ignore)
            _copy_slices(train_label, classes, folds[1 - fold], canonical_axis)
            model = _SliceModel(image, num_classes, canonical_axis, settings, settings.seed + 1 + fold)
            probs = model.fit_predict(train_label, settings.cleanse_iterations)
            confident = probs.max(0).values.numpy() >= settings.confidence
            predicted = probs.argmax(0).numpy()
            for s in held_out:
                sl = _slice_index(canonical_axis, s)
                agreement = _slice_agreement(classes[sl], predicted[sl])
                fix = confident[sl] & (predicted[sl] != classes[sl])
                cleansed[sl][fix] = predicted[sl][fix]
                verdicts.append(SliceVerdict(int(s), agreement, False, int(fix.sum())))
            progress(f"cleansing fold {fold + 1}/2 done ({time.perf_counter() - started:.0f} s)")
        scores = np.array([v.agreement for v in verdicts])
        median = float(np.median(scores))
        mad = float(np.median(np.abs(scores - median))) * 1.4826
        cutoff = min(median - 3 * max(mad, 0.01), 0.98)
        for v in verdicts:
            v.judged_wrong = v.agreement < cutoff
    final_model = _SliceModel(image, num_classes, canonical_axis, settings, settings.seed)
    probs = final_model.fit_predict(cleansed, settings.iterations)
    dense = probs.argmax(0).numpy().astype(np.int16)
    dense[annotated] = cleansed[annotated]
    labels = values[dense].astype(sparse.dtype if np.issubdtype(sparse.dtype, np.integer) else np.int16)
    seconds = time.perf_counter() - started
    report = {
        "annotation_axis": stored_axis,
        "annotated_slices": [_stored_slice(int(s), canonical_axis, case) for s in slice_ids],
        "classes": [int(v) for v in values[1:]],
        "cleansed": bool(verdicts),
        "slices_judged_wrong": [
            {"slice": _stored_slice(v.index, canonical_axis, case), "agreement": round(v.agreement, 4),
             "voxels_corrected": v.voxels_corrected} for v in sorted(verdicts, key=lambda v: v.index)
            if v.judged_wrong],
        "slices": [{"slice": _stored_slice(v.index, canonical_axis, case), "agreement": round(v.agreement, 4),
                    "judged_wrong": v.judged_wrong, "voxels_corrected": v.voxels_corrected}
                   for v in sorted(verdicts, key=lambda v: v.index)],
        "voxels_corrected": int(sum(v.voxels_corrected for v in verdicts)),
        "seconds": round(seconds, 1),
        "settings": settings.__dict__,
    }
    return CompletionResult(case.to_original(labels), report)


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

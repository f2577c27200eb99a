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
3. **A prior-guided classifier** (:mod:`versaseg.tasks.completion_models`). By default a per-voxel MLP reads
   multi-scale 3D image features (:mod:`versaseg.data.voxel_features`) *and* the prior and outputs a correction of
   the prior's logits (:class:`PriorResidualNetwork`), so where the image is ambiguous the interpolation stands and
   where the image shows the boundary the classifier moves it - between and beyond the annotated slices. It trains
   on the annotated slices with the prior each would get from the *other* annotated slices (leave-one-out: twice the
   real gap) and with its own prior perturbed by smooth few-mm errors (what a prior close to an annotated slice
   looks like). ``model="cnn"`` uses a 2D registry network on the image slices instead.
4. **Check.** The annotated slices are split into two interleaved folds (non-adjacent slices, as the research
   selected them); one model trains on each fold and checks the other fold's slices. A slice whose disagreement
   with its held-out prediction is an outlier is judged wrong, its confidently contradicted voxels are corrected
   in a working copy, and the check is repeated (a wrong slice spoils its neighbours' priors too). The first and
   last annotated slice are never judged (one-sided context). Only with ``cleanse`` do the corrections reach the
   output.
5. **Complete.** ``final_models`` models (seeds) train on every annotated slice and their probabilities are
   averaged over every voxel of the working region; annotated slices keep their (cleansed) annotation, everything
   outside the working region is background.

It composes the library's stages: :func:`versaseg.data.case.load_case` (checks, canonical orientation),
normalisation, :mod:`versaseg.training.voxel` (or :class:`versaseg.training.trainer.Trainer` and
:func:`versaseg.inference.window.predict_volume` for ``model="cnn"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from versaseg.data.case import Case
from versaseg.data.normalization import fit_normalization, normalize
from versaseg.data.slice_interpolation import (
    interpolate_distances,
    leave_one_out_distances,
    slice_signed_distances,
)
from versaseg.data.voxel_features import image_features
from versaseg.errors import InputError
from versaseg.tasks.completion_models import (  # noqa: F401  (CompletionSettings, PriorResidualNetwork: public API)
    MODELS,
    CompletionSettings,
    PriorResidualNetwork,
    SliceNetworkModel,
    VoxelModel,
    perturbed_distances,
    prior_channels,
)
from versaseg.tasks.completion_planes import Plane, complete_planes, whole_slice_planes
from versaseg.tasks.completion_suggest import interpolation_doubt, suggest_slices, voxel_doubt


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
            if not whole:  # slices on several planes: the plane with the most slices is the primary one
                try:
                    planes = whole_slice_planes(annotated)
                except ValueError:
                    raise InputError("annotated voxels do not form whole slices along any axis or set of "
                                     "planes; pass --axis") from None
                return annotated, max(planes, key=lambda a: len(planes[a]))
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
    if ignore_label is not None:
        try:
            planes = whole_slice_planes(annotated)
        except ValueError:
            planes = {}
        if len(planes) > 1:
            return _complete_on_planes(case, classes, image, planes, values, settings, timer, started, progress)

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
    model_class = VoxelModel if settings.model == "voxel" else SliceNetworkModel
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
        examples += [perturbed_distances(slice_distances, spacing[1:], rng) for _ in range(settings.perturbed_copies)]
        inputs = np.concatenate([image_c[:, ids[source]], prior_channels(np.concatenate(examples), settings)])
        return inputs, slice_distances

    train_image, distances = training_examples(annotations)
    timer.lap("priors")

    verdicts: list[SliceVerdict] = []
    models: list[VoxelModel | SliceNetworkModel] = []
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
    doubt_c = np.zeros(classes_c.shape, np.float32) if settings.suggest > 0 else None
    for start in range(0, classes_c.shape[0], 32):
        at = np.arange(start, min(start + 32, classes_c.shape[0]))
        priors = prior_channels(interpolate_distances(distances, ids, at, spacing[0]), settings)
        each = [model.predict(network_input(priors, at)) for model in models]
        chunk = sum(each) / len(each)
        if doubt_c is not None:
            doubt_c[at] = voxel_doubt(each)
        probs = chunk if probs is None else torch.cat([probs, chunk], dim=1)
    dense_c = probs.argmax(0).numpy().astype(np.int16)
    dense_c[ids] = cleansed
    timer.lap("prediction")
    suggested = []
    if doubt_c is not None:
        doubt_c += interpolation_doubt(cleansed, ids, classes_c.shape[0])
        doubt_c[ids] = 0.0  # annotated slices are known
        doubt_s = np.zeros(classes_s.shape, np.float32)
        doubt_s[box] = doubt_c
        suggested = _suggest(np.moveaxis(doubt_s, 0, canonical_axis), {canonical_axis: all_ids}, case, settings)
        timer.lap("suggest")
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
        "suggested": suggested,
        "settings": settings.__dict__,
    }
    return CompletionResult(case.to_original(labels), report)


def _suggest(doubt: np.ndarray, planes: dict[int, np.ndarray], case: Case, settings: CompletionSettings) -> list:
    """``settings.suggest`` slices to annotate next (:mod:`versaseg.tasks.completion_suggest`), as stored axis and
    index. doubt: (X, Y, Z) canonical; planes: canonical axis -> annotated canonical slice indices. Beyond the
    last annotated slice on a side, an annotation is taken to help as far as the widest annotation gap (mm)."""
    stored_of = {int(case.orientation[s, 0]): s for s in range(3)}
    if settings.suggest_axes == "annotated":
        axes = sorted(planes)
    elif settings.suggest_axes == "all":
        axes = [0, 1, 2]
    else:
        try:
            stored = sorted({int(a) for a in settings.suggest_axes.split(",")})
        except ValueError:
            stored = [-1]
        if not stored or not set(stored) <= {0, 1, 2}:
            raise InputError(f"suggest axes must be 'annotated', 'all' or stored axes like '0,2', got "
                             f"'{settings.suggest_axes}'")
        axes = sorted(int(case.orientation[s, 0]) for s in stored)
    gaps_mm = [float(np.max(np.diff(ids))) * case.spacing[a] for a, ids in planes.items() if len(ids) > 1]
    reach_mm = max(gaps_mm) if gaps_mm else 20.0
    reach = {a: max(1, int(round(reach_mm / case.spacing[a]))) for a in axes}
    picks = suggest_slices(doubt, axes, settings.suggest, reach, {a: planes.get(a, ()) for a in axes})
    return [{"axis": stored_of[p["axis"]], "slice": _stored_slice(p["slice"], p["axis"], case),
             "score": p["score"]} for p in picks]


def _complete_on_planes(case: Case, classes: np.ndarray, image: np.ndarray, planes: dict[int, np.ndarray],
                        values: np.ndarray, settings: CompletionSettings, timer: _StepTimer, started: float,
                        progress) -> CompletionResult:
    """Annotated slices on several planes (canonical ``planes``: axis -> slice indices), with the ignore label:
    :func:`versaseg.tasks.completion_planes.complete_planes` on the working region (the annotated foreground's
    bounding box plus ``margin_mm`` and, along each plane's axis, one annotation gap). classes: (X, Y, Z)."""
    if settings.model != "voxel":
        raise InputError("annotated slices on several planes need --model voxel")
    num_classes = len(values)
    foreground = (classes > 0) & (classes < num_classes)
    box = []
    for d in range(3):
        hits = np.flatnonzero(foreground.any(axis=tuple(a for a in range(3) if a != d)))
        reach = int(np.ceil(settings.margin_mm / case.spacing[d]))
        if d in planes and len(planes[d]) > 1:
            reach = max(reach, int(np.max(np.diff(planes[d]))))
        box.append(slice(max(0, int(hits[0]) - reach), min(classes.shape[d], int(hits[-1]) + reach + 1)))
    box = tuple(box)
    classes_c = classes[box]
    features = image_features(np.ascontiguousarray(image[(slice(None), *box)]), case.spacing)
    timer.lap("features")
    inside = []
    for axis, ids in sorted(planes.items()):
        local = ids[(ids >= box[axis].start) & (ids < box[axis].stop)] - box[axis].start
        if len(local):
            inside.append(Plane(axis, local, np.moveaxis(classes_c, axis, 0)[local].astype(np.int16)))
    stored_axes = {int(np.flatnonzero(case.orientation[:, 0] == a)[0]): a for a in planes}
    progress(f"annotated slices on {len(planes)} planes ("
             + ", ".join(f"{len(planes[a])} along stored axis {s}" for s, a in sorted(stored_axes.items()))
             + f"); {num_classes - 1} classes; working region {classes_c.shape}")
    dense_c, facts = complete_planes(classes_c, features, inside, num_classes, case.spacing, settings, progress)
    timer.lap("training")
    suggested = []
    if settings.suggest > 0:
        doubt = np.zeros(classes.shape, np.float32)
        guesswork = [np.moveaxis(interpolation_doubt(p.slices, p.ids, classes_c.shape[p.axis]), 0, p.axis)
                     for p in inside]
        doubt[box] = facts.pop("doubt") + np.min(guesswork, axis=0)  # guesswork where no plane knows
        doubt[classes != num_classes] = 0.0
        suggested = _suggest(doubt, planes, case, settings)
        timer.lap("suggest")
    dense = np.zeros(classes.shape, np.int16)
    dense[box] = dense_c
    labels = values[dense].astype(case.label.dtype if np.issubdtype(case.label.dtype, np.integer) else np.int16)
    report = {
        "annotation_axis": max(stored_axes, key=lambda s: len(planes[stored_axes[s]])),
        "planes": {str(s): sorted(_stored_slice(int(i), a, case) for i in planes[a])
                   for s, a in sorted(stored_axes.items())},
        "annotated_slices": [],
        "classes": [int(v) for v in values[1:]],
        "checked": False,
        "cleansed": False,
        "slices_judged_wrong": [],
        "slices": [],
        "voxels_corrected": 0,
        "seconds": round(time.perf_counter() - started, 1),
        "time_split_s": timer.seconds,
        "extrapolated_fraction": {},
        "training_rows": facts["training_rows"],
        "suggested": suggested,
        "settings": settings.__dict__,
    }
    report["annotated_slices"] = report["planes"][str(report["annotation_axis"])]
    progress("several planes: the slice check is not run (it checks the slices of one plane)")
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
        prior = prior_channels(np.concatenate(priors), settings)
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


def _to_canonical_mask(mask_stored: np.ndarray, case: Case) -> np.ndarray:
    from versaseg.io.image import to_canonical

    return to_canonical(mask_stored.astype(np.uint8), case.reference.affine)[0].astype(bool)


def _stored_slice(canonical_index: int, canonical_axis: int, case: Case) -> int:
    """Map a canonical slice index back to the stored array's index along the annotation axis."""
    row = int(np.flatnonzero(case.orientation[:, 0] == canonical_axis)[0])
    flipped = case.orientation[row, 1] < 0
    size = case.reference.shape[row]
    return size - 1 - canonical_index if flipped else canonical_index

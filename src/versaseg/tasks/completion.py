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
:mod:`versaseg.data.annotation` (step 1), normalisation, :mod:`versaseg.training.voxel` (or
:class:`versaseg.training.trainer.Trainer` and :func:`versaseg.inference.window.predict_volume` for
``model="cnn"``), :mod:`versaseg.evaluation.slice_check` (step 4) and :mod:`versaseg.tasks.completion_report`.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from versaseg.data.annotation import annotation_mask, class_indices, planes_box, whole_slice_planes, working_box
from versaseg.data.case import Case
from versaseg.data.normalization import fit_normalization, normalize
from versaseg.data.slice_interpolation import (
    interpolate_distances,
    leave_one_out_distances,
    slice_signed_distances,
)
from versaseg.data.voxel_features import image_features
from versaseg.errors import InputError
from versaseg.evaluation.slice_check import SliceVerdict, find_wrong_slices, judge_slices
from versaseg.io.image import stored_axis, stored_index, to_canonical
from versaseg.progress import StepTimer
from versaseg.tasks.completion_models import (  # noqa: F401  (CompletionSettings, PriorResidualNetwork: public API)
    MODELS,
    CompletionSettings,
    PriorResidualNetwork,
    SliceNetworkModel,
    VoxelModel,
    perturbed_distances,
    prior_channels,
)
from versaseg.tasks.completion_planes import Plane, complete_planes
from versaseg.tasks.completion_report import CompletionResult, completion_report, extrapolated_fraction, verdict_rows
from versaseg.tasks.completion_suggest import interpolation_doubt, suggest_for_case, voxel_doubt


def complete_case(case: Case, ignore_label: int | None, axis: int | str = "auto",
                  settings: CompletionSettings | None = None, progress=print) -> CompletionResult:
    """Complete and cleanse ``case.label`` (sparse, canonical orientation). Returns labels in the stored order.

    ``axis`` refers to the *stored* array axis of the input files ('auto' detects it).
    """
    settings = settings or CompletionSettings()
    if settings.model not in MODELS:
        raise InputError(f"unknown completion model '{settings.model}'; valid: {', '.join(MODELS)}")
    started = time.perf_counter()
    timer = StepTimer()
    sparse = case.label
    stored_sparse = case.to_original(sparse)
    annotated_stored, annotation_axis = annotation_mask(stored_sparse, ignore_label, axis)
    canonical_axis = int(case.orientation[annotation_axis, 0])  # the canonical axis the stored annotation axis became
    annotated = to_canonical(annotated_stored.astype(np.uint8), case.reference.affine)[0].astype(bool)
    values, classes = class_indices(sparse, annotated, ignore_label)
    num_classes = ignore = len(values)  # class index K marks unannotated voxels
    if num_classes < 2:
        raise InputError("the annotated slices hold no foreground label")
    channels = [f"ch{i}" for i in range(case.image.shape[0])]
    caps = _background_only_slices(classes, annotated, canonical_axis, ignore) if ignore_label is not None else []
    # normalisation from the slices both conventions see as annotated (those holding foreground)
    seen = classes
    if len(caps):
        seen = classes.copy()
        np.moveaxis(seen, canonical_axis, 0)[caps] = ignore
    image = normalize(case.image, fit_normalization([case.image], [seen], channels, ignore))
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
    drawn = np.setdiff1d(all_ids, caps)  # the training slices: from the first to the last holding foreground
    if len(drawn) < 2:
        raise InputError(f"only {len(drawn)} annotated slice from the first to the last holding a foreground label "
                         f"along axis {annotation_axis}: completion needs at least 2")
    box = working_box(classes_s, drawn, ignore, spacing, settings.margin_mm)
    classes_c = classes_s[box]
    image_c = np.ascontiguousarray(image_s[(slice(None), *box)])
    # the prior also reads the background-only end slices inside the working region (ignore-label convention:
    # known background where the structures have ended); they are neither trained on nor judged
    inside = all_ids[(all_ids >= box[0].start) & (all_ids < box[0].stop)]
    ids = inside - box[0].start
    trained = np.flatnonzero(np.isin(inside, drawn))  # positions in ids of the training slices
    foreground = list(range(1, num_classes))
    model_class = VoxelModel if settings.model == "voxel" else SliceNetworkModel
    if settings.model == "voxel":
        image_c = image_features(image_c, spacing)
    timer.lap("features")
    progress(f"{len(drawn)} annotated slices along stored axis {annotation_axis}"
             + (f" (+ {len(caps)} background-only beyond the structures)" if len(caps) else "")
             + f"; {num_classes - 1} classes; working region {classes_c.shape}")

    def network_input(priors: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Image + prior channels (C + K - 1, len(at), H, W)."""
        return np.concatenate([image_c[:, at], priors], axis=0)

    annotations = classes_c[ids].copy()  # (N, H, W)
    rng = np.random.default_rng(settings.seed)
    source = np.tile(trained, 1 + settings.perturbed_copies)  # example -> annotated slice position

    def training_examples(slices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each training slice of ``slices`` (N, H, W) with its leave-one-out prior, plus copies with perturbed
        priors: the network input (C + P, len(source), H, W) and the slices' signed distances (N, K - 1, H, W)."""
        slice_distances = slice_signed_distances(slices, foreground, spacing[1:])
        # the random perturbations are drawn for the training slices only: the same draws in both conventions
        examples = [leave_one_out_distances(slice_distances, ids, spacing[0])[trained]]
        examples += [perturbed_distances(slice_distances[trained], spacing[1:], rng)
                     for _ in range(settings.perturbed_copies)]
        inputs = np.concatenate([image_c[:, ids[source]], prior_channels(np.concatenate(examples), settings)])
        return inputs, slice_distances

    train_image, distances = training_examples(annotations)
    timer.lap("priors")

    verdicts: list[SliceVerdict] = []
    models: list[VoxelModel | SliceNetworkModel] = []
    checking = (settings.check or settings.cleanse) and len(trained) >= 4
    folds = [trained[0::2], trained[1::2]] if checking else []
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

        # only with ``cleanse`` do the corrections reach the output
        cleansed, verdicts = find_wrong_slices(annotations, ids, check, settings.cleanse)
        progress(f"checked the annotated slices: {sum(v.judged_wrong for v in verdicts)} judged wrong"
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
        suggested = suggest_for_case(np.moveaxis(doubt_s, 0, canonical_axis), {canonical_axis: all_ids}, case,
                                     settings.suggest, settings.suggest_axes)
        timer.lap("suggest")
    extrapolated = extrapolated_fraction(dense_c, cleansed, ids, values)
    dense_s = np.zeros(classes_s.shape, np.int16)
    dense_s[box] = dense_c
    dense = np.moveaxis(dense_s, 0, canonical_axis)
    labels = values[dense].astype(sparse.dtype if np.issubdtype(sparse.dtype, np.integer) else np.int16)

    def stored(canonical_index: int) -> int:
        return stored_index(canonical_index, canonical_axis, case.orientation, case.reference.shape)

    report = completion_report(annotation_axis, [stored(int(s)) for s in all_ids], values,
                               verdict_rows(verdicts, lambda index: stored(index + box[0].start)), settings.cleanse,
                               started, timer, extrapolated, suggested, settings)
    return CompletionResult(case.to_original(labels), report)


def _background_only_slices(classes: np.ndarray, annotated: np.ndarray, axis: int, ignore: int) -> np.ndarray:
    """Indices along canonical ``axis`` of the annotated slices beyond the first and last slice holding foreground:
    annotated background where the structures have ended (only the ignore-label convention can tell them from
    unannotated slices). A background-only slice between foreground slices may be a missed annotation: it stays
    a training slice, and the slice check judges it. classes, annotated: (X, Y, Z)."""
    classes_s, annotated_s = np.moveaxis(classes, axis, 0), np.moveaxis(annotated, axis, 0)
    holds_foreground = np.flatnonzero(((classes_s > 0) & (classes_s != ignore)).any(axis=(1, 2)))
    ids = np.flatnonzero(annotated_s.any(axis=(1, 2)))
    if not len(holds_foreground):
        return ids[:0]
    return ids[(ids < holds_foreground[0]) | (ids > holds_foreground[-1])]


def _complete_on_planes(case: Case, classes: np.ndarray, image: np.ndarray, planes: dict[int, np.ndarray],
                        values: np.ndarray, settings: CompletionSettings, timer: StepTimer, started: float,
                        progress) -> CompletionResult:
    """Annotated slices on several planes (canonical ``planes``: axis -> slice indices), with the ignore label:
    :func:`versaseg.tasks.completion_planes.complete_planes` on the working region (the annotated foreground's
    bounding box plus ``margin_mm`` and, along each plane's axis, one annotation gap). classes: (X, Y, Z)."""
    if settings.model != "voxel":
        raise InputError("annotated slices on several planes need --model voxel")
    num_classes = len(values)
    box = planes_box((classes > 0) & (classes < num_classes), planes, case.spacing, settings.margin_mm)
    classes_c = classes[box]
    features = image_features(np.ascontiguousarray(image[(slice(None), *box)]), case.spacing)
    timer.lap("features")
    inside = []
    for axis, ids in sorted(planes.items()):
        local = ids[(ids >= box[axis].start) & (ids < box[axis].stop)] - box[axis].start
        if len(local):
            inside.append(Plane(axis, local, np.moveaxis(classes_c, axis, 0)[local].astype(np.int16)))
    stored_axes = {stored_axis(a, case.orientation): a for a in planes}
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
        suggested = suggest_for_case(doubt, planes, case, settings.suggest, settings.suggest_axes)
        timer.lap("suggest")
    dense = np.zeros(classes.shape, np.int16)
    dense[box] = dense_c
    labels = values[dense].astype(case.label.dtype if np.issubdtype(case.label.dtype, np.integer) else np.int16)
    annotation_axis = max(stored_axes, key=lambda s: len(planes[stored_axes[s]]))
    stored_planes = {str(s): sorted(stored_index(int(i), a, case.orientation, case.reference.shape)
                                    for i in planes[a]) for s, a in sorted(stored_axes.items())}
    report = completion_report(annotation_axis, stored_planes[str(annotation_axis)], values, [], False, started,
                               timer, {}, suggested, settings, stored_planes, facts["training_rows"])
    progress("several planes: the slice check is not run (it checks the slices of one plane)")
    return CompletionResult(case.to_original(labels), report)


def _check_slices(models: list, folds: list[np.ndarray], image_c: np.ndarray,
                  annotations: np.ndarray, ids: np.ndarray, distances: np.ndarray, spacing: tuple,
                  settings: CompletionSettings) -> list[SliceVerdict]:
    """Predict every annotated slice with the model that did not train on it, from the image and the prior
    interpolated from the other annotated slices; compare with its annotation
    (:func:`versaseg.evaluation.slice_check.judge_slices`). annotations: (N, H, W) at ``ids``; folds: positions."""
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
        verdicts += judge_slices(annotations, ids, held_out, predicted, confident)
    return sorted(verdicts, key=lambda v: v.index)



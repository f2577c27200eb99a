"""Two-stage prediction with a cascade run (``RUN/cascade.json``, ``RUN/stage1``, ``RUN/stage2``).

Stage 1 on the input resampled to its coarse grid -> foreground components kept by the ROI rule -> their bounding box
(in mm, mapped onto the input grid) plus the margin, grown to the stage-2 network's divisor -> stage 2 on that crop ->
labels pasted into a zero volume with the input's geometry. If stage 1 finds nothing, a warning is issued and stage 2
runs on the whole volume. Both stages are :class:`~versaseg.inference.predictor.Predictor` s; folders of cases go
through :meth:`Predictor.predict_to_folder` with a :class:`~versaseg.inference.predictor.FolderHook`.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from versaseg.data.case import Case, case_from_arrays
from versaseg.errors import InputError
from versaseg.inference.postprocess import select_components
from versaseg.inference.predictor import FolderHook, Predictor
from versaseg.io.atomic import write_text_atomic
from versaseg.io.dataset import CaseFiles
from versaseg.io.image import write_volume
from versaseg.io.resample import (
    box_affine,
    box_mask,
    box_to_grid,
    crop_box,
    resample_label,
    resample_to_spacing,
    round_box,
)
from versaseg.training.cascade import CascadeInfo, check_roi_rule, stage1_spacing

OVERSIZED_ROI = 1.5  # warn when the ROI is this many times the largest stage-2 training crop along an axis


@dataclass
class CascadePrediction:
    """One case through both stages, in the case's canonical (RAS+) order as ``case.image`` holds it:
    canonical_labels (X, Y, Z) int16; canonical_roi: the stage-2 box (the whole volume after a fallback);
    canonical_stage1: stage-1 foreground (X, Y, Z) on the input grid; fallback: stage 1 found nothing; oversized: the
    ROI is more than :data:`OVERSIZED_ROI` times the largest training crop along some axis (stage 1 found structures
    far apart: likely false positives). ``labels``, ``stage1`` and ``roi`` are the same in the case's original axis
    order (what is written to files)."""

    case: Case
    canonical_labels: np.ndarray
    canonical_roi: tuple[slice, ...]
    canonical_stage1: np.ndarray
    fallback: bool
    stage1_voxels: int
    oversized: bool = False

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return self.case.to_original(self.canonical_labels)

    @functools.cached_property
    def stage1(self) -> np.ndarray:
        return self.case.to_original(self.canonical_stage1)

    @functools.cached_property
    def roi(self) -> tuple[slice, ...]:
        return crop_box(self.case.to_original(box_mask(self.canonical_roi, self.case.spatial_shape)), np.ones(3))

    def roi_record(self) -> dict:
        return {"case": self.case.case_id, "roi_start": [s.start for s in self.roi],
                "roi_stop": [s.stop for s in self.roi], "fallback_whole_volume": self.fallback,
                "stage1_coarse_voxels": self.stage1_voxels, "roi_larger_than_training_crops": self.oversized,
                "roi_fraction": float(np.prod([s.stop - s.start for s in self.roi]) / self.labels.size)}


class CascadePredictor:
    """Loads a cascade run (``cascade.json``, ``stage1/``, ``stage2/``) and predicts cases."""

    def __init__(self, run_dir: str | Path, device="cpu", roi: str | None = None, margin_mm: float | None = None,
                 batch_size: int | None = None, tta: bool = False):
        self.run_dir = Path(run_dir)
        self.info = CascadeInfo.load(self.run_dir)
        self.roi = check_roi_rule(roi or self.info.settings.roi)
        self.margin_mm = self.info.settings.margin_mm if margin_mm is None else float(margin_mm)
        if self.margin_mm < 0:
            raise InputError(f"--margin-mm must be >= 0, got {self.margin_mm}")
        self.stage1 = Predictor(self.run_dir / "stage1", device=device, batch_size=batch_size, tta=tta)
        self.stage2 = Predictor(self.run_dir / "stage2", device=device, batch_size=batch_size, tta=tta)
        self.channel_names = self.stage2.config.channel_names
        self.ignore_label = self.stage2.config.ignore_label
        self.stage1_multiple = int(getattr(self.stage1.network, "required_divisor", 1))
        self.stage2_multiple = int(getattr(self.stage2.network, "required_divisor", 1))

    def stage1_foreground(self, case: Case, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1 on the coarse copy of ``case``: ``(foreground (X', Y', Z') bool, coarse affine)``, canonical."""
        spacing = stage1_spacing(case.spacing, self.info.settings.coarse_spacing)
        image, _, coarse_affine = resample_to_spacing(case.image, affine, spacing, multiple=self.stage1_multiple)
        labels = self.stage1.predict_case(case_from_arrays(case.case_id, image, coarse_affine)).labels
        return labels > 0, coarse_affine

    def check_roi_size(self, case: Case, box: tuple[slice, ...]) -> bool:
        """Warn (and return True) when ``box`` (canonical) exceeds the largest stage-2 training crop by more than
        :data:`OVERSIZED_ROI` along an axis: stage 2 then sees far more than it learned on."""
        crop_mm = self.info.stage2_crop_mm
        if not crop_mm:  # a run from before the crop sizes were recorded
            return False
        extent = [(b.stop - b.start) * s for b, s in zip(box, case.spacing, strict=True)]
        if all(e <= OVERSIZED_ROI * c for e, c in zip(extent, crop_mm, strict=True)):
            return False
        warnings.warn(f"case {case.case_id}: the region of interest ({' x '.join(f'{e:.0f}' for e in extent)} mm) is "
                      f"over {OVERSIZED_ROI:g}x the largest stage-2 training crop "
                      f"({' x '.join(f'{c:.0f}' for c in crop_mm)} mm): stage 1 found structures far apart, likely "
                      "false positives (an undertrained stage 1?); check --figures or --save-stage1", stacklevel=2)
        return True

    def predict_case(self, case: Case) -> CascadePrediction:
        """Both stages on one loaded case; outputs are mapped back to the case's original orientation."""
        affine = case.affine
        foreground, coarse_affine = self.stage1_foreground(case, affine)
        box1 = crop_box(select_components(foreground, self.roi), np.ones(3))
        shape = case.spatial_shape
        if box1 is None:
            warnings.warn(f"case {case.case_id}: stage 1 found no target structure; running stage 2 on the whole "
                          "volume", stacklevel=2)
            box = tuple(slice(0, n) for n in shape)
        else:
            box = box_to_grid(box1, coarse_affine, shape, affine)
            box = round_box(crop_box(box_mask(box, shape), case.spacing, self.margin_mm), shape, self.stage2_multiple)
        oversized = box1 is not None and self.check_roi_size(case, box)
        crop = case_from_arrays(case.case_id, case.image[(slice(None), *box)], box_affine(affine, box))
        labels = np.zeros(shape, np.int16)
        labels[box] = self.stage2.predict_case(crop).labels
        stage1_full = resample_label(foreground.astype(np.int16), coarse_affine, shape, affine, "nearest")
        return CascadePrediction(case, labels, box, stage1_full, box1 is None, int(foreground.sum()), oversized)

    def predict_to_folder(self, cases: Sequence[CaseFiles], out_dir: str | Path, overwrite: bool = False,
                          save_stage1: bool = False, figures: bool = False, show_progress: bool = True) -> list[Path]:
        """Predict every case into ``out_dir/CASE<ending>`` (input geometry) and write ``out_dir/cascade_rois.json``
        (per case: the stage-2 box in the input's voxel indices, whether stage 2 fell back to the whole volume);
        with ``save_stage1`` also ``out_dir/CASE_stage1<ending>`` (stage-1 foreground on the input grid); with
        ``figures`` also ``out_dir/figures/CASE.png`` (:meth:`figure`).

        All output paths are checked before any work (:meth:`Predictor.predict_to_folder` of stage 2).
        """
        return self.stage2.predict_to_folder(cases, out_dir, overwrite=overwrite, show_progress=show_progress,
                                             hook=CascadeFiles(self, save_stage1, figures))

    def figure(self, prediction: CascadePrediction, out_png: str | Path) -> Path:
        """:func:`versaseg.viz.cascade.cascade_figure` of one prediction over its first channel (canonical order):
        stage 1's region, the ROI and the labels inside it, with the case's label as ground truth when it has one."""
        from versaseg.viz.cascade import cascade_figure

        case = prediction.case
        note = "stage 1 found nothing: stage 2 ran on the whole volume" if prediction.fallback else (
            f"ROI {prediction.roi_record()['roi_fraction'] * 100:.1f} % of the volume")
        if prediction.oversized:
            note += "; far larger than the training crops: check stage 1"
        names = {value: name for name, value in self.info.labels.items() if value > 0 and name != "ignore"}
        truth = case.label
        if truth is not None and self.ignore_label is not None:
            truth = np.where(truth == self.ignore_label, 0, truth)
        return cascade_figure(case.image[0], prediction.canonical_stage1, prediction.canonical_roi,
                              prediction.canonical_labels, out_png, truth=truth, spacing=case.spacing,
                              class_names=names, title=f"{case.case_id}: cascade ({note})")


class CascadeFiles(FolderHook):
    """A cascade's per-case files for :meth:`Predictor.predict_to_folder`: both stages per case, optionally
    ``CASE_stage1<ending>`` and ``figures/CASE.png``, and ``cascade_rois.json`` for the folder."""

    desc = "cascade predict"
    folder_outputs = ("cascade_rois.json",)

    def __init__(self, cascade: CascadePredictor, save_stage1: bool, figures: bool):
        super().__init__(cascade.stage2)
        self.cascade, self.save_stage1, self.figures = cascade, save_stage1, figures
        self.records: list[dict] = []

    def case_outputs(self, case_id: str, ending: str) -> list[str]:
        return [f"{case_id}_stage1{ending}"] * self.save_stage1 + [f"figures/{case_id}.png"] * self.figures

    def predict(self, case: Case) -> CascadePrediction:
        return self.cascade.predict_case(case)

    def write(self, prediction: CascadePrediction, paths: list[Path]) -> None:
        if self.save_stage1:
            write_volume(paths[0], prediction.stage1.astype(np.uint8), prediction.case.reference, overwrite=True)
        if self.figures:
            paths[-1].parent.mkdir(parents=True, exist_ok=True)
            self.cascade.figure(prediction, paths[-1])
        self.records.append(prediction.roi_record())

    def finish(self, out_dir: Path) -> None:
        write_text_atomic(out_dir / "cascade_rois.json", json.dumps({"cases": self.records}, indent=2) + "\n")

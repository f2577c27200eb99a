"""nnU-Net v2 with its ignore label as a label-completion anchor: train on one case's sparse label, predict that case.

nnU-Net documents this use of the ignore label ("autocomplete the training cases given the sparse labels",
documentation/ignore_label.md). This script does exactly that, with nnU-Net's own code for every step:

1. A raw dataset with the one case: ``imagesTr/case_000{c}.nii.gz`` (the image channels, channel names "MR" so that
   nnU-Net z-scores them) and ``labelsTr/case.nii.gz``, the sparse label with its unannotated voxels set to the
   label ``ignore`` = the highest foreground label + 1, as nnU-Net requires; ``dataset.json`` declares it.
2. ``extract_fingerprints`` (with the dataset integrity check), ``plan_experiments`` (default ``ExperimentPlanner``,
   ``nnUNetPlans``) and ``preprocess`` for the **2d** configuration only.
3. :class:`WallTimeTrainer`, an ``nnUNetTrainer`` whose only change is when it stops: it runs nnU-Net's own epoch
   loop (``train_step``, deep supervision, its augmentation, its loss with the ignore label) until ``--budget-s``
   seconds of training have passed, with the poly learning rate decayed over that wall time instead of over 1000
   epochs, and short epochs (10 iterations, 1 validation batch) so that it can stop close to the budget. Fold
   ``'all'`` (train = validation = the one case). Data augmentation runs in the main process
   (``nnUNet_n_proc_DA=0``: the benchmark machine has 2 cores).
4. Prediction of the case with ``nnUNetPredictor`` (nnU-Net's defaults: Gaussian-weighted sliding window, step 0.5,
   mirroring test-time augmentation) on the trained network, written as NIfTI.

Run as its own process (nnU-Net reads its folders from environment variables at import time); prints one JSON line
with the time split. Needs the ``[bench]`` extra (``nnunetv2``). Used by ``benchmarks/completion.py --methods nnunet``.

    python benchmarks/nnunet_anchor.py IMAGE [IMAGE ...] --sparse SPARSE --ignore-label 9 --out OUT --budget-s 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

DATASET_ID = 901
DATASET = f"Dataset{DATASET_ID}_Completion"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", type=Path, help="Image channels (NIfTI), in order.")
    parser.add_argument("--sparse", type=Path, required=True, help="Sparse label (NIfTI) with an ignore label.")
    parser.add_argument("--ignore-label", type=int, required=True, help="Value of the unannotated voxels.")
    parser.add_argument("--out", type=Path, required=True, help="Dense label to write (NIfTI).")
    parser.add_argument("--budget-s", type=float, required=True, help="Wall-time budget for training, seconds.")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nnunet-anchor-") as work:
        split = run(args.images, args.sparse, args.ignore_label, args.out, args.budget_s, Path(work), args.device)
    print(json.dumps(split), flush=True)


def write_raw_dataset(raw: Path, images: list[Path], sparse: Path, ignore_label: int) -> tuple[list[int], int]:
    """The one-case raw dataset (step 1). Returns the foreground label values and nnU-Net's ignore value."""
    folder = raw / DATASET
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    for channel, image in enumerate(images):
        shutil.copy(image, folder / "imagesTr" / f"case_{channel:04d}.nii.gz")
    label_nii = nib.load(sparse)
    label = np.asarray(label_nii.dataobj).astype(np.int16)
    annotated = label != ignore_label
    foreground = sorted(int(v) for v in np.unique(label[annotated]) if v != 0)
    if foreground != list(range(1, len(foreground) + 1)):
        raise SystemExit(f"{sparse}: foreground labels must be 1..N for nnU-Net, got {foreground}")
    nnunet_ignore = len(foreground) + 1
    converted = np.where(annotated, label, nnunet_ignore).astype(np.uint8)
    nib.save(nib.Nifti1Image(converted, label_nii.affine, label_nii.header), folder / "labelsTr" / "case.nii.gz")
    labels = {"background": 0, **{f"class_{v}": v for v in foreground}, "ignore": nnunet_ignore}
    dataset = {"channel_names": {str(c): "MR" for c in range(len(images))}, "labels": labels, "numTraining": 1,
               "file_ending": ".nii.gz"}
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2))
    return foreground, nnunet_ignore


def run(images: list[Path], sparse: Path, ignore_label: int, out: Path, budget_s: float, work: Path,
        device: str) -> dict:
    """Steps 1-4; returns the time split in seconds."""
    started = time.perf_counter()
    for name in ("raw", "preprocessed", "results"):
        (work / name).mkdir()
        os.environ[f"nnUNet_{name}"] = str(work / name)
    os.environ["nnUNet_n_proc_DA"] = "1"  # the planner sets torch's threads from it (0 is refused there)
    split: dict = {}
    write_raw_dataset(work / "raw", images, sparse, ignore_label)

    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    split["start_s"] = round(time.perf_counter() - started, 2)
    lap = time.perf_counter()
    extract_fingerprints([DATASET_ID], num_processes=1, check_dataset_integrity=True, show_progress_bar=False)
    plan_experiments([DATASET_ID])
    preprocess([DATASET_ID], configurations=("2d",), num_processes=(1,), show_progress_bar=False)
    split["plan_preprocess_s"] = round(time.perf_counter() - lap, 2)

    class WallTimeTrainer(nnUNetTrainer):
        """nnU-Net's trainer, stopped after ``budget_s`` seconds of training (step 3)."""

        def __init__(self, plans: dict, configuration: str, fold, dataset_json: dict,
                     device: torch.device = torch.device("cuda")):  # nnU-Net records these arguments by name
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 10, 1
            self.save_every = 10**9  # no intermediate checkpoints
            self.training_started = 0.0

        def on_train_epoch_start(self):
            super().on_train_epoch_start()
            fraction = min(1.0, (time.perf_counter() - self.training_started) / budget_s)
            for group in self.optimizer.param_groups:  # poly schedule over the wall-time budget
                group["lr"] = self.initial_lr * (1 - fraction) ** 0.9

        def run_training(self):
            self.on_train_start()
            self.training_started = time.perf_counter()
            while time.perf_counter() - self.training_started < budget_s:
                self.on_epoch_start()
                self.on_train_epoch_start()
                outputs = [self.train_step(next(self.dataloader_train)) for _ in range(self.num_iterations_per_epoch)]
                self.on_train_epoch_end(outputs)
                with torch.no_grad():
                    self.on_validation_epoch_start()
                    validation = [self.validation_step(next(self.dataloader_val))
                                  for _ in range(self.num_val_iterations_per_epoch)]
                    self.on_validation_epoch_end(validation)
                self.on_epoch_end()
            self.on_train_end()

    preprocessed = work / "preprocessed" / DATASET
    plans = load_json(str(preprocessed / "nnUNetPlans.json"))
    plans["continue_training"] = False  # what nnUNetv2_train passes for a new training
    dataset_json = load_json(str(preprocessed / "dataset.json"))
    lap = time.perf_counter()
    os.environ["nnUNet_n_proc_DA"] = "0"  # augmentation in the main process
    trainer = WallTimeTrainer(plans, "2d", "all", dataset_json, device=torch.device(device))
    trainer.disable_checkpointing = True
    trainer.run_training()
    split["training_s"] = round(time.perf_counter() - lap, 2)
    split["epochs"] = int(trainer.current_epoch)
    split["iterations"] = int(trainer.current_epoch * trainer.num_iterations_per_epoch)
    split["patch_size"] = [int(v) for v in trainer.configuration_manager.patch_size]
    split["batch_size"] = int(trainer.configuration_manager.batch_size)

    lap = time.perf_counter()
    trainer.set_deep_supervision_enabled(False)
    trainer.network.eval()
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=True, device=torch.device(device), verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager,
                                    [trainer.network.state_dict()], trainer.dataset_json, "WallTimeTrainer",
                                    trainer.inference_allowed_mirroring_axes)
    truncated = work / "prediction" / "case"
    truncated.parent.mkdir()
    channels = [str(work / "raw" / DATASET / "imagesTr" / f"case_{c:04d}.nii.gz") for c in range(len(images))]
    predictor.predict_from_files_sequential([channels], [str(truncated)], save_probabilities=False, overwrite=True)
    shutil.move(str(truncated) + ".nii.gz", out)
    split["prediction_s"] = round(time.perf_counter() - lap, 2)
    split["total_s"] = round(time.perf_counter() - started, 2)
    return split


if __name__ == "__main__":
    sys.exit(main())

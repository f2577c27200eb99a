"""Shared fixtures: tiny synthetic datasets written to tmp_path in the nnU-Net v2 layout."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

try:
    from hypothesis import settings
except ImportError:  # the dev extra is not installed: the *_fuzz.py tests skip themselves
    pass
else:
    # Property-based tests (tests/io/*_fuzz.py) draw the same examples on every run and machine: derandomized, no
    # example database, no per-example deadline (CI machines vary). Each test sets its own max_examples.
    settings.register_profile("versaseg", derandomize=True, database=None, deadline=None, print_blob=True)
    settings.load_profile("versaseg")


def write_tiny_dataset(root: Path, cases: int = 4, shape=(24, 28, 20), spacing=(1.5, 1.0, 2.0), seed: int = 0,
                       ignore_every: int = 0, test_cases: int = 1) -> Path:
    """Two-channel volumes with a bright ball (label 1) and a dark box (label 2) at random places.

    With ``ignore_every`` = K, only every K-th axial slice is annotated; the rest get the ignore label 3.
    """
    rng = np.random.default_rng(seed)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 3.0)
    for folder in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    grid = np.indices(shape).astype(np.float32)
    for index in range(cases + test_cases):
        center = rng.uniform(0.35, 0.65, 3) * np.array(shape)
        radius = rng.uniform(0.18, 0.25) * min(shape)
        ball = ((grid - center[:, None, None, None]) ** 2).sum(0) < radius**2
        label = ball.astype(np.uint8)
        corner = rng.integers(1, 4, 3)
        box = tuple(slice(c, c + s // 4) for c, s in zip(corner, shape, strict=True))
        label[box] = 2
        t1 = 100 + 80 * (label == 1) - 60 * (label == 2) + rng.normal(0, 8, shape)
        t2 = 50 + 30 * (label == 1) + 90 * (label == 2) + rng.normal(0, 8, shape)
        training = index < cases
        case = f"tiny_{index:03d}"
        images = "imagesTr" if training else "imagesTs"
        for channel, data in enumerate((t1, t2)):
            nib.save(nib.Nifti1Image(data.astype(np.float32), affine), root / images / f"{case}_{channel:04d}.nii.gz")
        if ignore_every and training:
            sparse = np.full(shape, 3, np.uint8)
            sparse[:, :, ::ignore_every] = label[:, :, ::ignore_every]
            label_out = sparse
        else:
            label_out = label
        nib.save(nib.Nifti1Image(label_out, affine), root / ("labelsTr" if training else "labelsTs") / f"{case}.nii.gz")
    labels = {"background": 0, "ball": 1, "box": 2}
    if ignore_every:
        labels["ignore"] = 3
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1", "1": "T2"}, "labels": labels, "numTraining": cases, "file_ending": ".nii.gz",
    }))
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "Dataset001_Tiny")

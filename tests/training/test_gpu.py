"""GPU path (run with `pytest -m gpu` on a CUDA machine; skipped elsewhere)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from versaseg.inference.predictor import Predictor
from versaseg.io.dataset import load_dataset
from versaseg.tasks.training import train
from versaseg.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_tiny_dataset  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_auto_device_trains_and_predicts_on_cuda(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", cases=3)
    config = TrainConfig(epochs=1, iterations_per_epoch=3, batch_size=4, network_kwargs={"depth": 3, "base_width": 4})
    trainer = train(config, dataset, tmp_path / "run", device="auto")
    assert next(trainer.network.parameters()).device.type == "cuda"
    predictor = Predictor(tmp_path / "run", device="cuda")
    written = predictor.predict_to_folder(load_dataset(dataset).test_cases(), tmp_path / "pred", show_progress=False)
    assert len(written) == 1 and written[0].exists()

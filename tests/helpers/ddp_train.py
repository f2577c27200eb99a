"""Run under torchrun: trains a tiny model with DDP and saves this rank's final weights to OUT/rank<r>.pt."""

import os
import sys
from pathlib import Path

import torch

from versaseg.tasks.training import train
from versaseg.training.config import TrainConfig

if __name__ == "__main__":
    dataset, out = Path(sys.argv[1]), Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    config = TrainConfig(epochs=2, iterations_per_epoch=3, batch_size=4, augmentation="light", seed=3,
                         network_kwargs={"depth": 3, "base_width": 4})
    trainer = train(config, dataset, out / "run", device="cpu")
    torch.save(trainer.network.state_dict(), out / f"rank{rank}.pt")
    print(f"rank {rank} world {trainer.dist.world_size}")

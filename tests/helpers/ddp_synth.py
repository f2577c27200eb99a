"""Run under torchrun: trains a tiny pix2pix with DDP and saves this rank's final networks to OUT/rank<r>.pt."""

import os
import sys
from pathlib import Path

import torch

from versaseg.tasks.synthesis import train_synthesis
from versaseg.training.config import SynthConfig

if __name__ == "__main__":
    dataset, out = Path(sys.argv[1]), Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    config = SynthConfig(source="T1", target="TOF", epochs=2, iterations_per_epoch=3, batch_size=2, seed=3,
                         sample_every=0, network_kwargs={"depth": 3, "base_width": 4}, disc_channels=4)
    trainer = train_synthesis(config, dataset, out / "run", device="cpu", show_progress=False)
    torch.save({name: net.state_dict() for name, net in trainer.networks.items()}, out / f"rank{rank}.pt")
    print(f"rank {rank} world {trainer.dist.world_size}")

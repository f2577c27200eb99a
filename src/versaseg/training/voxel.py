"""A per-voxel classifier: a small MLP on feature vectors, trained in seconds on a CPU.

Where a task has a few hundred thousand labelled voxels of one case (label completion) a convolutional network
trained from scratch needs minutes; a multilayer perceptron on precomputed multi-scale features
(:mod:`versaseg.data.voxel_features`) plus task-specific channels learns the same image evidence in a few seconds and
predicts a whole volume in one or two. Feature vectors are rows: ``(N, F)``.
"""

from __future__ import annotations

import numpy as np
import torch


def voxel_mlp(num_features: int, num_classes: int, hidden: int = 128, layers: int = 2) -> torch.nn.Module:
    """``(N, F) -> (N, K)`` logits: ``layers`` hidden layers of width ``hidden`` with ReLU."""
    blocks: list[torch.nn.Module] = []
    width = num_features
    for _ in range(layers):
        blocks += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    blocks.append(torch.nn.Linear(width, num_classes))
    return torch.nn.Sequential(*blocks)


def fit_voxels(network: torch.nn.Module, features: np.ndarray, labels: np.ndarray, epochs: int = 12,
               batch_size: int = 4096, learning_rate: float = 3e-3, seed: int = 0,
               device: torch.device | str = "cpu") -> torch.nn.Module:
    """Train ``network`` with cross-entropy on rows ``features`` (N, F) float32 and ``labels`` (N,) class indices.

    AdamW with a one-cycle learning-rate schedule; ``epochs`` passes over the rows in shuffled batches (the last
    partial batch of each pass is dropped, one batch at least). Deterministic for a given seed on the CPU.
    """
    if len(labels) == 0:
        raise ValueError("no labelled voxels to train on")
    device = torch.device(device)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    network = network.to(device).train()
    batch_size = min(batch_size, len(y))
    per_epoch = max(1, len(y) // batch_size)
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=epochs * per_epoch)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator).to(device)
        for b in range(per_epoch):
            rows = order[b * batch_size:(b + 1) * batch_size]
            loss = torch.nn.functional.cross_entropy(network(x[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return network.eval()


@torch.no_grad()
def predict_voxels(network: torch.nn.Module, features: np.ndarray, chunk: int = 262_144,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """Class probabilities of every voxel. features: (F, *spatial) float32 -> (K, *spatial) float32."""
    device = torch.device(device)
    network = network.to(device).eval()
    rows = features.reshape(features.shape[0], -1)
    out = []
    for start in range(0, rows.shape[1], chunk):
        block = torch.from_numpy(np.ascontiguousarray(rows[:, start:start + chunk].T)).to(device)
        out.append(torch.softmax(network(block), dim=1).T.cpu())
    return torch.cat(out, dim=1).reshape(-1, *features.shape[1:]).numpy()

"""Mini-batch sampling and step-size schedules (``docs/maths.md`` section 5)."""

from __future__ import annotations

import math

import torch


class EpochSampler:
    """Uniform mini-batches without replacement inside shuffled epochs.

    Each epoch is a fresh permutation drawn from the generator; batches are
    consecutive slices of it. A batch never straddles two epochs (the last,
    shorter one is dropped only when ``drop_last``), so every image is used
    once per epoch.

    Parameters
    ----------
    n_images : int
    batch_size : int
        1 <= batch_size <= n_images.
    seed : int
        Seed of the private generator (reproducible order).
    device : torch.device
        Where the index tensors live.
    """

    def __init__(self, n_images, batch_size, seed, device="cpu", drop_last=True):
        if not 1 <= int(batch_size) <= int(n_images):
            raise ValueError(
                f"batch_size must be in [1, n_train={n_images}], got {batch_size!r}"
            )
        self.n_images = int(n_images)
        self.batch_size = int(batch_size)
        self.drop_last = drop_last
        self.device = device
        self._gen = torch.Generator().manual_seed(int(seed))
        self._perm = None
        self._pos = 0
        self.epoch = 0

    def next(self):
        """Indices (int64 tensor) of the next mini-batch."""
        remaining = 0 if self._perm is None else self.n_images - self._pos
        if remaining == 0 or (self.drop_last and remaining < self.batch_size):
            self._perm = torch.randperm(self.n_images, generator=self._gen)
            self._pos = 0
            self.epoch += 1
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += idx.numel()
        return idx.to(self.device)


def decay(k, value0, power, kind="poly"):
    """Schedule value0 / (k+1)^power (``poly``) or value0 / log(k+e)^power (``log``).

    ``power = 0`` gives a constant. Used for ISGD's step alpha_k and accuracy
    eps_k (paper 1: polynomial; paper 2, arXiv 2511.06774: also logarithmic).
    """
    if kind == "poly":
        return value0 / (k + 1) ** power
    if kind == "log":
        return value0 / math.log(k + math.e) ** power
    raise ValueError(f"schedule kind must be 'poly' or 'log', got {kind!r}")

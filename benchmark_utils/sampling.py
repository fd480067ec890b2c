"""Mini-batch sampling and step-size schedules (``docs/maths.md`` section 5)."""

from __future__ import annotations

import math

import torch


class EpochSampler:
    """Uniform mini-batches without replacement inside shuffled epochs.

    Each epoch is a fresh permutation drawn from a private generator seeded
    with ``seed``; batches are consecutive slices of it, and a last slice
    shorter than ``batch_size`` is dropped, so a batch never straddles two
    epochs. ``1 <= batch_size <= n_images``.
    """

    def __init__(self, n_images, batch_size, seed, device="cpu"):
        if not 1 <= int(batch_size) <= int(n_images):
            raise ValueError(
                f"batch_size must be in [1, n_train={n_images}], got {batch_size!r}"
            )
        self.n_images = int(n_images)
        self.batch_size = int(batch_size)
        self.device = device
        self._gen = torch.Generator().manual_seed(int(seed))
        self._perm = None
        self._pos = 0

    def next(self):
        """Indices (int64 tensor) of the next mini-batch."""
        remaining = 0 if self._perm is None else self.n_images - self._pos
        if remaining < self.batch_size:
            self._perm = torch.randperm(self.n_images, generator=self._gen)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += idx.numel()
        return idx.to(self.device)


def decay(k, value0, power, kind="poly"):
    """value0 / (k+1)^power (``poly``) or value0 / log(k+e)^power (``log``), (5.2)."""
    if kind == "poly":
        return value0 / (k + 1) ** power
    if kind == "log":
        return value0 / math.log(k + math.e) ** power
    raise ValueError(f"schedule kind must be 'poly' or 'log', got {kind!r}")

"""Per-image warm-start memory (``docs/maths.md`` sections 4 and 5).

Every image has its own lower-level problem, so every method keeps, per
image, the last lower-level iterate x_i and the last adjoint/linear-system
iterate q_i (v_i for the doubly-stochastic methods): 2 n C H W numbers, the
solver's part of what a run keeps per image (the data, the measurements and
the evaluation's warm starts are the rest: docs/memory.md).
"""

from __future__ import annotations

import torch


class ImageMemory:
    """Warm starts x_i and q_i for every image of a set.

    Parameters
    ----------
    oracles : CountedOracles
        The image set; x_i starts at A^T y_i, q_i at zero.
    """

    def __init__(self, oracles):
        all_idx = torch.arange(oracles.n_images, device=oracles.device)
        self.x = oracles.initial_x(all_idx)
        self._q = None

    @property
    def q(self):
        """Adjoint warm starts, allocated on first use (zeros)."""
        if self._q is None:
            self._q = torch.zeros_like(self.x)
        return self._q

    def get_x(self, idx):
        return self.x[idx]  # advanced indexing copies

    def get_q(self, idx):
        return self.q[idx]

    def set_x(self, idx, x):
        self.x[idx] = x.detach()

    def set_q(self, idx, q):
        self.q[idx] = q.detach()

    def tensors(self):
        """The tensors held: x, and q once allocated (reading never allocates)."""
        return [self.x] if self._q is None else [self.x, self._q]

    def nbytes(self):
        """Memory held, in bytes."""
        return sum(t.numel() * t.element_size() for t in self.tensors())

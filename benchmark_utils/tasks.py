"""A task's data: images, operators and frozen measurements (``docs/data.md``).

Shared by the files in ``datasets/``: :func:`build_task_data` cuts the
training patches and the whole validation and test images from disjoint
source images (:func:`benchmark_utils.splits.make_splits`), builds one
forward operator per set (its image shape; inpainting: one mask per image)
and draws each set's noise once from the seed. Each parameter is validated
once, by the function that uses it; messages start with the dataset's name.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from benchopt import BaseDataset
from benchopt.config import get_data_path

from . import REQUIREMENTS
from .forward import NOISE_SIGMA_MAX, ForwardOperator, make_forward
from .images import DEEPINV_SOURCES
from .splits import SETS, make_splits
from .validation import check_real

#: largest ``noise_level`` (0-255 scale): a noise deviation of the pixel range
NOISE_LEVEL_MAX = 255.0 * NOISE_SIGMA_MAX

#: image parameters of every task and their defaults (benchopt ``parameters``
#: lists); a dataset file adds its noise and operator ones (``docs/data.md``)
IMAGE_PARAMETERS = {
    "source": ["skimage"],
    "folder": [None],
    "download": [False],
    "n_train": [32],
    "n_val": [2],
    "n_test": [3],
    "patch_size": [32],
    "image_size": [128],
    "grayscale": [True],
}
#: the small data of ``benchopt test``
TEST_PARAMETERS = {
    "n_train": [4],
    "n_val": [1],
    "n_test": [1],
    "patch_size": [16],
    "image_size": [32],
}
#: dataset parameters that configure the operator rather than the images
PHYSICS_PARAMETERS = ("kernel_size", "blur_sigma", "mask_ratio")


@dataclass
class ImageSet:
    """One set: clean images ``x``, measurements ``y`` (n, C, H, W, float32)
    and its :class:`~benchmark_utils.forward.ForwardOperator`; ``names`` are
    its source images."""

    x: torch.Tensor
    y: torch.Tensor
    forward: ForwardOperator
    names: tuple = ()

    def to(self, device):
        """The set on ``device``."""
        return ImageSet(
            self.x.to(device), self.y.to(device), self.forward.to(device), self.names
        )


def build_task_data(
    task, *, noise_level, seed, source, folder, download, grayscale, **params
):
    """Data dict of one task for ``Objective.set_data``.

    ``params`` holds the image parameters (:data:`IMAGE_PARAMETERS`: numbers
    of training patches and of validation and test images, ``patch_size``,
    ``image_size``) and the operator's (:data:`PHYSICS_PARAMETERS`);
    ``noise_level`` is on the 0-255 scale. Returns ``{"train", "val", "test"}``
    :class:`ImageSet` and ``task``. Operator masks and noise are drawn from
    six words of ``numpy.random.SeedSequence(seed)``.
    """
    noise_level = check_real(noise_level, "noise_level", 0, NOISE_LEVEL_MAX, owner=task)
    physics = {k: params.pop(k) for k in PHYSICS_PARAMETERS if k in params}
    splits = make_splits(
        source,
        folder=folder,
        data_path=get_data_path(source) if source in DEEPINV_SOURCES else None,
        download=download,
        grayscale=grayscale,
        seed=seed,
        owner=task,
        **params,
    )
    _report_flatness(task, source, splits)
    words = np.random.SeedSequence(seed).generate_state(2 * len(SETS))
    data = {"task": task}
    for k, (name, x) in enumerate(
        zip(SETS, (splits.x_train, splits.x_val, splits.x_test), strict=True)
    ):
        forward = make_forward(
            task,
            image_shape=tuple(x.shape[1:]),
            n_images=x.shape[0],
            noise_sigma=noise_level / 255.0,
            seed=int(words[k]),
            dtype=x.dtype,
            owner=task,
            **physics,
        )
        y = forward.measure(x, seed=int(words[len(SETS) + k]))
        data[name] = ImageSet(x, y, forward, tuple(splits.names[name]))
    return data


def _report_flatness(task, source, splits):
    """Say what the sets are made of for a user's images; warn when the
    validation or test images are not comparable with the training ones."""
    pct = {s: f"{100 * splits.flat[s]:.1f} %" for s in SETS}
    text = (
        f"{task} data from {source}: near-flat 32x32 windows in training "
        f"{pct['train']}, validation {pct['val']}, test {pct['test']}"
    )
    if not splits.comparable():
        warnings.warn(
            f"{text}: the validation or test images hold more than twice the "
            "training images' share (docs/data.md, 'Comparable splits')",
            UserWarning,
            stacklevel=3,
        )
    elif source != "skimage":
        print(text)


class TaskDataset(BaseDataset):
    """Base of the files in ``datasets/``: one task, its parameters, no code.

    The data seed is the same for every repetition: patches, masks and noise
    are frozen (``docs/maths.md`` section 1).
    """

    requirements = REQUIREMENTS

    def get_data(self):
        """The task's data dict; a bad parameter is returned, not raised.

        benchopt 1.10 calls ``get_data`` outside its per-cell error handling,
        so the error travels as ``setup_error`` to ``Objective.set_data``,
        which raises it in each of this dataset's cells.
        """
        try:
            return build_task_data(
                self.name,
                seed=self.get_seed(use_repetition=False),
                **{key: getattr(self, key) for key in self.parameters},
            )
        except (ValueError, TypeError, OSError) as err:
            data = dict.fromkeys(SETS)
            return dict(data, task=self.name, setup_error=err)

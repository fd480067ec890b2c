"""Build a task's data: clean patches, operator, frozen measurements.

Shared by the files in ``datasets/`` (``docs/maths.md`` section 1;
``docs/data.md``): training, validation and test patches come from three
disjoint sets of source images; the noise is drawn once from the seed and
frozen; validation and test measurements use independent noise draws. Each
dataset parameter is validated once, by the function that uses it:
``noise_level`` here, the image parameters in
:func:`benchmark_utils.images.make_splits`, the operator parameters in
:func:`benchmark_utils.forward.make_forward`; every message starts with the
dataset's name.
"""

from __future__ import annotations

from benchopt import BaseDataset
from benchopt.config import get_data_path

from . import REQUIREMENTS
from .forward import NOISE_SIGMA_MAX, make_forward
from .images import DEEPINV_SOURCES, make_splits
from .validation import check_real

#: Largest ``noise_level`` (0-255 scale): a noise standard deviation of at
#: most the pixel range.
NOISE_LEVEL_MAX = 255.0 * NOISE_SIGMA_MAX

#: image parameters shared by every task, with their defaults (benchopt
#: ``parameters`` lists); a dataset file adds its noise and operator ones
IMAGE_PARAMETERS = {
    "source": ["skimage"],
    "folder": [None],
    "download": [False],
    "n_train": [16],
    "n_val": [4],
    "n_test": [8],
    "patch_size": [32],
    "grayscale": [True],
}
#: the small data of ``benchopt test``
TEST_PARAMETERS = {"n_train": [4], "n_val": [2], "n_test": [2], "patch_size": [16]}

#: dataset parameters that configure the operator rather than the images
PHYSICS_PARAMETERS = ("kernel_size", "blur_sigma", "mask_ratio")


def build_task_data(
    task,
    *,
    source,
    folder,
    download,
    n_train,
    n_val,
    n_test,
    patch_size,
    grayscale,
    noise_level,
    seed,
    **physics,
):
    """Data dict for ``Objective.set_data`` of one task.

    Parameters
    ----------
    task : str
        ``"denoising"``, ``"deblurring"`` or ``"inpainting"``.
    source, folder, download : str, str or None, bool
        Image source (see :func:`benchmark_utils.images.load_images`); real
        data sets are stored under benchopt's ``get_data_path(source)``.
    n_train, n_val, n_test, patch_size : int
        Number of training, validation and test patches and their side.
    grayscale : bool
        One channel or three.
    noise_level : float
        Noise standard deviation on the 0-255 scale, in
        ``[0, NOISE_LEVEL_MAX]`` (sigma = noise_level / 255).
    seed : int
        Seed of patches, operator (e.g. inpainting mask) and noise.
    **physics
        ``kernel_size``, ``blur_sigma`` or ``mask_ratio``.

    Returns
    -------
    data : dict
        ``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``,
        ``y_test`` (float32 tensors ``(n, C, p, p)``; measurement noise
        seeds ``seed + 1``, ``seed + 3``, ``seed + 2``), ``forward`` (the
        :class:`~benchmark_utils.forward.ForwardOperator`) and ``task``.
    """
    noise_level = check_real(noise_level, "noise_level", 0, NOISE_LEVEL_MAX, owner=task)
    x_train, x_val, x_test = make_splits(
        source,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        patch_size=patch_size,
        grayscale=grayscale,
        seed=seed,
        folder=folder,
        data_path=get_data_path(source) if source in DEEPINV_SOURCES else None,
        download=download,
        owner=task,
    )
    forward = make_forward(
        task,
        image_shape=tuple(x_train.shape[1:]),
        noise_sigma=noise_level / 255.0,
        seed=seed,
        dtype=x_train.dtype,
        owner=task,
        **physics,
    )
    y_train = forward.measure(x_train, seed=seed + 1)
    y_test = forward.measure(x_test, seed=seed + 2)
    y_val = forward.measure(x_val, seed=seed + 3)
    return dict(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        forward=forward,
        task=task,
    )


class TaskDataset(BaseDataset):
    """Base of the files in ``datasets/``: one task, its parameters, no code.

    A subclass sets ``name`` (the task), ``parameters`` and
    ``test_parameters``; the data seed is the same for every repetition, so
    the noise and patches are frozen (``docs/maths.md`` section 1).
    """

    requirements = REQUIREMENTS

    def get_data(self):
        """The task's data dict; a bad parameter is returned, not raised.

        benchopt 1.10 calls ``get_data`` while it enumerates the cells,
        outside its per-cell error handling, so raising here would end the
        whole run (exit 1, no result file) although the other datasets'
        cells are fine. The error travels as ``setup_error`` to
        ``Objective.set_data``, which raises it in each of this dataset's
        cells, before any cost is spent.
        """
        try:
            return self._build()
        except (ValueError, TypeError, OSError) as err:
            keys = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
            data = dict.fromkeys((*keys, "forward"))
            return dict(data, task=self.name, setup_error=err)

    def _build(self):
        physics = {
            key: getattr(self, key)
            for key in PHYSICS_PARAMETERS
            if key in self.parameters
        }
        return build_task_data(
            self.name,
            source=self.source,
            folder=self.folder,
            download=self.download,
            n_train=self.n_train,
            n_val=self.n_val,
            n_test=self.n_test,
            patch_size=self.patch_size,
            grayscale=self.grayscale,
            noise_level=self.noise_level,
            seed=self.get_seed(use_repetition=False),
            **physics,
        )

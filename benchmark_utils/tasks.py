"""Build a task's data: clean patches, operator, frozen measurements.

Shared by the files in ``datasets/`` (``ALGORITHMS.md`` section 1): train and
test patches come from different source images; the noise is drawn once from
the seed and frozen; test measurements use an independent noise draw.
"""

from __future__ import annotations

from benchopt import BaseDataset
from benchopt.config import get_data_path

from .forward import make_forward
from .images import SOURCES, make_train_test
from .validation import check_bool, check_choice, check_real


def build_task_data(
    task,
    *,
    source,
    folder,
    download,
    n_train,
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
    n_train, n_test, patch_size : int
        Number of training and test patches and their side.
    grayscale : bool
        One channel or three.
    noise_level : float
        Noise standard deviation on the 0-255 scale (sigma = noise_level/255).
    seed : int
        Seed of patches, operator (e.g. inpainting mask) and noise.
    **physics
        ``kernel_size``, ``blur_sigma`` or ``mask_ratio``.
    """
    owner = task
    check_choice(source, "source", SOURCES, owner)
    if folder is not None and source != "folder":
        raise ValueError(
            f"{owner}: parameter folder={folder!r} is only used with "
            f"source='folder' (got source={source!r})"
        )
    check_bool(download, "download", owner)
    check_bool(grayscale, "grayscale", owner)
    noise_level = check_real(noise_level, "noise_level", low=0, owner=owner)
    data_path = None
    if source not in ("skimage", "folder"):
        data_path = get_data_path(source)
    x_train, x_test = make_train_test(
        source,
        n_train=n_train,
        n_test=n_test,
        patch_size=patch_size,
        grayscale=grayscale,
        seed=seed,
        folder=folder,
        data_path=data_path,
        download=download,
    )
    forward = make_forward(
        task,
        image_shape=tuple(x_train.shape[1:]),
        noise_sigma=noise_level / 255.0,
        seed=seed,
        dtype=x_train.dtype,
        **physics,
    )
    y_train = forward.measure(x_train, seed=seed + 1)
    y_test = forward.measure(x_test, seed=seed + 2)
    return dict(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        forward=forward,
        task=task,
    )


#: dataset parameters that configure the operator rather than the images
PHYSICS_PARAMETERS = ("kernel_size", "blur_sigma", "mask_ratio")


class TaskDataset(BaseDataset):
    """Base of the files in ``datasets/``: one task, its parameters, no code.

    A subclass sets ``name`` (the task), ``parameters`` and
    ``test_parameters``; the data seed is the same for every repetition, so
    the noise and patches are frozen (ALGORITHMS.md section 1).
    """

    requirements = [
        "pip::torch==2.14.1",
        "pip::torchvision==0.29.1",
        "pip::deepinv==0.5.0",
        "pip::scikit-image==0.26.0",
        "pip::pillow==13.0.0",
    ]

    def get_data(self):
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
            n_test=self.n_test,
            patch_size=self.patch_size,
            grayscale=self.grayscale,
            noise_level=self.noise_level,
            seed=self.get_seed(use_repetition=False),
            **physics,
        )

"""Gaussian denoising of natural-image patches (``docs/maths.md`` section 1).

A = I and y_i = x_i + sigma * noise_i, sigma = noise_level / 255, the noise
drawn once from the seed and frozen. The default source is the natural
images shipped inside scikit-image (no download); ``source`` can also be
``kodak24``, ``bsds500``, ``cbsd68`` (downloaded only with ``download=True``,
stored under benchopt's data path) or ``folder`` (any folder of PNG/JPEG
files, given by ``folder``).
"""

from benchmark_utils.tasks import TaskDataset


class Dataset(TaskDataset):
    name = "denoising"
    parameters = {
        "source": ["skimage"],
        "folder": [None],
        "download": [False],
        "n_train": [16],
        "n_test": [8],
        "patch_size": [32],
        "grayscale": [True],
        "noise_level": [25.0],
    }
    test_parameters = {"n_train": [4], "n_test": [2], "patch_size": [16]}

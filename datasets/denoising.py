"""Gaussian denoising of natural-image patches (``ALGORITHMS.md`` section 1).

A = I and y_i = x_i + sigma * noise_i, sigma = noise_level / 255, the noise
drawn once from the seed and frozen. The default source is the natural
images shipped inside scikit-image (no download); ``source`` can also be
``kodak24``, ``bsds500``, ``cbsd68`` (downloaded only with ``download=True``,
stored under benchopt's data path) or ``folder`` (any folder of PNG/JPEG
files, given by ``folder``).
"""

from benchopt import BaseDataset

from benchmark_utils.tasks import build_task_data


class Dataset(BaseDataset):
    name = "denoising"
    requirements = []
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

    def get_data(self):
        return build_task_data(
            "denoising",
            source=self.source,
            folder=self.folder,
            download=self.download,
            n_train=self.n_train,
            n_test=self.n_test,
            patch_size=self.patch_size,
            grayscale=self.grayscale,
            noise_level=self.noise_level,
            seed=self.get_seed(use_repetition=False),
        )

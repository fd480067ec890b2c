"""Gaussian denoising of natural-image patches (``docs/maths.md`` section 1).

A = I and y_i = x_i + sigma * noise_i, sigma = noise_level / 255, the noise
drawn once from the seed and frozen. The default source is the natural
images shipped inside scikit-image (no download); ``source`` can also be
``kodak24``, ``bsds500``, ``cbsd68`` (downloaded only with ``download=True``,
stored under benchopt's data path) or ``folder`` (any folder of PNG/JPEG
files, given by ``folder``).
"""

from benchmark_utils.tasks import IMAGE_PARAMETERS, TEST_PARAMETERS, TaskDataset


class Dataset(TaskDataset):
    name = "denoising"
    parameters = {
        **IMAGE_PARAMETERS,
        "noise_level": [25.0],
    }
    test_parameters = {**TEST_PARAMETERS}

"""Gaussian denoising: A = I, y = x + sigma n, sigma = noise_level / 255
(``docs/maths.md`` (1.1), ``docs/data.md``)."""

from benchmark_utils.tasks import IMAGE_PARAMETERS, TEST_PARAMETERS, TaskDataset


class Dataset(TaskDataset):
    name = "denoising"
    parameters = {
        **IMAGE_PARAMETERS,
        "noise_level": [25.0],
    }
    test_parameters = {**TEST_PARAMETERS}

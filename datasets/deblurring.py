"""Gaussian deblurring: A = circular convolution with a ``kernel_size`` Gaussian
of standard deviation ``blur_sigma``, y = A x + sigma n (``docs/data.md``).

A^T A is nearly singular: the lower level relies on the objective's mu > 0.
"""

from benchmark_utils.tasks import IMAGE_PARAMETERS, TEST_PARAMETERS, TaskDataset


class Dataset(TaskDataset):
    name = "deblurring"
    parameters = {
        **IMAGE_PARAMETERS,
        "noise_level": [1.0],
        "kernel_size": [9],
        "blur_sigma": [1.5],
    }
    test_parameters = {**TEST_PARAMETERS}

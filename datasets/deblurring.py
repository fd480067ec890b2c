"""Gaussian deblurring of natural-image patches (``docs/maths.md`` section 1).

A is a circular convolution with a normalised ``kernel_size`` x
``kernel_size`` Gaussian kernel of standard deviation ``blur_sigma``
(``deepinv.physics.BlurFFT``), y_i = A x_i + sigma * noise_i with
sigma = noise_level / 255, the noise frozen from the seed. A^T A is nearly
singular, so the lower level relies on the objective's mu > 0. Sources as in
the denoising dataset.
"""

from benchmark_utils.tasks import IMAGE_PARAMETERS, TEST_PARAMETERS, TaskDataset


class Dataset(TaskDataset):
    name = "deblurring"
    parameters = {
        **IMAGE_PARAMETERS,
        "noise_level": [5.0],
        "kernel_size": [9],
        "blur_sigma": [1.5],
    }
    test_parameters = {**TEST_PARAMETERS}

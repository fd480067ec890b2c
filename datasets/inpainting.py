"""Noisy inpainting: A_i = diag(mask_i), each image's mask removing a fraction
``mask_ratio`` of its pixels, y_i = A_i x_i + sigma n_i (``docs/data.md``).

A^T A is singular: the lower level relies on the objective's mu > 0. The task
of the second ISGD paper (Salehi et al., arXiv 2511.06774).
"""

from benchmark_utils.tasks import IMAGE_PARAMETERS, TEST_PARAMETERS, TaskDataset


class Dataset(TaskDataset):
    name = "inpainting"
    parameters = {
        **IMAGE_PARAMETERS,
        "noise_level": [10.0],
        "mask_ratio": [0.3],
    }
    test_parameters = {**TEST_PARAMETERS}

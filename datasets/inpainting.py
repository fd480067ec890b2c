"""Noisy inpainting of natural-image patches (``docs/maths.md`` section 1).

A = diag(mask) (``deepinv.physics.Inpainting``): a random pixel mask, drawn
once from the seed and shared by every image, removes a fraction
``mask_ratio`` of the pixels (in all channels), and y_i = A x_i + sigma *
noise_i with sigma = noise_level / 255, the noise frozen from the seed. A^T A
is singular (lambda_min = 0), so the lower level is strongly convex only
through the objective's mu > 0, which the objective checks. The task of the
second ISGD paper (Salehi et al., arXiv 2511.06774). Sources as in the
denoising dataset.
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

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

from benchmark_utils.tasks import TaskDataset


class Dataset(TaskDataset):
    name = "inpainting"
    parameters = {
        "source": ["skimage"],
        "folder": [None],
        "download": [False],
        "n_train": [16],
        "n_test": [8],
        "patch_size": [32],
        "grayscale": [True],
        "noise_level": [10.0],
        "mask_ratio": [0.3],
    }
    test_parameters = {"n_train": [4], "n_test": [2], "patch_size": [16]}

"""Forward operators (benchmark_utils.forward): adjoints, spectra, noise."""

import numpy as np
import pytest
import torch

from benchmark_utils.forward import TASKS, gaussian_kernel, make_forward

F64 = torch.float64


def _op(task, shape, **kwargs):
    kwargs = {"kernel_size": 5, "blur_sigma": 1.0, "dtype": F64, **kwargs}
    return make_forward(task, image_shape=shape, **kwargs)


def _dense(op):
    """Dense matrix of A on a tiny image, built column by column."""
    c, h, w = op.image_shape
    d = c * h * w
    basis = torch.eye(d, dtype=F64).reshape(d, c, h, w)
    return op.A(basis).reshape(d, d).T


@pytest.mark.parametrize("n_channels", [1, 3])
@pytest.mark.parametrize("task", TASKS)
def test_adjoint(task, n_channels):
    shape = (n_channels, 12, 10)
    op = _op(task, shape)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, *shape, generator=gen, dtype=F64)
    y = torch.randn(2, *shape, generator=gen, dtype=F64)
    lhs = (op.A(x) * y).sum()
    rhs = (x * op.A_adjoint(y)).sum()
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    torch.testing.assert_close(op.AtA(x), op.A_adjoint(op.A(x)), rtol=0, atol=1e-12)
    assert op.A(x).shape == x.shape and op.A(x).dtype == F64
    assert op.name == task


@pytest.mark.parametrize(
    "task, kwargs",
    [
        ("denoising", {}),
        ("deblurring", {"kernel_size": 5, "blur_sigma": 1.0}),
        ("deblurring", {"kernel_size": 3, "blur_sigma": 0.5}),
        ("deblurring", {"kernel_size": 1}),
        ("inpainting", {"mask_ratio": 0.5}),
        ("inpainting", {"mask_ratio": 0.0}),
    ],
)
def test_spectrum_matches_dense_matrix(task, kwargs):
    op = _op(task, (1, 8, 8), **kwargs)
    mat = _dense(op)
    eig = torch.linalg.eigvalsh(mat.T @ mat)
    assert op.norm_sq == pytest.approx(eig.max().item(), abs=1e-12)
    assert op.lambda_min == pytest.approx(eig.min().item(), abs=1e-12)


def test_deblurring_is_circular_convolution():
    op = _op("deblurring", (2, 9, 11), kernel_size=5, blur_sigma=1.3)
    kernel = gaussian_kernel(5, 1.3)
    assert kernel.sum().item() == pytest.approx(1.0, abs=1e-15)
    torch.testing.assert_close(kernel, kernel.T)
    torch.testing.assert_close(op.kernel, kernel)
    ratio = kernel[2, 3] / kernel[2, 2]
    assert ratio.item() == pytest.approx(np.exp(-1 / (2 * 1.3**2)))
    x = torch.randn(3, 2, 9, 11, generator=torch.Generator().manual_seed(1), dtype=F64)
    expected = torch.zeros_like(x)
    for i in range(5):
        for j in range(5):
            expected += kernel[i, j] * torch.roll(x, (i - 2, j - 2), dims=(-2, -1))
    torch.testing.assert_close(op.A(x), expected, rtol=0, atol=1e-12)
    assert 0 < op.lambda_min < op.norm_sq == pytest.approx(1.0)


def test_inpainting_mask():
    op = _op("inpainting", (3, 10, 10), mask_ratio=0.3, seed=4)
    ones = torch.ones(1, 3, 10, 10, dtype=F64)
    kept = op.A(ones)[0]
    assert torch.equal(kept[0], kept[1]) and torch.equal(kept[0], kept[2])
    assert int((kept[0] == 0).sum()) == 30  # mask_ratio = fraction removed
    torch.testing.assert_close(kept[0], op.mask)
    same = _op("inpainting", (3, 10, 10), mask_ratio=0.3, seed=4)
    other = _op("inpainting", (3, 10, 10), mask_ratio=0.3, seed=5)
    assert torch.equal(same.mask, op.mask) and not torch.equal(other.mask, op.mask)
    assert op.lambda_min == 0.0 and op.norm_sq == 1.0
    assert _op("inpainting", (1, 4, 4), mask_ratio=0.0).lambda_min == 1.0


def test_denoising_is_identity():
    op = _op("denoising", (3, 5, 4))
    x = torch.rand(2, 3, 5, 4, dtype=F64)
    assert torch.equal(op.A(x), x) and torch.equal(op.A_adjoint(x), x)
    assert op.norm_sq == 1.0 and op.lambda_min == 1.0


@pytest.mark.parametrize("task", TASKS)
def test_measure(task):
    sigma = 0.1
    op = _op(task, (3, 64, 64), noise_sigma=sigma, mask_ratio=0.4)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch_state = torch.get_rng_state()
    y1, y2, y3 = op.measure(x, seed=7), op.measure(x, seed=7), op.measure(x, seed=8)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    noise = y1 - op.A(x)
    assert abs(noise.std().item() - sigma) < 0.03 * sigma
    assert abs(noise.mean().item()) < 0.03 * sigma
    # float32 copy: same noise up to rounding
    op32 = op.to(dtype=torch.float32)
    assert op.dtype == F64 and op32.dtype == torch.float32
    y32 = op32.measure(x.float(), seed=7)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y1, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        op32.AtA(x.float()).double(), op.AtA(x), atol=1e-5, rtol=0
    )
    assert (op32.norm_sq, op32.lambda_min) == (op.norm_sq, op.lambda_min)
    noiseless = _op(task, (3, 64, 64), noise_sigma=0.0, mask_ratio=0.4)
    assert torch.equal(noiseless.measure(x, seed=0), op.A(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("task", TASKS)
def test_measure_cuda_matches_cpu(task):
    op = _op(task, (3, 16, 16), mask_ratio=0.4)
    x = torch.rand(2, 3, 16, 16, dtype=F64)
    op_gpu = op.to("cuda")
    y_gpu = op_gpu.measure(x.cuda(), seed=3)
    assert y_gpu.device.type == "cuda"
    torch.testing.assert_close(y_gpu.cpu(), op.measure(x, seed=3), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "superresolution"}, "task must be one of"),
        ({"noise_sigma": -0.1}, "noise_sigma"),
        ({"noise_sigma": float("nan")}, "noise_sigma"),
        ({"kernel_size": 4}, "kernel_size must be an odd"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": 3.0}, "kernel_size"),
        ({"kernel_size": 11}, r"kernel_size must be <= min\(H, W\)"),
        ({"blur_sigma": 0.0}, "blur_sigma"),
        ({"mask_ratio": 1.0}, r"mask_ratio must be in \[0, 1\)"),
        ({"mask_ratio": -0.1}, "mask_ratio"),
        ({"seed": -1}, "seed"),
        ({"image_shape": (8, 8)}, "image_shape"),
        ({"image_shape": (1, 0, 8)}, "image_shape"),
        ({"dtype": torch.int64}, "dtype"),
    ],
)
def test_bad_parameters(kwargs, match):
    args = {"task": "deblurring", "image_shape": (1, 8, 10), "kernel_size": 5}
    args.update(kwargs)
    task = args.pop("task")
    with pytest.raises(ValueError, match=match):
        make_forward(task, **args)


def test_bad_inputs():
    op = _op("deblurring", (1, 8, 8))
    with pytest.raises(ValueError, match="x must have shape"):
        op.A(torch.zeros(2, 1, 8, 9, dtype=F64))
    with pytest.raises(ValueError, match="y must be a tensor"):
        op.A_adjoint(torch.zeros(1, 8, 8, dtype=F64))
    with pytest.raises(ValueError, match="seed"):
        op.measure(torch.zeros(1, 1, 8, 8, dtype=F64), seed=-2)
    with pytest.raises(ValueError, match="dtype"):
        op.to(dtype=torch.int32)

"""Forward operators (benchmark_utils.forward): adjoints, spectra, noise, ranges."""

import re

import numpy as np
import pytest
import torch

from benchmark_utils.forward import (
    TASKS,
    blur_spectrum_sq,
    gaussian_kernel,
    make_forward,
)
from tests.bench_helpers import get_dataset

F64 = torch.float64


def _op(task, shape, **kwargs):
    kwargs = {
        "kernel_size": 5,
        "blur_sigma": 1.0,
        "dtype": F64,
        "n_images": 2,
        **kwargs,
    }
    return make_forward(task, image_shape=shape, **kwargs)


def _dense(op, image=0):
    """Dense matrix of A_image on a tiny image, built column by column."""
    c, h, w = op.image_shape
    d = c * h * w
    basis = torch.eye(d, dtype=F64).reshape(d, c, h, w)
    idx = torch.full((d,), image, dtype=torch.int64)
    return op.A(basis, idx).reshape(d, d).T


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
    # on a mini-batch of the set: the operators of those images
    idx = torch.tensor([1, 1, 0])
    xb = torch.cat([x[1:], x[1:], x[:1]])
    torch.testing.assert_close(
        op.A(xb, idx), torch.cat([op.A(x)[1:]] * 2 + [op.A(x)[:1]])
    )
    torch.testing.assert_close(op.AtA(xb, idx), op.A_adjoint(op.A(xb, idx), idx))
    assert op.name == task


@pytest.mark.parametrize(
    "task, kwargs",
    [
        ("denoising", {}),
        ("deblurring", {"kernel_size": 5, "blur_sigma": 1.0}),
        ("deblurring", {"kernel_size": 3, "blur_sigma": 0.5}),
        ("deblurring", {"kernel_size": 1, "blur_sigma": 0.5}),
        ("inpainting", {"mask_ratio": 0.5}),
        ("inpainting", {"mask_ratio": 0.0}),
    ],
)
def test_spectrum_matches_dense_matrix(task, kwargs):
    op = _op(task, (1, 8, 8), **kwargs)
    for image in (0, 1):
        mat = _dense(op, image)
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


def test_kernel_and_spectrum_agree_with_deepinv():
    """deepinv's kernel and BlurFFT.mask equal ours up to rounding (not bits)."""
    from deepinv.physics.functional import gaussian_blur

    for size, sigma in [(9, 1.5), (5, 1.0), (3, 0.5)]:
        ours = gaussian_kernel(size, sigma)
        theirs = gaussian_blur((size, size), sigma=(sigma, sigma), dtype=F64)[0, 0]
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-16)
        op = _op("deblurring", (1, 12, 10), kernel_size=size, blur_sigma=sigma)
        mask = op.physics.mask[0, 0, :, :, 0]
        spectrum = blur_spectrum_sq(ours, 12, 10)[:, :6]
        torch.testing.assert_close(mask**2, spectrum, rtol=0, atol=1e-15)


@pytest.mark.parametrize("task", TASKS)
def test_to(task):
    op32 = _op(task, (2, 8, 10), dtype=torch.float32, mask_ratio=0.3, n_images=3)
    assert op32.to() is op32 and op32.to("cpu", torch.float32) is op32
    op64 = _op(task, (2, 8, 10), dtype=F64, mask_ratio=0.3, n_images=3)
    up = op32.to(dtype=F64)
    assert op32.dtype == torch.float32 and up.dtype == F64
    # rebuilt from the float64 kernel / mask: the float64 operator, bit for bit
    x = torch.randn(3, 2, 8, 10, generator=torch.Generator().manual_seed(2), dtype=F64)
    assert torch.equal(up.A(x), op64.A(x)) and torch.equal(up.AtA(x), op64.AtA(x))
    assert (up.norm_sq, up.lambda_min) == (op64.norm_sq, op64.lambda_min)


def test_module_to_dtype_drops_blur_phase():
    """Why ForwardOperator.to rebuilds on a dtype change (see its docstring)."""
    op = _op("deblurring", (1, 8, 8), dtype=torch.float32)
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        cast = op.physics.to(dtype=F64)
    assert not cast.angle.is_complex()


def test_physics_noise_model():
    op = _op("inpainting", (1, 8, 8), noise_sigma=0.2)
    assert op.physics.noise_model.sigma.item() == pytest.approx(0.2)


def test_inpainting_masks():
    op = _op("inpainting", (3, 10, 10), mask_ratio=0.3, seed=4, n_images=4)
    kept = op.A(torch.ones(4, 3, 10, 10, dtype=F64))
    assert op.mask.shape == (4, 1, 10, 10)
    for i in range(4):  # one mask per image, the same in every channel
        assert torch.equal(kept[i, 0], kept[i, 1]) and torch.equal(
            kept[i, 0], kept[i, 2]
        )
        assert int((kept[i, 0] == 0).sum()) == 30  # mask_ratio = fraction removed
        torch.testing.assert_close(kept[i, 0], op.mask[i, 0])
    assert len({tuple(m.flatten().tolist()) for m in op.mask}) == 4
    same = _op("inpainting", (3, 10, 10), mask_ratio=0.3, seed=4, n_images=4)
    other = _op("inpainting", (3, 10, 10), mask_ratio=0.3, seed=5, n_images=4)
    assert torch.equal(same.mask, op.mask) and not torch.equal(other.mask, op.mask)
    with pytest.raises(ValueError, match="one mask per image of a set of 4"):
        op.A(torch.ones(2, 3, 10, 10, dtype=F64))
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
    assert op.device.type == "cpu" and op_gpu.device.type == "cuda"
    y_gpu = op_gpu.measure(x.cuda(), seed=3)
    assert y_gpu.device.type == "cuda"
    # the physics was moved, not rebuilt: the same coefficients on both
    for name, buf in op.physics.named_buffers():
        assert torch.equal(dict(op_gpu.physics.named_buffers())[name].cpu(), buf)
    torch.testing.assert_close(y_gpu.cpu(), op.measure(x, seed=3), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "task, kwargs, match",
    [
        ("superresolution", {}, "task=.*one of 'denoising'"),
        ("denoising", {"noise_sigma": -0.1}, "noise_sigma=.*>= 0 and <= 1"),
        ("denoising", {"noise_sigma": 1.5}, "noise_sigma=.*>= 0 and <= 1"),
        ("denoising", {"noise_sigma": float("nan")}, "noise_sigma"),
        ("deblurring", {"kernel_size": 4}, "kernel_size=4 .*an odd integer >= 1"),
        ("deblurring", {"kernel_size": 0}, "kernel_size=0"),
        ("deblurring", {"kernel_size": 3.5}, "kernel_size=3.5"),
        ("deblurring", {"kernel_size": 11}, r"<= min\(H, W\) = 8"),
        ("deblurring", {"blur_sigma": 0.0}, r"blur_sigma=0.0 .*> 0.1"),
        ("deblurring", {"blur_sigma": 0.1}, r"blur_sigma=0.1 .*> 0.1"),
        ("deblurring", {"blur_sigma": 2.6}, r"<= kernel_size / 2 = 2.5"),
        ("deblurring", {"blur_sigma": 1e6}, "blur_sigma=1000000.0"),
        ("inpainting", {"mask_ratio": 0.96}, r"mask_ratio=0.96 .*>= 0 and <= 0.95"),
        ("inpainting", {"mask_ratio": -0.1}, "mask_ratio"),
        ("inpainting", {"seed": -1}, "seed"),
        ("inpainting", {"seed": 1.5}, "seed"),
        ("denoising", {"image_shape": (8, 8)}, "image_shape"),
        ("denoising", {"image_shape": (1, 0, 8)}, "image_shape"),
        ("denoising", {"image_shape": "1x8x8"}, "image_shape"),
        ("denoising", {"dtype": torch.int64}, "dtype"),
    ],
)
def test_bad_parameters(task, kwargs, match):
    args = {"image_shape": (1, 8, 10), "kernel_size": 5, **kwargs}
    with pytest.raises(ValueError, match=match) as err:
        make_forward(task, owner="mytask", **args)
    assert str(err.value).startswith("mytask: parameter ")
    assert "\n" not in str(err.value)


def test_only_the_task_parameters_are_read():
    # denoising has no kernel: a kernel_size that deblurring refuses is unused
    op = make_forward("denoising", image_shape=(1, 8, 8), kernel_size=4)
    assert op.is_identity
    # the range of blur_sigma follows kernel_size; kernel_size 1 is A = I
    op = make_forward(
        "deblurring", image_shape=(1, 8, 8), kernel_size=1, blur_sigma=0.5
    )
    assert torch.equal(op.kernel, torch.ones(1, 1))


def test_mask_keeps_a_pixel():
    # 0.95 of 9 pixels rounds to 9: nothing would be measured
    with pytest.raises(ValueError, match="keeps at least one of the 9 pixels"):
        make_forward("inpainting", image_shape=(1, 3, 3), mask_ratio=0.95)
    op = make_forward("inpainting", image_shape=(1, 4, 4), mask_ratio=0.95)
    assert int(op.mask.sum()) == 1


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("denoising", {"noise_level": 1e6}, r"noise_level=1000000.0 .*<= 255"),
        ("denoising", {"noise_level": 256}, r"noise_level=256.0 .*<= 255"),
        ("deblurring", {"blur_sigma": 1e6}, r"blur_sigma=.*<= kernel_size / 2"),
        ("deblurring", {"kernel_size": 4}, "kernel_size=4 .*odd"),
        ("inpainting", {"mask_ratio": 0.99}, "mask_ratio=0.99"),
    ],
)
def test_dataset_ranges(name, params, match):
    """The datasets refuse nonsense with one line naming dataset and parameter."""
    small = {"n_train": 2, "n_test": 1, "patch_size": 16}
    # get_data returns the error (benchopt would end the whole run on a raise);
    # the objective raises it in each of the dataset's cells
    err = get_dataset(name, **small, **params).get_data()["setup_error"]
    assert isinstance(err, ValueError) and re.search(match, str(err))
    assert str(err).startswith(f"{name}: parameter ")
    assert "\n" not in str(err)


def test_dataset_range_ends_are_accepted():
    small = {"n_train": 2, "n_val": 1, "n_test": 1, "patch_size": 16, "image_size": 16}
    data = get_dataset("denoising", **small, noise_level=255.0).get_data()
    assert data["train"].forward.noise_sigma == 1.0
    data = get_dataset("deblurring", **small, kernel_size=3, blur_sigma=1.5).get_data()
    assert data["test"].forward.kernel.shape == (3, 3)


def test_bad_inputs():
    op = _op("deblurring", (1, 8, 8))
    with pytest.raises(ValueError, match="x must have shape"):
        op.A(torch.zeros(2, 1, 8, 9, dtype=F64))
    with pytest.raises(ValueError, match="y must be a tensor"):
        op.A_adjoint(torch.zeros(1, 8, 8, dtype=F64))
    with pytest.raises(ValueError, match="seed=-2"):
        op.measure(torch.zeros(1, 1, 8, 8, dtype=F64), seed=-2)
    with pytest.raises(ValueError, match="dtype"):
        op.to(dtype=torch.int32)

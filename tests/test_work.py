"""The work axis: analytic weights against counted passes, and the counters.

``benchmark_utils/work.py`` prices every oracle from each regulariser's
declared counts. Here the declared counts are checked against the FLOPs of
the convolutions and FFTs that the oracles really run (intercepted below the
Python API with a ``TorchDispatchMode``, so autograd's backward
convolutions are seen too), and the counters against hand counts.
"""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmark_utils import conv_backend
from benchmark_utils.forward import make_forward
from benchmark_utils.oracles import CountedOracles
from benchmark_utils.regularisers import make_regulariser
from benchmark_utils.work import fft_flops

aten = torch.ops.aten


def _conv_flops(out, inp, weight, transposed):
    """2 x multiply-adds of one convolution (``out``: its output)."""
    k = math.prod(weight.shape[2:])
    if transposed:  # weight (I, O, k, k): every input value meets O k^2 taps
        return 2.0 * inp.numel() * weight.shape[1] * k
    # weight (O, I, k, k): every output value sums I k^2 products
    return 2.0 * out.numel() * weight.shape[1] * k


class FlopCounter(TorchDispatchMode):
    """FLOPs of the convolutions and FFTs dispatched inside the block."""

    def __init__(self):
        super().__init__()
        self.flops = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if packet is aten.convolution:
            self.flops += _conv_flops(out, args[0], args[1], bool(args[6]))
        elif packet is aten._nnpack_spatial_convolution:
            self.flops += _conv_flops(out, args[0], args[1], False)
        elif packet is aten.convolution_backward:
            grad_out, inp, weight = args[0], args[1], args[2]
            transposed, mask = bool(args[7]), args[10]
            fwd = _conv_flops(grad_out, inp, weight, transposed)
            self.flops += fwd * sum(bool(m) for m in mask[:2])
        elif packet in (aten._fft_r2c, aten._fft_c2r):
            real = args[0] if packet is aten._fft_r2c else out
            c = real.numel() // (real.shape[-1] * real.shape[-2])
            self.flops += fft_flops(c, real.shape[-2], real.shape[-1])
        return out


CASES = [
    ("foe", {"n_filters": 6, "kernel_size": 5}, 1),
    ("foe", {"n_filters": 4, "kernel_size": 3}, 3),
    ("crr", {"n_filters": 8, "kernel_size": 3, "hidden": (4,)}, 1),
    ("icnn", {"n_filters": 6, "kernel_size": 3}, 1),
]


def _oracles(name, kwargs, channels, task="denoising", size=24):
    shape = (channels, size, size)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, *shape, generator=gen)
    fwd = make_forward(task, image_shape=shape, kernel_size=5, seed=0)
    reg = make_regulariser(name, channels, **kwargs)
    o = CountedOracles(reg, fwd, x, fwd.measure(x, seed=0), mu=1e-3)
    return o, o.init_theta(0), x


def _measured(fn):
    conv_backend.nnpack_usable()  # its one-time probe is not the oracle's work
    with FlopCounter() as counter:
        fn()
    return counter.flops


@pytest.mark.parametrize(("name", "kwargs", "channels"), CASES)
def test_declared_counts_match_the_convolutions_run(name, kwargs, channels):
    o, theta, x = _oracles(name, kwargs, channels)
    idx = torch.arange(2)
    declared = o._reg.work_flops(o.image_shape)
    per_image = {
        "grad": _measured(lambda: o.ll_grad(theta, x, idx)) / 2,
        "build": _measured(lambda: o.hessian(theta, x, idx)) / 2,
        "jvp": _measured(lambda: o.jvp(theta, x, x, idx)) / 2,
    }
    hess = o.hessian(theta, x, idx)
    per_image["hvp"] = _measured(lambda: hess(x)) / 2
    for key, flops in per_image.items():
        # the declared counts add pixelwise work (a few % here) to the
        # convolutions; the jvp's autograd adds a little more
        assert flops > 0
        assert flops <= declared[key] <= 1.25 * flops, (key, flops, declared[key])


def test_deblurring_prices_its_ffts():
    o, theta, x = _oracles("foe", {"n_filters": 4, "kernel_size": 3}, 1, "deblurring")
    idx = torch.arange(2)
    flops = _measured(lambda: o.ll_grad(theta, x, idx)) / 2
    reg = o._reg.work_flops(o.image_shape)["grad"]
    ata = fft_flops(1, 24, 24) * 2
    assert flops == pytest.approx(reg_convs(o) + ata, rel=0.1)
    den, _, _ = _oracles("foe", {"n_filters": 4, "kernel_size": 3}, 1)
    # the same hvp is relatively cheaper where A^T A costs two FFTs
    assert o.work_weights["hess_build"] < den.work_weights["hess_build"]
    assert reg > 0


def reg_convs(o):
    """Convolution FLOPs of one FoE gradient (2 passes of the filter bank):
    "valid" responses (n - k + 1)^2 and an adjoint over the n x n image;
    "mirror" responses n^2 and an adjoint over the extended (n + k - 1)^2."""
    k, n = o._reg.kernel_size, o.image_shape[-1]
    if o._reg.boundary == "valid":
        out, adj = n - k + 1, n
    else:
        out, adj = n, n + k - 1
    return 2.0 * o._reg.n_filters * o.image_shape[0] * k * k * (out * out + adj * adj)


def test_build_and_jvp_change_work_not_cost():
    o, theta, x = _oracles("foe", {"n_filters": 3, "kernel_size": 3}, 1)
    idx = torch.arange(2)
    hess = o.hessian(theta, x, idx)
    o.jvp(theta, x, x, idx)
    o.jvp(theta, x, x, idx, per_image=True)
    w = o.work_weights
    assert o.counters.cost == 0
    expected = 2 * (w["hess_build"] + w["jvp"] + w["jvp_per_image"])
    assert o.counters.work == pytest.approx(expected, rel=1e-12)
    hess(x)
    assert o.counters.cost == 2
    assert o.counters.work == pytest.approx(expected + 2 * w["hvp"], rel=1e-12)

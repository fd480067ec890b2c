"""The convolution backends (``benchmark_utils/conv_backend.py``, ``docs/speed.md``).

Every backend: agreement with ``F.conv2d`` / ``F.conv_transpose2d``, the
dot-product adjoint test, paddings 0 and S // 2, grey and colour; the rule
is deterministic; the fallback switches NNPACK off after a failure; the
regularisers' maths agrees across backends in float32 (NNPACK computes in
float32 only, so the float64 finite-difference tests of
``tests/test_regularisers.py`` and ``tests/test_engine.py`` run NNPACK-free
whatever is forced; ``test_float64_suites_with_each_backend_forced`` runs
them with each forced backend in a subprocess).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark_utils import conv_backend
from benchmark_utils.regularisers import make_regulariser
from benchmark_utils.regularisers.convolution import correlate, correlate_t

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["torch", "flip"] + (["nnpack"] if conv_backend.nnpack_usable() else [])


@pytest.fixture
def forced(request):
    previous = conv_backend.set_backend(request.param)
    yield request.param
    conv_backend.set_backend(previous)


def _data(channels, s, dtype, n_out=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    k = torch.randn(n_out, channels, s, s, generator=gen, dtype=dtype)
    x = torch.randn(3, channels, 17, 13, generator=gen, dtype=dtype)
    return k, x, gen


@pytest.mark.parametrize("forced", BACKENDS, indirect=True)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("s", [3, 7])
@pytest.mark.parametrize("pad", ["same", 0, "full"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backend_matches_reference_and_is_adjoint(forced, channels, s, pad, dtype):
    k, x, gen = _data(channels, s, dtype)
    p = {"same": s // 2, "full": s - 1}.get(pad, pad)
    u = correlate(x, k, padding=p)
    ref = F.conv2d(x, k, padding=p)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(u, ref, rtol=tol, atol=tol * float(ref.abs().max()))
    w = torch.randn(u.shape, generator=gen, dtype=dtype)
    xt = correlate_t(w, k, padding=p)
    ref_t = F.conv_transpose2d(w, k, padding=p)
    assert xt.shape == x.shape
    torch.testing.assert_close(xt, ref_t, rtol=tol, atol=tol * float(ref_t.abs().max()))
    lhs, rhs = float((u.double() * w.double()).sum()), float((x * xt).double().sum())
    assert abs(lhs - rhs) <= 10 * tol * (abs(lhs) + 1.0) * u.numel() ** 0.5


def test_default_padding_is_same():
    k, x, _ = _data(3, 5, torch.float32)
    assert torch.equal(correlate(x, k), correlate(x, k, padding=2))
    u = torch.randn(3, 4, 17, 13)
    assert torch.equal(correlate_t(u, k), correlate_t(u, k, padding=2))


@pytest.mark.parametrize("bad", [-1, 5, 9])
def test_bad_padding_is_refused(bad):
    k, x, _ = _data(1, 5, torch.float32)
    with pytest.raises(ValueError, match="padding"):
        correlate(x, k, padding=bad)
    with pytest.raises(ValueError, match="padding"):
        correlate_t(x, k, padding=bad)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="conv backend"):
        conv_backend.set_backend("mkl")
    with pytest.raises(ValueError, match="kind"):
        conv_backend.choose(
            "backward", torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3)
        )


@pytest.mark.skipif(not conv_backend.nnpack_usable(), reason="no NNPACK here")
def test_rule_is_a_function_of_shape_dtype_and_autograd():
    x = torch.zeros(4, 3, 16, 16)
    narrow, wide = torch.zeros(10, 3, 7, 7), torch.zeros(48, 3, 7, 7)
    assert conv_backend.get_backend() == "auto"
    assert conv_backend.choose("forward", x, narrow) == "nnpack"
    assert conv_backend.choose("forward", x, wide) == "torch"
    grey = torch.zeros(4, 1, 16, 16)
    assert conv_backend.choose("forward", grey, torch.zeros(8, 1, 5, 5)) == "nnpack"
    assert conv_backend.choose("forward", grey, torch.zeros(16, 1, 5, 5)) == "torch"
    assert conv_backend.choose("adjoint", torch.zeros(4, 48, 16, 16), wide) == "nnpack"
    assert conv_backend.choose("forward", x.double(), narrow.double()) == "torch"
    with torch.enable_grad():
        assert conv_backend.choose("forward", x, narrow.requires_grad_()) == "torch"
    with torch.no_grad():  # a leaf that requires grad, but nothing records
        assert conv_backend.choose("forward", x, narrow) == "nnpack"


@pytest.mark.parametrize("forced", BACKENDS, indirect=True)
def test_forward_mode_ad_goes_through(forced):
    """A dual tensor (``torch.autograd.forward_ad``) is not given to NNPACK,
    which has no forward-mode derivative: the tangent is K v, and NNPACK
    stays on for later calls."""
    import torch.autograd.forward_ad as fwad

    k, x, gen = _data(1, 5, torch.float32)
    v = torch.randn(x.shape, generator=gen)
    usable = conv_backend.nnpack_usable()
    with fwad.dual_level():
        out = correlate(fwad.make_dual(x, v), k)
        tangent = fwad.unpack_dual(out).tangent
    torch.testing.assert_close(tangent, F.conv2d(v, k, padding=2))
    assert conv_backend.nnpack_usable() == usable


@pytest.mark.parametrize("forced", BACKENDS, indirect=True)
def test_results_are_deterministic(forced):
    k, x, _ = _data(3, 7, torch.float32, n_out=10)
    a = correlate_t(correlate(x, k), k)
    b = correlate_t(correlate(x, k), k)
    assert torch.equal(a, b)


@pytest.mark.skipif(not conv_backend.nnpack_usable(), reason="no NNPACK here")
def test_a_failing_nnpack_falls_back_once(monkeypatch):
    k, x, _ = _data(1, 5, torch.float32)
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("simulated NNPACK failure")

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", broken)
    monkeypatch.setattr(conv_backend, "_nnpack_state", True)
    with pytest.warns(RuntimeWarning, match="simulated NNPACK failure"):
        u = correlate(x, k)
    torch.testing.assert_close(u, F.conv2d(x, k, padding=2))
    correlate_t(u, k)  # NNPACK is off now: no second call, no warning
    assert len(calls) == 1
    assert not conv_backend.nnpack_usable()


@pytest.mark.parametrize("forced", BACKENDS, indirect=True)
@pytest.mark.parametrize("name", ["foe", "crr", "icnn"])
@pytest.mark.parametrize("channels", [1, 3])
def test_regulariser_maths_agree_across_backends_in_float32(forced, name, channels):
    """grad, HVP and the mixed product (autograd through grad) of each
    convolutional regulariser equal the ``torch`` backend's to float32
    accuracy: every regulariser goes through the backend, and autograd and
    ``torch.func`` still work with it forced."""
    kwargs = {"kernel_size": 5} if name == "foe" else {}
    reg = make_regulariser(name, channels, **kwargs)
    theta = reg.project(reg.init_theta(0))
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, channels, 12, 12, generator=gen)
    v = torch.randn(x.shape, generator=gen)

    def maths():
        with torch.no_grad():
            out = [reg.grad(x, theta), reg.hessian(x, theta)(v)]
        out.append(reg.mixed(x, theta, v))
        out.append(reg.mixed(x, theta, v, per_image=True))
        return out

    got = maths()
    previous = conv_backend.set_backend("torch")
    try:
        ref = maths()
    finally:
        conv_backend.set_backend(previous)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-4 * float(b.abs().max()))


@pytest.mark.skipif(not conv_backend.nnpack_usable(), reason="no NNPACK here")
def test_foe_uses_nnpack_on_the_hot_path(monkeypatch):
    calls = []
    real = conv_backend._nnpack

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(conv_backend, "_nnpack", spy)
    reg = make_regulariser("foe", 1, kernel_size=5)
    theta = reg.project(reg.init_theta(0))
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        reg.grad(x, theta)
        reg.hessian(x, theta)(x)
    assert len(calls) == 2 + 3  # grad: K, K^T; HVP: curvature K, then K, K^T


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "flip", "nnpack"])
def test_float64_suites_with_each_backend_forced(backend):
    """The finite-difference suites pass with the backend forced by the
    environment variable (read at import, in a fresh interpreter)."""
    env = {**os.environ, conv_backend.ENV_VAR: backend, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:benchmark",
        "-q",
        "-x",
        "tests/test_regularisers.py",
        "tests/test_engine.py",
        "-k",
        "finite_differences or adjoint or dense_solve or lbfgs",
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_speed_script_runs_on_tiny_shapes(monkeypatch, capsys):
    """``tools/speed.py`` tables 1 and 3 on tiny shapes (a smoke test)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import speed
    finally:
        sys.path.remove(str(ROOT / "tools"))
    monkeypatch.setattr(speed, "HOT_CONFIGS", [(2, 1, 12, 4, 5)])
    monkeypatch.setattr(speed, "SIZES", (8,))
    monkeypatch.setattr(speed, "BATCHES", (1, 2))
    monkeypatch.setattr(speed, "MIN_CALL", 0.0)
    speed.main(["--rounds", "2", "--tables", "1,3"])
    out = capsys.readouterr().out
    for entry in ("raw_flip", "ll_grad_flip", "hvp", "jvp", "lower_20it", "chunked"):
        assert entry in out

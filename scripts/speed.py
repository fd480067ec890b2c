"""Speed of the hot path: lower-level gradient and Hessian-vector product.

For each configuration, prints milliseconds per image for one counted
lower-level gradient and one counted HVP (as used inside conjugate gradient,
curvature cached; and with the curvature rebuilt every time), and each as a
ratio to a raw ``conv2d`` + ``conv_transpose2d`` pair on the same tensors,
timed in the same process (and to ``conv2d`` + ``conv2d`` with flipped
filters, the adjoint FoE uses). Target: both ratios at most 1.5.

Usage::

    python scripts/speed.py [--device cpu|cuda] [--task denoising|deblurring]
        [--repeats 20] [--regulariser foe]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_utils.forward import make_forward  # noqa: E402
from benchmark_utils.oracles import CountedOracles  # noqa: E402
from benchmark_utils.regularisers import make_regulariser  # noqa: E402

CONFIGS = [
    # (batch, channels, size, n_filters, kernel_size)
    (64, 3, 96, 10, 7),
    (16, 1, 64, 48, 7),
]


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timeit(fn, device, repeats, warmup=3):
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_config(batch, channels, size, n_filters, kernel, args):
    """Time one configuration and return a dict of results."""
    device, dtype = args.device, torch.float32
    gen = torch.Generator().manual_seed(0)
    x_clean = torch.rand(batch, channels, size, size, generator=gen)
    x_clean = x_clean.to(device=device, dtype=dtype)
    fwd = make_forward(
        args.task,
        image_shape=(channels, size, size),
        noise_sigma=25 / 255,
        seed=0,
        device=device,
        dtype=dtype,
    )
    y = fwd.measure(x_clean, seed=0)
    kwargs = {}
    if args.regulariser == "foe":
        kwargs = {"n_filters": n_filters, "kernel_size": kernel}
    reg = make_regulariser(args.regulariser, channels, **kwargs)
    mu = 0.0 if args.task == "denoising" else 1e-3
    oracles = CountedOracles(reg, fwd, x_clean, y, mu=mu)
    theta = oracles.init_theta(0)
    idx = torch.arange(batch, device=device)
    x = y.clone()
    v = torch.randn(x.shape, generator=gen).to(device=device, dtype=dtype)
    hess = oracles.hessian(theta, x, idx)

    filters = torch.randn(n_filters, channels, kernel, kernel, generator=gen)
    filters = filters.to(device=device, dtype=dtype)
    pad = kernel // 2

    adjoint = filters.flip(-1, -2).transpose(0, 1).contiguous()

    def raw_pair():
        return F.conv_transpose2d(
            F.conv2d(x, filters, padding=pad), filters, padding=pad
        )

    def raw_pair_conv_adjoint():
        return F.conv2d(F.conv2d(x, filters, padding=pad), adjoint, padding=pad)

    with torch.no_grad():
        t_raw = timeit(raw_pair, device, args.repeats)
        t_raw2 = timeit(raw_pair_conv_adjoint, device, args.repeats)
        t_grad = timeit(lambda: oracles.ll_grad(theta, x, idx), device, args.repeats)
        t_hvp = timeit(lambda: hess(v), device, args.repeats)
        t_hvp_full = timeit(lambda: oracles.hvp(theta, x, v, idx), device, args.repeats)
    ms = 1e3 / batch
    return {
        "config": f"{batch}x{channels}x{size}x{size}, {n_filters} filters "
        f"{kernel}x{kernel}",
        "raw_ms": t_raw * ms,
        "grad_ms": t_grad * ms,
        "hvp_ms": t_hvp * ms,
        "hvp_full_ms": t_hvp_full * ms,
        "grad_ratio": t_grad / t_raw,
        "hvp_ratio": t_hvp / t_raw,
        "hvp_full_ratio": t_hvp_full / t_raw,
        "raw2_ms": t_raw2 * ms,
        "grad_ratio2": t_grad / t_raw2,
        "hvp_ratio2": t_hvp / t_raw2,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--task", default="denoising")
    parser.add_argument("--regulariser", default="foe")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"device={args.device} threads={torch.get_num_threads()} task={args.task} "
        f"regulariser={args.regulariser} torch={torch.__version__}"
    )
    header = (
        f"{'configuration':38s} {'raw pair':>9s} {'ll_grad':>9s} {'hvp(CG)':>9s} "
        f"{'hvp+curv':>9s} {'grad/raw':>9s} {'hvp/raw':>8s} {'hvp+c/raw':>9s}"
        f" {'raw2':>7s} {'grad/raw2':>9s} {'hvp/raw2':>8s}"
    )
    print(header)
    print("(ms per image)")
    rows = []
    for cfg in CONFIGS:
        r = run_config(*cfg, args)
        rows.append(r)
        print(
            f"{r['config']:38s} {r['raw_ms']:9.3f} {r['grad_ms']:9.3f} "
            f"{r['hvp_ms']:9.3f} {r['hvp_full_ms']:9.3f} {r['grad_ratio']:9.2f} "
            f"{r['hvp_ratio']:8.2f} {r['hvp_full_ratio']:9.2f}"
            f" {r['raw2_ms']:7.3f} {r['grad_ratio2']:9.2f} {r['hvp_ratio2']:8.2f}"
        )
    print(
        "raw = conv2d + conv_transpose2d; raw2 = conv2d + conv2d with flipped "
        "filters (the adjoint FoE uses); hvp(CG) = curvature cached, as in "
        "conjugate gradient; hvp+curv = curvature rebuilt"
    )
    return rows


if __name__ == "__main__":
    main()

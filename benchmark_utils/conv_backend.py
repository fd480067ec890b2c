"""One place that picks how the regularisers' correlations are computed.

Every filter bank of FoE, CRR and ICNN is a zero-padded cross-correlation
``conv2d(x, kernel, padding=p)`` and its exact adjoint ``conv_transpose2d``
(``docs/maths.md`` section 2). :func:`correlate` and :func:`correlate_t`
compute the pair with the backend measured fastest for the shape, dtype,
device and autograd state (``"nnpack"``, ``"torch"``: oneDNN or cuDNN,
``"flip"``), so a call always takes the same backend; the rule, the
measurements, the one-time NNPACK probe with its fallback to ``"torch"`` and
how to force a backend (``BILEVEL_CONV_BACKEND``, :func:`set_backend`) are in
``docs/speed.md``, "Convolution backend".
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F

#: backends that :func:`set_backend` accepts
BACKENDS = ("auto", "nnpack", "torch", "flip")
#: environment variable read at import to force a backend
ENV_VAR = "BILEVEL_CONV_BACKEND"
#: the forward correlation uses NNPACK in ``"auto"`` mode for at most this
#: many output channels per input channel (measured, ``docs/speed.md``:
#: faster for 8 grey and 10-32 colour filters, 1.6-2.6x slower for 16-48
#: grey filters)
NNPACK_OUT_PER_IN = 12

_forced = "auto"
_nnpack_state = None  # None: not probed yet; True / False after the probe


def set_backend(name):
    """Force the backend of every later correlation (``"auto"`` restores the rule).

    Parameters
    ----------
    name : str
        One of :data:`BACKENDS`.

    Returns
    -------
    str
        The previous setting, so that callers can restore it.
    """
    global _forced
    if name not in BACKENDS:
        raise ValueError(f"conv backend must be one of {BACKENDS}, got {name!r}")
    previous, _forced = _forced, name
    return previous


def get_backend():
    """The current setting (one of :data:`BACKENDS`)."""
    return _forced


def _probe_nnpack():
    """Whether NNPACK runs here and agrees with ``F.conv2d`` (checked once).

    ``torch._nnpack_spatial_convolution`` fails until torch's own
    convolution dispatch has run NNPACK once in the process (measured with
    torch 2.14.1 on the project machine), so the probe first lets
    ``F.conv2d`` select NNPACK (oneDNN off, batch 16) and then calls the
    operator directly.
    """
    if not torch.backends.nnpack.is_available():
        return False
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 2, 9, 9, generator=gen)
    k = torch.randn(3, 2, 3, 3, generator=gen)
    previous = torch.backends.mkldnn.enabled
    try:
        torch.backends.mkldnn.enabled = False
        with torch.no_grad():
            ref = F.conv2d(x, k, padding=1)
    finally:
        torch.backends.mkldnn.enabled = previous
    try:
        with torch.no_grad():
            out = torch._nnpack_spatial_convolution(x, k, None, [1, 1])
    except RuntimeError:
        return False
    return bool(torch.allclose(out, ref, rtol=1e-4, atol=1e-4))


def nnpack_usable():
    """Whether NNPACK is available and has not failed in this process."""
    global _nnpack_state
    if _nnpack_state is None:
        _nnpack_state = _probe_nnpack()
    return _nnpack_state


def _disable_nnpack(err):
    global _nnpack_state
    _nnpack_state = False
    warnings.warn(
        f"NNPACK convolution failed ({err}); using F.conv2d from now on",
        RuntimeWarning,
        stacklevel=3,
    )


def _plain(t):
    """A tensor no autograd, forward-mode AD or ``torch.func`` transform is
    recording (NNPACK has no forward-mode derivative nor batching rule)."""
    if torch._C._functorch.is_functorch_wrapped_tensor(t):
        return False
    if fwad._current_level >= 0 and fwad.unpack_dual(t).tangent is not None:
        return False
    return not (t.requires_grad and torch.is_grad_enabled())


def _nnpack_eligible(x, kernel):
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and kernel.dtype == torch.float32
        and x.ndim == 4
        and _plain(x)
        and _plain(kernel)
        and nnpack_usable()
    )


def _check_padding(kernel, padding):
    s = kernel.shape[-1]
    if padding is None:
        return s // 2
    padding = int(padding)
    if not 0 <= padding <= s - 1 or kernel.shape[-2] != s:
        raise ValueError(
            f"padding must be in [0, S - 1] = [0, {s - 1}] for a square "
            f"kernel, got padding={padding} and kernel {tuple(kernel.shape)}"
        )
    return padding


def choose(kind, x, kernel):
    """Backend name that :func:`correlate` (``kind="forward"``) or
    :func:`correlate_t` (``kind="adjoint"``) uses for these tensors."""
    if kind not in ("forward", "adjoint"):
        raise ValueError(f"kind must be 'forward' or 'adjoint', got {kind!r}")
    mode = _forced
    if mode in ("torch", "flip"):
        return mode
    if not _nnpack_eligible(x, kernel):
        return "torch"
    if mode == "nnpack" or kind == "adjoint":
        return "nnpack"
    narrow = kernel.shape[0] <= NNPACK_OUT_PER_IN * kernel.shape[1]
    return "nnpack" if narrow else "torch"


def _nnpack(x, kernel, padding):
    return torch._nnpack_spatial_convolution(
        x.contiguous(), kernel.contiguous(), None, [padding, padding]
    )


def _flipped(kernel):
    """(I, O, S, S) kernel of the adjoint correlation."""
    return kernel.flip(-1, -2).transpose(0, 1).contiguous()


def correlate(x, kernel, padding=None):
    """Zero-padded cross-correlation ``conv2d(x, kernel, padding=p)``.

    Parameters
    ----------
    x : torch.Tensor
        Images (B, I, H, W).
    kernel : torch.Tensor
        Filters (O, I, S, S).
    padding : int, optional
        Zero padding p in [0, S - 1]; default S // 2 ("same" for odd S);
        0 gives the "valid" correlation (H - S + 1, W - S + 1).

    Returns
    -------
    torch.Tensor
        (B, O, H + 2p - S + 1, W + 2p - S + 1).
    """
    padding = _check_padding(kernel, padding)
    if choose("forward", x, kernel) == "nnpack":
        try:
            return _nnpack(x, kernel, padding)
        except RuntimeError as err:
            _disable_nnpack(err)
    return F.conv2d(x, kernel, padding=padding)


def correlate_t(u, kernel, padding=None):
    """Exact adjoint of :func:`correlate` with the same kernel and padding.

    Parameters
    ----------
    u : torch.Tensor
        Responses (B, O, H', W').
    kernel : torch.Tensor
        Filters (O, I, S, S).
    padding : int, optional
        The padding p of the forward correlation (default S // 2).

    Returns
    -------
    torch.Tensor
        (B, I, H' - 2p + S - 1, W' - 2p + S - 1) = ``conv_transpose2d(u,
        kernel, padding=p)``, computed as the correlation of ``u`` with the
        flipped, transposed kernel and padding S - 1 - p (``"nnpack"``,
        ``"flip"``) or by ``conv_transpose2d`` (``"torch"``).
    """
    padding = _check_padding(kernel, padding)
    backend = choose("adjoint", u, kernel)
    if backend == "nnpack":
        try:
            return _nnpack(u, _flipped(kernel), kernel.shape[-1] - 1 - padding)
        except RuntimeError as err:
            _disable_nnpack(err)
    elif backend == "flip":
        return F.conv2d(u, _flipped(kernel), padding=kernel.shape[-1] - 1 - padding)
    return F.conv_transpose2d(u, kernel, padding=padding)


_env = os.environ.get(ENV_VAR)
if _env:
    set_backend(_env.strip().lower())

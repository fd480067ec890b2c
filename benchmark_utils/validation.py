"""Parameter checks with one-line messages naming the parameter and its range.

Every component validates each parameter once, where it enters (datasets in
``get_data``, the objective in ``set_data``, solvers in ``set_objective``).
Values from benchopt's command line can be strings, floats where ints are
expected, or bools: each check raises ``ValueError("<owner>: parameter
<name>=<value> is invalid; allowed: <range>")`` rather than a later
``TypeError`` or a silent truncation (``docs/cli.md``).
"""

from __future__ import annotations

import math
import numbers
import os
import re

import torch

#: torch's own intra-op thread count, before any objective changed it
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def fail(owner, name, value, allowed):
    """Raise the one-line ``ValueError`` of an invalid parameter.

    Parameters
    ----------
    owner : str
        Component that owns the parameter (e.g. ``"deblurring"``, ``"ISGD"``);
        ``""`` for none.
    name : str
        Parameter name.
    value : object
        The value given.
    allowed : str
        The allowed values, in words.
    """
    prefix = f"{owner}: " if owner else ""
    raise ValueError(
        f"{prefix}parameter {name}={value!r} is invalid; allowed: {allowed}"
    )


def _bound_text(op, bound, label):
    return f"{op} {label} = {bound:g}" if label else f"{op} {bound:g}"


def _range_text(low, high, low_open, high_open, head, high_label=None):
    parts = []
    if low is not None:
        parts.append(_bound_text(">" if low_open else ">=", low, None))
    if high is not None:
        parts.append(_bound_text("<" if high_open else "<=", high, high_label))
    return head + (" " + " and ".join(parts) if parts else "")


def check_real(
    value,
    name,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    owner="",
    high_label=None,
):
    """Return ``float(value)`` if it is a finite real number in the range.

    ``high_label`` names the upper bound in the message when it is derived
    from another parameter (e.g. ``"kernel_size / 2"``).
    """
    allowed = _range_text(low, high, low_open, high_open, "a finite number", high_label)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(owner, name, value, allowed)
    value = float(value)
    bad = not math.isfinite(value)
    bad = bad or (low is not None and (value <= low if low_open else value < low))
    bad = bad or (high is not None and (value >= high if high_open else value > high))
    if bad:
        fail(owner, name, value, allowed)
    return value


def check_int(value, name, low=None, high=None, owner="", odd=False, high_label=None):
    """Return ``int(value)`` if it is an integer (not a bool) in [low, high].

    A float with an integral value (``4.0``, as a YAML file may give) is
    accepted. ``odd=True`` also requires an odd value; ``high_label`` names a
    derived upper bound in the message (e.g. ``"min(H, W)"``).
    """
    head = "an odd integer" if odd else "an integer"
    allowed = _range_text(low, high, False, False, head, high_label)
    integral = isinstance(value, numbers.Integral) or (
        isinstance(value, float) and value.is_integer()
    )
    if isinstance(value, bool) or not integral:
        fail(owner, name, value, allowed)
    value = int(value)
    bad = (low is not None and value < low) or (high is not None and value > high)
    if bad or (odd and value % 2 == 0):
        fail(owner, name, value, allowed)
    return value


def check_choice(value, name, choices, owner=""):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        fail(owner, name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_bool(value, name, owner=""):
    """Return ``value`` if it is a bool (``True``/``False``)."""
    if not isinstance(value, bool):
        fail(owner, name, value, "True or False")
    return value


def check_dtype(value, name="dtype", owner=""):
    """Return ``value`` if it is a real floating ``torch.dtype``."""
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        fail(owner, name, value, "a real floating torch dtype (e.g. torch.float32)")
    return value


def check_threads(n_threads, owner=""):
    """Torch threads asked by ``n_threads``: 1 to the number of cores, or
    ``'auto'`` (torch's default, :data:`TORCH_DEFAULT_THREADS`)."""
    if n_threads == "auto":
        return TORCH_DEFAULT_THREADS
    n_cores = os.cpu_count() or 1
    allowed = f"'auto' or an integer in [1, {n_cores}] (the number of CPU cores)"
    if isinstance(n_threads, str):
        fail(owner, "n_threads", n_threads, allowed)
    return check_int(
        n_threads, "n_threads", 1, n_cores, owner, high_label="the number of CPU cores"
    )


def check_mu(mu, forward, owner=""):
    """``mu`` as a float in [0, ||A||^2] that makes E_i strongly convex.

    The modulus is lambda_min(A^T A) + mu (``docs/maths.md`` (1.3)): mu > 0
    is needed when A has a kernel; above ||A||^2 the ridge outweighs the data.
    """
    try:
        mu = check_real(mu, "mu", low=0, high=forward.norm_sq, owner=owner)
    except ValueError as err:
        raise ValueError(
            f"{err} (||A||^2 of the {forward.name} operator: a larger ridge "
            "outweighs the data term)"
        ) from None
    if forward.lambda_min + mu <= 0:
        raise ValueError(
            f"the {forward.name} lower level needs mu > 0 to be strongly convex "
            f"(lambda_min(A^T A) = 0); got mu={mu!r}. Pass e.g. "
            '-o "Bilevel imaging[mu=0.001]"'
        )
    return mu


def check_device(device, owner=""):
    """The torch device named by ``device``: ``'auto'`` (CUDA when available),
    ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'cuda-N'`` (benchopt's ``-o``
    parser refuses an unquoted colon; ``docs/cli.md``)."""
    name = device if isinstance(device, str) else ""
    index = re.fullmatch(r"cuda[:-](\d+)", name)
    if name not in ("auto", "cpu", "cuda") and index is None:
        fail(
            owner,
            "device",
            device,
            "'auto', 'cpu' or 'cuda[:N]' (also spelt cuda-N); quote the colon "
            f"on the command line: -o \"{owner}[device='cuda:0']\"",
        )
    cuda = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "cpu")
    if name != "cpu" and not cuda:
        fail(
            owner,
            "device",
            device,
            "CUDA is not available on this machine, so 'cpu' or 'auto'",
        )
    if index is not None:
        n_gpus = torch.cuda.device_count()
        if int(index[1]) >= n_gpus:
            fail(owner, "device", device, f"cuda:0 to cuda:{n_gpus - 1}")
        name = f"cuda:{index[1]}"
    return torch.device(name)

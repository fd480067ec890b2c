"""Save and load a learned theta without trusting the file.

A theta checkpoint is one file written by :func:`torch.save` holding a plain
dict ``{"format", "version", "theta", "meta"}``: theta is the flat 1-D tensor
every solver works on (``ALGORITHMS.md`` section 2, "theta is one flat
vector"), meta a small dict of plain Python values (solver name, cost
reached, seed, ...). :func:`load_theta` reads it with
``torch.load(weights_only=True)``, whose restricted unpickler only rebuilds
tensors and plain containers: a file carrying any other pickled object is
refused before that object's code can run, so a checkpoint found on a shared
filesystem can be loaded safely.

Writes are atomic (temporary file in the same folder, then
:func:`os.replace`), so a run killed while saving never leaves a truncated
checkpoint behind.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "benchmark_bilevel_imaging/theta"
VERSION = 1
_PLAIN = (str, bool, int, float, type(None))


def _plain_meta(value, where):
    """Copy of ``value`` made of str/bool/int/float/None, lists and dicts."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [_plain_meta(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, val in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be str, got {key!r}")
            out[key] = _plain_meta(val, f"{where}[{key!r}]")
        return out
    raise ValueError(
        f"{where} must be str, bool, int, float, None, list or dict; "
        f"got {type(value).__name__}"
    )


def _check_theta(theta, where):
    """Validated CPU copy of theta (1-D floating torch tensor)."""
    if isinstance(theta, np.ndarray):
        theta = torch.from_numpy(theta)
    if not isinstance(theta, torch.Tensor):
        raise ValueError(f"{where} must be a tensor, got {type(theta).__name__}")
    if theta.ndim != 1 or not theta.is_floating_point():
        raise ValueError(
            f"{where} must be a 1-D floating tensor, got shape "
            f"{tuple(theta.shape)} and dtype {theta.dtype}"
        )
    # clone: a view would otherwise save its whole storage
    return theta.detach().to("cpu").clone().contiguous()


def save_theta(path, theta, meta=None):
    """Write ``theta`` and ``meta`` to ``path`` (atomically).

    Parameters
    ----------
    path : str or pathlib.Path
        Destination file (``.pt`` by convention); its folder must exist.
    theta : torch.Tensor or numpy.ndarray
        Flat 1-D floating parameter vector; saved on the CPU, dtype kept.
    meta : dict, optional
        Plain values only (str, bool, int, float, None, lists and dicts with
        str keys; numpy scalars are converted), e.g. ``{"solver": "ISGD",
        "cost": 15000, "seed": 0}``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        theta not a 1-D floating tensor, or meta holding another type (the
        message names the offending entry).
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "theta": _check_theta(theta, "theta"),
        "meta": _plain_meta(meta if meta is not None else {}, "meta"),
    }
    if not isinstance(payload["meta"], dict):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _why(err):
    """The informative part of a torch.load error, as a short suffix."""
    text = str(err)
    match = re.search(r"Unsupported (global: GLOBAL \S+|operand \d+)", text)
    if match:
        return f" ({match.group(0)})"
    first = re.sub(r"\x1b\[[0-9;]*m", "", text).strip().split("\n")[0]
    first = first.split(". ")[0]
    return f" ({first[:120]})" if first else ""


def load_theta(path, map_location="cpu", allow_nonfinite=False):
    """Read a checkpoint written by :func:`save_theta`.

    Parameters
    ----------
    path : str or pathlib.Path
        Checkpoint file.
    map_location : str or torch.device, default="cpu"
        Where to put theta (passed to :func:`torch.load`).
    allow_nonfinite : bool, default=False
        Accept a theta holding NaN or inf (e.g. saved from a diverged run).

    Returns
    -------
    theta : torch.Tensor
        1-D floating tensor, dtype as saved.
    meta : dict
        The plain metadata saved with it.

    Raises
    ------
    ValueError
        One line naming the file: anything but a plain theta checkpoint
        (arbitrary pickled objects are refused by
        ``torch.load(weights_only=True)`` without being run), an unreadable
        or truncated file, an unknown format or version, or a bad theta.
    FileNotFoundError
        ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"theta checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"theta checkpoint {str(path)!r} refused: it holds objects other "
            f"than tensors and plain containers{_why(err)}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(
            f"theta checkpoint {str(path)!r} is unreadable or truncated{_why(err)}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"theta checkpoint {str(path)!r} was not written by save_theta "
            f"(format {FORMAT!r} expected)"
        )
    if payload.get("version") != VERSION:
        raise ValueError(
            f"theta checkpoint {str(path)!r} has version "
            f"{payload.get('version')!r}; this code reads version {VERSION}"
        )
    theta = payload.get("theta")
    if not isinstance(theta, torch.Tensor) or theta.ndim != 1:
        raise ValueError(f"theta checkpoint {str(path)!r}: theta is not a 1-D tensor")
    if not theta.is_floating_point():
        raise ValueError(
            f"theta checkpoint {str(path)!r}: theta has dtype {theta.dtype}, "
            "a floating dtype is expected"
        )
    if not allow_nonfinite and not bool(torch.isfinite(theta).all()):
        raise ValueError(
            f"theta checkpoint {str(path)!r}: theta holds NaN or inf "
            "(pass allow_nonfinite=True to load it anyway)"
        )
    meta = payload.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"theta checkpoint {str(path)!r}: meta is not a dict")
    return theta, meta

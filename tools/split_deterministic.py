"""Split a tuned config (``scripts/tune.py``) into a file for the stochastic
solvers and one for the others, run once.

A full-batch solver whose only randomness is in diagnostics (MAID: the images
and Lanczos starts of its certified constants, ``docs/maths.md`` 5.2) gives
the same run at every repetition with ``acceptance=decrease`` and nearly the
same with ``certified``; running it once frees the CPU for the stochastic
solvers' repetitions. ``<stem>.yml`` gives ``<stem>-stochastic.yml`` (the
file's ``n-repetitions``) and ``<stem>-once.yml`` (one repetition), each
with the original header and a line saying what was split.

Usage::

    python tools/split_deterministic.py configs/paper/isgd-maid/*-foe-10.yml \
        [--once MAID HOAG]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml


def split(path, once=("MAID", "HOAG")):
    """Write the two files next to ``path``; return their paths."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    body = yaml.safe_load(text)
    is_once = [s.split("[", 1)[0] in once for s in body["solver"]]
    out = []
    for tag, keep, n_rep in (
        ("stochastic", False, body["n-repetitions"]),
        ("once", True, 1),
    ):
        solvers = [s for s, o in zip(body["solver"], is_once, strict=True) if o == keep]
        if not solvers:
            continue
        what = f"solvers {', '.join(once)} run once" if keep else "the others"
        note = f"# Split from {path.name} by tools/split_deterministic.py: {what}."
        new = {**body, "n-repetitions": int(n_rep), "solver": solvers}
        dumped = yaml.safe_dump(new, sort_keys=False, width=1000, allow_unicode=True)
        target = path.with_name(f"{path.stem}-{tag}.yml")
        target.write_text("\n".join([*header, note]) + "\n" + dumped, encoding="utf-8")
        out.append(target)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="+")
    parser.add_argument("--once", nargs="+", default=["MAID", "HOAG"])
    args = parser.parse_args(argv)
    for cfg in args.config:
        for target in split(cfg, tuple(args.once)):
            print(target)


if __name__ == "__main__":
    main()

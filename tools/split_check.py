"""Which images each set gets, and their near-flat windows (docs/data.md).

Prints, for a source and each ``image_size``, the training, validation and
test images of the stratified split, their fractions of near-flat 32 x 32
windows and amounts of fine detail, and whether the comparable-content rule
holds. Usage::

    python tools/split_check.py [--source folder --folder DIR] \\
        [--sizes 128 256] [--n-val 2] [--n-test 3] [--colour]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.splits import detail, make_splits  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="skimage")
    parser.add_argument("--folder", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--n-val", type=int, default=2)
    parser.add_argument("--n-test", type=int, default=3)
    parser.add_argument("--colour", action="store_true")
    args = parser.parse_args(argv)
    ok = True
    for size in args.sizes:
        s = make_splits(
            args.source,
            folder=args.folder,
            n_train=1,
            n_val=args.n_val,
            n_test=args.n_test,
            patch_size=min(32, size),
            image_size=size,
            grayscale=not args.colour,
        )
        details = {
            "val": sum(detail(x) for x in s.x_val) / len(s.x_val),
            "test": sum(detail(x) for x in s.x_test) / len(s.x_test),
        }
        print(f"image_size {size}:")
        for name in ("train", "val", "test"):
            extra = f", detail {details[name]:.3f}" if name in details else ""
            print(
                f"  {name:5s} {100 * s.flat[name]:5.1f} % near-flat{extra}: "
                + ", ".join(s.names[name])
            )
        print(f"  comparable: {s.comparable()}")
        ok &= s.comparable()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

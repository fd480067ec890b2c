"""Training patches and whole evaluation images from disjoint images (``docs/data.md``).

Every source image is resized so that its shorter side is ``image_size``
(:func:`resize_short_side`). The images are split into training, validation
and test images by a stratified rule on their content (:func:`split_images`),
so that the three sets hold comparable fractions of near-flat regions. The
validation and test images are the central ``image_size`` squares of theirs,
whole images a reader recognises; training uses ``n_train`` patches cut at
seeded random positions of the training images (:func:`extract_patches`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .images import load_images
from .validation import check_int, fail

#: side of the windows and the standard deviation under which a window
#: counts as near-flat (``docs/data.md``, "Comparable splits")
FLAT_WINDOW, FLAT_STD = 32, 0.02
SETS = ("train", "val", "test")


@dataclass
class Splits:
    """The images of the three sets and what they are made of.

    ``x_train`` (n_train, C, p, p) patches; ``x_val`` (n_val, C, S, S) and
    ``x_test`` (n_test, C, S, S) whole images; ``names`` the source images of
    each set; ``flat`` each set's fraction of near-flat windows
    (:func:`flat_fraction`: over the training images, the validation and the
    test images).
    """

    x_train: torch.Tensor
    x_val: torch.Tensor
    x_test: torch.Tensor
    names: dict
    flat: dict

    def comparable(self):
        """The rule of ``docs/data.md``: validation and test hold at most
        twice the training images' fraction of near-flat windows (True when
        an image is too small to tell)."""
        val, test, train = self.flat["val"], self.flat["test"], self.flat["train"]
        return any(np.isnan([val, test, train])) or max(val, test) <= 2 * train


def resize_short_side(image, size):
    """``image`` (C, H, W) resized (bilinear, anti-aliased) to shorter side
    ``size``, the aspect ratio kept; an image already that size is returned."""
    c, h, w = image.shape
    if min(h, w) == size:
        return image
    scale = size / min(h, w)
    shape = (max(size, round(h * scale)), max(size, round(w * scale)))
    out = F.interpolate(
        image[None].double(), size=shape, mode="bilinear", antialias=True
    )
    return out[0].clamp(0, 1).to(image.dtype)


def central_square(image, size):
    """The central ``size`` x ``size`` square of ``image`` (C, H, W)."""
    h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[:, top : top + size, left : left + size].contiguous()


def _window_std(image):
    """Standard deviation of each non-overlapping FLAT_WINDOW square window."""
    c, w = image.shape[0], FLAT_WINDOW
    tiles = image.unfold(1, w, w).unfold(2, w, w).permute(1, 2, 0, 3, 4)
    return tiles.reshape(-1, c * w * w).double().std(dim=1)


def flat_fraction(images):
    """Fraction of the non-overlapping 32 x 32 windows of ``images`` whose
    standard deviation is below 0.02 (NaN when no window fits)."""
    stds = [_window_std(img) for img in images if min(img.shape[-2:]) >= FLAT_WINDOW]
    stds = torch.cat(stds) if stds else torch.zeros(0)
    return float((stds < FLAT_STD).double().mean()) if stds.numel() else float("nan")


def detail(image):
    """Mean gradient magnitude of ``image`` (C, H, W): its amount of fine detail."""
    dx = image[:, :-1, 1:] - image[:, :-1, :-1]
    dy = image[:, 1:, :-1] - image[:, :-1, :-1]
    return float((dx.double() ** 2 + dy.double() ** 2).sqrt().mean())


def split_images(images, n_val, n_test):
    """Indices of the training, validation and test images (stratified).

    The images are sorted by their fraction of near-flat windows (ties: by
    decreasing :func:`detail`, then by position) and dealt in that order to
    the set furthest below its share (``n_val``, ``n_test`` and the rest for
    training), so every set spans the range of contents.
    """
    n = len(images)
    counts = {"train": n - n_val - n_test, "val": n_val, "test": n_test}
    keys = []
    for j, img in enumerate(images):
        flat = flat_fraction([img])
        keys.append(
            (0.0 if math.isnan(flat) else round(flat, 9), -round(detail(img), 9), j)
        )
    sets = {name: [] for name in SETS}
    for k, (*_, j) in enumerate(sorted(keys)):
        deficit = {s: counts[s] * (k + 1) / n - len(sets[s]) for s in SETS}
        sets[max(SETS, key=lambda s: (deficit[s], -SETS.index(s)))].append(j)
    return tuple(sorted(sets[s]) for s in SETS)


def _plan_patches(shapes, names, n_patches, patch_size, seed):
    """(image, row, col) of each patch: round-robin over the images in a
    seeded order, distinct positions within an image."""
    n_pos_h = [h - patch_size + 1 for h, _ in shapes]
    n_pos_w = [w - patch_size + 1 for _, w in shapes]
    for (h, w), name in zip(shapes, names, strict=True):
        if min(h, w) < patch_size:
            raise ValueError(
                f"image {name} of size {h}x{w} is smaller than patch_size={patch_size}"
            )
    capacity = [a * b for a, b in zip(n_pos_h, n_pos_w, strict=True)]
    if n_patches > sum(capacity):
        raise ValueError(
            f"n_train={n_patches} exceeds the {sum(capacity)} distinct "
            f"{patch_size}x{patch_size} patch positions of the {len(shapes)} "
            "training image(s)"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(shapes))
    counts, owner = [0] * len(shapes), []
    while len(owner) < n_patches:
        for j in order:
            if len(owner) < n_patches and counts[j] < capacity[j]:
                counts[j] += 1
                owner.append(int(j))
    positions = {}
    for j, count in enumerate(counts):
        if count:
            flat = rng.choice(capacity[j], size=count, replace=False)
            positions[j] = [divmod(int(f), n_pos_w[j]) for f in flat]
    used = [0] * len(shapes)
    plan = []
    for j in owner:
        plan.append((j, *positions[j][used[j]]))
        used[j] += 1
    return plan


def extract_patches(images, n_patches, patch_size, seed, names=None):
    """``n_patches`` square patches (n, C, p, p) of ``images`` (C, H, W).

    Patch k comes from the k-th image (mod n) of a seeded random order of the
    images while none is exhausted; the positions within an image are
    distinct, drawn from ``numpy.random.default_rng(seed)`` (the global
    generators are untouched). ``names`` name the images in errors.
    """
    names = names or [f"images[{i}]" for i in range(len(images))]
    shapes = [tuple(img.shape[-2:]) for img in images]
    plan = _plan_patches(shapes, names, n_patches, patch_size, seed)
    p = patch_size
    return torch.stack([images[j][:, r : r + p, c : c + p] for j, r, c in plan])


def make_splits(
    source="skimage",
    *,
    n_train,
    n_val,
    n_test,
    patch_size,
    image_size,
    grayscale=True,
    seed=0,
    folder=None,
    data_path=None,
    download=False,
    owner="",
):
    """The three sets of a source (:class:`Splits`; ``docs/data.md``).

    ``n_val`` and ``n_test`` count whole images (at least one each; at least
    one training image remains); ``n_train`` counts training patches of side
    ``patch_size <= image_size``. Loading parameters: see
    :func:`benchmark_utils.images.load_images`. Raises ``ValueError`` naming a
    bad parameter or an image smaller than ``image_size``.
    """
    n_train = check_int(n_train, "n_train", 1, owner=owner)
    n_val = check_int(n_val, "n_val", 1, owner=owner)
    n_test = check_int(n_test, "n_test", 1, owner=owner)
    image_size = check_int(image_size, "image_size", 1, owner=owner)
    patch_size = check_int(
        patch_size, "patch_size", 1, image_size, owner, high_label="image_size"
    )
    seed = check_int(seed, "seed", 0, owner=owner)
    named = load_images(
        source,
        grayscale=grayscale,
        folder=folder,
        data_path=data_path,
        download=download,
        owner=owner,
    )
    if len(named) < n_val + n_test + 1:
        fail(
            owner,
            "n_val + n_test",
            n_val + n_test,
            f"at most {len(named) - 1}: the source has {len(named)} images and "
            "training needs one",
        )
    images = []
    for name, img in named:
        if min(img.shape[-2:]) < image_size:
            h, w = img.shape[-2:]
            fail(
                owner,
                "image_size",
                image_size,
                f"at most {min(h, w)} ({name!r} is {h}x{w})",
            )
        images.append(resize_short_side(img, image_size))
    idx = dict(zip(SETS, split_images(images, n_val, n_test), strict=True))
    train = [images[j] for j in idx["train"]]
    names = {s: [named[j][0] for j in idx[s]] for s in SETS}
    x_train = extract_patches(
        train, n_train, patch_size, seed, [repr(n) for n in names["train"]]
    )
    x_val, x_test = (
        torch.stack([central_square(images[j], image_size) for j in idx[s]])
        for s in ("val", "test")
    )
    flat = {
        "train": flat_fraction(train),
        "val": flat_fraction(x_val),
        "test": flat_fraction(x_test),
    }
    return Splits(x_train.contiguous(), x_val, x_test, names, flat)

"""Image sources and deterministic patches (``docs/maths.md`` section 1).

Images are float32 tensors of shape ``(C, H, W)`` with values in ``[0, 1]``.
Sources (:data:`SOURCES`):

- ``"skimage"`` (default): natural images shipped inside the scikit-image
  wheel (:data:`SKIMAGE_IMAGES`); no network access is ever needed.
- ``"kodak24"``, ``"bsds500"``, ``"cbsd68"``: deepinv's dataset classes
  (``deepinv.datasets.Kodak24``, ``BSDS500``, ``CBSD68``) find, check and
  (only with ``download=True``) download the files under ``data_path``, and
  their items are the images.
- ``"folder"``: every ``.png``, ``.jpg`` or ``.jpeg`` file of a folder, read
  through ``deepinv.datasets.ImageFolder``.

Every image goes through :func:`_to_tensor` (one conversion for all sources:
grayscale modes kept, alpha dropped, BT.601 luma for grayscale). A file that
cannot be decoded gives a one-line ``ValueError`` naming it.

:func:`extract_patches` cuts patches at positions drawn from a local
``numpy.random.Generator`` (the global RNGs are never used) and
:func:`make_splits` builds training, validation and test patches from three
disjoint sets of images (:func:`split_train_val_test`; ``docs/data.md``,
"Patches"), so every patch of one source image is in one set. The public
functions validate their parameters once; the private helpers they call do
not validate again.
"""

import os
from pathlib import Path

import numpy as np
import torch

from .validation import check_bool, check_choice, check_int, fail

#: Natural images of ``skimage.data`` that load offline from files inside the
#: scikit-image wheel, in the order used to split train, validation and test
#: images (see :func:`split_train_val_test`: camera to immunohistochemistry
#: train, retina and motorcycle validate, gravel to moon test).
#: ``"motorcycle"`` is the left view of ``skimage.data.stereo_motorcycle()``.
#: Not included: ``clock`` (motion blurred on purpose, so not a clean ground
#: truth) and the images that scikit-image fetches over the network (e.g.
#: ``eagle``, ``lily``).
SKIMAGE_IMAGES = (
    "camera",
    "astronaut",
    "brick",
    "coffee",
    "coins",
    "grass",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "motorcycle",
    "gravel",
    "chelsea",
    "rocket",
    "cell",
    "moon",
)

SOURCES = ("skimage", "kodak24", "bsds500", "cbsd68", "folder")
#: The sources read through deepinv's data sets, stored under ``data_path``.
DEEPINV_SOURCES = ("kodak24", "bsds500", "cbsd68")

#: File suffixes read by the ``"folder"`` source (case-insensitive).
FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg")

#: ITU-R BT.601 luma weights (those of PIL's ``"L"`` conversion) used to turn
#: colour images into grayscale.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_KODAK_SUBDIR = ("Kodak-Lossless-True-Color-Image-Suite-master", "PhotoCD_PCD0992")
_BSDS_LAYOUT = "download.zip and BSDS500-master/BSDS500/data/images/{train,test}/*.jpg"
_CBSD_FILE = "data-00000-of-00001.arrow"
_GRAY_MODES = ("1", "L", "I", "I;16", "I;16L", "I;16B", "F")


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------


def _pil_to_array(img):
    """Array of a PIL image: grayscale modes and RGB kept, others as RGB."""
    if img.mode not in _GRAY_MODES + ("RGB",):
        return np.asarray(img.convert("RGB"))
    array = np.asarray(img)
    if img.mode == "I":  # 32-bit integers: 16-bit PNGs in older PIL
        array = np.clip(array, 0, 65535).astype(np.uint16)
    return array


def _to_tensor(image, grayscale, name):
    """Float32 ``(C, H, W)`` tensor in [0, 1] of a PIL image or an array.

    Integers are scaled by 1/255 (1/65535 for 16-bit), alpha channels dropped;
    ``C = 1`` (colour through :data:`LUMA_WEIGHTS`) if ``grayscale``, else 3
    (a grayscale image repeated).
    """
    array = image if isinstance(image, np.ndarray) else _pil_to_array(image)
    if array.dtype == bool:
        array = array.astype(np.float64)
    elif array.dtype == np.uint8:
        array = array / 255.0
    elif array.dtype == np.uint16:
        array = array / 65535.0
    elif np.issubdtype(array.dtype, np.integer):
        array = array / (65535.0 if array.max(initial=0) > 255 else 255.0)
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    else:
        raise ValueError(f"image {name} has unsupported dtype {array.dtype}")
    array = np.clip(array, 0.0, 1.0)
    if array.ndim == 3 and array.shape[-1] in (2, 4):
        array = array[..., :-1]  # drop the alpha channel
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        img = torch.from_numpy(array)[None]
        if not grayscale:
            img = img.repeat(3, 1, 1)
    elif array.ndim == 3 and array.shape[-1] == 3:
        img = torch.from_numpy(np.moveaxis(array, -1, 0).copy())
        if grayscale:
            w = torch.tensor(LUMA_WEIGHTS, dtype=img.dtype)
            img = (w[:, None, None] * img).sum(0, keepdim=True).clamp(0.0, 1.0)
    else:
        raise ValueError(
            f"image {name} has unsupported shape {array.shape}; expected (H, W), "
            "(H, W, 3) or (H, W, 4)"
        )
    return img.to(torch.float32).contiguous()


def _read_file(path):
    """Decoded pixels of one image file; a one-line error naming it if corrupt."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            return _pil_to_array(img)
    except (OSError, SyntaxError, ValueError) as err:  # PIL's decoding errors
        raise ValueError(f"cannot read image file {str(path)!r}: {err}") from None


def _dataset_images(dataset, names, grayscale):
    """``[(name, tensor), ...]`` of the items ``{"x": image}`` of a deepinv set."""
    out = []
    for i, name in enumerate(names):
        try:
            image = dataset[i]["x"]
        except (OSError, SyntaxError) as err:  # PIL, inside deepinv's reader
            raise ValueError(f"cannot read image file {name!r}: {err}") from None
        out.append((name, _to_tensor(image, grayscale, repr(name))))
    return out


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------


def _load_skimage(grayscale):
    import skimage.data

    out = []
    for name in SKIMAGE_IMAGES:
        if name == "motorcycle":
            array = skimage.data.stereo_motorcycle()[0]
        else:
            array = getattr(skimage.data, name)()
        out.append((name, _to_tensor(np.asarray(array), grayscale, repr(name))))
    return out


def _load_folder(folder, grayscale, owner):
    from deepinv.datasets import ImageFolder

    path = Path(folder).expanduser()
    if not path.is_dir():
        problem = "is not a directory" if path.exists() else "does not exist"
        fail(owner, "folder", str(path), f"an existing directory; this one {problem}")
    dataset = ImageFolder(path, x_path="*", loader=_read_file, use_dict_output=True)
    dataset.x_paths = sorted(
        p
        for p in dataset.x_paths
        if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
    )
    if not dataset.x_paths:
        raise ValueError(
            f"folder {str(path)!r} contains no image file "
            f"({', '.join(FOLDER_SUFFIXES)})"
        )
    return _dataset_images(dataset, [p.name for p in dataset.x_paths], grayscale)


def _not_found(source, root, expected):
    return ValueError(
        f"{source} images not found (or incomplete) under data_path={str(root)!r}: "
        f"deepinv expects {expected}. Pass download=True to download them there, "
        "or point data_path to a copy laid out as deepinv expects, or use "
        "source='folder' with folder=<directory of image files>."
    )


def _deepinv_root(data_path, name):
    if data_path is not None:
        return Path(data_path)
    from deepinv.datasets.utils import resolve_root

    return Path(resolve_root(None, name))


def _load_kodak24(root, download, grayscale):
    from deepinv.datasets import Kodak24

    try:
        dataset = Kodak24(
            root=str(root), download=download, verbose=False, use_dict_output=True
        )
    except RuntimeError:  # deepinv: not found (or checksum mismatch)
        raise _not_found(
            "kodak24", root, f"{Path(*_KODAK_SUBDIR)}/01.png ..."
        ) from None
    # file-name order (deepinv's glob order is the file system's), read as
    # the folder source reads files
    dataset.x_paths = sorted(Path(p) for p in dataset.x_paths)
    dataset.loader = _read_file
    return _dataset_images(dataset, [p.name for p in dataset.x_paths], grayscale)


def _load_bsds500(root, download, grayscale):
    from deepinv.datasets import BSDS500

    # deepinv's BSDS500 creates ``root`` before refusing to load without the
    # archive it downloaded: check first.
    if not download and not (root / "download.zip").is_file():
        raise _not_found("bsds500", root, _BSDS_LAYOUT)
    dataset = BSDS500(
        root=str(root), download=download, train=True, use_dict_output=True
    )
    if len(dataset) == 0:
        raise _not_found("bsds500", root, _BSDS_LAYOUT)
    # deepinv converts each JPEG to RGB (all BSDS500 images are colour)
    return _dataset_images(
        dataset, [Path(p).name for p in dataset.file_list], grayscale
    )


def _load_cbsd68(root, download, grayscale):
    from deepinv.datasets import CBSD68

    if not download and not (root / _CBSD_FILE).is_file():
        raise _not_found("cbsd68", root, f"the HuggingFace dataset ({_CBSD_FILE})")
    # needs the HuggingFace ``datasets`` package (deepinv raises ImportError)
    try:
        dataset = CBSD68(root=str(root), download=download, use_dict_output=True)
    except RuntimeError:  # deepinv: not found (or checksum mismatch)
        raise _not_found(
            "cbsd68", root, f"the HuggingFace dataset ({_CBSD_FILE})"
        ) from None
    return _dataset_images(
        dataset, [f"cbsd68[{i}]" for i in range(len(dataset))], grayscale
    )


_DEEPINV_LOADERS = {
    "kodak24": ("Kodak24", _load_kodak24),
    "bsds500": ("BSDS500", _load_bsds500),
    "cbsd68": ("CBSD68", _load_cbsd68),
}


def _check_source(source, folder, grayscale, download, owner):
    """Validate the arguments of :func:`load_images` (once)."""
    check_choice(source, "source", SOURCES, owner)
    if source == "folder":
        if not isinstance(folder, str | os.PathLike) or str(folder) == "":
            fail(owner, "folder", folder, "a directory path for source='folder'")
    elif folder is not None:
        fail(owner, "folder", folder, f"None unless source='folder' (got {source!r})")
    check_bool(grayscale, "grayscale", owner)
    check_bool(download, "download", owner)


def _load(source, grayscale, folder, data_path, download, owner=""):
    """``[(name, image), ...]`` of a source (arguments already validated)."""
    if source == "skimage":
        return _load_skimage(grayscale)
    if source == "folder":
        return _load_folder(folder, grayscale, owner)
    deepinv_name, loader = _DEEPINV_LOADERS[source]
    return loader(_deepinv_root(data_path, deepinv_name), download, grayscale)


def load_images(
    source="skimage",
    *,
    grayscale=True,
    folder=None,
    data_path=None,
    download=False,
    owner="",
):
    """Load the images of a source.

    Parameters
    ----------
    source : str, default="skimage"
        ``"skimage"`` (the offline images :data:`SKIMAGE_IMAGES`, in that
        order), ``"kodak24"`` (24 images, file-name order), ``"bsds500"`` (the
        400 images of the ``train`` and ``test`` splits, deepinv's
        ``train=True``), ``"cbsd68"`` (68 images; needs the HuggingFace
        ``datasets`` package) or ``"folder"``.
    grayscale : bool, default=True
        One channel (colour converted with the BT.601 weights
        :data:`LUMA_WEIGHTS`) if ``True``; else three channels (grayscale
        images repeated).
    folder : str or pathlib.Path, optional
        For ``source="folder"`` only: a directory (``~`` expanded) whose
        ``.png``, ``.jpg`` and ``.jpeg`` files (not sub-directories) are
        loaded, sorted by file name. Alpha channels are dropped, 16-bit
        images scaled by 1/65535.
    data_path : str or pathlib.Path, optional
        Root directory of the deepinv data sets (their ``root`` argument);
        ``None`` means deepinv's default cache directory.
    download : bool, default=False
        Whether the deepinv data sets may be downloaded into ``data_path``
        when missing. Never needed for ``"skimage"`` and ``"folder"``.
    owner : str, default=""
        Component named in error messages.

    Returns
    -------
    images : list of torch.Tensor
        Float32 tensors of shape ``(C, H, W)`` with values in ``[0, 1]``,
        ``C = 1`` if ``grayscale`` else 3; sizes may differ between images.

    Raises
    ------
    ValueError
        A bad parameter; a missing, empty or non-existent ``folder``; an
        unreadable file (named); a deepinv data set that is not on disk while
        ``download=False``.
    ImportError
        ``source="cbsd68"`` without the ``datasets`` package.
    """
    _check_source(source, folder, grayscale, download, owner)
    named = _load(source, grayscale, folder, data_path, download, owner)
    return [img for _, img in named]


# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------


def _plan_patches(shapes, names, n_patches, patch_size, seed, n_name):
    """Draw (image index, row, col) of each patch; see :func:`extract_patches`."""
    if len(shapes) == 0:
        raise ValueError("images must contain at least one image")
    n_pos_h, n_pos_w = [], []
    for (h, w), name in zip(shapes, names, strict=True):
        if h < patch_size or w < patch_size:
            raise ValueError(
                f"image {name} of size {h}x{w} is smaller than patch_size={patch_size}"
            )
        n_pos_h.append(h - patch_size + 1)
        n_pos_w.append(w - patch_size + 1)
    capacity = [a * b for a, b in zip(n_pos_h, n_pos_w, strict=True)]
    if n_patches > sum(capacity):
        raise ValueError(
            f"{n_name}={n_patches} exceeds the {sum(capacity)} distinct "
            f"{patch_size}x{patch_size} patch positions of the "
            f"{len(shapes)} image(s)"
        )

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(shapes))
    # Round-robin over the permuted images, skipping the exhausted ones.
    counts = [0] * len(shapes)
    owner = []
    while len(owner) < n_patches:
        for j in order:
            if len(owner) == n_patches:
                break
            if counts[j] < capacity[j]:
                counts[j] += 1
                owner.append(int(j))
    # Distinct random positions within each image.
    positions = {}
    for j in range(len(shapes)):
        if counts[j]:
            flat = rng.choice(capacity[j], size=counts[j], replace=False)
            rows, cols = (flat // n_pos_w[j]).tolist(), (flat % n_pos_w[j]).tolist()
            positions[j] = list(zip(rows, cols, strict=True))
    plan, used = [], [0] * len(shapes)
    for j in owner:
        row, col = positions[j][used[j]]
        used[j] += 1
        plan.append((j, row, col))
    return plan


def _cut(images, names, n_patches, patch_size, seed, n_name, return_index=False):
    """The patches of :func:`extract_patches` (arguments already validated)."""
    shapes = [tuple(img.shape[-2:]) for img in images]
    plan = _plan_patches(shapes, names, n_patches, patch_size, seed, n_name)
    p = patch_size
    patches = torch.stack(
        [images[j][:, r : r + p, c : c + p] for j, r, c in plan]
    ).contiguous()
    if return_index:
        return patches, torch.tensor([j for j, _, _ in plan], dtype=torch.long)
    return patches


def extract_patches(images, n_patches, patch_size, seed, *, return_index=False):
    """Cut square patches at random, seeded positions.

    The patches are spread over the images: the images are visited
    round-robin in a seeded random order (patch ``k`` comes from the
    ``k mod n``-th image of that order while none is exhausted), and the
    top-left corners within one image are distinct positions drawn without
    replacement. Everything comes from ``numpy.random.default_rng(seed)``, so
    the same inputs and seed give the same patches.

    Parameters
    ----------
    images : sequence of torch.Tensor
        Images of shape ``(C, H, W)`` with the same ``C`` (sizes may differ).
    n_patches : int
        Number of patches, ``>= 1`` and at most the number of distinct
        positions, ``sum over images of (H - p + 1) (W - p + 1)``.
    patch_size : int
        Side ``p >= 1`` of the square patches; every image must be at least
        ``p x p``.
    seed : int
        Non-negative seed.
    return_index : bool, default=False
        Also return the index (in ``images``) of the image of each patch.

    Returns
    -------
    patches : torch.Tensor
        Shape ``(n_patches, C, p, p)``, dtype and device of the images.
    image_index : torch.Tensor
        Only if ``return_index``: long tensor of shape ``(n_patches,)``.

    Raises
    ------
    ValueError
        Bad ``n_patches``, ``patch_size`` or ``seed``; no image; an image
        smaller than the patch (named ``images[i]``); more patches than
        distinct positions; images with different channel counts.
    """
    images = list(images)
    n_patches = check_int(n_patches, "n_patches", 1)
    patch_size = check_int(patch_size, "patch_size", 1)
    seed = check_int(seed, "seed", 0)
    names = [f"images[{i}]" for i in range(len(images))]
    for img, name in zip(images, names, strict=True):
        if not isinstance(img, torch.Tensor) or img.ndim != 3:
            raise ValueError(
                f"image {name} must be a tensor of shape (C, H, W), got "
                f"{getattr(img, 'shape', type(img).__name__)}"
            )
    if len({img.shape[0] for img in images}) > 1:
        raise ValueError(
            "images must all have the same number of channels, got "
            f"{sorted({img.shape[0] for img in images})}"
        )
    return _cut(images, names, n_patches, patch_size, seed, "n_patches", return_index)


def split_images(n_images):
    """Indices of the training and test images in a list of ``n_images``.

    The two-way split of :func:`make_train_test`; with a validation set, see
    :func:`split_train_val_test`.

    The last ``max(1, n_images // 3)`` images are for testing, the others for
    training.

    Parameters
    ----------
    n_images : int
        Number of images, ``>= 2``.

    Returns
    -------
    train_idx, test_idx : list of int
        Disjoint index lists covering ``range(n_images)``.
    """
    if n_images < 2:
        raise ValueError(
            "at least 2 images are needed to build disjoint training and test "
            f"images, the source gave {n_images}"
        )
    n_test = max(1, n_images // 3)
    return list(range(n_images - n_test)), list(range(n_images - n_test, n_images))


def split_train_val_test(n_images):
    """Indices of the training, validation and test images of ``n_images``.

    The test images are those of :func:`split_images` (the last
    ``max(1, n_images // 3)``); the ``max(1, n_images // 6)`` images just
    before them are for validation, the others for training. Whole images go
    to one set, so no patch of a validation or test image is ever trained on
    (``docs/data.md``, "Patches").

    Parameters
    ----------
    n_images : int
        Number of images, ``>= 3``.

    Returns
    -------
    train_idx, val_idx, test_idx : list of int
        Disjoint, non-empty index lists covering ``range(n_images)``.

    Raises
    ------
    ValueError
        Fewer than 3 images.
    """
    if n_images < 3:
        raise ValueError(
            "at least 3 images are needed to build disjoint training, validation "
            f"and test images, the source gave {n_images}"
        )
    n_test = max(1, n_images // 3)
    n_val = max(1, n_images // 6)
    n_train = n_images - n_test - n_val
    return (
        list(range(n_train)),
        list(range(n_train, n_train + n_val)),
        list(range(n_train + n_val, n_images)),
    )


def _patch_sets(named, splits, counts, count_names, patch_size, seed):
    """Patches of each index set of ``splits`` (arguments already validated).

    Set ``k`` is cut with :func:`extract_patches`'s rule from the ``k``-th
    word of ``numpy.random.SeedSequence(seed).generate_state``; the words
    are a prefix-stable stream, so adding a set leaves the earlier ones'
    positions unchanged.
    """
    seeds = np.random.SeedSequence(seed).generate_state(len(splits))
    out = []
    for idx, n, n_name, s in zip(splits, counts, count_names, seeds, strict=True):
        images = [named[i][1] for i in idx]
        names = [repr(named[i][0]) for i in idx]
        out.append(_cut(images, names, n, patch_size, int(s), n_name))
    return tuple(out)


def make_splits(
    source="skimage",
    *,
    n_train,
    n_val,
    n_test,
    patch_size,
    grayscale=True,
    seed=0,
    folder=None,
    data_path=None,
    download=False,
    owner="",
):
    """Training, validation and test patches cut from disjoint sets of images.

    The images of the source (see :func:`load_images`) are split by
    :func:`split_train_val_test` (test: the last third; validation: the
    sixth before it; training: the rest, at least one image each). The three
    sets are drawn with :func:`extract_patches` from the words 0 (train),
    1 (test) and 2 (validation) of ``numpy.random.SeedSequence(seed)``: the
    training and test positions are those :func:`make_train_test` draws
    from the same images. The validation patches are what a tuning protocol
    may look at (``docs/tuning.md``); the test patches are only reported.

    Parameters
    ----------
    source : str, default="skimage"
        Image source, see :func:`load_images`.
    n_train, n_val, n_test : int
        Numbers of training, validation and test patches (``>= 1``).
    patch_size : int
        Side of the square patches (``>= 1``).
    grayscale : bool, default=True
        One channel if ``True``, else three.
    seed : int, default=0
        Non-negative seed of the patch positions.
    folder, data_path, download, owner
        See :func:`load_images`.

    Returns
    -------
    x_train, x_val, x_test : torch.Tensor
        Shapes ``(n, C, patch_size, patch_size)`` with ``n`` = ``n_train``,
        ``n_val``, ``n_test``; float32 in ``[0, 1]``.

    Raises
    ------
    ValueError
        Bad parameters (named), fewer than 3 images, or more patches than the
        images of a set can give.
    """

    def split(n):
        train, val, test = split_train_val_test(n)
        return train, test, val  # seed words 0, 1, 2

    x_train, x_test, x_val = _validated_sets(
        split,
        {"n_train": n_train, "n_test": n_test, "n_val": n_val},
        patch_size,
        seed,
        (source, grayscale, folder, data_path, download, owner),
    )
    return x_train, x_val, x_test


def _validated_sets(split, counts, patch_size, seed, where):
    """Validate, load ``where`` = (source, grayscale, folder, data_path,
    download, owner), split the images and cut ``counts`` patches per set."""
    source, grayscale, folder, data_path, download, owner = where
    counts = {k: check_int(v, k, 1, owner=owner) for k, v in counts.items()}
    patch_size = check_int(patch_size, "patch_size", 1, owner=owner)
    seed = check_int(seed, "seed", 0, owner=owner)
    _check_source(source, folder, grayscale, download, owner)
    named = _load(source, grayscale, folder, data_path, download, owner)
    return _patch_sets(
        named,
        split(len(named)),
        tuple(counts.values()),
        tuple(counts),
        patch_size,
        seed,
    )


def make_train_test(
    source="skimage",
    *,
    n_train,
    n_test,
    patch_size,
    grayscale=True,
    seed=0,
    folder=None,
    data_path=None,
    download=False,
    owner="",
):
    """Training and test patches cut from disjoint sets of images (no validation).

    The two-way split, for callers that need no validation set; the datasets
    use :func:`make_splits`. The images of the source (see
    :func:`load_images`) are split by :func:`split_images`: the last third
    (at least one image) gives the test patches, the rest the training
    patches. Both sets are drawn with
    :func:`extract_patches` from two seeds derived from ``seed`` by
    ``numpy.random.SeedSequence``.

    Parameters
    ----------
    source : str, default="skimage"
        Image source, see :func:`load_images`.
    n_train, n_test : int
        Numbers of training and test patches (``>= 1``).
    patch_size : int
        Side of the square patches (``>= 1``).
    grayscale : bool, default=True
        One channel if ``True``, else three.
    seed : int, default=0
        Non-negative seed of the patch positions.
    folder, data_path, download, owner
        See :func:`load_images`.

    Returns
    -------
    x_train : torch.Tensor
        Shape ``(n_train, C, patch_size, patch_size)``, float32 in ``[0, 1]``.
    x_test : torch.Tensor
        Shape ``(n_test, C, patch_size, patch_size)``, float32 in ``[0, 1]``.

    Raises
    ------
    ValueError
        Bad parameters (named), fewer than 2 images, or more patches than the
        training or test images can give.
    """
    return _validated_sets(
        split_images,
        {"n_train": n_train, "n_test": n_test},
        patch_size,
        seed,
        (source, grayscale, folder, data_path, download, owner),
    )

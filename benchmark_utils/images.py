"""Image sources and deterministic patch extraction.

Images are float32 tensors of shape ``(C, H, W)`` with values in ``[0, 1]``.
Sources:

- ``"skimage"`` (default): natural images shipped inside the scikit-image
  wheel (:data:`SKIMAGE_IMAGES`); no network access is ever needed.
- ``"kodak24"``, ``"bsds500"``, ``"cbsd68"``: the deepinv 0.5 dataset
  classes (``deepinv.datasets.Kodak24``, ``BSDS500``, ``CBSD68``), stored under
  ``data_path`` (deepinv's cache directory when ``None``) and downloaded only
  when ``download=True``.
- ``"folder"``: every ``.png``, ``.jpg`` or ``.jpeg`` file of a folder.

:func:`extract_patches` cuts patches at positions drawn from a local
``numpy.random.Generator`` (the global RNGs are never used) and
:func:`make_train_test` builds training and test patches from disjoint sets of
images.
"""

import numbers
import os
from pathlib import Path

import numpy as np
import torch

#: Natural images of ``skimage.data`` that load offline from files inside the
#: scikit-image wheel, in the order used to split train and test images (see
#: :func:`make_train_test`). ``"motorcycle"`` is the left view of
#: ``skimage.data.stereo_motorcycle()``. Not included: ``clock`` (motion
#: blurred on purpose, so not a clean ground truth) and the images that
#: scikit-image fetches over the network with pooch (e.g. ``eagle``, ``lily``,
#: ``kidney``, ``skin``).
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

#: File suffixes read by the ``"folder"`` source (case-insensitive).
FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg")

#: ITU-R BT.601 luma weights (those of PIL's ``"L"`` conversion) used to turn
#: colour images into grayscale.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_KODAK_SUBDIR = ("Kodak-Lossless-True-Color-Image-Suite-master", "PhotoCD_PCD0992")
_BSDS_SUBDIR = ("BSDS500-master", "BSDS500", "data", "images")
_CBSD_FILE = "data-00000-of-00001.arrow"


# --------------------------------------------------------------------------
# Conversion helpers
# --------------------------------------------------------------------------


def _array_to_tensor(array, grayscale, name):
    """Convert an image array (H, W[, C]) to a float32 tensor in [0, 1]."""
    array = np.asarray(array)
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
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
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


def _pil_to_array(img):
    """Array of a PIL image: gray modes kept as they are, others as RGB."""
    if img.mode in ("1", "L", "I", "I;16", "I;16L", "I;16B", "F", "RGB"):
        array = np.asarray(img)
        if img.mode == "I":  # 32-bit integers: 16-bit PNGs in older PIL
            array = np.clip(array, 0, 65535).astype(np.uint16)
        return array
    return np.asarray(img.convert("RGB"))


def _read_image_file(path, grayscale):
    """Read one image file as a float32 (C, H, W) tensor in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            array = _pil_to_array(img)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image file {str(path)!r}: {err}") from err
    return _array_to_tensor(array, grayscale, repr(str(path)))


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------


def _skimage_array(name):
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def _load_skimage(grayscale):
    return [
        (name, _array_to_tensor(_skimage_array(name), grayscale, repr(name)))
        for name in SKIMAGE_IMAGES
    ]


def _load_folder(folder, grayscale):
    if not isinstance(folder, str | os.PathLike) or str(folder) == "":
        raise ValueError(
            f"folder must be a directory path for source='folder', got {folder!r}"
        )
    path = Path(folder)
    if not path.exists():
        raise ValueError(f"folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"folder {str(path)!r} is not a directory")
    files = sorted(
        p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
    )
    if not files:
        raise ValueError(
            f"folder {str(path)!r} contains no image file "
            f"({', '.join(FOLDER_SUFFIXES)})"
        )
    return [(p.name, _read_image_file(p, grayscale)) for p in files]


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


def _load_kodak24(data_path, download, grayscale):
    from deepinv.datasets import Kodak24

    root = _deepinv_root(data_path, "Kodak24")
    try:
        dataset = Kodak24(
            root=str(root), download=download, verbose=False, use_dict_output=True
        )
    except RuntimeError as err:  # deepinv: not found (or checksum mismatch)
        raise _not_found(
            "kodak24", root, f"{Path(*_KODAK_SUBDIR)}/01.png ... 24.png"
        ) from err
    files = sorted(Path(p) for p in dataset.x_paths)
    return [(p.name, _read_image_file(p, grayscale)) for p in files]


def _load_bsds500(data_path, download, grayscale):
    from deepinv.datasets import BSDS500

    root = _deepinv_root(data_path, "BSDS500")
    # deepinv's BSDS500 refuses to load without the archive it downloaded
    # (it creates ``root`` first), so check before building it.
    if not download and not (root / "download.zip").is_file():
        raise _not_found(
            "bsds500",
            root,
            f"download.zip and {Path(*_BSDS_SUBDIR)}/{{train,test}}/*.jpg",
        )
    dataset = BSDS500(
        root=str(root), download=download, train=True, use_dict_output=True
    )
    if len(dataset.file_list) == 0:
        raise _not_found(
            "bsds500",
            root,
            f"download.zip and {Path(*_BSDS_SUBDIR)}/{{train,test}}/*.jpg",
        )
    return [(Path(p).name, _read_image_file(p, grayscale)) for p in dataset.file_list]


def _load_cbsd68(data_path, download, grayscale):
    root = _deepinv_root(data_path, "CBSD68")
    if not download and not (root / _CBSD_FILE).is_file():
        raise _not_found(
            "cbsd68", root, f"the HuggingFace dataset saved to disk ({_CBSD_FILE})"
        )
    try:  # a local 'datasets' folder (benchopt's) may shadow the package
        from datasets import load_from_disk  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "source='cbsd68' needs the HuggingFace 'datasets' package, which "
            "deepinv.datasets.CBSD68 uses to read the data: pip install datasets"
        ) from err
    from deepinv.datasets import CBSD68

    try:
        dataset = CBSD68(root=str(root), download=download, use_dict_output=True)
    except RuntimeError as err:  # deepinv: not found (or checksum mismatch)
        raise _not_found(
            "cbsd68", root, f"the HuggingFace dataset saved to disk ({_CBSD_FILE})"
        ) from err
    out = []
    for i in range(len(dataset)):
        name = f"cbsd68[{i}]"
        out.append(
            (name, _array_to_tensor(_pil_to_array(dataset[i]["x"]), grayscale, name))
        )
    return out


def _load_named(source, grayscale, folder, data_path, download):
    """Validate the arguments and load ``[(name, image), ...]``."""
    if not isinstance(source, str) or source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if not isinstance(grayscale, bool | np.bool_):
        raise ValueError(f"grayscale must be a bool, got {grayscale!r}")
    if not isinstance(download, bool | np.bool_):
        raise ValueError(f"download must be a bool, got {download!r}")
    grayscale, download = bool(grayscale), bool(download)
    if source == "skimage":
        return _load_skimage(grayscale)
    if source == "folder":
        return _load_folder(folder, grayscale)
    loader = {
        "kodak24": _load_kodak24,
        "bsds500": _load_bsds500,
        "cbsd68": _load_cbsd68,
    }[source]
    return loader(data_path, download, grayscale)


def load_images(
    source="skimage", *, grayscale=True, folder=None, data_path=None, download=False
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
        For ``source="folder"`` only: a directory whose ``.png``, ``.jpg`` and
        ``.jpeg`` files (not sub-directories) are loaded, sorted by file name.
        Alpha channels are dropped, 16-bit images scaled by 1/65535.
    data_path : str or pathlib.Path, optional
        Root directory of the deepinv data sets (their ``root`` argument);
        ``None`` means deepinv's default cache directory.
    download : bool, default=False
        Whether the deepinv data sets may be downloaded into ``data_path``
        when missing. Never needed for ``"skimage"`` and ``"folder"``.

    Returns
    -------
    images : list of torch.Tensor
        Float32 tensors of shape ``(C, H, W)`` with values in ``[0, 1]``,
        ``C = 1`` if ``grayscale`` else 3; sizes may differ between images.

    Raises
    ------
    ValueError
        Unknown ``source``; missing, empty or non-existent ``folder``; an
        unreadable file (named); a deepinv data set that is not on disk while
        ``download=False``.
    ImportError
        ``source="cbsd68"`` without the ``datasets`` package.
    """
    return [
        img for _, img in _load_named(source, grayscale, folder, data_path, download)
    ]


# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------


def _plan_patches(shapes, names, n_patches, patch_size, seed, n_name):
    """Draw (image index, row, col) of each patch; see :func:`extract_patches`."""
    n_patches = _check_count(n_patches, n_name)
    patch_size = _check_count(patch_size, "patch_size")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
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

    rng = np.random.default_rng(int(seed))
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
            positions[j] = list(
                zip(
                    (flat // n_pos_w[j]).tolist(),
                    (flat % n_pos_w[j]).tolist(),
                    strict=True,
                )
            )
    plan, used = [], [0] * len(shapes)
    for j in owner:
        row, col = positions[j][used[j]]
        used[j] += 1
        plan.append((j, row, col))
    return plan


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _extract(images, names, n_patches, patch_size, seed, n_name, return_index):
    images = list(images)
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
    shapes = [tuple(img.shape[-2:]) for img in images]
    plan = _plan_patches(shapes, names, n_patches, patch_size, seed, n_name)
    p = int(patch_size)
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
    names = [f"images[{i}]" for i in range(len(images))]
    return _extract(
        images, names, n_patches, patch_size, seed, "n_patches", return_index
    )


def split_images(n_images):
    """Indices of the training and test images in a list of ``n_images``.

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
):
    """Training and test patches cut from disjoint sets of images.

    The images of the source (see :func:`load_images`) are split by
    :func:`split_images`: the last third (at least one image) gives the test
    patches, the rest the training patches. Both sets are drawn with
    :func:`extract_patches` from two seeds derived from ``seed``.

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
    folder, data_path, download
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
    n_train = _check_count(n_train, "n_train")
    n_test = _check_count(n_test, "n_test")
    patch_size = _check_count(patch_size, "patch_size")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    named = _load_named(source, grayscale, folder, data_path, download)
    train_idx, test_idx = split_images(len(named))
    seed_train, seed_test = np.random.SeedSequence(int(seed)).generate_state(2)
    x_train = _extract(
        [named[i][1] for i in train_idx],
        [repr(named[i][0]) for i in train_idx],
        n_train,
        patch_size,
        int(seed_train),
        "n_train",
        False,
    )
    x_test = _extract(
        [named[i][1] for i in test_idx],
        [repr(named[i][0]) for i in test_idx],
        n_test,
        patch_size,
        int(seed_test),
        "n_test",
        False,
    )
    return x_train, x_test

"""Image sources (``docs/data.md``): float32 (C, H, W) tensors in [0, 1].

Sources (:data:`SOURCES`): ``"skimage"`` (the offline default, photographs
shipped inside the scikit-image wheel), ``"kodak24"``, ``"bsds500"``,
``"cbsd68"`` (deepinv's data sets, downloaded only with ``download=True``)
and ``"folder"`` (the PNG and JPEG files of a folder). Every image goes
through one conversion (:func:`_to_tensor`: grayscale modes kept, alpha
dropped, BT.601 luma for grayscale); a file that cannot be decoded gives a
one-line ``ValueError`` naming it.
"""

import os
from pathlib import Path

import numpy as np
import torch

from .validation import check_bool, check_choice, fail

#: The photographs of everyday scenes and textures among the images of
#: ``skimage.data`` that load offline (``docs/data.md``, "The offline
#: default"); ``"motorcycle"`` is the left view of ``stereo_motorcycle()``.
#: Left out: microscopy, medical, astronomical, synthetic and binary images,
#: ``clock`` (motion-blurred on purpose) and ``cat`` (= ``chelsea``).
SKIMAGE_IMAGES = (
    "camera",
    "astronaut",
    "brick",
    "coffee",
    "coins",
    "grass",
    "motorcycle",
    "gravel",
    "chelsea",
    "rocket",
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
    """``[(name, image), ...]`` of a source, in its order.

    ``source``: ``"skimage"`` (:data:`SKIMAGE_IMAGES`), ``"kodak24"`` (24
    images, file-name order), ``"bsds500"`` (the 400 images of deepinv's
    ``train=True``), ``"cbsd68"`` (68 images; needs the ``datasets``
    package) or ``"folder"`` (the ``.png``, ``.jpg``, ``.jpeg`` files of
    ``folder``, by file name). ``grayscale``: one channel (BT.601 luma), else
    three (grey images repeated). ``data_path``: root of deepinv's data sets
    (None: its cache); ``download``: whether they may be downloaded there.
    Images are float32 (C, H, W) in [0, 1]; sizes may differ.

    Raises ``ValueError`` for a bad parameter, a missing or empty folder, an
    unreadable file (named) or a data set not on disk without ``download``.
    """
    _check_source(source, folder, grayscale, download, owner)
    return _load(source, grayscale, folder, data_path, download, owner)

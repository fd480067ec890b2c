"""Image sources (benchmark_utils.images); offline, no downloads.

Tests write their own small image files, laid out as deepinv expects for its
data sets; the HuggingFace ``datasets`` package that CBSD68 reads through is
replaced by a stand-in module.
"""

import socket
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark_utils.images import LUMA_WEIGHTS, SKIMAGE_IMAGES, load_images
from tests.bench_helpers import benchmark, get_dataset


def _images(*args, **kwargs):
    """The images of ``load_images``, without their names."""
    return [img for _, img in load_images(*args, **kwargs)]


@pytest.fixture(scope="module")
def gray_images():
    return _images()


def _write_png(path, array):
    Image.fromarray(np.asarray(array)).save(path)


def _constant_images(folder, levels, size=(20, 24)):
    """Write one constant grayscale PNG per level, named in level order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, level in enumerate(levels):
        _write_png(folder / f"img{i:02d}.png", np.full(size, level, dtype=np.uint8))


# --------------------------------------------------------------------------
# skimage source
# --------------------------------------------------------------------------


def test_skimage_images_offline(monkeypatch):
    def _no_network(*args, **kwargs):
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    images = _images("skimage", grayscale=False)
    assert len(images) == len(SKIMAGE_IMAGES) >= 10
    for img in images:
        assert img.dtype == torch.float32
        assert img.ndim == 3 and img.shape[0] == 3
        assert img.min() >= 0 and img.max() <= 1


def test_skimage_gray(gray_images):
    assert len(gray_images) == len(SKIMAGE_IMAGES)
    for img in gray_images:
        assert img.dtype == torch.float32 and img.shape[0] == 1
        assert img.min() >= 0 and img.max() <= 1
        assert min(img.shape[1:]) >= 300
    # camera is grayscale uint8: exact /255 scaling, and colour repeats it
    camera_rgb = _images(grayscale=False)[SKIMAGE_IMAGES.index("camera")]
    camera = gray_images[SKIMAGE_IMAGES.index("camera")]
    torch.testing.assert_close(camera_rgb, camera.repeat(3, 1, 1))
    assert torch.equal(camera * 255, torch.round(camera * 255))


# --------------------------------------------------------------------------
# Folder source
# --------------------------------------------------------------------------


def test_folder_source(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(12, 10), dtype=np.uint8)
    ramp = np.add.outer(np.arange(11), np.arange(9))[..., None] * [6, 10, 14]
    rgb = (20 + ramp).astype(np.uint8)  # smooth, so JPEG is nearly exact
    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    rgba = np.concatenate([rgb, np.full((11, 9, 1), 7, dtype=np.uint8)], axis=-1)
    _write_png(tmp_path / "b_gray.png", gray)
    _write_png(tmp_path / "a_rgb.PNG", rgb)
    _write_png(tmp_path / "d_red.png", red)
    _write_png(tmp_path / "e_rgba.png", rgba)
    Image.fromarray(rgb).save(tmp_path / "c_photo.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "f_photo.jpeg", quality=95)
    Image.fromarray(np.array([[0, 65535], [1000, 30000]], dtype=np.uint16)).save(
        tmp_path / "g_16bit.png"
    )
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    _write_png(tmp_path / "sub" / "ignored.png", gray)

    color = _images("folder", folder=tmp_path, grayscale=False)
    assert [tuple(x.shape) for x in color] == [
        (3, 11, 9),
        (3, 12, 10),
        (3, 11, 9),
        (3, 8, 8),
        (3, 11, 9),
        (3, 11, 9),
        (3, 2, 2),
    ]
    expected_rgb = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(color[0], expected_rgb)  # a_rgb.PNG
    torch.testing.assert_close(
        color[1], torch.from_numpy(gray).float().repeat(3, 1, 1) / 255
    )
    torch.testing.assert_close(color[4], expected_rgb)  # alpha dropped
    assert (color[2] - expected_rgb).abs().mean() < 0.02  # lossy JPEG
    torch.testing.assert_close(
        color[6][0], torch.tensor([[0, 65535], [1000, 30000]]) / 65535.0
    )

    gray_images = _images("folder", folder=str(tmp_path))
    assert all(x.shape[0] == 1 and x.dtype == torch.float32 for x in gray_images)
    assert all(x.min() >= 0 and x.max() <= 1 for x in gray_images)
    torch.testing.assert_close(
        gray_images[3], torch.full((1, 8, 8), LUMA_WEIGHTS[0]), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(gray_images[1][0], torch.from_numpy(gray).float() / 255)


def test_folder_bad_input(tmp_path):
    with pytest.raises(ValueError, match="folder=None .*a directory path"):
        _images("folder")
    with pytest.raises(ValueError, match="folder='/tmp' .*unless source='folder'"):
        _images("skimage", folder="/tmp")
    with pytest.raises(ValueError, match="folder=.*this one does not exist"):
        _images("folder", folder=tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ValueError, match="not a directory"):
        _images("folder", folder=tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match="no image file"):
        _images("folder", folder=empty)


@pytest.mark.parametrize(
    "name, content",
    [
        ("zero.png", b""),
        ("broken.jpg", b"this is not a jpeg"),
        ("truncated.png", None),  # a valid header, pixels cut off
    ],
)
def test_folder_unreadable_file(tmp_path, name, content):
    _write_png(tmp_path / "good.png", np.zeros((4, 4), dtype=np.uint8))
    if content is None:
        _write_png(
            tmp_path / "full.png",
            (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8),
        )
        content = (tmp_path / "full.png").read_bytes()[:100]
        (tmp_path / "full.png").unlink()
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot read image file '.*{name}'") as err:
        _images("folder", folder=tmp_path)
    # one line, and no chained PIL traceback
    assert "\n" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_folder_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _constant_images(tmp_path / "pics", [10, 20])
    assert len(_images("folder", folder="~/pics")) == 2


def test_folder_path_with_comma_through_benchopt_parser(tmp_path):
    """The quoting documented in docs/data.md, parsed as ``benchopt run -d``."""
    folder = tmp_path / "my pics, 2024"
    _constant_images(folder, [10, 20, 30])
    quoted = f"denoising[source=folder,folder='{folder}',n_train=2,n_test=1]"
    [(cls, params)] = benchmark().check_dataset_patterns([quoted])
    assert params["folder"] == str(folder)
    dataset = get_dataset(
        "denoising",
        source="folder",
        folder=params["folder"],
        patch_size=8,
        image_size=16,
        n_train=2,
        n_val=1,
        n_test=1,
    )
    assert dataset.get_data()["train"].x.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="Invalid name"):  # unquoted: cut at ","
        benchmark().check_dataset_patterns([quoted.replace("'", "")])


def test_bad_source_and_flags():
    with pytest.raises(ValueError, match="source='imagenet' .*'skimage'.*'folder'"):
        _images("imagenet")
    with pytest.raises(ValueError, match="grayscale='yes' .*True or False"):
        _images(grayscale="yes")
    with pytest.raises(ValueError, match="download=1 .*True or False"):
        _images(download=1)


# --------------------------------------------------------------------------
# deepinv data sets, on small files laid out as deepinv expects
# --------------------------------------------------------------------------


def test_kodak24_layout(tmp_path, monkeypatch):
    from deepinv.datasets import Kodak24
    from deepinv.datasets.utils import calculate_md5_for_folder

    img_dir = tmp_path.joinpath(
        "Kodak-Lossless-True-Color-Image-Suite-master", "PhotoCD_PCD0992"
    )
    img_dir.mkdir(parents=True)
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8) for _ in range(3)]
    for i in (2, 0, 1):  # written out of order, loaded in file-name order
        _write_png(img_dir / f"{i + 1:02d}.png", arrays[i])

    # the real checksum does not match fake files: deepinv reports "not found"
    with pytest.raises(ValueError, match="kodak24.*download=True"):
        _images("kodak24", data_path=tmp_path)

    checksum = calculate_md5_for_folder(str(img_dir))
    monkeypatch.setattr(
        Kodak24,
        "_checksums",
        {"Kodak-Lossless-True-Color-Image-Suite-master/PhotoCD_PCD0992": checksum},
    )
    images = _images("kodak24", data_path=tmp_path, grayscale=False)
    assert len(images) == 3
    for img, arr in zip(images, arrays, strict=True):
        torch.testing.assert_close(img, torch.from_numpy(arr).permute(2, 0, 1) / 255.0)
    gray = _images("kodak24", data_path=str(tmp_path))
    assert [tuple(x.shape) for x in gray] == [(1, 6, 8)] * 3


def test_kodak24_missing(tmp_path):
    with pytest.raises(ValueError, match="data_path=.*download=True"):
        _images("kodak24", data_path=tmp_path / "nothing")


def test_bsds500_layout(tmp_path):
    with pytest.raises(ValueError, match="bsds500.*download=True"):
        _images("bsds500", data_path=tmp_path)
    base = tmp_path.joinpath("BSDS500-master", "BSDS500", "data", "images")
    names = {"train": ["2.jpg", "10.jpg"], "test": ["5.jpg"], "val": ["7.jpg"]}
    for split, files in names.items():
        (base / split).mkdir(parents=True)
        for name in files:
            arr = np.full((9, 7, 3), 20 * int(name.split(".")[0]), dtype=np.uint8)
            Image.fromarray(arr).save(base / split / name, quality=100)
    (tmp_path / "download.zip").write_bytes(b"")  # deepinv's marker of the data
    images = _images("bsds500", data_path=tmp_path, grayscale=False)
    # deepinv's train=True: splits "train" (natural order) then "test"; not "val"
    levels = [round(float(x.mean()) * 255 / 20) for x in images]
    assert levels == [2, 10, 5]
    assert all(x.shape == (3, 9, 7) for x in images)


def test_cbsd68_missing(tmp_path):
    with pytest.raises(ValueError, match="cbsd68.*download=True"):
        _images("cbsd68", data_path=tmp_path)


def _hf_stand_in(monkeypatch, items):
    """Replace the HuggingFace ``datasets`` package by a stand-in module."""
    module = types.ModuleType("datasets")
    module.load_from_disk = lambda root: items
    module.load_dataset = None
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_cbsd68_needs_datasets_package(tmp_path, monkeypatch):
    (tmp_path / "data-00000-of-00001.arrow").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails
    with pytest.raises(ImportError, match="datasets"):
        _images("cbsd68", data_path=tmp_path)


def test_cbsd68_layout(tmp_path, monkeypatch):
    from deepinv.datasets import CBSD68
    from deepinv.datasets.utils import calculate_md5

    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8) for _ in range(2)]
    arrow = tmp_path / "data-00000-of-00001.arrow"
    arrow.write_bytes(b"stand-in for the arrow file")
    # the real checksum does not match: deepinv reports "not found"
    _hf_stand_in(monkeypatch, [{"png": Image.fromarray(a)} for a in arrays])
    with pytest.raises(ValueError, match="cbsd68.*download=True"):
        _images("cbsd68", data_path=tmp_path)
    monkeypatch.setattr(CBSD68, "checksum", calculate_md5(fpath=str(arrow)))
    images = _images("cbsd68", data_path=tmp_path, grayscale=False)
    assert len(images) == 2
    for img, arr in zip(images, arrays, strict=True):
        torch.testing.assert_close(img, torch.from_numpy(arr).permute(2, 0, 1) / 255.0)
    gray = _images("cbsd68", data_path=tmp_path)
    weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float64)[:, None, None]
    expected = (weights * torch.from_numpy(arrays[0]).permute(2, 0, 1) / 255).sum(0)
    torch.testing.assert_close(gray[0][0], expected.float())

"""Training patches and whole evaluation images from disjoint, comparable images.

``benchmark_utils.splits`` (``docs/data.md``): the stratified split by hand,
the comparable-content rule on the offline default, disjoint sets for every
source (small constant images the tests write, one grey level per image, so a
pixel names its image, laid out as deepinv expects), patches, resizing, and
the datasets' three image sets with their own operators and noise. Offline,
no downloads.
"""

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark_utils.evaluation import INIT_CACHE
from benchmark_utils.images import SKIMAGE_IMAGES
from benchmark_utils.splits import (
    central_square,
    extract_patches,
    flat_fraction,
    make_splits,
    resize_short_side,
    split_images,
)
from tests.bench_helpers import get_dataset, setup_run

SMALL = {"n_train": 4, "n_val": 1, "n_test": 1, "patch_size": 16, "image_size": 32}


def _levels(x):
    """Grey levels (0-255) present in images of constant images."""
    return set(torch.round(x * 255).unique().int().tolist())


def _write_levels(folder, levels, suffix=".png", size=(7, 9)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, level in enumerate(levels):
        arr = np.full((*size, 3), level, dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{i + 1:02d}{suffix}", quality=100)


def _three_sets(source, **kw):
    s = make_splits(
        source, n_train=12, n_val=2, n_test=2, patch_size=3, image_size=7, **kw
    )
    return _levels(s.x_train), _levels(s.x_val), _levels(s.x_test)


def _textured(flat_rows, seed):
    """A 64 x 64 image whose first ``flat_rows`` window rows (of 2) are
    constant and the others noise: flat fraction flat_rows / 2."""
    gen = torch.Generator().manual_seed(seed)
    img = 0.5 + 0.2 * torch.randn(1, 64, 64, generator=gen)
    img[:, : 32 * flat_rows] = 0.5
    return img.clamp(0, 1)


# --------------------------------------------------------------------------
# The stratified split
# --------------------------------------------------------------------------


def test_flat_fraction_by_hand():
    assert flat_fraction([_textured(0, 0)]) == 0.0
    assert flat_fraction([_textured(1, 0), _textured(2, 1)]) == 0.75
    assert np.isnan(flat_fraction([torch.zeros(1, 10, 10)]))


def test_split_deals_the_sorted_images_to_the_sets_below_their_share():
    # flat fractions 1, 0.5, 0 (x3 images each) plus one more textured image
    images = [_textured(r, j) for j, r in enumerate([2, 1, 0, 2, 1, 0, 2, 1, 0, 0])]
    train, val, test = split_images(images, n_val=2, n_test=3)
    assert sorted(train + val + test) == list(range(10))
    assert (len(train), len(val), len(test)) == (5, 2, 3)
    # the sorted order (textured first, by decreasing contrast) dealt as
    # train, test, val, train, train, test, train, val, test, train
    flats = [flat_fraction([images[j]]) for j in range(10)]
    for name, idx in (("val", val), ("test", test)):
        # every set spans the range of flat fractions it can
        assert max(flats[j] for j in idx) > min(flats[j] for j in idx), name
    assert abs(np.mean([flats[j] for j in test]) - np.mean(flats)) < 0.2


def test_offline_default_is_comparable_and_natural():
    """The rule of docs/data.md on the offline default, at the default size."""
    s = make_splits(n_train=32, n_val=2, n_test=3, patch_size=32, image_size=128)
    assert s.comparable(), s.flat
    names = [n for group in s.names.values() for n in group]
    assert sorted(names) == sorted(SKIMAGE_IMAGES)
    assert s.x_val.shape == (2, 1, 128, 128) and s.x_test.shape == (3, 1, 128, 128)
    assert s.x_train.shape == (32, 1, 32, 32)


# --------------------------------------------------------------------------
# Each source gives disjoint sets
# --------------------------------------------------------------------------


def test_folder_sets_are_disjoint_images(tmp_path):
    levels = [10, 30, 50, 70, 90, 110, 130]
    _write_levels(tmp_path, levels)
    train, val, test = _three_sets("folder", folder=tmp_path)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(levels)
    assert (len(val), len(test)) == (2, 2)


def test_kodak24_sets_are_disjoint_images(tmp_path, monkeypatch):
    from deepinv.datasets import Kodak24
    from deepinv.datasets.utils import calculate_md5_for_folder

    sub = "Kodak-Lossless-True-Color-Image-Suite-master/PhotoCD_PCD0992"
    levels = [20, 40, 60, 80, 100, 120, 140, 160]
    _write_levels(tmp_path / sub, levels)
    checksum = calculate_md5_for_folder(str(tmp_path / sub))
    monkeypatch.setattr(Kodak24, "_checksums", {sub: checksum})
    train, val, test = _three_sets("kodak24", data_path=tmp_path)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(levels)


def test_bsds500_sets_are_disjoint_images(tmp_path):
    base = tmp_path.joinpath("BSDS500-master", "BSDS500", "data", "images")
    _write_levels(base / "train", [20, 40, 60, 80], ".jpg")
    _write_levels(base / "test", [100, 120], ".jpg")
    (tmp_path / "download.zip").write_bytes(b"")  # deepinv's marker of the data
    sets = _three_sets("bsds500", data_path=tmp_path)
    # JPEG of a constant image: a level may come back off by one
    train, val, test = ({round(v / 20) * 20 for v in s} for s in sets)
    assert not (train & val or train & test or val & test)
    assert train | val | test == {20, 40, 60, 80, 100, 120}


def test_cbsd68_sets_are_disjoint_images(tmp_path, monkeypatch):
    from deepinv.datasets import CBSD68
    from deepinv.datasets.utils import calculate_md5

    levels = [15, 45, 75, 105, 135, 165]
    arrow = tmp_path / "data-00000-of-00001.arrow"
    arrow.write_bytes(b"stand-in for the arrow file")
    module = types.ModuleType("datasets")
    items = [{"png": Image.fromarray(np.full((7, 7, 3), v, np.uint8))} for v in levels]
    module.load_from_disk = lambda root: items
    module.load_dataset = None
    monkeypatch.setitem(sys.modules, "datasets", module)
    monkeypatch.setattr(CBSD68, "checksum", calculate_md5(fpath=str(arrow)))
    train, val, test = _three_sets("cbsd68", data_path=tmp_path)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(levels)


def test_bad_split_parameters(tmp_path):
    _write_levels(tmp_path / "three", [10, 20, 30], size=(9, 12))
    kw = {"n_train": 1, "n_val": 1, "n_test": 1, "patch_size": 2, "image_size": 9}
    folder = tmp_path / "three"
    with pytest.raises(ValueError, match="n_val \\+ n_test=3 .*at most 2"):
        make_splits("folder", folder=folder, **{**kw, "n_test": 2})
    with pytest.raises(ValueError, match="n_val=0"):
        make_splits("folder", folder=folder, **{**kw, "n_val": 0})
    with pytest.raises(ValueError, match="image_size=10 .*at most 9 .*9x12"):
        make_splits("folder", folder=folder, **{**kw, "image_size": 10})
    with pytest.raises(ValueError, match="patch_size=10 .*image_size = 9"):
        make_splits("folder", folder=folder, **{**kw, "patch_size": 10})
    with pytest.raises(ValueError, match="n_train=100 exceeds the 88 distinct"):
        make_splits("folder", folder=folder, **{**kw, "n_train": 100})


# --------------------------------------------------------------------------
# Patches, resizing, central squares
# --------------------------------------------------------------------------


def _coded_images(sizes):
    """float64 images whose pixel (r, c) of image j is j * 1e6 + r * 1e3 + c."""
    images = []
    for j, (h, w) in enumerate(sizes):
        r = torch.arange(h, dtype=torch.float64)[:, None]
        c = torch.arange(w, dtype=torch.float64)[None, :]
        images.append((j * 1e6 + r * 1e3 + c)[None])
    return images


def test_patches_are_crops_at_distinct_positions_round_robin():
    images = _coded_images([(10, 12), (9, 9), (14, 10)])
    p = 4
    patches = extract_patches(images, 30, p, seed=0)
    seen, per_image = set(), [0, 0, 0]
    for patch in patches:
        code = int(patch[0, 0, 0].item())
        j, r, c = code // 10**6, (code % 10**6) // 1000, code % 1000
        torch.testing.assert_close(patch, images[j][:, r : r + p, c : c + p])
        seen.add((j, r, c))
        per_image[j] += 1
    assert len(seen) == 30 and per_image == [10, 10, 10]
    assert torch.equal(patches, extract_patches(images, 30, p, seed=0))
    assert not torch.equal(patches, extract_patches(images, 30, p, seed=1))


def test_patches_leave_global_rng_alone():
    images = _coded_images([(10, 12)])
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    extract_patches(images, 5, 4, seed=0)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002


def test_resize_and_central_square():
    img = torch.rand(3, 40, 60, generator=torch.Generator().manual_seed(0))
    small = resize_short_side(img, 20)
    assert small.shape == (3, 20, 30) and small.dtype == img.dtype
    assert resize_short_side(img, 40) is img
    # anti-aliased: a checkerboard halved is nearly flat grey (aliased
    # sampling would keep one colour of the board)
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float()
    assert float((resize_short_side(board[None], 4) - 0.5).abs().max()) < 0.02
    sq = central_square(small, 20)
    assert torch.equal(sq, small[:, :, 5:25])


# --------------------------------------------------------------------------
# Datasets and objective
# --------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["denoising", "deblurring", "inpainting"])
def test_dataset_gives_three_sets_with_their_operators(task):
    data = get_dataset(task, **{**SMALL, "n_val": 2, "n_test": 3}).get_data()
    assert "setup_error" not in data
    assert data["train"].x.shape == (4, 1, 16, 16)
    assert data["val"].x.shape == data["val"].y.shape == (2, 1, 32, 32)
    assert data["test"].x.shape == (3, 1, 32, 32)
    for name in ("train", "val", "test"):
        s = data[name]
        assert s.forward.image_shape == tuple(s.x.shape[1:])
    assert not set(data["val"].names) & set(data["test"].names)
    # each set its own noise draw
    noise = {k: data[k].y - data[k].forward.A(data[k].x) for k in ("val", "test")}
    assert not torch.allclose(noise["val"], noise["test"][:2])
    if task == "inpainting":  # one mask per image
        masks = data["test"].forward.mask
        assert masks.shape == (3, 1, 32, 32) and not torch.equal(masks[0], masks[1])


def test_bad_n_val_is_returned_as_setup_error():
    data = get_dataset("denoising", **{**SMALL, "n_val": 0}).get_data()
    assert "n_val" in str(data["setup_error"])
    assert data["val"] is None


def test_objective_reports_validation_scores():
    objective, _ = setup_run(
        "ISGD",
        solver_params={"q": 0.0, "batch_size": 2},
        dataset_params={**SMALL, "n_val": 2, "n_test": 2},
        objective_params={"budget": 60, "n_checkpoints": 1, "n_filters": 2},
    )
    result = objective.evaluate_result(**objective.get_one_result())
    assert np.isfinite(result["psnr_val"]) and np.isfinite(result["mse_val"])
    # the validation scores are the validation images': swapping them for
    # the test images makes them the test scores
    ev = objective.evaluation
    ev.oracles["val"] = ev.oracles["test"]
    ev.memory = {}
    INIT_CACHE.clear()  # the theta0 evaluation is cached per cell
    again = objective.evaluate_result(**objective.get_one_result())
    for score in ("psnr", "pooled_psnr", "mse", "ssim"):
        assert again[f"{score}_val"] == pytest.approx(again[f"{score}_test"])
    assert result["psnr_val"] != pytest.approx(result["psnr_test"])

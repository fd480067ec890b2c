"""Training, validation and test sets come from disjoint source images.

``benchmark_utils.images.split_train_val_test`` and ``make_splits``
(``docs/data.md``, "Patches"), for every source: the file sources are small
constant images that the tests write themselves (one grey level per image, so
a patch names its image), laid out as deepinv expects; the skimage source is
checked by recording which images each set is cut from. Offline, no
downloads.
"""

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

import benchmark_utils.images as images_mod
from benchmark_utils.evaluation import INIT_CACHE
from benchmark_utils.images import (
    SKIMAGE_IMAGES,
    extract_patches,
    load_images,
    make_splits,
    split_images,
    split_train_val_test,
)
from tests.bench_helpers import get_dataset, setup_run

SMALL = {"n_train": 4, "n_val": 2, "n_test": 2, "patch_size": 16}


def _levels(x):
    """Grey levels (0-255) present in a set of patches of constant images."""
    return set(torch.round(x * 255).unique().int().tolist())


def _expected_levels(levels):
    """Levels of the train, validation and test images, in the split's order."""
    return tuple({levels[i] for i in idx} for idx in split_train_val_test(len(levels)))


def _three_sets(source, levels, **kw):
    sets = make_splits(
        source, n_train=12, n_val=4, n_test=6, patch_size=3, seed=0, **kw
    )
    return tuple(_levels(x) for x in sets)


# --------------------------------------------------------------------------
# The split of the images
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_images", [3, 4, 5, 6, 7, 12, 15, 24, 68, 400])
def test_split_is_a_partition_with_the_two_way_test_set(n_images):
    train, val, test = split_train_val_test(n_images)
    assert train and val and test
    assert sorted(train + val + test) == list(range(n_images))
    assert test == split_images(n_images)[1]  # the test images do not move
    assert len(val) == max(1, n_images // 6)
    assert max(train) < min(val) and max(val) < min(test)


def test_split_by_hand():
    assert split_train_val_test(3) == ([0], [1], [2])
    assert split_train_val_test(15) == (list(range(8)), [8, 9], list(range(10, 15)))
    assert split_train_val_test(24) == (
        list(range(12)),
        list(range(12, 16)),
        list(range(16, 24)),
    )
    with pytest.raises(ValueError, match="at least 3 images.*gave 2"):
        split_train_val_test(2)


# --------------------------------------------------------------------------
# Each source
# --------------------------------------------------------------------------


def _write_levels(folder, levels, suffix=".png", size=(7, 9)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, level in enumerate(levels):
        arr = np.full((*size, 3), level, dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{i + 1:02d}{suffix}", quality=100)


def test_folder_sets_are_disjoint_images(tmp_path):
    levels = [10, 30, 50, 70, 90, 110, 130]  # 7 images: 4 train, 1 val, 2 test
    _write_levels(tmp_path, levels)
    got = _three_sets("folder", levels, folder=tmp_path)
    assert got == _expected_levels(levels)
    assert got == ({10, 30, 50, 70}, {90}, {110, 130})


def test_kodak24_sets_are_disjoint_images(tmp_path, monkeypatch):
    from deepinv.datasets import Kodak24
    from deepinv.datasets.utils import calculate_md5_for_folder

    sub = "Kodak-Lossless-True-Color-Image-Suite-master/PhotoCD_PCD0992"
    levels = [20, 40, 60, 80, 100, 120, 140, 160]
    _write_levels(tmp_path / sub, levels)
    checksum = calculate_md5_for_folder(str(tmp_path / sub))
    monkeypatch.setattr(Kodak24, "_checksums", {sub: checksum})
    got = _three_sets("kodak24", levels, data_path=tmp_path)
    assert got == _expected_levels(levels)


def test_bsds500_sets_are_disjoint_images(tmp_path):
    base = tmp_path.joinpath("BSDS500-master", "BSDS500", "data", "images")
    # deepinv's train=True lists "train" then "test", each in natural order
    train_levels, test_levels = [20, 40, 60, 80], [100, 120]
    _write_levels(base / "train", train_levels, ".jpg")
    _write_levels(base / "test", test_levels, ".jpg")
    (tmp_path / "download.zip").write_bytes(b"")  # deepinv's marker of the data
    levels = train_levels + test_levels
    got = _three_sets("bsds500", levels, data_path=tmp_path)
    # JPEG of a constant image: a level may come back off by one
    expected = _expected_levels(levels)
    for found, want in zip(got, expected, strict=True):
        assert {round(v / 20) * 20 for v in found} == want


def test_cbsd68_sets_are_disjoint_images(tmp_path, monkeypatch):
    from deepinv.datasets import CBSD68
    from deepinv.datasets.utils import calculate_md5

    levels = [15, 45, 75, 105, 135, 165]
    arrow = tmp_path / "data-00000-of-00001.arrow"
    arrow.write_bytes(b"stand-in for the arrow file")
    module = types.ModuleType("datasets")
    items = [{"png": Image.fromarray(np.full((6, 6, 3), v, np.uint8))} for v in levels]
    module.load_from_disk = lambda root: items
    module.load_dataset = None
    monkeypatch.setitem(sys.modules, "datasets", module)
    monkeypatch.setattr(CBSD68, "checksum", calculate_md5(fpath=str(arrow)))
    got = _three_sets("cbsd68", levels, data_path=tmp_path)
    assert got == _expected_levels(levels)


def test_skimage_sets_are_disjoint_images(monkeypatch):
    calls = []
    cut = images_mod._cut

    def spy(images, names, n_patches, patch_size, seed, n_name, **kw):
        calls.append((n_name, list(names), list(images), seed))
        return cut(images, names, n_patches, patch_size, seed, n_name, **kw)

    monkeypatch.setattr(images_mod, "_cut", spy)
    x_train, x_val, x_test = make_splits(
        n_train=8, n_val=4, n_test=6, patch_size=16, seed=3
    )
    by_set = {n_name: names for n_name, names, _, _ in calls}
    names = [repr(n) for n in SKIMAGE_IMAGES]
    assert by_set == {
        "n_train": names[:8],
        "n_val": ["'retina'", "'motorcycle'"],
        "n_test": names[10:],
    }
    monkeypatch.undo()
    # the returned patches are those cut from the recorded images
    for x, (_, _, imgs, seed) in zip((x_train, x_test, x_val), calls, strict=True):
        assert torch.equal(x, extract_patches(imgs, x.shape[0], 16, seed))
    # shapes and the seed words of the two-way split (same test patches)
    assert x_val.shape == (4, 1, 16, 16)
    assert torch.equal(
        x_test,
        images_mod.make_train_test(n_train=8, n_test=6, patch_size=16, seed=3)[1],
    )


def test_too_few_images_and_bad_n_val(tmp_path):
    _write_levels(tmp_path / "two", [10, 20])
    kw = {"n_train": 1, "n_val": 1, "n_test": 1, "patch_size": 2}
    with pytest.raises(ValueError, match="at least 3 images"):
        make_splits("folder", folder=tmp_path / "two", **kw)
    _write_levels(tmp_path / "three", [10, 20, 30], size=(3, 3))
    with pytest.raises(ValueError, match="n_val"):
        make_splits("folder", folder=tmp_path / "three", **{**kw, "n_val": 0})
    with pytest.raises(ValueError, match="n_val=5 exceeds the 4 distinct"):
        make_splits("folder", folder=tmp_path / "three", **{**kw, "n_val": 5})


# --------------------------------------------------------------------------
# Datasets and objective
# --------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["denoising", "deblurring", "inpainting"])
def test_dataset_gives_a_validation_set(task):
    data = get_dataset(task, **SMALL).get_data()
    assert "setup_error" not in data
    assert data["x_val"].shape == data["y_val"].shape == (2, 1, 16, 16)
    # validation patches are none of the training or test patches
    for other in ("x_train", "x_test"):
        flat = data[other].flatten(1)
        for patch in data["x_val"].flatten(1):
            assert not (flat == patch).all(dim=1).any()
    # its own noise draw
    noise_val = data["y_val"] - data["forward"].A(data["x_val"])
    noise_test = data["y_test"][:2] - data["forward"].A(data["x_test"][:2])
    assert not torch.allclose(noise_val, noise_test)


def test_bad_n_val_is_returned_as_setup_error():
    data = get_dataset("denoising", **{**SMALL, "n_val": 0}).get_data()
    assert "n_val" in str(data["setup_error"])
    assert data["x_val"] is None and data["y_val"] is None


def test_objective_reports_psnr_val():
    objective, solver = setup_run(
        "ISGD",
        solver_params={"q": 0.0, "batch_size": 2},
        dataset_params=SMALL,
        objective_params={"budget": 60, "n_checkpoints": 1, "n_filters": 2},
    )
    result = objective.evaluate_result(**objective.get_one_result())
    assert np.isfinite(result["psnr_val"])
    # psnr_val scores the validation images: swapping them for the test
    # images makes it the test PSNR
    ev = objective.evaluation
    ev.oracles["val"] = ev.oracles["test"]
    ev.memory = {}
    # the theta0 evaluation is cached per cell: forget it after the swap
    INIT_CACHE.clear()
    again = objective.evaluate_result(**objective.get_one_result())
    assert again["psnr_val"] == pytest.approx(again["psnr_test"])
    assert result["psnr_val"] != pytest.approx(result["psnr_test"])


def test_load_images_unchanged_by_the_split():
    # the split never reorders or drops source images
    assert len(load_images()) == len(SKIMAGE_IMAGES)

"""The inpainting dataset (datasets/inpainting.py) and its lower-level checks.

The operator's adjoint and spectrum are tested for every task in
tests/test_forward.py (``test_adjoint``, ``test_spectrum_matches_dense_matrix``
and ``test_inpainting_mask``); here: the dataset's data dict, its mask and
noise, the objective's refusal of mu = 0, and a short learning run.
"""

import math

import pytest
import torch

from tests.bench_helpers import get_dataset, setup_run

SMALL = {"n_train": 4, "n_val": 1, "n_test": 2, "patch_size": 16, "image_size": 48}


def _data(**params):
    return get_dataset("inpainting", **{**SMALL, **params}).get_data()


def test_inpainting_data_mask_and_noise():
    data = _data(mask_ratio=0.5, noise_level=20.0)
    assert data["task"] == "inpainting"
    assert data["train"].x.shape == (4, 1, 16, 16)
    assert data["test"].x.shape == (2, 1, 48, 48)
    for name, n_pixels in (("train", 16 * 16), ("test", 48 * 48)):
        s = data[name]
        fwd, mask = s.forward, s.forward.mask
        assert fwd.name == "inpainting" and fwd.lambda_min == 0.0 and fwd.norm_sq == 1.0
        # one mask per image, exactly round(0.5 n_pixels) pixels removed
        assert mask.shape == (s.x.shape[0], 1, *s.x.shape[-2:])
        assert set(mask.unique().tolist()) == {0.0, 1.0}
        assert (mask == 0).flatten(1).sum(dim=1).tolist() == [n_pixels // 2] * len(mask)
        aty = fwd.A_adjoint(s.y)
        assert bool((aty[mask.expand_as(aty) == 0] == 0).all())
        # kept pixels: y = x + sigma * noise with sigma = 20 / 255
        resid = (s.y - s.x)[mask.expand_as(s.y) == 1]
        sigma = 20.0 / 255.0
        assert abs(float(resid.std()) / sigma - 1.0) < 0.2
        assert abs(float(resid.mean())) < 3 * sigma / math.sqrt(resid.numel())


def test_inpainting_mask_follows_ratio_and_seed():
    d1 = get_dataset("inpainting", seed=0, **SMALL, mask_ratio=0.25).get_data()
    d2 = get_dataset("inpainting", seed=0, **SMALL, mask_ratio=0.25).get_data()
    d3 = get_dataset("inpainting", seed=1, **SMALL, mask_ratio=0.25).get_data()
    mask = d1["train"].forward.mask
    assert (mask == 0).flatten(1).sum(dim=1).tolist() == [64] * 4
    assert torch.equal(mask, d2["train"].forward.mask)
    assert torch.equal(d1["train"].y, d2["train"].y)
    assert not torch.equal(mask, d3["train"].forward.mask)
    # the test images' masks are drawn apart from the training ones
    assert not torch.equal(d1["test"].forward.mask[0], d1["val"].forward.mask[0])


@pytest.mark.parametrize("mask_ratio", [-0.1, 0.96, 1.0])
def test_inpainting_bad_mask_ratio(mask_ratio):
    # returned, not raised: the objective raises it in the dataset's cells
    err = _data(mask_ratio=mask_ratio)["setup_error"]
    assert isinstance(err, ValueError) and "mask_ratio" in str(err)


def test_inpainting_without_mu_is_refused():
    # the objective's set_data path, as benchopt runs it
    with pytest.raises(ValueError, match=r"inpainting lower level needs mu > 0") as err:
        setup_run(
            "ISGD",
            dataset_name="inpainting",
            dataset_params=SMALL,
            objective_params={"mu": 0.0},
        )
    assert "Bilevel imaging[mu=" in str(err.value)
    # with mu > 0 the same problem is accepted and strongly convex
    objective, _ = setup_run("ISGD", dataset_name="inpainting", dataset_params=SMALL)
    oracles = objective.problem.make_oracles()
    assert oracles.strong_convexity() == pytest.approx(objective.mu)


@pytest.mark.parametrize(
    "regulariser,step_size,loss_ratio,gain",
    [("tv", 100.0, 0.97, 0.15), ("crr", 5.0, 0.67, 1.5)],
)
def test_isgd_learns_on_inpainting(regulariser, step_size, loss_ratio, gain):
    # on these 16 x 16 patches CRR's first hypergradient is ~10x larger than
    # on the default data and a step of 100 overshoots: 5 is used here (on
    # the training patches of the 3-way split, steps 2-10 divide the training
    # loss by 4-8, 20 raises it). TV has two parameters: its training loss
    # levels off 5 % below the start (+0.2 dB) for steps 100-300 on these
    # four patches, and diverges at 1000.
    objective, solver = setup_run(
        "ISGD",
        {"batch_size": 2, "q": 0.5, "step_size": step_size},
        dataset_name="inpainting",
        dataset_params={**SMALL, "mask_ratio": 0.4},
        objective_params={
            "regulariser": regulariser,
            "budget": 2000,
            "n_checkpoints": 3,
            "n_filters": 4,
        },
    )
    curve = []

    def callback():
        # as benchopt does: evaluate at every checkpoint, the first at cost 0
        curve.append(objective.evaluate_result(**solver.get_result()))
        return True

    solver.run(callback)
    first, last = curve[0], curve[-1]
    assert first["cost"] == 0 and len(curve) >= 3
    assert last["diverged"] == 0 and last["cost"] >= 2000
    # the training loss (the objective) drops, and the few test images do
    # not get worse
    assert last["value"] < loss_ratio * first["value"]
    assert last["psnr_train"] > first["psnr_train"] + gain
    assert last["psnr_test"] > first["psnr_test"]

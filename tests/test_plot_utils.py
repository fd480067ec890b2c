"""Helpers of the report's plots (benchmark_utils.plot_utils): legend status
marks, curves cut at the budget, short labels and titles, fixed solver
styles, reference lines, image scores."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from benchmark_utils.plot_utils import (
    EXTRA_COLOURS,
    SOLVER_STYLES,
    aggregate,
    clip_at_budget,
    dashed_line,
    first_reach,
    image_scores,
    one_curve,
    reference_values,
    run_budget,
    short_labels,
    solver_styles,
    split_name,
    status_tag,
    title_names,
    upscale,
)


def runs(*last_statuses, column="objective_status"):
    """Two rows per repetition; only the last row's status counts."""
    rows = []
    for rep, status in enumerate(last_statuses):
        rows.append({"idx_rep": rep, "stop_val": 2, column: status})
        # an earlier row with another status must not matter
        rows.append({"idx_rep": rep, "stop_val": 1, column: "ok"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "statuses, tag",
    [
        (("ok", "budget"), ""),
        (("timeout",), " (timeout)"),
        (("timeout", "ok", "ok"), " (timeout 1/3 reps)"),
        (("stalled", "stalled"), " (stalled)"),
        (("diverged", "stalled", "ok"), " (diverged 1/3, stalled 1/3 reps)"),
        (("collapsed", "ok"), " (collapsed 1/2 reps)"),
    ],
)
def test_status_tag(statuses, tag):
    assert status_tag(runs(*statuses)) == tag


def test_status_tag_reads_old_result_files():
    """Files without a status column mark divergence from objective_diverged."""
    df = runs(1, 0, column="objective_diverged")
    assert status_tag(df) == " (diverged 1/2 reps)"


# -- cut at the budget --------------------------------------------------------
def test_clip_at_budget_interpolates_the_crossing():
    cost = np.array([0.0, 1000.0, 2000.0, 3002.0, 3900.0])
    time = np.array([0.0, 1.0, 2.0, 3.002, 3.9])
    y = np.array([0.0, 1.0, 2.0, 5.0, 9.0])
    x_c, y_c = clip_at_budget(cost, time, y, 3000.0)
    # the point past the budget is replaced by the crossing, later ones dropped
    np.testing.assert_allclose(x_c, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(y_c, [0.0, 1.0, 2.0, 2.0 + 3.0 * 1000 / 1002])


def test_clip_at_budget_keeps_short_and_exact_curves():
    cost = np.array([0.0, 500.0, 2760.0])  # cut short (timeout)
    y = np.array([1.0, 2.0, 3.0])
    x_c, y_c = clip_at_budget(cost, cost, y, 3000.0)
    np.testing.assert_array_equal(x_c, cost)
    np.testing.assert_array_equal(y_c, y)
    cost = np.array([0.0, 3000.0, 3050.0])  # exactly at the budget
    x_c, y_c = clip_at_budget(cost, cost, y, 3000.0)
    np.testing.assert_array_equal(x_c, [0.0, 3000.0])
    np.testing.assert_array_equal(y_c, [1.0, 2.0])
    x_c, _ = clip_at_budget(cost + 4000, cost, y, 3000.0)
    assert x_c.size == 0


def _rep(idx_rep, costs, ys, budget=3000):
    rows = [
        {"idx_rep": idx_rep, "stop_val": i, "objective_cost": c, "y": v}
        for i, (c, v) in enumerate(zip(costs, ys, strict=True))
    ]
    df = pd.DataFrame(rows)
    df["p_obj_budget"] = budget
    return df.iloc[::-1]  # row order must not matter, stop_val does


def test_medians_at_the_budget_compare_equal_costs():
    """Two repetitions end past the budget at different costs; the median's
    last point is at the budget, from both interpolated values."""
    df = pd.concat(
        [_rep(0, [0, 1000, 3004], [0.0, 1.0, 5.0]), _rep(1, [0, 2000, 3010], [0, 2, 3])]
    )
    budget = run_budget(df)
    assert budget == 3000
    curves = [
        one_curve(d, "objective_cost", "y", budget=budget)
        for _, d in df.groupby("idx_rep")
    ]
    assert [c[0][-1] for c in curves] == [3000, 3000]
    x, median, low, high = aggregate(curves)
    y0 = 1.0 + 4.0 * 2000 / 2004
    y1 = 2.0 + 1.0 * 1000 / 1010
    assert x[-1] == 3000
    assert median[-1] == pytest.approx((y0 + y1) / 2)
    # without the cut the curves would end at different costs
    raw = [one_curve(d, "objective_cost", "y") for _, d in df.groupby("idx_rep")]
    assert [c[0][-1] for c in raw] == [3004, 3010]


# -- legend labels ------------------------------------------------------------
ISGD = "ISGD[batch_size=4,eps0=0.01,optimizer=sgd,q={q},step_size=100.0]"


def test_split_name_keeps_list_values():
    base, params = split_name("S[a=[1,2],b=x,c=0.5]")
    assert base == "S"
    assert params == {"a": "[1,2]", "b": "x", "c": "0.5"}
    assert split_name("HOAG") == ("HOAG", {})


def test_short_labels_keep_only_the_parameters_that_differ():
    maid = "MAID[delta0=0.0001,eps0=0.01,step_size=100.0]"
    names = [ISGD.format(q="0.0"), ISGD.format(q="0.5"), maid]
    labels = short_labels(names)
    assert labels == {names[0]: "ISGD q=0", names[1]: "ISGD q=0.5", maid: "MAID"}


def test_short_labels_list_every_differing_parameter_and_missing_ones():
    names = ["S[a=1,b=x]", "S[a=2,b=y]", "S[a=1]"]
    labels = short_labels(names)
    assert labels == {
        "S[a=1,b=x]": "S a=1, b=x",
        "S[a=2,b=y]": "S a=2, b=y",
        "S[a=1]": "S a=1",
    }


def test_short_labels_fall_back_to_full_names_on_collisions():
    names = ["S[a=0,b=1]", "S[a=0.0,b=1]"]  # differ only in the writing
    assert short_labels(names) == {n: n for n in names}


# -- reference lines ----------------------------------------------------------
def test_reference_values_and_dashed_line():
    df = pd.DataFrame(
        {
            "objective_psnr_test_measurement": [20.0, 20.0, np.nan],
            "objective_psnr_test_init": [21.5, 21.5, 21.5],
        }
    )
    assert reference_values(df, "psnr_test") == [
        ("measurement", 20.0),
        ("initial theta", 21.5),
    ]
    assert reference_values(df, "value") == []
    x, y = dashed_line(20.0, 0.0, 100.0, n_dashes=4, fill=0.5)
    assert len(x) == len(y) == 12
    assert np.isnan(x[2::3]).all() and set(y) == {20.0}
    np.testing.assert_allclose(
        np.array(x).reshape(4, 3)[:, :2].ravel(),
        [0, 12.5, 25, 37.5, 50, 62.5, 75, 87.5],
    )


def test_first_reach_interpolates_the_crossing():
    x = np.array([0.0, 100.0, 300.0])
    y = np.array([20.0, 24.0, 28.0])
    assert first_reach(x, y, 26.0) == pytest.approx(200.0)
    assert first_reach(x, y, 19.0) == 0.0
    assert np.isnan(first_reach(x, y, 30.0))


def test_title_names_keep_the_task_parameters():
    df = pd.DataFrame(
        {
            "dataset_name": ["denoising[n_test=8,noise_level=25.0,source=skimage]"],
            "objective_name": ["Bilevel imaging[budget=8000,mu=0.001,regulariser=foe]"],
        }
    )
    assert list(title_names(df).values()) == [
        "denoising (noise_level=25)",
        "Bilevel imaging (regulariser=foe)",
    ]


# -- solver styles ------------------------------------------------------------
def test_solver_styles_are_fixed_per_name():
    names = ["TTSA[a=1]", "AmIGO[b=2]", "MyNewSolver[c=3]"]
    styles = solver_styles(names)
    # the same solver, alone or with others, in any order
    assert solver_styles(["AmIGO[b=2]"])["AmIGO[b=2]"] == styles["AmIGO[b=2]"]
    assert solver_styles(names[::-1]) == styles
    assert styles["TTSA[a=1]"]["color"] == SOLVER_STYLES["TTSA"][0]
    # an unknown solver: a colour from the md5 of its base name
    digest = int(hashlib.md5(b"MyNewSolver").hexdigest(), 16)
    expected = EXTRA_COLOURS[digest % len(EXTRA_COLOURS)]
    assert styles["MyNewSolver[c=3]"]["color"] == expected
    known = {colour for colour, _ in SOLVER_STYLES.values()}
    assert len(known) == len(SOLVER_STYLES) and not known & set(EXTRA_COLOURS)
    assert "#7f7f7f" not in known  # grey is the measurement line's


def test_variants_of_one_solver_differ_by_dash_and_marker():
    names = [ISGD.format(q=q) for q in ("0.0", "0.5", "1.0")]
    styles = solver_styles(names)
    assert {s["color"] for s in styles.values()} == {SOLVER_STYLES["ISGD"][0]}
    assert [s["dash"] for s in styles.values()] == ["solid", "dash", "dot"]
    assert [s["marker"] % 100 for s in styles.values()] == [3, 3, 3]
    assert [s["marker"] // 100 for s in styles.values()] == [0, 1, 0]  # open


# -- images -------------------------------------------------------------------
def test_image_scores_read_the_saved_arrays_else_compute():
    rng = np.random.default_rng(1)
    clean = rng.random((2, 1, 20, 20))
    recon = np.clip(clean + 0.05 * rng.standard_normal(clean.shape), 0, 1)
    art = {"clean": clean, "reconstructed": recon, "measured": recon}
    art["psnr"], art["ssim"] = np.array([31.0, 32.0]), np.array([0.7, 0.8])
    assert image_scores(art, "reconstructed", 1) == (32.0, 0.8)
    # computed by the evaluation's own scores: deepinv's PSNR and SSIM
    import torch
    from deepinv.loss.metric import PSNR, SSIM

    x, ref = torch.tensor(recon[1:], dtype=torch.float32), torch.tensor(clean[1:])
    expected = (PSNR()(x, ref.float()).item(), SSIM()(x, ref.float()).item())
    assert image_scores(art, "measured", 1) == pytest.approx(expected, abs=1e-5)
    assert image_scores({"measured": recon}, "measured", 1) == (None, None)
    assert image_scores(art, "clean", 0) == (None, None)


def test_upscale_repeats_pixels():
    image = np.arange(6.0).reshape(2, 3)
    big = upscale(image, 7)  # k = ceil(7 / 3) = 3
    assert big.shape == (6, 9)
    np.testing.assert_array_equal(big[::3, ::3], image)
    np.testing.assert_array_equal(big[2, 8], image[0, 2])
    assert upscale(image, 2).shape == (2, 3)


def test_thousands_axis_labels_costs_in_thousands():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmark_utils.plot_utils import thousands_axis

    fig, ax = plt.subplots()
    thousands_axis(ax.xaxis)
    fmt = ax.xaxis.get_major_formatter()
    assert [fmt(v, 0) for v in (0, 2500, 50000, 300000)] == ["0", "2.5k", "50k", "300k"]
    plt.close(fig)

"""tools/regulariser_study.py on a hand-made parquet frame."""

import pandas as pd
import pytest

from tests.bench_helpers import load_script


def _module():
    return load_script("regulariser_study", "tools")


def _frame():
    rows = []

    def run(reg, rep, costs, psnrs, status="budget"):
        for c, p in zip(costs, psnrs, strict=True):
            rows.append(
                {
                    "dataset_name": "denoising[n_train=4]",
                    "p_obj_regulariser": reg,
                    "solver_name": "ISGD",
                    "idx_rep": rep,
                    "p_obj_budget": 100,
                    "objective_cost": c,
                    "objective_work": 2 * c,
                    "objective_psnr_test": p,
                    "objective_status": status,
                    "objective_psnr_test_measurement": 20.0,
                    "objective_psnr_test_init": 21.0,
                }
            )

    # foe: gain 21 -> 31, 99 % of it (30.9) is reached between cost 50 and
    # 110 (PSNR 30 -> 32, interpolated at the budget 100: 31.667)
    run("foe", 0, [0, 50, 110], [21.0, 30.0, 32.0])
    run("foe", 1, [0, 50, 100], [21.0, 30.0, 31.0])
    run("foe", 2, [0, 50, 100], [21.0, 29.0, 30.0], status="diverged")
    run("tv", 0, [0, 40, 100], [21.0, 28.0, 28.0])
    return pd.DataFrame(rows)


def test_equal_cost_final_value_and_cost_to_99_percent():
    mod = _module()
    runs = mod.run_rows(_frame()).set_index(["regulariser", "rep"])
    assert runs.loc[("foe", 0), "psnr"] == pytest.approx(30.0 + 2.0 * 50 / 60)
    final = runs.loc[("foe", 0), "psnr"]
    level = 21.0 + 0.99 * (final - 21.0)
    assert runs.loc[("foe", 0), "cost99"] == pytest.approx(50 + (level - 30) / 2 * 60)
    assert runs.loc[("foe", 0), "work99"] == pytest.approx(
        2 * runs.loc[("foe", 0), "cost99"]
    )
    # tv reaches its final value at cost 40 already
    assert runs.loc[("tv", 0), "cost99"] == pytest.approx(40 * 6.93 / 7)
    table = mod.summarise(_frame()).set_index("regulariser")
    assert table.loc["foe", "psnr"] == pytest.approx(31.0)  # median of 3
    assert table.loc["foe", "not ok"] == 1 and table.loc["foe", "runs"] == 3


def test_docs_block_is_replaced(tmp_path):
    mod = _module()
    docblock = load_script("docblock", "tools")
    page = tmp_path / "page.md"
    start, end = docblock.markers(mod.BLOCK)
    page.write_text(f"intro\n{start}\nold\n{end}\noutro\n")
    block = mod.markdown(mod.summarise(_frame()))
    docblock.write_block(page, mod.BLOCK, block)
    text = page.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| foe | ISGD | 31.00 | 21.00 |" in text
    assert "noisy input: 20.00 dB" in text
    other = tmp_path / "other.md"
    other.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="has no"):
        docblock.write_block(other, mod.BLOCK, block)

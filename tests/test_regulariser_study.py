"""tools/regulariser_study.py on a hand-made result frame."""

import numpy as np
import pytest

from tests.bench_helpers import load_script

FOE = "Bilevel imaging[budget=100,n_filters=10,regulariser=foe]"
TV = "Bilevel imaging[budget=100,regulariser=tv]"


def _module():
    return load_script("regulariser_study", "tools")


def _frame():
    import pandas as pd

    rows = []

    def run(objective, rep, costs, psnrs, offset=0.0, status="budget"):
        for k, (c, p) in enumerate(zip(costs, psnrs, strict=True)):
            rows.append(
                {
                    "dataset_name": "denoising[n_train=4]",
                    "objective_name": objective,
                    "solver_name": "ISGD[optimizer=adam]",
                    "idx_rep": rep,
                    "stop_val": k,
                    "p_obj_budget": 100,
                    "objective_cost": c,
                    "objective_work": 2 * c,
                    "objective_psnr_test": p,
                    "objective_pooled_psnr_test": p - 1.0 + offset,
                    "objective_status": status if k == len(costs) - 1 else "ok",
                    "objective_psnr_test_measurement": 20.0,
                    "time": float(k),
                    "final_results": {"eval_seconds": 1.0}
                    if k == len(costs) - 1
                    else None,
                }
            )

    # foe: gain 21 -> 31; 99 % of it (30.9) between cost 50 and 100
    run(FOE, 0, [0, 50, 110], [21.0, 30.0, 32.0])  # 31.667 at the budget
    run(FOE, 1, [0, 50, 100], [21.0, 30.0, 31.0])
    run(FOE, 2, [0, 50, 100], [21.0, 29.0, 30.0])
    # tv: flat after cost 40; 2.8 dB under foe per image, 0.1 dB over it pooled
    for rep in range(3):
        final = 28.0 + 0.2 * rep
        run(TV, rep, [0, 40, 100], [21.0, final, final], offset=2.9)
    return pd.DataFrame(rows)


def test_scores_at_the_budget_and_cost_to_99_percent():
    mod = _module()
    table, values = mod.summarise(_frame())
    foe = table.set_index("model").loc["foe (10 filters)"]
    np.testing.assert_allclose(foe["per-image"], [30.0 + 2 * 50 / 60, 31.0, 30.0])
    np.testing.assert_allclose(foe["pooled"], foe["per-image"] - 1.0)
    assert foe["per-image init"] == 21.0 and foe["runs"] == 3 and foe["not ok"] == 0
    # the median curve: 30, 30, 29 at cost 50 (median 30), then 31 at 100:
    # 99 % of the gain (21 -> 31) is 30.9, reached at 50 + 0.9 * 50 = 95
    assert foe["cost99"] == pytest.approx(95.0)
    assert foe["work99"] == pytest.approx(190.0)
    assert foe["seconds"] == pytest.approx(3.0)  # last time 2 + 1 s evaluation


def test_markdown_and_margins_with_ties():
    mod = _module()
    table, values = mod.summarise(_frame())
    text = mod.markdown(table, values)
    assert "| foe (10 filters) | ISGD | 31.00 [30.00, 31.67] |" in text
    assert "noisy input: 20.00 dB" in text
    margin = next(line for line in text.splitlines() if line.startswith("- foe"))
    # per image: 31 against 28.2 (tv's 28, 28.2, 28.4), an interval above 0;
    # pooled: 30 against 30.1, a tie within the spread
    assert "per-image +2.80 dB [" in margin
    assert "pooled -0.10 dB" in margin and "(a tie)" in margin.split(";")[1]
    assert "(a tie)" not in margin.split(";")[0]


def test_docs_block_is_replaced(tmp_path):
    mod = _module()
    docblock = load_script("docblock", "tools")
    page = tmp_path / "page.md"
    start, end = docblock.markers(mod.BLOCK)
    page.write_text(f"intro\n{start}\nold\n{end}\noutro\n")
    table, values = mod.summarise(_frame())
    docblock.write_block(page, mod.BLOCK, mod.markdown(table, values))
    text = page.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| tv | ISGD |" in text
    other = tmp_path / "other.md"
    other.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="has no"):
        docblock.write_block(other, mod.BLOCK, "x")

"""tools/split_deterministic.py: a tuned config split into the stochastic
solvers' file and the run-once file, both valid ``--config`` files."""

import yaml

from tests.bench_helpers import load_script

CONFIG = """# Tuned solvers, written by scripts/tune.py: do not edit by hand.
# ISGD[q=0.0]: step_size=300.0, median pooled psnr_val 25.00 dB
n-repetitions: 3
max-runs: 100
no-timeout: true
dataset:
- denoising[n_train=8]
objective:
- Bilevel imaging[budget=300]
solver:
- ISGD[q=0.0,step_size=300.0]
- MAID[acceptance=decrease,step_size=100.0]
- ISGD[q=0.5,step_size=1000.0]
- MAID[acceptance=certified,step_size=100.0]
"""


def test_split_keeps_everything_and_runs_maid_once(tmp_path):
    mod = load_script("split_deterministic", "tools")
    src = tmp_path / "denoising-foe-10.yml"
    src.write_text(CONFIG)
    stoch, once = mod.split(src)
    assert stoch.name == "denoising-foe-10-stochastic.yml"
    assert once.name == "denoising-foe-10-once.yml"
    a, b = yaml.safe_load(stoch.read_text()), yaml.safe_load(once.read_text())
    assert a["solver"] == [
        "ISGD[q=0.0,step_size=300.0]",
        "ISGD[q=0.5,step_size=1000.0]",
    ]
    assert b["solver"] == [
        "MAID[acceptance=decrease,step_size=100.0]",
        "MAID[acceptance=certified,step_size=100.0]",
    ]
    assert (a["n-repetitions"], b["n-repetitions"]) == (3, 1)
    for d in (a, b):
        assert d["dataset"] == ["denoising[n_train=8]"]
        assert d["objective"] == ["Bilevel imaging[budget=300]"]
        assert d["no-timeout"] is True
    # the header (the tuner's chosen values) travels with both files
    assert "median pooled psnr_val 25.00 dB" in stoch.read_text()
    assert "run once" in once.read_text()
    # both parse as benchopt parses --config files
    tune = load_script("tune")
    tune.check_config(stoch)
    tune.check_config(once)

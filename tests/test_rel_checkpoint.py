"""Theta checkpoints: exact round trip, and untrusted files are refused.

``benchmark_utils.checkpoint.load_theta`` reads with
``torch.load(weights_only=True)``: a file that carries an arbitrary pickled
object must be rejected *before* that object's code runs. The "evil" objects
below would create a marker file when unpickled; the tests check that the
marker never appears.
"""

import pickle

import numpy as np
import pytest
import torch

from benchmark_utils.checkpoint import FORMAT, VERSION, load_theta, save_theta


class _CreatesFile:
    """Unpickling this object opens (creates) ``path``: a stand-in for code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_round_trip_is_exact(tmp_path):
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(57, dtype=torch.float64, generator=gen)
    meta = {
        "solver": "ISGD[step_size=100]",
        "cost": 15000,
        "psnr_test": 27.94,
        "diverged": False,
        "seed": np.int64(3),
        "grid": {"budget": [1500, 15000], "note": None},
    }
    path = save_theta(tmp_path / "theta.pt", theta, meta)
    got, got_meta = load_theta(path)
    assert got.dtype == torch.float64 and got.shape == (57,)
    assert torch.equal(got, theta)
    assert got_meta == {**meta, "seed": 3}
    assert type(got_meta["seed"]) is int
    # a plain torch.load(weights_only=True) reads it too (no custom class)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["version"] == VERSION


def test_view_saves_only_its_elements(tmp_path):
    big = torch.arange(100_000, dtype=torch.float32)
    save_theta(tmp_path / "view.pt", big[:10])
    assert (tmp_path / "view.pt").stat().st_size < 10_000
    got, _ = load_theta(tmp_path / "view.pt")
    assert torch.equal(got, big[:10])


def test_numpy_theta_and_no_leftover_temp_file(tmp_path):
    save_theta(tmp_path / "t.pt", np.linspace(0.0, 1.0, 5))
    got, meta = load_theta(tmp_path / "t.pt")
    assert torch.equal(got, torch.linspace(0.0, 1.0, 5, dtype=torch.float64))
    assert meta == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pt"]


def test_torch_file_with_arbitrary_object_is_refused(tmp_path):
    marker = tmp_path / "code_was_run"
    path = tmp_path / "evil.pt"
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "theta": torch.zeros(3),
        "meta": {"x": _CreatesFile(marker)},
    }
    torch.save(payload, path)
    with pytest.raises(ValueError, match="refused") as err:
        load_theta(path)
    assert "\n" not in str(err.value) and "evil.pt" in str(err.value)
    assert not marker.exists()
    # the unrestricted loader would have run it: the test can fail
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_with_arbitrary_object_is_refused(tmp_path):
    marker = tmp_path / "code_was_run"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"theta": _CreatesFile(marker)}, f)
    with pytest.raises(ValueError, match="refused"):
        load_theta(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content,match",
    [
        ({"theta": torch.zeros(3)}, "not written by save_theta"),
        ({"format": FORMAT, "version": 99, "theta": torch.zeros(3)}, "version"),
        ({"format": FORMAT, "version": VERSION, "theta": torch.zeros(2, 2)}, "1-D"),
        ({"format": FORMAT, "version": VERSION, "theta": torch.arange(3)}, "dtype"),
        (
            {
                "format": FORMAT,
                "version": VERSION,
                "theta": torch.tensor([1.0, float("nan")]),
            },
            "NaN",
        ),
    ],
)
def test_malformed_checkpoints(tmp_path, content, match):
    path = tmp_path / "c.pt"
    torch.save(content, path)
    with pytest.raises(ValueError, match=match) as err:
        load_theta(path)
    assert "\n" not in str(err.value)


def test_truncated_file_and_missing_file(tmp_path):
    path = save_theta(tmp_path / "t.pt", torch.ones(1000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="unreadable or truncated"):
        load_theta(path)
    with pytest.raises(FileNotFoundError):
        load_theta(tmp_path / "missing.pt")


def test_nonfinite_theta_only_on_request(tmp_path):
    theta = torch.tensor([1.0, float("inf")])
    path = save_theta(tmp_path / "div.pt", theta, {"diverged": True})
    with pytest.raises(ValueError, match="allow_nonfinite"):
        load_theta(path)
    got, meta = load_theta(path, allow_nonfinite=True)
    assert torch.equal(got, theta) and meta == {"diverged": True}


@pytest.mark.parametrize(
    "theta,meta,match",
    [
        (torch.zeros(2, 3), None, "1-D"),
        (torch.arange(4), None, "floating"),
        ([0.0, 1.0], None, "tensor"),
        (torch.zeros(3), {"f": lambda: 0}, r"meta\['f'\]"),
        (torch.zeros(3), {"t": torch.zeros(2)}, r"meta\['t'\]"),
        (torch.zeros(3), {1: "a"}, "keys must be str"),
        (torch.zeros(3), ["not", "a", "dict"], "meta must be a dict"),
    ],
)
def test_save_rejects_bad_input(tmp_path, theta, meta, match):
    with pytest.raises(ValueError, match=match):
        save_theta(tmp_path / "bad.pt", theta, meta)
    assert not any(tmp_path.iterdir())

"""Every CLI verb runs end to end on a tiny budget; bad input fails with one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from robot_rl.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_demos_train_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "reach.hdf5"
    code, out = _run(
        ["demos", "--task", "reach", "--episodes", "4", "--num-envs", "2", "--out", str(data)],
        capsys,
    )
    assert code == 0, out
    with h5py.File(data) as f:
        assert f["data"].attrs["total"] == sum(
            f[f"data/{d}"].attrs["num_samples"] for d in f["data"]
        )
        env_args = json.loads(f["data"].attrs["env_args"])
        assert env_args["env_name"] == "reach" and "env_kwargs" in env_args
        assert set(f["data/demo_0"]) >= {"actions", "rewards", "dones", "states", "obs", "next_obs"}
        assert "goal" in f["data/demo_0/obs"] and "mask/train" in f and "mask/valid" in f
    policy = tmp_path / "bc"
    code, out = _run(
        [
            "train",
            "bc",
            "--dataset",
            str(data),
            "--out",
            str(policy),
            "--steps",
            "20",
            "--log-dir",
            str(tmp_path / "tb"),
        ],
        capsys,
    )
    assert code == 0, out
    assert (policy / "config.json").exists() and (policy / "model.safetensors").exists()
    code, out = _run(
        ["eval", "--policy", str(policy), "--episodes", "3", "--num-envs", "2"], capsys
    )
    assert code == 0, out
    report = json.loads((policy / "eval.json").read_text())
    # A fraction of exactly 3 episodes (0, 1/3, 2/3 or 1), not any number in [0, 1].
    assert report["eval/episodes"] == 3
    successes = report["eval/success_rate"] * 3
    assert successes == pytest.approx(round(successes)) and round(successes) in (0, 1, 2, 3)
    assert report["eval/mean_episode_length"] >= 1.0
    assert "eval/success_rate" in out


def test_quickstart_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "quickstart",
        "--task",
        "reach",
        "--demos",
        "4",
        "--bc-steps",
        "20",
        "--eval-episodes",
        "2",
        "--num-envs",
        "2",
        "--workdir",
        str(tmp_path / "qs"),
    ]
    code, out = _run(args, capsys)
    assert code == 0, out
    report = json.loads((tmp_path / "qs" / "report.json").read_text())
    assert report["eval/episodes"] == 2 and report["time/total_s"] > 0
    # A second run refuses to overwrite, and leaves the first run's files alone.
    before = (tmp_path / "qs" / "report.json").read_bytes()
    code, out = _run(args, capsys)
    assert code == 2 and "--overwrite" in out
    assert (tmp_path / "qs" / "report.json").read_bytes() == before


def test_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(
        ["train", "bc", "--dataset", str(tmp_path / "nope.hdf5"), "--out", str(tmp_path / "p")],
        capsys,
    )
    assert code == 2 and "nope.hdf5" in out and "Traceback" not in out
    assert not (tmp_path / "p").exists()


def test_corrupt_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"this is not hdf5" * 10)
    code, out = _run(["train", "bc", "--dataset", str(bad), "--out", str(tmp_path / "p")], capsys)
    assert code == 2 and "bad.hdf5" in out and "Traceback" not in out


def test_dataset_shape_mismatch(
    tmp_path: Path, push_demos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Claim the push data belongs to reach: push's 10-dim `object` key does not exist there.
    data = tmp_path / "mislabeled.hdf5"
    shutil.copy(push_demos, data)
    with h5py.File(data, "r+") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        env_args["env_name"] = "reach"
        f["data"].attrs["env_args"] = json.dumps(env_args)
    # Offline training builds no env; the mismatch is caught when the policy meets its env.
    train = ["train", "bc", "--dataset", str(data), "--out", str(tmp_path / "p"), "--steps", "5"]
    assert _run(train, capsys)[0] == 0
    code, out = _run(["eval", "--policy", str(tmp_path / "p"), "--episodes", "2"], capsys)
    assert code == 2 and "object" in out and "reach" in out
    assert not (tmp_path / "p" / "eval.json").exists()


def test_action_dim_mismatch(
    tmp_path: Path, push_demos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "joint.hdf5"
    shutil.copy(push_demos, data)
    with h5py.File(data, "r+") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        env_args["env_kwargs"]["controller"] = "joint_delta"
        f["data"].attrs["env_args"] = json.dumps(env_args)
    train = ["train", "bc", "--dataset", str(data), "--out", str(tmp_path / "p"), "--steps", "5"]
    assert _run(train, capsys)[0] == 0
    code, out = _run(["eval", "--policy", str(tmp_path / "p"), "--episodes", "2"], capsys)
    assert code == 2 and "4 dims" in out and "takes 8" in out


def test_nan_actions(tmp_path: Path, push_demos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "nan.hdf5"
    shutil.copy(push_demos, data)
    with h5py.File(data, "r+") as f:
        actions = f["data/demo_1/actions"][...]
        actions[2, 0] = np.nan
        f["data/demo_1/actions"][...] = actions
    code, out = _run(["train", "bc", "--dataset", str(data), "--out", str(tmp_path / "p")], capsys)
    assert code == 2 and "NaN" in out and "demo_1" in out


def test_unknown_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["demos", "--task", "stack", "--out", str(tmp_path / "x.hdf5")], capsys)
    assert code == 2 and "unknown env 'stack'" in out
    assert not (tmp_path / "x.hdf5").exists()
    code, out = _run(["train", "ppo"], capsys)
    assert code == 2 and "'ppo'" in out
    code, out = _run(["fly"], capsys)
    assert code == 2


def test_existing_output_kept(
    tmp_path: Path, push_demos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "existing.hdf5"
    out_file.write_bytes(b"precious")
    code, out = _run(["demos", "--task", "push", "--episodes", "2", "--out", str(out_file)], capsys)
    assert code == 2 and "--overwrite" in out
    assert out_file.read_bytes() == b"precious"
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "keep.txt").write_text("mine")
    code, out = _run(
        ["train", "bc", "--dataset", str(push_demos), "--out", str(policy), "--steps", "5"], capsys
    )
    assert code == 2 and (policy / "keep.txt").read_text() == "mine"
    code, out = _run(
        [
            "demos",
            "--task",
            "push",
            "--episodes",
            "2",
            "--num-envs",
            "2",
            "--out",
            str(out_file),
            "--overwrite",
        ],
        capsys,
    )
    assert code == 0, out
    with h5py.File(out_file) as f:
        assert len(f["data"]) == 2


def test_mixed_quality_demos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mixed.hdf5"
    code, out = _run(
        [
            "demos",
            "--task",
            "lift",
            "--quality",
            "mixed",
            "--episodes",
            "20",
            "--num-envs",
            "10",
            "--out",
            str(data),
        ],
        capsys,
    )
    assert code == 0, out
    with h5py.File(data) as f:
        qualities = [f[f"data/{d}"].attrs["quality"] for d in f["data"]]
        success = [bool(f[f"data/{d}"].attrs["success"]) for d in f["data"]]
    assert {"expert", "noisy", "failing"} <= set(qualities)
    assert 0 < sum(success) < len(success)


def test_help_lists_verbs_and_algorithms(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["--help"], capsys)
    assert code == 0
    for verb in ("demos", "record", "train", "eval", "finetune", "robot"):
        assert any(line.strip().startswith(verb + " ") for line in out.splitlines()), verb
    code, out = _run(["train", "--help"], capsys)
    assert code == 0 and "diffusion" in out and "Cal-QL" in out
    code, out = _run(["train", "bc", "--help"], capsys)
    assert code == 0 and "--hidden-dims" in out and "--steps" in out and "--overwrite" in out
    code, out = _run(["eval", "--help"], capsys)
    assert code == 0 and "--env-kwargs" in out


def test_parse_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """tyro's error boxes become one line that names the flag and where help is."""
    for args, words in [
        (["train", "bc", "--dataset", "d", "--out", "o", "--steps", "abc"], ["--steps", "abc"]),
        (["train", "bc", "--dataset", "d"], ["--out"]),
        (["train", "iql", "--dataset", "d", "--out", "o", "--bogus"], ["--bogus"]),
        (["eval", "--policy", "p", "--device"], ["--device"]),
    ]:
        code, out = _run(args, capsys)
        lines = out.strip().splitlines()
        assert code == 2 and len(lines) == 1, out
        assert all(w in lines[0] for w in words) and "--help" in lines[0], lines[0]


def test_threads_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        out = tmp_path / "p.hdf5"
        args = ["record", "--env", "point", "--episodes", "2", "--out", str(out), "--threads", "1"]
        code, text = _run(args, capsys)
        assert code == 0 and out.exists(), text
        assert torch.get_num_threads() == 1
        code, text = _run(["--threads", "0", "eval", "--policy", str(tmp_path)], capsys)
        assert code == 2 and "--threads" in text and len(text.strip().splitlines()) == 1
    finally:
        torch.set_num_threads(before)

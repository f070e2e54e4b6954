"""Never lose data: --overwrite only replaces the verb's own kind of output and only after the
inputs load; a second writer is locked out; killed saves' leftovers go; Ctrl+C is one line;
files follow the umask; progress bars stay out of redirected logs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _battery import Fixtures, assert_clean_error, tree_digest

from robot_rl.checkpoint import save_policy_dir
from robot_rl.cli import main
from robot_rl.errors import CheckpointError
from robot_rl.outputs import clean_leftovers, lock_path, output_lock

ROOT = Path(__file__).resolve().parents[2]
BC = ["--steps", "2", "--batch-size", "8", "--hidden-dims", "8"]


def _fake_run(w: Fixtures) -> Path:
    """A finished fine-tuning run directory: policy/, checkpoint/, curve.json."""
    run = w.root / "run"
    run.mkdir()
    shutil.copytree(w.policy, run / "policy")
    shutil.copytree(w.policy, run / "checkpoint")
    (run / "curve.json").write_text(json.dumps({"curve": []}))
    return run


FT = ["--env-steps", "4", "--num-envs", "1", "--eval-episodes", "1", "--batch-size", "4"]


@pytest.mark.parametrize(
    "problem",
    ["missing init", "init is the dataset", "task mismatch", "corrupt init", "bad algo flag"],
)
def test_finetune_overwrite_keeps_the_old_run_when_an_input_is_bad(
    problem: str, work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fake_run(work)
    init, task, extra = str(work.policy), "reach", []
    if problem == "missing init":
        init = str(work.root / "nowhere")
    elif problem == "init is the dataset":
        init = str(work.dataset)
    elif problem == "task mismatch":
        task = "push"
    elif problem == "corrupt init":
        (work.policy / "model.safetensors").write_bytes(b"\0" * 10)
    else:
        extra = ["--env-steps", "0"]
    args = ["finetune", "--algo", "sac", "--task", task, "--out", str(run), "--init", init]
    assert_clean_error([*args, *FT, *extra, "--overwrite"], [work.root], capsys)


def test_overwrite_replaces_a_policy_directory(
    work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    """The positive case: a policy directory is the trainer's own output and is replaced, with
    its TensorBoard log inside it (not in ./runs)."""
    before = (work.policy / "model.safetensors").read_bytes()
    args = ["train", "bc", "--dataset", str(work.dataset), "--out", str(work.policy), *BC]
    assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err
    assert (work.policy / "model.safetensors").read_bytes() != before
    assert any((work.policy / "tb").iterdir())
    assert not [p for p in work.root.iterdir() if p.name.startswith(".")]  # no lock, no tmp
    assert not Path("runs").exists() or not any(Path("runs").glob("bc-bc*"))


def test_second_writer_is_locked_out(work: Fixtures, capsys: pytest.CaptureFixture[str]) -> None:
    out = work.root / "new"
    args = ["train", "bc", "--dataset", str(work.dataset), "--out", str(out), *BC]
    with output_lock(out):
        err = assert_clean_error(args, [work.root], capsys, match="in use")
        assert "another robot-rl process" in err
    assert main(args) == 0  # released: the same command now runs
    assert not lock_path(out).exists()


def test_second_finetune_is_locked_out(work: Fixtures, capsys: pytest.CaptureFixture[str]) -> None:
    run = _fake_run(work)
    args = ["finetune", "--algo", "sac", "--task", "reach", "--out", str(run)]
    with output_lock(run):
        assert_clean_error(
            [*args, "--init", str(work.policy), *FT, "--overwrite"],
            [work.root],
            capsys,
            match="in use",
        )


def test_second_process_is_locked_out(work: Fixtures) -> None:
    """Two processes: the first holds the lock while the second tries to train into it."""
    out = work.root / "new"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"""
import time
from pathlib import Path
from robot_rl.outputs import output_lock
with output_lock(Path({str(out)!r})):
    print("locked", flush=True)
    time.sleep(60)
"""],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = subprocess.run(
            [sys.executable, "-m", "robot_rl.cli", "train", "bc", "--dataset", str(work.dataset)]
            + ["--out", str(out), *BC],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "in use" in proc.stderr
    assert not out.exists()


def test_leftovers_of_a_killed_save_are_removed(
    work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    out = work.root / "bc"
    tmp = work.root / ".bc.tmp-k1ll3d"
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"\0" * 1000)
    old = work.root / ".bc.old-k1ll3d"
    (old / "bc").mkdir(parents=True)
    (work.root / ".bc.tmp-tb").mkdir()
    stray = work.root / ".reach.hdf5.abc123.tmp"
    stray.write_bytes(b"half a file")
    args = ["train", "bc", "--dataset", str(work.dataset), "--out", str(out), *BC]
    assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err
    hidden = sorted(p.name for p in work.root.iterdir() if p.name.startswith("."))
    assert hidden == [stray.name]  # the dataset's leftover is the dataset writer's to clean
    assert main(["demos", "--task", "reach", "--episodes", "1", "--num-envs", "1"]
                + ["--out", str(work.dataset), "--overwrite"]) == 0  # fmt: skip
    assert not stray.exists()


def test_a_swap_cut_short_is_put_back(tmp_path: Path) -> None:
    """Killed between moving the old output aside and moving the new one in: the old one
    comes back."""
    out = tmp_path / "policy"
    old = tmp_path / ".policy.old-x1"
    (old / "policy").mkdir(parents=True)
    (old / "policy" / "config.json").write_text("{}")
    (tmp_path / ".policy.tmp-x2").mkdir()
    removed = clean_leftovers(out)
    assert len(removed) == 2
    assert (out / "config.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_follow_the_umask(umask: int, work: Fixtures) -> None:
    previous = os.umask(umask)
    try:
        out, data = work.root / "new", work.root / "d.hdf5"
        assert main(["demos", "--task", "reach", "--episodes", "1", "--num-envs", "1"]
                    + ["--out", str(data)]) == 0  # fmt: skip
        assert main(["train", "bc", "--dataset", str(data), "--out", str(out), *BC]) == 0
        assert main(["eval", "--policy", str(out), "--episodes", "1", "--num-envs", "1"]) == 0
    finally:
        os.umask(previous)
    for path in [data, out / "config.json", out / "model.safetensors", out / "eval.json"]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask


def test_nan_weights_are_never_saved(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="NaN or inf"):
        save_policy_dir(tmp_path / "p", {}, {"model.w": torch.tensor([1.0, float("nan")])})
    assert list(tmp_path.iterdir()) == []


def test_no_progress_bars_in_a_redirected_log(
    work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    out = work.root / "new"
    args = ["train", "bc", "--dataset", str(work.dataset), "--out", str(out), *BC]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "it/s" not in err and "\r" not in err, err


def _interrupt(args: list[str], wait_for: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "robot_rl.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # A runner started in the background (`cmd &`) ignores SIGINT, and children inherit
        # that: give the CLI the default disposition a user's terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(cwd.glob(wait_for)):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_is_one_line_and_leaves_no_output(work: Fixtures) -> None:
    """Ctrl+C in the middle of training: status 130, one line, no traceback, no output and no
    leftovers (the log staged beside the output goes too), the dataset unchanged."""
    before = tree_digest(work.root)
    out = work.root / "new"
    args = ["train", "bc", "--dataset", str(work.dataset), "--out", str(out), "--steps", "100000"]
    proc = _interrupt([*args, "--batch-size", "8"], ".new.lock", work.root)
    assert proc.returncode == 130, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()
    after = tree_digest(work.root)
    assert {k: v for k, v in after.items() if k in before} == before
    # A later run cleans the staged log of the interrupted one.
    assert main([*args[:-2], *BC]) == 0
    assert not [p for p in work.root.iterdir() if p.name.startswith(".")]


def test_finetune_overwrite_replaces_a_run(
    work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    """The positive case for runs: a finished run is replaced by --overwrite, and a run
    directory that gained a user's file is not."""
    run = work.root / "run"
    args = ["finetune", "--algo", "sac", "--task", "reach", "--out", str(run)]
    args += ["--init", str(work.policy), *FT]
    assert main(args) == 0, capsys.readouterr().err
    assert {"policy", "checkpoint", "curve.json"} <= {p.name for p in run.iterdir()}
    stamp = (run / "curve.json").stat().st_mtime_ns
    assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err
    assert (run / "curve.json").stat().st_mtime_ns != stamp
    (run / "notes.txt").write_text("mine\n")
    assert_clean_error([*args, "--overwrite"], [work.root], capsys, match="not a fine-tuning run")


def test_resume_cleans_a_killed_checkpoint_save(
    work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    """Leftovers of a checkpoint save killed mid-way inside a run directory go on --resume;
    a checkpoint moved aside but not replaced is put back and resumed from."""
    run = work.root / "run"
    args = ["finetune", "--algo", "sac", "--task", "reach", "--out", str(run)]
    args += ["--init", str(work.policy), *FT]
    assert main(args) == 0, capsys.readouterr().err
    (run / ".checkpoint.tmp-k1ll3d").mkdir()
    (run / ".checkpoint.tmp-k1ll3d" / "replay.safetensors").write_bytes(b"\0" * 4096)
    (run / ".curve.json.x1.tmp").write_text("{")
    aside = run / ".checkpoint.old-k1ll3d"
    aside.mkdir()
    os.replace(run / "checkpoint", aside / "checkpoint")
    assert main([*args, "--resume", "--env-steps", "8"]) == 0, capsys.readouterr().err
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert (run / "checkpoint" / "config.json").is_file()


def test_ctrl_c_during_finetune_saves_a_checkpoint(work: Fixtures) -> None:
    """Ctrl+C while fine-tuning: a checkpoint of the step reached, one line, status 130, and
    --resume continues from it."""
    run = work.root / "run"
    args = ["finetune", "--algo", "sac", "--task", "reach", "--out", str(run)]
    args += ["--init", str(work.policy), *FT, "--env-steps", "1000000", "--checkpoint-every"]
    args += ["1000000", "--eval-every", "1000000"]
    proc = _interrupt(args, "run/curve.json", work.root)
    assert proc.returncode == 130, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in proc.stderr
    saved = json.loads((run / "checkpoint" / "config.json").read_text())
    assert saved["finetune"]["env_steps"] > 0
    assert not [p for p in work.root.iterdir() if p.name.startswith(".")]

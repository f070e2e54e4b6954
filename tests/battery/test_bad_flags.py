"""Bad flags on every verb: one clean line, exit 2, before any long work, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from _battery import Fixtures, assert_clean_error

D, P, R = "{dataset}", "{policy}", "{root}"
TRAIN = {
    "bc": ["--steps", "2", "--batch-size", "8"],
    "diffusion": ["--steps", "2", "--batch-size", "8", "--warmup-steps", "0"],
    "iql": ["--steps", "2", "--batch-size", "8"],
    "calql": ["--steps", "2", "--batch-size", "8"],
}
COMMON_TRAIN_FLAGS = [
    ["--steps", "0"],
    ["--steps", "-3"],
    ["--batch-size", "0"],
    ["--batch-size", "-256"],
    ["--device", "cuda"],
    ["--device", "cuda:7"],
    ["--device", "tpu"],
    ["--device", "banana"],
    ["--matmul-precision", "low"],
    ["--steps", "many"],
    ["--seed", "1.5"],
    ["--no-such-flag", "1"],
    ["--out", f"{D}/policy"],  # under a file: cannot be written
    ["--out", "/proc/robot-rl-battery"],  # a read-only file system (even for root)
    ["--out", D],  # the input dataset itself
    ["--out", D, "--overwrite"],
    ["--out", R, "--overwrite"],  # the directory holding the dataset
    ["--out", P],  # exists, no --overwrite
    ["--out", f"{R}/notes", "--overwrite"],  # a directory with other files
    ["--dataset", R],  # a directory
    ["--dataset", f"{R}/none.hdf5"],
]
ALGO_FLAGS = {
    "bc": [
        ["--hidden-dims", "0"],
        ["--hidden-dims", "-8", "8"],
        ["--hidden-dims"],
        ["--lr", "-1e-3"],
        ["--lr", "0"],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--weight-decay", "-1"],
    ],
    "diffusion": [
        ["--horizon", "0"],
        ["--n-action-steps", "0"],
        ["--n-action-steps", "9", "--horizon", "8"],
        ["--n-obs-steps", "0"],
        ["--num-inference-steps", "0"],
        ["--num-train-timesteps", "0"],
        ["--num-inference-steps", "200", "--num-train-timesteps", "100"],
        ["--hidden-dim", "0"],
        ["--num-blocks", "0"],
        ["--mlp-expansion", "0"],
        ["--down-dims", "0"],
        ["--lr", "-1"],
        ["--ema-power", "-1"],
        ["--warmup-steps", "-5"],
        ["--denoiser", "transformer"],
        ["--scale", "huge"],
    ],
    "iql": [
        ["--discount", "2"],
        ["--discount", "-0.5"],
        ["--expectile", "1.5"],
        ["--expectile", "0"],
        ["--tau", "-5"],
        ["--tau", "2"],
        ["--beta", "-1"],
        ["--max-weight", "0"],
        ["--actor-lr", "0"],
        ["--critic-lr", "-3e-4"],
        ["--num-critics", "0"],
        ["--hidden-dims", "0"],
        ["--critic-hidden-dims", "0"],
        ["--reward-scale", "nan"],
    ],
    "calql": [
        ["--tau", "-5"],
        ["--discount", "2"],
        ["--cql-alpha", "-1"],
        ["--target-subset", "0"],
        ["--target-subset", "99"],
        ["--cql-n-actions", "0"],
        ["--temperature-lr", "-1"],
        ["--init-temperature", "0"],
        ["--cql-temperature", "0"],
        ["--actor-lr", "-1"],
        ["--num-critics", "0"],
        ["--critic-hidden-dims", "0"],
        ["--reward-bias", "inf"],
    ],
}
TRAIN_CASES = [(a, f) for a in TRAIN for f in COMMON_TRAIN_FLAGS] + [
    (a, f) for a, flags in ALGO_FLAGS.items() for f in flags
]

OTHER_CASES = {
    "eval": (
        ["eval", "--policy", P, "--episodes", "1", "--num-envs", "1"],
        [
            ["--episodes", "0"],
            ["--num-envs", "0"],
            ["--num-envs", "-2"],
            ["--device", "cuda"],
            ["--env-kwargs", "[1]"],
            ["--env-kwargs", "not json"],
            ["--env-kwargs", '{"horizon": -1}'],
            ["--env-kwargs", '{"horizon": 0}'],
            ["--env-kwargs", '{"horizon": "long"}'],
            ["--env-kwargs", '{"bogus": 1}'],
            ["--env-kwargs", '{"controller": "telepathy"}'],
            ["--out", f"{D}/eval.json"],
            ["--out", "/proc/robot-rl-battery.json"],
            ["--out", f"{R}/other/config.json", "--overwrite"],  # another policy's config
            ["--out", f"{R}/notes.json", "--overwrite"],  # the user's own JSON
            ["--out", D, "--overwrite"],  # the dataset is not a JSON report
            ["--out", f"{R}/notes", "--overwrite"],
            ["--policy", D],
        ],
    ),
    "demos": (
        ["demos", "--task", "reach", "--episodes", "1", "--num-envs", "1", "--out", f"{R}/d.hdf5"],
        [
            ["--episodes", "0"],
            ["--num-envs", "0"],
            ["--noise-std", "-1"],
            ["--noise-std", "nan"],
            ["--expert-fraction", "2"],
            ["--task", "no_such_task"],
            ["--controller", "telepathy"],
            ["--reward-type", "lottery"],
            ["--quality", "legendary"],
            ["--env-kwargs", "[]"],
            ["--env-kwargs", '{"horizon": -1}'],
            ["--env-kwargs", '{"bogus": true}'],
            ["--out", D],  # exists, no --overwrite
            ["--out", R, "--overwrite"],  # a directory
            ["--out", f"{P}/config.json", "--overwrite"],  # not an HDF5 file
            ["--out", f"{D}/d.hdf5"],
            ["--out", "/proc/robot-rl-battery.hdf5"],
        ],
    ),
    "record": (
        ["record", "--env", "reach", "--episodes", "1", "--num-envs", "1", "--out", f"{R}/r.hdf5"],
        [
            ["--episodes", "0"],
            ["--num-envs", "0"],
            ["--noise-std", "-1"],
            ["--device", "cuda"],
            ["--env", "no_such_env"],
            ["--env", "no.such.module:factory"],
            ["--env-kwargs", "5"],
            ["--env-kwargs", '{"horizon": -3}'],
            ["--env-kwargs", '{"bogus": 1}'],
            ["--expert", "no_such_expert"],
            ["--policy", f"{R}/none"],
            ["--out", D],
            ["--out", R, "--overwrite"],
            ["--out", f"{P}/config.json", "--overwrite"],
            ["--out", "/proc/robot-rl-battery.hdf5"],
        ],
    ),
    "finetune": (
        ["finetune", "--algo", "sac", "--task", "reach", "--out", f"{R}/run", "--init", P]
        + ["--env-steps", "4", "--num-envs", "1", "--eval-episodes", "1", "--batch-size", "4"],
        [
            ["--algo", "ppo"],
            ["--env-steps", "0"],
            ["--num-envs", "0"],
            ["--batch-size", "0"],
            ["--eval-episodes", "0"],
            ["--device", "cuda"],
            ["--init", f"{R}/none"],
            ["--init", D],
            ["--out", R, "--overwrite"],  # holds the start policy and the dataset
            ["--out", P, "--overwrite"],  # the start policy itself
            ["--out", f"{R}/notes", "--overwrite"],
            ["--out", f"{D}/run"],
            ["--out", "/proc/robot-rl-battery"],
            ["--resume", "--out", P],
        ],
    ),
    "quickstart": (
        ["quickstart", "--task", "reach", "--workdir", f"{R}/qs"],
        [
            ["--demos", "0"],
            ["--bc-steps", "0"],
            ["--eval-episodes", "0"],
            ["--num-envs", "0"],
            ["--workdir", D],
        ],
    ),
    "top": (
        [],
        [
            ["fly"],
            ["--threads", "0", "eval"],
            ["--threads", "x", "eval"],
            ["train"],
            ["train", "ppo"],
            ["train", "bc"],
        ],
    ),
}
CASES = [(verb, extra) for verb, (_, flags) in OTHER_CASES.items() for extra in flags]


def _skip_if_device_exists(flags: list[str]) -> None:
    """``--device cuda`` is bad input only on a machine without that CUDA device."""
    if "--device" not in flags:
        return
    device = flags[flags.index("--device") + 1]
    if device.startswith("cuda") and torch.cuda.is_available():
        index = int(device.partition(":")[2] or 0)
        if index < torch.cuda.device_count():
            pytest.skip(f"{device} exists here")


def _fill(args: list[str], w: Fixtures) -> list[str]:
    subst = {D: str(w.dataset), P: str(w.policy), R: str(w.root)}
    out = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        out.append(a)
    return out


@pytest.fixture
def notes(work: Fixtures) -> Path:
    """A directory of the user's own files, which no --overwrite may delete."""
    d = work.root / "notes"
    d.mkdir()
    (d / "todo.txt").write_text("keep me\n")
    (work.root / "notes.json").write_text('{"mine": true}\n')
    shutil.copytree(work.policy, work.root / "other")
    return d


@pytest.mark.parametrize(("algo", "flags"), TRAIN_CASES, ids=lambda v: " ".join(v) or "-")
def test_bad_train_flag(
    algo: str,
    flags: list[str],
    work: Fixtures,
    notes: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _skip_if_device_exists(flags)
    base = ["train", algo, "--dataset", D, "--out", f"{R}/new", *TRAIN[algo]]
    assert_clean_error(_fill([*base, *flags], work), [work.root], capsys)


@pytest.mark.parametrize(("verb", "flags"), CASES, ids=lambda v: " ".join(v) if v else "-")
def test_bad_flag(
    verb: str,
    flags: list[str],
    work: Fixtures,
    notes: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _skip_if_device_exists(flags)
    base = OTHER_CASES[verb][0]
    assert_clean_error(_fill([*base, *flags], work), [work.root], capsys)

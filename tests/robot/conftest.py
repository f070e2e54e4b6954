"""Shared fixtures for the robot tests: a tiny BC policy trained on scripted lift demos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bc_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BC policy on ``lift`` trained for a few steps (it acts; it need not succeed)."""
    import torch

    from robot_rl.algos.bc import BCConfig, train_bc
    from robot_rl.demos import DemosConfig, generate_demos

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bc")
    data = root / "lift.hdf5"
    generate_demos(DemosConfig(task="lift", episodes=4, out=data, num_envs=4, seed=0))
    out = root / "policy"
    train_bc(
        BCConfig(
            dataset=data,
            out=out,
            hidden_dims=[32, 32],
            steps=30,
            batch_size=64,
            log_dir=root / "runs",
        ),
        progress=False,
    )
    return out


@pytest.fixture
def spawn():  # noqa: ANN201 - returns the launcher below
    """Launch ``python -m robot_rl.cli ARGS`` in a separate process."""
    return spawn_cli


def spawn_cli(*args: str) -> subprocess.Popen:
    """``python -m robot_rl.cli ARGS`` in its own process, this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen(
        [sys.executable, "-m", "robot_rl.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

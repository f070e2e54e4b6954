"""BC learns push from 100 scripted demonstrations (the spine's learning check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl.algos.bc import BCConfig, train_bc
from robot_rl.demos import DemosConfig, generate_demos
from robot_rl.evaluate import evaluate, policy_env


@pytest.mark.slow
def test_bc_push_reaches_80_percent(tmp_path: Path) -> None:
    data = tmp_path / "push.hdf5"
    generate_demos(DemosConfig(task="push", episodes=100, out=data), progress=False)
    policy = train_bc(
        BCConfig(dataset=data, out=tmp_path / "bc", steps=5000, log_dir=tmp_path / "tb"),
        progress=False,
    )
    result = evaluate(policy, policy_env(policy, 10, seed=1000), episodes=50, seed=1000)
    assert result.success_rate >= 0.8, result.success_rate

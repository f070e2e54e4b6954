"""Dependencies point one way, and the policy package loads no simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_kept() -> None:
    """import-linter's contracts in pyproject.toml (layers, forbidden simulator imports) hold."""
    pytest.importorskip("importlinter")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "4 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    "module", ["robot_rl.policies", "robot_rl.data", "robot_rl.robot.msgs", "sim"]
)
def test_light_imports(module: str) -> None:
    """A robot node loading a Gaussian policy never loads mujoco, diffusers or a sim task."""
    code = (
        f"import sys, json, {module}; "
        "print(json.dumps([m for m in ('mujoco', 'diffusers', 'sim.tasks', 'warp') if m in sys.modules]))"
    )
    if module == "robot_rl.robot.msgs":
        pytest.importorskip("cyclonedds")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_gaussian_policy_loads_without_diffusers(tmp_path: Path) -> None:
    """Loading a saved Gaussian policy directory imports no diffusers and no simulator."""
    import torch

    from robot_rl.data import Normalizer
    from robot_rl.policies import GaussianPolicy, GaussianPolicyConfig

    cfg = GaussianPolicyConfig(["pos"], 2, 2, hidden_dims=[8])
    one, zero = torch.ones(2), torch.zeros(2)
    normalizer = Normalizer({"obs.pos": (one, zero), "action": (one, zero)})
    policy = GaussianPolicy(cfg, normalizer, {"env_name": "point"})
    policy.save(tmp_path / "p")
    code = (
        "import sys, json; from robot_rl.policies import load_policy; "
        f"load_policy({str(tmp_path / 'p')!r}); "
        "print(json.dumps([m for m in ('mujoco', 'diffusers', 'sim.tasks') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []

"""``robot-rl train diffusion``: CLI smoke runs, scale presets and config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl.algos.diffusion import DiffusionConfig
from robot_rl.cli import main
from robot_rl.demos import DemosConfig, generate_demos
from robot_rl.evaluate import evaluate, policy_env
from robot_rl.policies import DiffusionPolicy, load_policy


@pytest.fixture(scope="module")
def tiny_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "push.hdf5"
    generate_demos(DemosConfig(task="push", episodes=4, out=path, num_envs=4), progress=False)
    return path


@pytest.mark.parametrize("denoiser", ["mlp", "unet"])
def test_train_diffusion_cli_smoke(tiny_demos: Path, tmp_path: Path, denoiser: str) -> None:
    out = tmp_path / "dp"
    args = ["train", "diffusion", "--dataset", str(tiny_demos), "--out", str(out)]
    args += ["--steps", "3", "--batch-size", "8", "--warmup-steps", "1", "--hidden-dim", "32"]
    args += ["--denoiser", denoiser, "--down-dims", "16", "32", "--log-dir", str(tmp_path / "tb")]
    assert main(args) == 0
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors"}
    policy = load_policy(out)
    assert isinstance(policy, DiffusionPolicy) and policy.config.denoiser == denoiser
    result = evaluate(policy, policy_env(policy, 2), episodes=2)
    assert len(result.success) == 2
    # Existing output is refused without --overwrite.
    assert main(args) == 2


def test_invalid_chunking_is_a_one_line_error(tiny_demos: Path, tmp_path: Path) -> None:
    args = ["train", "diffusion", "--dataset", str(tiny_demos), "--out", str(tmp_path / "x")]
    assert main([*args, "--n-action-steps", "20"]) == 2
    assert main([*args, "--denoiser", "unet", "--horizon", "10"]) == 2
    assert not (tmp_path / "x").exists()


def test_scale_presets_fill_only_unset_fields() -> None:
    paper = DiffusionConfig(dataset=Path("d.hdf5"), out=Path("o"), scale="paper").resolved()
    assert (paper.denoiser, paper.steps, paper.lr) == ("unet", 200_000, 1e-4)
    assert paper.down_dims == [256, 512, 1024]
    assert (paper.horizon, paper.n_action_steps) == (16, 8)
    cpu = DiffusionConfig(dataset=Path("d.hdf5"), out=Path("o"), steps=7).resolved()
    assert (cpu.denoiser, cpu.steps, cpu.horizon, cpu.n_action_steps) == ("mlp", 7, 8, 2)
    mine = DiffusionConfig(dataset=Path("d.hdf5"), out=Path("o"), n_action_steps=4).resolved()
    assert (mine.horizon, mine.n_action_steps) == (8, 4)

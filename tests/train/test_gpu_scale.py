"""The ``gpu`` scale of ``robot-rl finetune``: its presets, its env defaults, a CPU smoke run,
and (with CUDA) that sampling never draws on the host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robot_rl.algos.sac import device_generator
from robot_rl.checkpoint import load_extra
from robot_rl.envs import gpu_sim_kwargs
from robot_rl.errors import ConfigError
from robot_rl.train.finetune import FinetuneConfig, finetune, resolve


@pytest.mark.parametrize("algo", ["sac", "rlpd", "wsrl"])
def test_gpu_preset_is_fasttd3_sized(algo: str, tmp_path: Path) -> None:
    cfg = resolve(FinetuneConfig(algo=algo, task="lift", out=tmp_path / "r", scale="gpu"))
    assert cfg.num_envs == 1024 and cfg.batch_size == 32768 and cfg.updates_per_collect == 8
    assert cfg.compile_critic is True and cfg.replay_capacity == 10_240_000
    cpu = resolve(FinetuneConfig(algo=algo, task="lift", out=tmp_path / "r"))
    assert cpu.compile_critic is False and cpu.replay_capacity is None


def test_expo_has_no_gpu_scale(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown scale 'gpu'"):
        resolve(FinetuneConfig(algo="expo", task="lift", out=tmp_path / "r", scale="gpu"))


def test_gpu_sim_defaults_only_for_builtin_tasks() -> None:
    assert gpu_sim_kwargs("lift", "cuda:0", {}) == {"backend": "mujoco_warp", "device": "cuda:0"}
    assert gpu_sim_kwargs("lift", "cuda:0", {"backend": "mujoco"})["backend"] == "mujoco"
    assert gpu_sim_kwargs("gym:Pendulum-v1", "cuda:0", {"x": 1}) == {"x": 1}


def test_gpu_scale_smoke_runs_on_cpu_with_a_ring_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = FinetuneConfig(
        algo="sac", task="point", out=tmp_path / "g", scale="gpu", env_steps=96, num_envs=16,
        batch_size=64, updates_per_collect=2, random_steps=32, critic_hidden_dims=[32, 32],
        compile_critic=False, replay_capacity=48, eval_every=96, eval_episodes=4,
    )  # fmt: skip
    finetune(cfg, progress=False)
    assert "warning: --scale gpu on device 'cpu'" in capsys.readouterr().err
    rows = json.loads((tmp_path / "g" / "curve.json").read_text())["rows"]
    assert rows[-1]["updates"] == 2 * (96 - 32) // 16

    replay = load_extra(tmp_path / "g" / "checkpoint", "replay")
    assert replay["pos"].tolist()[1:] == [48, 48]  # a full ring of 48 rows, not 96 + 16


def test_cpu_runs_keep_one_generator() -> None:
    gen = torch.Generator().manual_seed(0)
    assert device_generator(gen, torch.device("cpu")) is gen


@pytest.mark.gpu
def test_cuda_draws_stay_on_the_device() -> None:
    gen = torch.Generator().manual_seed(0)
    dev = device_generator(gen, torch.device("cuda"))
    assert dev.device.type == "cuda"
    again = device_generator(torch.Generator().manual_seed(0), torch.device("cuda"))
    assert torch.equal(
        torch.randint(10, (5,), generator=dev, device="cuda"),
        torch.randint(10, (5,), generator=again, device="cuda"),
    )

"""The loop drives every online algorithm on the pure-torch point env; the defects fixed in
the loop (action box, reward convention, resume) each have a test that failed before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from robot_rl.algos.agent import RewardConvention, saved_reward_convention
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.policies import load_policy
from robot_rl.record import RecordConfig, run_record
from robot_rl.train.finetune import FinetuneConfig, finetune
from sim.toy import PointReachEnv

SMALL = {"num_envs": 4, "eval_episodes": 4, "eval_every": 32, "batch_size": 16, "utd": 1,
         "checkpoint_every": 32}  # fmt: skip


@pytest.fixture(scope="module")
def point_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("pt") / "point.hdf5"
    run_record(RecordConfig(env="point", out=data, episodes=12, num_envs=4), progress=False)
    return data


def _envs() -> tuple[PointReachEnv, PointReachEnv]:
    return PointReachEnv(4, "cpu", 0), PointReachEnv(4, "cpu", 1000)


def test_sac_starts_with_no_prior_data(tmp_path: Path) -> None:
    cfg = FinetuneConfig(algo="sac", task="point", out=tmp_path / "s", env_steps=64,
                         random_steps=16, **SMALL)  # fmt: skip
    finetune(cfg, *_envs(), progress=False)
    policy = load_policy(cfg.out / "policy")
    assert policy.obs_keys == ["goal", "pos"] or set(policy.obs_keys) == {"goal", "pos"}
    assert json.loads((cfg.out / "curve.json").read_text())["rows"][-1]["updates"] > 0


def test_reward_convention_is_recorded_and_kept_by_the_next_run(
    point_data: Path, tmp_path: Path
) -> None:
    """A run's policy/ records the convention its critics learned under; WSRL started from it
    keeps that convention instead of falling back to 10 r - 5."""
    first = FinetuneConfig(algo="rlpd", task="point", dataset=point_data, out=tmp_path / "a",
                           env_steps=32, random_steps=16, reward_scale=1.0, reward_bias=-1.0,
                           discount=0.95, **SMALL)  # fmt: skip
    finetune(first, *_envs(), progress=False)
    saved = json.loads((first.out / "policy" / "config.json").read_text())
    assert saved_reward_convention(saved) == RewardConvention(1.0, -1.0, 0.95)
    second = FinetuneConfig(algo="wsrl", task="point", init=first.out / "policy",
                            out=tmp_path / "b", env_steps=32, warmup_steps=16, **SMALL)  # fmt: skip
    finetune(second, *_envs(), progress=False)
    saved = json.loads((second.out / "policy" / "config.json").read_text())
    assert saved_reward_convention(saved) == RewardConvention(1.0, -1.0, 0.95)


def test_finetuning_acts_in_the_env_action_box(point_data: Path, tmp_path: Path) -> None:
    """The start data covers only part of [-1, 1]; the fine-tuned actor's range is the env's
    box, and random exploration is stored unclamped."""
    cfg = FinetuneConfig(algo="rlpd", task="point", dataset=point_data, out=tmp_path / "r",
                         env_steps=32, random_steps=32, **SMALL)  # fmt: skip
    finetune(cfg, *_envs(), progress=False)
    policy = load_policy(cfg.out / "checkpoint")
    scale, offset = policy.normalizer.params["action"]
    assert torch.equal(scale, torch.ones_like(scale)) and torch.equal(
        offset, torch.zeros_like(offset)
    )
    actions = policy.normalizer.unnormalize_action(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    assert torch.equal(actions, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))


def test_resume_checks_settings_budget_and_keeps_the_saved_normalizer(
    point_data: Path, tmp_path: Path
) -> None:
    cfg = FinetuneConfig(algo="rlpd", task="point", dataset=point_data, out=tmp_path / "r",
                         env_steps=64, random_steps=16, **SMALL)  # fmt: skip
    finetune(cfg, *_envs(), progress=False)
    resume = dataclasses.replace(cfg, resume=True)
    with pytest.raises(ConfigError, match="env-steps 32 is below"):
        finetune(dataclasses.replace(resume, env_steps=32), *_envs(), progress=False)
    with pytest.raises(CheckpointError, match="batch_size"):
        finetune(dataclasses.replace(resume, env_steps=96, batch_size=8), *_envs(), progress=False)
    with pytest.raises(CheckpointError, match="offline_ratio"):
        finetune(dataclasses.replace(resume, env_steps=96, offline_ratio=0.25), *_envs(),
                 progress=False)  # fmt: skip
    before = load_policy(cfg.out / "checkpoint").normalizer.params
    finetune(dataclasses.replace(resume, env_steps=96), *_envs(), progress=False)
    after = load_policy(cfg.out / "checkpoint").normalizer.params
    assert all(torch.equal(before[k][0], after[k][0]) for k in before)
    rows = json.loads((cfg.out / "curve.json").read_text())["rows"]
    assert [r["env_steps"] for r in rows] == [0, 32, 64, 96]


def test_expo_runs_in_the_loop_and_resumes(point_data: Path, tmp_path: Path) -> None:
    from robot_rl.algos.diffusion import DiffusionConfig, train_diffusion

    base = tmp_path / "dp"
    train_diffusion(DiffusionConfig(dataset=point_data, out=base, steps=30, hidden_dim=32,
                                    log_dir=tmp_path / "tb"), progress=False)  # fmt: skip
    cfg = FinetuneConfig(algo="expo", task="point", init=base, out=tmp_path / "e", env_steps=64,
                         warmup_steps=16, num_samples=2, num_critics=2,
                         critic_hidden_dims=[16], **SMALL)  # fmt: skip
    finetune(cfg, *_envs(), progress=False)
    policy = load_policy(cfg.out / "policy")
    assert policy.policy_type == "expo"
    rows = json.loads((cfg.out / "curve.json").read_text())["rows"]
    assert rows[-1]["updates"] > 0
    finetune(dataclasses.replace(cfg, resume=True, env_steps=96), *_envs(), progress=False)
    rows = json.loads((cfg.out / "curve.json").read_text())["rows"]
    assert rows[-1]["env_steps"] == 96

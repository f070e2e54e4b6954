"""``expo.build``: what a run starts from, what it refuses, and which settings reach the agent.

The start policies are built and saved here (no training): a diffusion policy that records the
dataset it was trained on, a Gaussian policy, and an EXPO run's ``policy/`` with its reward
convention.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from robot_rl.algos import expo
from robot_rl.algos.agent import RewardConvention
from robot_rl.data import read_robomimic
from robot_rl.data.normalizer import Normalizer
from robot_rl.errors import ConfigError
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, GaussianPolicy, load_policy
from robot_rl.policies.critic import CriticConfig, CriticEnsemble
from robot_rl.policies.expo import EXPOPolicy
from robot_rl.policies.gaussian import GaussianPolicyConfig
from robot_rl.train.finetune import FinetuneConfig, resolve

KEYS = ["goal", "pos"]


@pytest.fixture(scope="module")
def starts(tmp_path_factory: pytest.TempPathFactory, point_demos: Path) -> dict[str, Path]:
    root, data = tmp_path_factory.mktemp("expo_build"), point_demos
    norm = Normalizer.fit(read_robomimic(data), KEYS)
    torch.manual_seed(0)
    cfg = DiffusionPolicyConfig(KEYS, 4, 2, horizon=4, n_action_steps=2, hidden_dim=16,
                                num_blocks=1, num_inference_steps=2)  # fmt: skip
    dp = DiffusionPolicy(cfg, norm, {"env_name": "point"})
    dp.save(root / "dp", extra_config={"train": {"dataset": str(data)}})
    dp.save(root / "dp_no_data")
    gauss = GaussianPolicy(GaussianPolicyConfig(KEYS, 4, 2, [8]), norm, {"env_name": "point"})
    gauss.save(root / "gauss")
    critic = CriticEnsemble(CriticConfig(4, 4, num_critics=3, hidden_dims=[8]))
    run = EXPOPolicy.from_diffusion(dp, critic, num_samples=2, beta=0.2, edit_hidden_dims=[8])
    with torch.no_grad():
        for p in run.edit.parameters():
            p.add_(0.5)  # a trained edit policy differs from a fresh one
    reward = {"reward": RewardConvention(2.0, -0.5, 0.95).to_json()}
    run.save(root / "run", extra_config=reward)
    run.save(root / "run_data", extra_config={**reward, "finetune": {"dataset": str(data)}})
    return {"data": data, "dp": root / "dp", "dp_no_data": root / "dp_no_data",
            "gauss": root / "gauss", "run": root / "run", "run_data": root / "run_data"}  # fmt: skip


def _build(tmp_path: Path, **fields: object) -> expo.EXPOAgent:
    cfg = resolve(FinetuneConfig(algo="expo", task="point", out=tmp_path / "out", **fields))
    return expo.build(cfg, None, torch.Generator().manual_seed(0))


def test_refusals_name_the_problem(starts: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        ({}, "expo needs --init: a diffusion policy (robot-rl train diffusion) or an expo run's "
             "policy/"),
        ({"init": starts["dp"], "task": "reach"},
         "start policy was trained for env 'point', not 'reach'"),
        ({"init": starts["gauss"]},
         f"{starts['gauss']}: expo fine-tunes a diffusion policy, got 'gaussian'"),
        ({"init": starts["dp_no_data"]}, "expo: offline_ratio 0.5 needs --dataset"),
    ]  # fmt: skip
    for fields, message in cases:
        task = fields.pop("task", "point")
        cfg = resolve(FinetuneConfig(algo="expo", task="point", out=tmp_path / "o", **fields))
        cfg.task = task
        with pytest.raises(ConfigError) as err:
            expo.build(cfg, None, torch.Generator())
        assert str(err.value) == message


def test_from_a_diffusion_policy_with_the_cpu_preset(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    gen = torch.Generator().manual_seed(0)
    cfg = resolve(FinetuneConfig(algo="expo", task="point", out=tmp_path / "o", init=starts["dp"],
                                 env_steps=100))  # fmt: skip
    agent = expo.build(cfg, None, gen)
    s, p = agent.cfg, agent.policy
    # The dataset the start policy trained on, with its observation keys, is the offline data.
    assert agent.offline is not None and sorted(agent.offline.obs) == KEYS
    assert agent.offline_rows is not None
    assert len(agent.offline_rows["reward"]) == agent.offline.num_transitions
    assert (s.num_base_samples, s.num_edits, s.beta, s.utd, s.batch_size) == (4, 4, 0.3, 4, 256)
    assert (s.num_critics, s.critic_hidden_dims, s.offline_ratio) == (10, (128, 128), 0.5)
    assert (s.target_entropy_per_dim, s.next_base, s.beta_mode) == (-0.5, "cache", "fixed")
    assert (s.reward_scale, s.reward_bias, s.discount) == (10.0, -5.0, 0.99)
    assert (p.config.num_samples, p.config.beta, p.config.edit_hidden_dims) == (4, 0.3, [128, 128])
    assert agent.critic.num_critics == 10 and agent.critic.config.hidden_dims == [128, 128]
    assert agent.core.chunk == 2 and agent.warmup_steps == 1000 and agent.generator is gen
    assert agent.online.capacity == (100 + 8) // 2 + 8  # the whole budget, in chunks
    assert float(agent.core.log_temperature.detach()) == 0.0
    assert p.training


def test_settings_given_override_the_preset(starts: dict[str, Path], tmp_path: Path) -> None:
    agent = _build(tmp_path, init=starts["dp"], scale="paper", num_samples=3, beta=0.1,
                   utd=2, batch_size=8, num_critics=2, critic_hidden_dims=[8],
                   target_entropy_per_dim=-1.0, reward_scale=1.0, reward_bias=0.5,
                   discount=0.9, init_temperature=0.25, warmup_steps=7, beta_mode="adaptive",
                   offline_ratio=0.0)  # fmt: skip
    s = agent.cfg
    assert (s.num_base_samples, s.num_edits, s.beta, s.utd, s.batch_size) == (3, 3, 0.1, 2, 8)
    assert (s.num_critics, s.critic_hidden_dims, s.target_entropy_per_dim) == (2, (8,), -1.0)
    assert (s.reward_scale, s.reward_bias, s.discount) == (1.0, 0.5, 0.9)
    assert (s.next_base, s.beta_mode, s.offline_ratio) == ("fresh", "adaptive", 0.0)
    assert agent.policy.config.edit_hidden_dims == [256, 256]  # paper widths
    assert agent.offline is None and agent.offline_rows is None  # no share: no offline rows
    assert math.isclose(float(agent.core.log_temperature.detach()), math.log(0.25), rel_tol=1e-6)
    assert agent.warmup_steps == 7


def test_from_an_expo_run_keeps_its_edit_targets_and_reward(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    agent = _build(tmp_path, init=starts["run"], dataset=starts["data"])
    saved = load_policy(starts["run"])
    assert agent.policy.config.num_samples == 2 and agent.policy.config.beta == 0.2
    assert agent.cfg.num_base_samples == 2 and agent.cfg.beta == 0.2
    # Its target critics become the critics (a copy, so the target can lag behind them).
    for k, v in agent.policy.target.state_dict().items():
        assert torch.equal(agent.critic.state_dict()[k], v)
    assert agent.critic is not agent.policy.target and agent.critic.num_critics == 3
    edit = agent.policy.edit.state_dict()
    assert all(torch.equal(edit[k], v) for k, v in saved.edit.state_dict().items())
    assert (agent.cfg.reward_scale, agent.cfg.reward_bias, agent.cfg.discount) == (2.0, -0.5, 0.95)


def test_the_offline_data_defaults_to_what_the_start_was_trained_or_fine_tuned_on(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    # An EXPO run's policy/ records its fine-tuning dataset; a start that records none runs
    # without offline data when the share is 0.
    agent = _build(tmp_path, init=starts["run_data"])
    assert agent.offline is not None and agent.offline.num_transitions > 0
    agent = _build(tmp_path, init=starts["dp_no_data"], offline_ratio=0.0)
    assert agent.offline is None and agent.offline_rows is None

"""Evaluation is reproducible: one seed gives the same actions and the same eval.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import sim
from robot_rl.data.normalizer import Normalizer
from robot_rl.evaluate import EvalConfig, evaluate, run_eval
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig

KEYS = ["goal", "robot0_eef_pos"]


def _policy(sampler: str = "ddim") -> DiffusionPolicy:
    torch.manual_seed(0)
    norm = Normalizer()
    for k in KEYS:
        norm.params[f"obs.{k}"] = (torch.ones(3), torch.zeros(3))
    norm.params["action"] = (torch.ones(4), torch.zeros(4))
    cfg = DiffusionPolicyConfig(
        KEYS, 6, 4, horizon=8, n_action_steps=2, hidden_dim=16, num_blocks=1,
        inference_scheduler=sampler,
    )  # fmt: skip
    return DiffusionPolicy(cfg, norm, {"env_name": "reach", "env_kwargs": {"horizon": 6}})


def _eval_actions(policy: DiffusionPolicy, deterministic: bool, rng_seed: int) -> torch.Tensor:
    """Every action the policy took in a 4-episode evaluation, with the global RNG at
    ``rng_seed`` beforehand (evaluation must not depend on it)."""
    actions: list[torch.Tensor] = []
    act = policy.act

    def recording_act(obs, deterministic=False, **kwargs):
        out = act(obs, deterministic=deterministic, **kwargs)
        actions.append(out.clone())
        return out

    policy.act = recording_act  # type: ignore[method-assign]
    policy.reset()
    torch.manual_seed(rng_seed)
    env = sim.make("reach", num_envs=2, seed=0, horizon=6)
    try:
        evaluate(policy, env, episodes=4, seed=123, deterministic=deterministic)
    finally:
        env.close()
        del policy.act
    return torch.cat(actions)


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_two_evaluations_act_alike(deterministic: bool, sampler: str) -> None:
    policy = _policy(sampler)
    first = _eval_actions(policy, deterministic, rng_seed=1)
    second = _eval_actions(policy, deterministic, rng_seed=2)
    torch.testing.assert_close(first, second, atol=0, rtol=0)


def test_eval_json_is_identical_across_runs(tmp_path: Path) -> None:
    _policy().save(tmp_path / "p")
    reports = []
    for i in range(2):
        torch.manual_seed(i)
        out = tmp_path / f"eval{i}.json"
        run_eval(EvalConfig(tmp_path / "p", episodes=2, num_envs=2, out=out), progress=False)
        reports.append(json.loads(out.read_text()))
    assert reports[0] == reports[1] and reports[0]["deterministic"] is True

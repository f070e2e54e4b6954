"""Helpers the algorithms share: the saved reward convention (the entry critic-training
commands write, or an older offline trainer's settings) and the offline RL actor and critics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robot_rl.algos.agent import RewardConvention, saved_reward_convention


@pytest.mark.parametrize(("config", "expected"), [
    ({"reward": {"scale": 2.0, "bias": -1.0, "discount": 0.9}}, RewardConvention(2.0, -1.0, 0.9)),
    # An offline trainer that predates the entry: its train settings (discount 0.99 if unset).
    ({"train": {"reward_scale": 3, "reward_bias": 0.5, "discount": 0.95}},
     RewardConvention(3.0, 0.5, 0.95)),
    ({"train": {"reward_scale": 3, "reward_bias": 0.5}}, RewardConvention(3.0, 0.5, 0.99)),
    # The entry wins over the settings; half a convention or none is no convention.
    ({"reward": {"scale": 1, "bias": 0, "discount": 0.8}, "train": {"reward_scale": 3,
      "reward_bias": 0.5}}, RewardConvention(1.0, 0.0, 0.8)),
    ({"train": {"reward_scale": 3}}, None),
    ({"train": {"reward_bias": 0.5}}, None),
    ({"train": {}}, None),
    ({}, None),
])  # fmt: skip
def test_saved_reward_convention(config: dict, expected: RewardConvention | None) -> None:
    assert saved_reward_convention(config) == expected


def test_offline_rl_actors_act_in_the_env_box_not_the_demos(push_demos: Path) -> None:
    """push's expert keeps the gripper in [0.84, 1]: a min/max action normalizer would leave
    the actor (and everything fine-tuned from it) unable to open it."""
    from robot_rl.algos.calql import CalQLConfig
    from robot_rl.algos.common import build_actor_critic
    from robot_rl.data import read_robomimic

    data = read_robomimic(push_demos)
    assert data.actions[:, -1].min() > 0.5  # the demos use part of the gripper's range
    cfg = CalQLConfig(dataset=push_demos, out=push_demos.parent / "unused", hidden_dims=[8, 4],
                      num_critics=3, critic_hidden_dims=[8], critic_layer_norm=False)  # fmt: skip
    actor, critic, target = build_actor_critic(cfg, data, {"env_name": "push"})
    scale, offset = actor.normalizer.params["action"]
    assert torch.equal(scale, torch.ones(data.action_dim))
    assert torch.equal(offset, torch.zeros(data.action_dim))
    floats = sorted(k for k, v in data.obs.items() if v.is_floating_point())
    assert sorted(actor.obs_keys) == floats and actor.config.hidden_dims == [8, 4]
    assert actor.config.obs_dim == sum(data.obs[k].shape[-1] for k in floats)
    assert (critic.num_critics, critic.config.hidden_dims, critic.config.layer_norm) == (
        3,
        [8],
        False,
    )
    assert all(torch.equal(a, b) for a, b in zip(critic.parameters(), target.parameters(),
                                                 strict=True))  # fmt: skip

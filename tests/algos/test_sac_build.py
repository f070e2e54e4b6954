"""``sac.build_agent`` through ``sac`` / ``rlpd`` / ``wsrl``: the start it loads, what it refuses,
and every setting that must reach the learner, the sampler and the replay.

The start policies are built and saved here (no training): a Gaussian policy that records its
dataset, and a Cal-QL-style directory with critics, a temperature and a reward convention.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import h5py
import pytest
import torch

from robot_rl.algos import rlpd, sac, wsrl
from robot_rl.algos.agent import RewardConvention
from robot_rl.data import read_robomimic, write_robomimic
from robot_rl.data.normalizer import Normalizer
from robot_rl.errors import ConfigError
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, GaussianPolicy
from robot_rl.policies.critic import CriticConfig, CriticEnsemble
from robot_rl.policies.gaussian import GaussianPolicyConfig
from robot_rl.train.finetune import FinetuneConfig, resolve
from sim.toy import PointReachEnv

KEYS = ["goal", "pos"]


@pytest.fixture(scope="module")
def starts(tmp_path_factory: pytest.TempPathFactory, point_demos: Path) -> dict[str, Path]:
    root, data = tmp_path_factory.mktemp("sac_build"), point_demos
    norm = Normalizer.fit(read_robomimic(data), KEYS)
    torch.manual_seed(0)
    actor = GaussianPolicy(GaussianPolicyConfig(KEYS, 4, 2, [8]), norm, {"env_name": "point"})
    actor.save(root / "bc", extra_config={"train": {"dataset": str(data)}})
    critic = CriticEnsemble(CriticConfig(4, 2, num_critics=3, hidden_dims=[8]))
    target = CriticEnsemble(CriticConfig(4, 2, num_critics=3, hidden_dims=[8]))
    files = {f"{p}.{k}": v for p, net in (("critic", critic), ("target", target))
             for k, v in net.state_dict().items()}  # fmt: skip
    extra = {"critic": dataclasses.asdict(critic.config), "temperature": 0.2,
             "reward": RewardConvention(1.0, -1.0, 0.95).to_json(),
             "train": {"dataset": str(data)}}  # fmt: skip
    actor.save(root / "calql", extra_config=extra, extra_files={"critic": files})
    no_temperature = {k: v for k, v in extra.items() if k != "temperature"}  # as IQL saves
    actor.save(root / "iql", extra_config=no_temperature, extra_files={"critic": files})
    dp_cfg = DiffusionPolicyConfig(KEYS, 4, 2, horizon=4, n_action_steps=2, hidden_dim=8)
    DiffusionPolicy(dp_cfg, norm, {"env_name": "point"}).save(root / "dp")
    narrow = root / "narrow.hdf5"
    with h5py.File(data) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        episodes = [{part: {k: g[f"{part}/{k}"][()] for k in g[part]} for part in ("obs", "next_obs")}
                    | {"actions": 0.5 * g["actions"][()], "rewards": g["rewards"][()],
                       "dones": g["dones"][()]}
                    for g in (f["data"][n] for n in f["data"])]  # fmt: skip
    write_robomimic(narrow, episodes, env_args)
    return {"data": data, "bc": root / "bc", "calql": root / "calql", "iql": root / "iql",
            "dp": root / "dp", "narrow": narrow}  # fmt: skip


def _cfg(tmp_path: Path, algo: str, **fields: object) -> FinetuneConfig:
    return resolve(FinetuneConfig(algo=algo, task="point", out=tmp_path / "o", env_steps=100,
                                  num_envs=4, **fields))  # fmt: skip


def _env() -> PointReachEnv:
    return PointReachEnv(4, "cpu", 0)


def test_rlpd_takes_the_starts_dataset_and_every_setting(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    gen = torch.Generator().manual_seed(0)
    cfg = _cfg(tmp_path, "rlpd", init=starts["bc"], utd=3, batch_size=16, num_critics=4,
               critic_hidden_dims=[8, 8], target_entropy_per_dim=-0.25, temperature_lr=1e-3,
               reward_scale=2.0, reward_bias=0.5, discount=0.9, warmup_steps=5, random_steps=6,
               actor_delay_updates=7, entropy_backup=False, actor_reduce="min",
               replay_capacity=40)  # fmt: skip
    agent = rlpd.build(cfg, _env(), gen)
    s = agent.sac.cfg
    assert (s.utd, s.batch_size, s.actor_full_batch, s.target_subset) == (3, 16, False, 2)
    assert (s.actor_reduce, s.entropy_backup, s.target_entropy_per_dim) == ("min", False, -0.25)
    assert (s.actor_lr, s.temperature_lr, s.compile_critic) == (3e-4, 1e-3, False)
    assert (s.discount, s.reward_scale, s.reward_bias) == (0.9, 2.0, 0.5)
    assert agent.reward == RewardConvention(2.0, 0.5, 0.9)
    assert agent.sac.critic.num_critics == 4 and agent.sac.critic.config.hidden_dims == [8, 8]
    assert agent.sac.temperature == pytest.approx(1.0)  # new critics: temperature 1
    # Half of each batch from the dataset the start policy recorded, with its obs keys.
    assert agent.sampler.offline is not None and agent.sampler.offline_ratio == 0.5
    assert sorted(agent.sampler.offline.obs) == KEYS
    assert sorted(agent.buffer.obs) == KEYS and agent.buffer.capacity == 40
    assert (agent.warmup_steps, agent.random_steps, agent.actor_delay_updates) == (5, 6, 7)
    assert agent.generator is gen and agent.sac.generator is gen  # on a CPU: one generator


def test_the_replay_holds_the_whole_budget_by_default(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    agent = sac.build(_cfg(tmp_path, "sac", init=starts["bc"]), _env(), torch.Generator())
    assert agent.buffer.capacity == 100 + 4
    assert agent.sampler.offline is None  # plain SAC: no offline share, no data loaded


def test_wsrl_keeps_the_starts_critics_temperature_and_reward(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    # The paper preset leaves the temperature to the start (the cpu preset sets 0.1).
    cfg = _cfg(tmp_path, "wsrl", init=starts["calql"], scale="paper")
    gen = torch.Generator()
    agent = wsrl.build(cfg, _env(), gen)
    assert agent.generator is gen
    s = agent.sac.cfg
    assert agent.sac.critic.num_critics == 3 and s.target_subset == 2
    assert (s.actor_full_batch, s.actor_lr) == (True, wsrl.ACTOR_LR)
    assert agent.reward == RewardConvention(1.0, -1.0, 0.95)
    assert (s.discount, s.reward_scale, s.reward_bias) == (0.95, 1.0, -1.0)
    assert agent.sac.temperature == pytest.approx(0.2)
    given = _cfg(tmp_path, "wsrl", init=starts["calql"], init_temperature=0.05, reward_bias=0.0)
    agent = wsrl.build(given, _env(), torch.Generator())
    assert agent.sac.temperature == pytest.approx(0.05)
    assert agent.reward == RewardConvention(1.0, 0.0, 0.95)
    assert math.isclose(agent.sac.cfg.reward_bias, 0.0)


def test_refusals_name_the_problem(starts: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        rlpd.build(_cfg(tmp_path, "rlpd"), _env(), torch.Generator())
    assert str(err.value) == "rlpd: offline_ratio 0.5 needs --dataset"
    with pytest.raises(ConfigError) as err:
        wsrl.build(_cfg(tmp_path, "wsrl", init=starts["bc"]), _env(), torch.Generator())
    assert str(err.value) == (
        f"wsrl starts from a policy with critics: {starts['bc']}: config.json has no 'critic' "
        "entry (not an RL policy) (pass --fresh-critic to start new critics instead)"
    )
    # --fresh-critic: new critics, temperature 1, the algorithm's reward convention.
    fresh = _cfg(
        tmp_path, "wsrl", init=starts["bc"], fresh_critic=True, num_critics=5, scale="paper"
    )
    agent = wsrl.build(fresh, _env(), torch.Generator())
    assert agent.sac.critic.num_critics == 5 and agent.sac.temperature == pytest.approx(1.0)
    assert agent.reward == wsrl.REWARD


def test_rlpd_from_the_dataset_alone_acts_in_the_env_box(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    agent = rlpd.build(_cfg(tmp_path, "rlpd", dataset=starts["data"]), _env(), torch.Generator())
    actor = agent.sac.policy
    assert sorted(actor.obs_keys) == KEYS and actor.config.obs_dim == 4
    assert actor.config.hidden_dims == [256, 256] and actor.config.action_dim == 2
    scale, offset = actor.normalizer.params["action"]
    assert scale.tolist() == [1.0, 1.0] and offset.tolist() == [0.0, 0.0]  # not the demos' box
    fitted = Normalizer.fit(read_robomimic(starts["data"]), KEYS).params["obs.pos"]
    assert all(torch.allclose(a, b) for a, b in zip(actor.normalizer.params["obs.pos"], fitted,
                                                    strict=True))  # fmt: skip
    assert agent.sac.cfg.actor_reduce == "mean" and agent.sac.cfg.entropy_backup  # rlpd preset
    # Kept (not from scratch), the dataset-built actor's normalizer is already the env's box,
    # even where the demos use half of it.
    kept = _cfg(tmp_path, "rlpd", dataset=starts["narrow"], from_scratch=False)
    scale, offset = rlpd.build(kept, _env(), torch.Generator()).sac.policy.normalizer.params[
        "action"
    ]
    assert scale.tolist() == [1.0, 1.0] and offset.tolist() == [0.0, 0.0]


def test_a_new_actor_keeps_the_starts_observation_scaling_but_the_env_action_box(
    starts: dict[str, Path], tmp_path: Path
) -> None:
    agent = rlpd.build(_cfg(tmp_path, "rlpd", init=starts["bc"]), _env(), torch.Generator())
    start = Normalizer.fit(read_robomimic(starts["data"]), KEYS)
    for key in ("obs.goal", "obs.pos"):
        mine, theirs = agent.sac.policy.normalizer.params[key], start.params[key]
        assert all(torch.allclose(a, b) for a, b in zip(mine, theirs, strict=True)), key
    assert agent.sac.policy.normalizer.params["action"][0].tolist() == [1.0, 1.0]


def test_more_refusals_and_defaults(starts: dict[str, Path], tmp_path: Path) -> None:
    for algo, fields, message in [
        ("rlpd", {"dataset": starts["data"]}, "start policy / data are for env 'point', not 'reach'"),
        ("sac", {"init": starts["bc"]}, "start policy / data are for env 'point', not 'reach'"),
        ("rlpd", {"init": starts["dp"], "dataset": starts["data"], "task": "point"},
         f"{starts['dp']}: rlpd fine-tunes a gaussian policy, got 'diffusion'"),
    ]:  # fmt: skip
        task = fields.pop("task", "reach")
        cfg = dataclasses.replace(_cfg(tmp_path, algo, **fields), task=task)
        with pytest.raises(ConfigError) as err:
            {"rlpd": rlpd, "sac": sac}[algo].build(cfg, _env(), torch.Generator())
        assert str(err.value) == message
    # Critics without a saved temperature (IQL) start at 1.
    agent = wsrl.build(_cfg(tmp_path, "wsrl", init=starts["iql"], scale="paper"), _env(),
                       torch.Generator())  # fmt: skip
    assert agent.sac.temperature == pytest.approx(1.0)
    compiled = rlpd.build(_cfg(tmp_path, "rlpd", init=starts["bc"], compile_critic=True), _env(),
                          torch.Generator())  # fmt: skip
    assert compiled.sac.cfg.compile_critic is True
    # A single critic: the target's min over a subset of 2 becomes that critic itself.
    single = rlpd.build(_cfg(tmp_path, "rlpd", init=starts["bc"], num_critics=1), _env(),
                        torch.Generator())  # fmt: skip
    assert single.sac.cfg.target_subset == 1

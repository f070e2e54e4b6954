"""SAC update: TD targets on termination vs truncation, ensemble reductions, state round trip."""

from __future__ import annotations

import pytest
import torch

from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.data import Normalizer
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.policies.critic import CriticConfig, CriticEnsemble, make_target
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig

OBS, ACT = 3, 2


def _sac(num_critics: int = 4, **kw: object) -> SAC:
    torch.manual_seed(0)
    norm = Normalizer()
    norm.params["obs.x"] = (torch.ones(OBS), torch.zeros(OBS))
    norm.params["action"] = (torch.ones(ACT), torch.zeros(ACT))
    policy = GaussianPolicy(GaussianPolicyConfig(["x"], OBS, ACT, [16]), norm, {})
    critic = CriticEnsemble(CriticConfig(OBS, ACT, num_critics, [16]))
    cfg = SACConfig(**{"utd": 2, "batch_size": 8, **kw})  # type: ignore[arg-type]
    return SAC(policy, critic, make_target(critic), cfg, 0.5, torch.Generator().manual_seed(0))


def _batch(rows: int, terminals: torch.Tensor | None = None) -> dict:
    return {
        "obs": {"x": torch.randn(rows, OBS)},
        "next_obs": {"x": torch.randn(rows, OBS)},
        "actions": torch.rand(rows, ACT) * 2 - 1,
        "rewards": torch.zeros(rows),
        "terminals": torch.zeros(rows) if terminals is None else terminals,
    }


def _constant_target(sac: SAC, value: float) -> None:
    last = sac.target.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)


def test_td_target_bootstraps_on_truncation_not_termination() -> None:
    sac = _sac(entropy_backup=False, discount=0.9, reward_scale=10.0, reward_bias=-5.0)
    _constant_target(sac, 3.0)
    reward = torch.tensor([0.0, 1.0, 0.0, 1.0]) * 10.0 - 5.0
    # Rows 0-1 ended by truncation (not_done 1), rows 2-3 by termination (not_done 0).
    not_done = torch.tensor([1.0, 1.0, 0.0, 0.0])
    nxt = {"x": torch.randn(4, OBS)}
    target = sac.td_target(reward, not_done, nxt["x"], nxt)
    assert torch.allclose(target, torch.tensor([-5 + 2.7, 5 + 2.7, -5.0, 5.0]))


def test_entropy_backup_subtracts_temperature_log_prob() -> None:
    sac = _sac(entropy_backup=True, discount=1.0)
    _constant_target(sac, 0.0)
    nxt = {"x": torch.randn(64, OBS)}
    torch.manual_seed(1)
    target = sac.td_target(torch.zeros(64), torch.ones(64), nxt["x"], nxt)
    torch.manual_seed(1)
    _, log_pi = sac.policy.sample(nxt)
    assert torch.allclose(target, -0.5 * log_pi, atol=1e-5)


def test_update_changes_every_critic_and_the_actor() -> None:
    sac = _sac()
    critic0 = [p.clone() for p in sac.critic.parameters()]
    actor0 = [p.clone() for p in sac.policy.parameters()]
    metrics = sac.update(_batch(16))
    assert all(torch.isfinite(v) for v in metrics.values())
    # Each member's slice of the stacked weights moved.
    w0, w1 = critic0[0], next(sac.critic.parameters())
    assert ((w1 - w0).flatten(1).abs().sum(1) > 0).all()
    assert any(not torch.equal(a, b) for a, b in zip(actor0, sac.policy.parameters(), strict=True))
    with pytest.raises(ConfigError, match="rows"):
        sac.update(_batch(8))


def test_actor_reduction_mean_vs_min() -> None:
    # Members answer the constants 0, 1, 2, 3 whatever the input: the actor's Q is their mean
    # (1.5) or min (0), and the actor loss is temperature * log pi - Q with temperature 0.5.
    for reduce, q_pi in (("mean", 1.5), ("min", 0.0)):
        sac = _sac(actor_reduce=reduce)
        last = sac.critic.net[-1]
        with torch.no_grad():
            last.weight.zero_()
            shape = (-1,) + (1,) * (last.bias.dim() - 1)
            last.bias.copy_(torch.arange(4.0).reshape(shape).expand_as(last.bias))
        obs = {"x": torch.randn(8, OBS)}
        metrics = sac._actor_step(obs["x"], obs)
        assert metrics["train/q_pi_mean"].item() == pytest.approx(q_pi, abs=1e-6), reduce
        log_pi_mean = -metrics["train/entropy"].item()
        assert metrics["train/actor_loss"].item() == pytest.approx(0.5 * log_pi_mean - q_pi)
        assert metrics["train/temperature"].item() == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        _sac(actor_reduce="max")
    with pytest.raises(ConfigError, match="target_subset"):
        _sac(num_critics=2, target_subset=3)


def test_state_dict_round_trip_continues_identically() -> None:
    a, b = _sac(), _sac(num_critics=4)
    a.update(_batch(16))
    tensors, meta = a.state_dict()
    # Clones, as when read from a file (optimizers keep the tensors they are given).
    b.load_state_dict({k: v.clone() for k, v in tensors.items()}, meta)
    batch = _batch(16)
    a.generator.manual_seed(9)
    b.generator.manual_seed(9)
    torch.manual_seed(5)
    ma = a.update(batch)
    torch.manual_seed(5)
    mb = b.update(batch)
    assert torch.allclose(ma["train/critic_loss"], mb["train/critic_loss"])
    with pytest.raises(CheckpointError, match="learner state does not match this configuration"):
        _sac(num_critics=2).load_state_dict(tensors, meta)
    assert all(
        torch.equal(x, y) for x, y in zip(a.critic.parameters(), b.critic.parameters(), strict=True)
    )


def test_critic_only_update_leaves_actor_and_temperature() -> None:
    sac = _sac()
    actor = {k: v.clone() for k, v in sac.policy.state_dict().items()}
    critic = {k: v.clone() for k, v in sac.critic.state_dict().items()}
    metrics = sac.update(_batch(16), update_actor=False)
    assert "train/actor_loss" not in metrics and "train/critic_loss" in metrics
    assert all(torch.equal(v, sac.policy.state_dict()[k]) for k, v in actor.items())
    assert sac.temperature == pytest.approx(0.5)
    assert any(not torch.equal(v, sac.critic.state_dict()[k]) for k, v in critic.items())


def test_compiled_critic_updates_like_the_eager_one() -> None:
    eager, compiled = _sac(), _sac(compile_critic=True)
    torch.manual_seed(1)
    batches = [_batch(16) for _ in range(3)]
    for sac in (eager, compiled):
        torch.manual_seed(2)  # the same policy samples for both
        for batch in batches:
            sac.update(batch)
    expected, got = eager.critic.state_dict(), compiled.critic.state_dict()
    assert list(got) == list(expected)  # compiling in place keeps the checkpoint names
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("actor_full_batch", [False, True])
def test_update_feeds_each_critic_step_its_own_minibatch(actor_full_batch: bool) -> None:
    """utd = 3 critic steps on consecutive rows [0, 8), [8, 16), [16, 24) with r' = 2 r + 0.5
    and not_done = 1 - terminal; the actor sees the last 8 rows (or all 24 for WSRL)."""
    sac = _sac(utd=3, reward_scale=2.0, reward_bias=0.5, actor_full_batch=actor_full_batch)
    # A non-trivial action normalizer: normalized = 0.5 * a + 0.25 (inputs stay in the box).
    sac.policy.normalizer.params["action"] = (torch.full((ACT,), 0.5), torch.full((ACT,), 0.25))
    terminals = (torch.arange(24) % 3 == 0).float()
    batch = _batch(24, terminals)
    batch["rewards"] = torch.arange(24.0)
    seen: list[tuple] = []
    real_critic_step, real_actor_step = sac._critic_step, sac._actor_step

    def critic_step(obs, action, reward, not_done, next_obs, rows):  # type: ignore[no-untyped-def]
        seen.append(("critic", obs, action, reward, not_done, next_obs, rows))
        return real_critic_step(obs, action, reward, not_done, next_obs, rows)

    def actor_step(obs, obs_dict):  # type: ignore[no-untyped-def]
        seen.append(("actor", obs, obs_dict))
        return real_actor_step(obs, obs_dict)

    sac._critic_step, sac._actor_step = critic_step, actor_step  # type: ignore[method-assign]
    sac.update(batch)
    assert [s[0] for s in seen] == ["critic"] * 3 + ["actor"]
    for i, (_, obs, action, reward, not_done, next_obs, rows) in enumerate(seen[:3]):
        r = slice(8 * i, 8 * (i + 1))
        assert torch.equal(obs, batch["obs"]["x"][r])
        assert torch.equal(next_obs, batch["next_obs"]["x"][r])
        assert torch.equal(rows["next_obs"]["x"], batch["next_obs"]["x"][r])
        torch.testing.assert_close(action, 0.5 * batch["actions"][r] + 0.25)
        torch.testing.assert_close(reward, 2.0 * torch.arange(24.0)[r] + 0.5)
        torch.testing.assert_close(not_done, 1.0 - terminals[r])
    actor_rows = slice(0, 24) if actor_full_batch else slice(16, 24)
    assert torch.equal(seen[3][1], batch["obs"]["x"][actor_rows])
    assert torch.equal(seen[3][2]["x"], batch["obs"]["x"][actor_rows])
    with pytest.raises(ConfigError, match="needs utd \\* batch_size = 24 rows, got 16"):
        sac.update(_batch(16))


def test_critic_loss_is_the_sum_over_members_of_mean_squared_td_error() -> None:
    # Members output the constants 0..3, the target net 2: y = r + 0.5 * (1 - term) * 2.
    sac = _sac(utd=1, entropy_backup=False, discount=0.5, reward_scale=1.0, reward_bias=0.0)
    last = sac.critic.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        shape = (-1,) + (1,) * (last.bias.dim() - 1)
        last.bias.copy_(torch.arange(4.0).reshape(shape).expand_as(last.bias))
    _constant_target(sac, 2.0)
    terminals = torch.tensor([0.0, 1.0] * 4)
    batch = _batch(8, terminals)
    batch["rewards"] = torch.linspace(-1.0, 1.0, 8)
    y = batch["rewards"] + 0.5 * (1.0 - terminals) * 2.0
    per_member = [((e - y) ** 2).mean().item() for e in range(4)]
    metrics = sac.update(batch, update_actor=False)
    # The logged loss is the summed loss divided by the number of members.
    assert metrics["train/critic_loss"].item() == pytest.approx(sum(per_member) / 4)
    assert metrics["train/q_mean"].item() == pytest.approx(1.5)
    assert metrics["train/td_target_mean"].item() == pytest.approx(y.mean().item())


def test_temperature_gradient_is_entropy_minus_target() -> None:
    # d/d(log alpha) of -(log alpha * (log pi + H_target)).mean() = -(mean log pi + H_target)
    # = entropy - H_target, with H_target = per-dim target * action_dim (3 * 2 here).
    sac = _sac(target_entropy_per_dim=3.0)
    assert sac.target_entropy == 6.0
    obs = {"x": torch.randn(8, OBS)}
    before = sac.log_temperature.item()
    metrics = sac._actor_step(obs["x"], obs)
    entropy = metrics["train/entropy"].item()
    assert sac.log_temperature.grad.item() == pytest.approx(entropy - 6.0, rel=1e-5)
    # Entropy below the target: the temperature rises (Adam's first step is lr * sign).
    assert entropy < 6.0
    assert sac.log_temperature.item() == pytest.approx(before + 3e-4, rel=1e-3)


def test_actor_step_gives_the_critic_no_gradient() -> None:
    sac = _sac()
    sac.critic.zero_grad(set_to_none=True)
    obs = {"x": torch.randn(8, OBS)}
    sac._actor_step(obs["x"], obs)
    assert all(p.grad is None for p in sac.critic.parameters())
    assert all(p.requires_grad for p in sac.critic.parameters())
    assert any(p.grad is not None for p in sac.policy.parameters())


def test_constructor_checks_and_defaults() -> None:
    norm = Normalizer()
    norm.params["obs.x"] = (torch.ones(OBS), torch.zeros(OBS))
    norm.params["action"] = (torch.ones(ACT), torch.zeros(ACT))
    policy = GaussianPolicy(GaussianPolicyConfig(["x"], OBS, ACT, [16]), norm, {})
    critic = CriticEnsemble(CriticConfig(OBS, ACT, 3, [16]))

    def make(**kw: object) -> SAC:
        return SAC(policy, critic, make_target(critic), SACConfig(**kw))  # type: ignore[arg-type]

    assert make().temperature == pytest.approx(1.0)  # default initial temperature
    make(batch_size=1, utd=1, target_subset=1)
    make(target_subset=3)
    for bad in ({"batch_size": 0}, {"utd": 0}):
        with pytest.raises(ConfigError, match="^utd and batch_size must be >= 1, got"):
            make(**bad)
    for subset in (0, 4):
        with pytest.raises(ConfigError, match=r"must be in \[1, 3\] \(the number of critics\)"):
            make(target_subset=subset)


def test_replay_actions_are_clamped_to_the_actor_box_after_normalizing() -> None:
    """The critics learn on normalize(a) clamped to [-1, 1], the only actions the tanh actor
    can propose: an update on actions beyond the box equals one on their clamped equivalents,
    value for value, on both sides (and clamping happens after normalizing, not before)."""
    scale, offset = torch.full((ACT,), 0.5), torch.full((ACT,), 0.25)
    # normalized = 0.5 a + 0.25: -1.75, -1.25 and 1.75, 2.75 lie outside [-1, 1] (and inside
    # or outside [-2, 2]); -0.25 .. 1.0 inside.
    raw = torch.tensor([-4.0, -3.0, -1.0, 0.0, 1.0, 1.5, 3.0, 5.0])
    actions = torch.stack([raw, raw.flip(0)], dim=1).repeat(2, 1)
    normalized = 0.5 * actions + 0.25
    assert (normalized < -1.5).any() and (normalized > 2.0).any()
    assert ((normalized > -2.0) & (normalized < -1.0)).any()
    assert ((normalized > 1.0) & (normalized < 2.0)).any()
    in_box = (normalized.clamp(-1.0, 1.0) - 0.25) / 0.5  # raw actions that normalize in-box
    torch.manual_seed(3)
    batch = _batch(16)
    results = []
    for acts in (actions, in_box, actions.clamp(-1.0, 1.0)):
        sac = _sac(utd=2)
        sac.policy.normalizer.params["action"] = (scale, offset)
        torch.manual_seed(4)
        metrics = sac.update({**batch, "actions": acts})
        results.append((metrics, [p.detach().clone() for p in sac.critic.parameters()]))
    (m_raw, p_raw), (m_box, p_box), (_, p_pre) = results
    for name in ("train/critic_loss", "train/q_mean", "train/td_target_mean"):
        assert torch.equal(m_raw[name], m_box[name]), name
    assert all(torch.equal(a, b) for a, b in zip(p_raw, p_box, strict=True))
    # Clamping the raw actions before normalizing is a different (wrong) update.
    assert any(not torch.equal(a, b) for a, b in zip(p_raw, p_pre, strict=True))


def test_temperature_lives_on_the_policys_device() -> None:
    """log_temperature is created where the networks are (a CPU scalar beside CUDA networks
    would cost a transfer per step). The meta device stands in for a second device here."""
    norm = Normalizer()
    norm.params["obs.x"] = (torch.ones(OBS), torch.zeros(OBS))
    norm.params["action"] = (torch.ones(ACT), torch.zeros(ACT))
    policy = GaussianPolicy(GaussianPolicyConfig(["x"], OBS, ACT, [16]), norm, {}).to("meta")
    critic = CriticEnsemble(CriticConfig(OBS, ACT, 2, [16])).to("meta")
    sac = SAC(policy, critic, make_target(critic), SACConfig())
    assert sac.log_temperature.device == torch.device("meta")
    assert sac.log_temperature.requires_grad and sac.log_temperature.is_leaf


def _point_env(horizon: int = 17, extra: dict | None = None):  # noqa: ANN202
    """The point env with extra observation spaces declared (only the spaces are read)."""
    import gymnasium as gym

    from sim.toy import PointReachEnv

    env = PointReachEnv(2, "cpu", 0, horizon=horizon)
    env.observation_space = gym.spaces.Dict({**env.observation_space.spaces, **(extra or {})})
    return env


def test_an_actor_from_the_env_alone_records_the_env_and_acts_in_its_box() -> None:
    import types

    import gymnasium as gym
    import numpy as np

    from robot_rl.algos.sac import _actor_from_env

    image = gym.spaces.Box(0, 255, (2, 2, 3), np.uint8)  # not a float key: not an input
    env = _point_env(extra={"image": image})
    cfg = types.SimpleNamespace(algo="sac", task="point", env_kwargs='{"reward_type": "dense"}')
    policy = _actor_from_env(cfg, env)
    assert sorted(policy.obs_keys) == ["goal", "pos"] and policy.config.obs_dim == 4
    assert policy.config.hidden_dims == [256, 256]  # SAC's actor
    # The recorded env: the task name, the env's own rebuild kwargs, the user's on top.
    assert policy.env_info == {
        "env_name": "point",
        "env_kwargs": {"horizon": 17, "reward_type": "dense"},
    }
    cfg.env_kwargs = None
    assert _actor_from_env(cfg, env).env_info["env_kwargs"] == env.env_kwargs
    del env.env_kwargs  # optional in the VecEnv protocol: then only the user's kwargs
    cfg.env_kwargs = '{"horizon": 9}'
    assert _actor_from_env(cfg, env).env_info["env_kwargs"] == {"horizon": 9}
    # Identity normalizers: the actor's box is the env's [-1, 1] box in every dim.
    scale, offset = policy.normalizer.params["action"]
    assert torch.equal(scale, torch.ones(2)) and torch.equal(offset, torch.zeros(2))
    scale, offset = policy.normalizer.params["obs.goal"]
    assert torch.equal(scale, torch.ones(2)) and torch.equal(offset, torch.zeros(2))


def test_an_actor_from_the_env_alone_refuses_non_flat_float_observations() -> None:
    import types

    import gymnasium as gym
    import numpy as np

    from robot_rl.algos.sac import _actor_from_env

    env = _point_env(extra={"depth": gym.spaces.Box(0.0, 1.0, (3, 4), np.float32)})
    cfg = types.SimpleNamespace(algo="sac", task="point", env_kwargs=None)
    with pytest.raises(ConfigError) as err:
        _actor_from_env(cfg, env)
    assert str(err.value) == (
        "sac from an env alone needs flat observations; got "
        "{'depth': (3, 4), 'goal': (2,), 'pos': (2,)}"
    )


def test_the_agent_explores_uniformly_in_the_env_box_only_in_its_random_window(tmp_path) -> None:
    import robot_rl.algos.sac as sac_module
    from robot_rl.train.finetune import FinetuneConfig, resolve
    from sim.toy import PointReachEnv

    cfg = resolve(FinetuneConfig(algo="sac", task="point", out=tmp_path, num_envs=4096,
                                 warmup_steps=100, random_steps=50, critic_hidden_dims=[16]))  # fmt: skip
    env = PointReachEnv(4096, "cpu", 0)
    obs = env.reset(seed=0)

    def act(env_steps: int, agent_seed: int = 0, global_seed: int = 0) -> torch.Tensor:
        torch.manual_seed(global_seed)  # network init and the policy's sampling use it
        agent = sac_module.build(cfg, env, torch.Generator().manual_seed(agent_seed))
        return agent.act(obs, env_steps)

    for steps in (100, 149):  # the window [warmup, warmup + random)
        a = act(steps)
        assert a.shape == (4096, 2) and a.min() >= -1.0 and a.max() <= 1.0
        assert a.min() < -0.99 and a.max() > 0.99 and abs(a.mean().item()) < 0.03
        assert abs(a.std().item() - 3**-0.5) < 0.01  # uniform on [-1, 1]
        # Drawn from the agent's generator only: the global RNG does not matter.
        assert torch.equal(a, act(steps, global_seed=1))
        assert not torch.equal(a, act(steps, agent_seed=1))
    for steps in (99, 150):  # outside it the new policy acts: narrow, from torch's global RNG
        a = act(steps)
        assert a.std().item() < 0.4
        assert torch.equal(a, act(steps)) and not torch.equal(a, act(steps, global_seed=1))


def test_the_actor_waits_exactly_actor_delay_updates(tmp_path) -> None:
    import robot_rl.algos.sac as sac_module
    from robot_rl.train.collector import Collector
    from robot_rl.train.finetune import FinetuneConfig, resolve
    from sim.toy import PointReachEnv

    cfg = resolve(FinetuneConfig(algo="sac", task="point", out=tmp_path, num_envs=4, batch_size=8,
                                 utd=1, actor_delay_updates=2, critic_hidden_dims=[16]))  # fmt: skip
    env = PointReachEnv(4, "cpu", 0)
    agent = sac_module.build(cfg, env, torch.Generator().manual_seed(0))
    Collector(env, agent.observe, seed=0).collect(lambda obs: agent.act(obs, 0), 8)
    actor = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    for index in (0, 1):  # critics only
        agent.update(index)
        assert all(torch.equal(v, agent.policy.state_dict()[k]) for k, v in actor.items())
    agent.update(2)
    assert any(not torch.equal(v, agent.policy.state_dict()[k]) for k, v in actor.items())
    # Plain SAC's actor: lr 3e-4, trained on the last critic minibatch of each update.
    assert agent.sac.optimizers["actor"].param_groups[0]["lr"] == 3e-4
    assert agent.sac.cfg.actor_full_batch is False


def test_updates_draw_their_batch_with_the_agents_generator(tmp_path) -> None:
    # Replay sampling must follow the run's seed and resumed RNG state, not torch's global RNG.
    import robot_rl.algos.sac as sac_module
    from robot_rl.train.collector import Collector
    from robot_rl.train.finetune import FinetuneConfig, resolve
    from sim.toy import PointReachEnv

    cfg = resolve(FinetuneConfig(algo="sac", task="point", out=tmp_path, num_envs=4, batch_size=8,
                                 utd=2, critic_hidden_dims=[16]))  # fmt: skip
    env = PointReachEnv(4, "cpu", 0)
    gen = torch.Generator().manual_seed(0)
    agent = sac_module.build(cfg, env, gen)
    Collector(env, agent.observe, seed=0).collect(lambda obs: agent.act(obs, 0), 8)
    seen = []
    sample = agent.sampler.sample
    agent.sampler.sample = lambda n, generator=None: (
        seen.append((n, generator)) or sample(n, generator)
    )
    agent.update(0)
    assert seen == [(16, agent.device_generator)] and agent.device_generator is gen

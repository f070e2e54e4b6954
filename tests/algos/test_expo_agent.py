"""EXPO's agent: chunk transitions as the loop feeds them, and the policy directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.algos.expo import EXPOAgent, EXPOConfig
from robot_rl.data.normalizer import Normalizer
from robot_rl.policies import load_policy
from robot_rl.policies.critic import CriticConfig, CriticEnsemble
from robot_rl.policies.expo import EXPOPolicy, EXPOPolicyConfig

GAMMA = 0.9


def _agent(num_envs: int = 2, ta: int = 2, beta_mode: str = "fixed") -> EXPOAgent:
    torch.manual_seed(0)
    ident = {"obs.x": (torch.ones(1), torch.zeros(1)), "action": (torch.ones(1), torch.zeros(1))}
    cfg = EXPOPolicyConfig(["x"], 1, 1, n_obs_steps=1, horizon=ta, n_action_steps=ta,
                           hidden_dim=8, num_blocks=1, num_samples=3, num_critics=2,
                           critic_hidden_dims=[8], edit_hidden_dims=[8])  # fmt: skip
    policy = EXPOPolicy(cfg, Normalizer(ident), {"env_name": "toy"})
    critic = CriticEnsemble(CriticConfig(1, ta, num_critics=2, hidden_dims=[8]))
    expo = EXPOConfig(discount=GAMMA, batch_size=4, utd=1, beta_mode=beta_mode, beta_lr=0.5)
    return EXPOAgent(policy, critic, None, expo, num_envs, 100, torch.Generator().manual_seed(0))


def _obs(*x: float) -> dict[str, torch.Tensor]:
    return {"x": torch.tensor(x).unsqueeze(1)}


def _step(agent, obs, reward, term, trunc, nxt):  # noqa: ANN001, ANN202
    action = agent.act(obs, 10**9)
    plan = agent.policy.last_plan
    t, tr = torch.tensor(term), torch.tensor(trunc)
    agent.observe(obs, action, torch.tensor(reward), t, tr, nxt, nxt)
    return action, plan


def test_chunk_rows_discount_cut_short_chunks_and_wait_for_the_next_decision() -> None:
    agent = _agent()
    o0, o1, o2 = _obs(0.0, 10.0), _obs(1.0, 11.0), _obs(2.0, 12.0)
    a0, plan0 = _step(agent, o0, [1.0, 2.0], [False, False], [False, False], o1)
    assert plan0 is not None and len(agent.online) == 0
    # Env 1 terminates on the chunk's 2nd step; env 0 completes its chunk and waits for s'.
    a1, plan1 = _step(agent, o1, [3.0, 4.0], [False, True], [False, False], o2)
    assert plan1 is None  # nobody replans mid-chunk
    assert len(agent.online) == 1
    row = {k: v[0] for k, v in agent.online.data.items()}
    assert torch.isclose(row["reward"], torch.tensor(2.0 + GAMMA * 4.0))
    assert row["not_done"] == 0 and torch.isclose(row["bootstrap"], torch.tensor(GAMMA**2))
    assert torch.equal(row["action"], plan0["chosen"][1])
    assert torch.equal(row["obs"], torch.tensor([10.0]))
    # Env 1's finished episode is kept per step for the base policy's imitation.
    (episode,) = agent._episodes
    np.testing.assert_array_equal(episode["actions"], torch.stack([a0[1], a1[1]]).numpy())
    np.testing.assert_array_equal(episode["rewards"], [2.0, 4.0])
    np.testing.assert_array_equal(episode["dones"], [0.0, 1.0])
    np.testing.assert_array_equal(episode["obs"]["x"][:, 0], [10.0, 11.0])
    # Actions executed are the chosen chunk, step by step.
    assert torch.allclose(torch.stack([a0[0, 0], a1[0, 0]]), plan0["chosen"][0], atol=1e-6)
    # Next decision: env 0's waiting row takes the base samples drawn at s' itself.
    _, plan2 = _step(agent, o2, [0.0, 0.0], [False, False], [False, False], o2)
    assert len(agent.online) == 2
    row = {k: v[1] for k, v in agent.online.data.items()}
    assert torch.isclose(row["reward"], torch.tensor(1.0 + GAMMA * 3.0))
    assert row["not_done"] == 1 and torch.isclose(row["bootstrap"], torch.tensor(GAMMA**2))
    assert torch.equal(row["next_obs"], torch.tensor([2.0]))
    assert torch.equal(row["next_base"], plan2["base"][0])
    assert torch.equal(row["base"], plan0["base"][0])


def test_a_truncated_chunk_bootstraps_after_the_steps_it_ran() -> None:
    agent = _agent(num_envs=1, ta=3)
    o0, o1 = _obs(0.0), _obs(5.0)
    _step(agent, o0, [1.0], [False], [True], o1)
    row = {k: v[0] for k, v in agent.online.data.items()}
    assert len(agent.online) == 1
    assert row["not_done"] == 1 and torch.isclose(row["bootstrap"], torch.tensor(GAMMA))
    assert torch.isclose(row["reward"], torch.tensor(1.0))
    assert row["next_base"].abs().sum() > 0 and row["next_base"].abs().max() <= 1


def test_update_trains_critic_edit_and_base_but_not_through_the_critic() -> None:
    agent = _agent()
    obs = _obs(0.0, 1.0)
    for _ in range(6):
        _step(agent, obs, [1.0, 0.0], [False, False], [False, False], obs)
    _step(agent, obs, [1.0, 0.0], [True, True], [False, False], obs)
    before = {n: p.clone() for n, p in agent.policy.named_parameters()}
    critic_before = [p.clone() for p in agent.critic.parameters()]
    metrics = agent.update()
    changed = {n.split(".")[0] for n, p in agent.policy.named_parameters()
               if not torch.equal(p, before[n])}  # fmt: skip
    # Denoiser (imitation), its EMA, the edit policy and the polyak target move.
    assert {"denoiser", "ema_denoiser", "edit", "target"} <= changed
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters(),
                                                       strict=True))  # fmt: skip
    assert set(metrics) >= {"train/critic_loss", "train/edit_loss", "train/base_loss"}


def test_expo_policy_directory_round_trip_acts_identically(tmp_path) -> None:
    agent = _agent()
    policy = agent.policy.eval()
    policy.save(tmp_path / "p")
    loaded = load_policy(tmp_path / "p")
    assert isinstance(loaded, EXPOPolicy)
    obs = _obs(0.3, -0.7)
    a = policy.act(obs, deterministic=True)
    b = loaded.act(obs, deterministic=True)
    assert torch.equal(a, b)
    # Deterministic selection is a function of the state: a fresh start acts the same.
    policy.reset()
    assert torch.equal(policy.act(obs, deterministic=True), a)


def test_adaptive_beta_is_logged_saved_in_the_policy_and_resumed() -> None:
    agent = _agent(beta_mode="adaptive")
    obs = _obs(0.0, 1.0)
    for _ in range(6):
        _step(agent, obs, [1.0, 0.0], [False, False], [False, False], obs)
    _step(agent, obs, [1.0, 0.0], [True, True], [False, False], obs)
    metrics = agent.update()
    beta = agent.policy.edit.beta
    assert beta != 0.05 and metrics["train/beta"] == beta == agent.policy.config.beta
    files, meta = agent.state_dict()
    fresh = _agent(beta_mode="adaptive")
    fresh.load_state_dict(files, meta)
    assert fresh.policy.edit.beta == beta and fresh.policy.config.beta == beta


@pytest.mark.slow
def test_expo_improves_a_weak_diffusion_start_on_point(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """EXPO (cpu preset, chunked Ta = 2) from a weak diffusion start must clearly beat it.

    The start: a small diffusion policy (1500 steps) on 20 noisy scripted point episodes
    (noise 0.3), success 0.14 on the eval episodes; after 10k env steps of EXPO, 0.88 (seed 0,
    65 s here). A learner whose edits and selection never help stays at the start (same eval
    episodes); one whose base policy collapses ends lower.
    """
    from robot_rl.algos.diffusion import DiffusionConfig, train_diffusion
    from robot_rl.record import RecordConfig, run_record
    from robot_rl.train.finetune import FinetuneConfig, finetune

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # calibrated on one thread (the machine is shared)
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    data, start = tmp_path / "point.hdf5", tmp_path / "dp"
    run_record(RecordConfig(env="point", out=data, episodes=20, num_envs=4, noise_std=0.3),
               progress=False)  # fmt: skip
    train_diffusion(
        DiffusionConfig(dataset=data, out=start, steps=1500, hidden_dim=64, num_blocks=2,
                        batch_size=128, warmup_steps=50, log_dir=tmp_path / "tb"),
        progress=False,
    )  # fmt: skip
    cfg = FinetuneConfig(
        algo="expo", task="point", init=start, out=tmp_path / "expo", env_steps=10_000,
        warmup_steps=200, batch_size=128, critic_hidden_dims=[64, 64], eval_every=10_000,
        eval_episodes=50, seed=0,
    )  # fmt: skip
    summary = finetune(cfg, progress=False)
    assert summary["start_success"] <= 0.4
    assert summary["final_success"] >= summary["start_success"] + 0.3


def _episode(start: int, length: int, terminal: bool) -> dict:
    t = np.arange(start, start + length, dtype=np.float32)
    dones = np.zeros(length, np.float32)
    dones[-1] = float(terminal)
    return {"obs": {"x": 10 * t[:, None]}, "next_obs": {"x": 10 * t[:, None] + 5},
            "actions": np.stack([0.1 * t, -0.1 * t], 1), "rewards": t + 1, "dones": dones}  # fmt: skip


def test_offline_chunk_rows_against_hand_built_episodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from robot_rl.algos.expo import offline_chunk_rows
    from robot_rl.data import OfflineDataset

    # Two episodes: steps 0-2 end in a terminal, steps 3-4 are cut off by the time limit.
    data = OfflineDataset.from_episodes([_episode(0, 3, True), _episode(3, 2, False)])
    ident = {"obs.x": (torch.ones(1), torch.zeros(1)), "action": (torch.ones(2), torch.zeros(2))}
    cfg = EXPOPolicyConfig(["x"], 1, 2, n_obs_steps=2, horizon=4, n_action_steps=2,
                           hidden_dim=8, num_samples=3, num_critics=2, critic_hidden_dims=[8],
                           edit_hidden_dims=[8])  # fmt: skip
    policy = EXPOPolicy(cfg, Normalizer(ident), {})
    seen = []

    def base_chunks(hist: torch.Tensor, n: int, *args: object) -> torch.Tensor:
        seen.append(hist[..., 0].clone())
        return hist[..., 0].repeat(1, 2)[:, None].repeat(1, n, 1)  # [h0, h1, h0, h1] per sample

    monkeypatch.setattr(policy, "base_chunks", base_chunks)
    rows = offline_chunk_rows(data, policy, discount=0.5, batch=2)
    assert [len(h) for h in seen] == [2, 2, 1]  # denoised in batches of 2
    # Histories (the first step repeats at an episode's start), in obs units (10 t).
    hist = [[0, 0], [0, 10], [10, 20], [30, 30], [30, 40]]
    assert torch.cat(seen).tolist() == hist
    assert rows["base"][:, 0].tolist() == [[a, b, a, b] for a, b in hist]
    # s' is the step after the chunk (its last step's next_obs); its samples those of that row.
    assert rows["next_obs"][:, 0].tolist() == [15, 25, 25, 45, 45]
    torch.testing.assert_close(rows["next_base"], rows["base"][[2, 2, 2, 4, 4]])
    assert rows["obs"][:, 0].tolist() == [0, 10, 20, 30, 40]
    # Actions padded with the episode's last one.
    a = [[0.1 * t, -0.1 * t] for t in range(5)]
    torch.testing.assert_close(rows["action"], torch.tensor(
        [a[0] + a[1], a[1] + a[2], a[2] + a[2], a[3] + a[4], a[4] + a[4]]))  # fmt: skip
    # Rewards r_t = t + 1, gamma 0.5; a terminal stops the bootstrap, a time limit does not.
    assert rows["reward"].tolist() == [1 + 0.5 * 2, 2 + 0.5 * 3, 3, 4 + 0.5 * 5, 5]
    assert rows["not_done"].tolist() == [1, 0, 0, 1, 1]
    assert rows["bootstrap"].tolist() == [0.25, 0.25, 0.5, 0.25, 0.5]


def test_each_chunk_is_stored_once_even_after_a_mid_chunk_termination() -> None:
    agent = _agent()
    o = _obs(0.0, 10.0)
    counts = []
    for term in ([False, False], [False, True], [False, False], [True, False], [False, False]):
        _step(agent, o, [1.0, 1.0], term, [False, False], o)
        counts.append(len(agent.online))
    # Step 2: env 1's chunk ends in a terminal; step 3: env 0's full chunk gets its s' samples;
    # step 4: env 0 terminates mid-chunk; step 5: env 1's full chunk (from step 3) is stored.
    assert counts == [0, 1, 2, 3, 4]


def _agent_with(warmup_steps: int = 0, offline_ratio: float = 0.5, seed: int = 0) -> EXPOAgent:
    agent = _agent()
    cfg = EXPOConfig(discount=GAMMA, batch_size=4, utd=1, offline_ratio=offline_ratio)
    return EXPOAgent(agent.policy, agent.critic, None, cfg, 2, 100,
                     torch.Generator().manual_seed(seed), warmup_steps=warmup_steps)  # fmt: skip


def test_the_warmup_acts_without_selection_and_learning_starts_after_it() -> None:
    agent = _agent_with(warmup_steps=5)
    agent.act(_obs(0.0, 1.0), 4)
    assert agent.policy.selecting is False
    agent.act(_obs(0.0, 1.0), 5)
    assert agent.policy.selecting is True
    assert not agent.learning(6)  # nothing stored yet
    agent.online.add({k: v[:1].clone() for k, v in agent.online.data.items()})
    assert not agent.learning(5) and agent.learning(6)


def test_critic_batches_mix_offline_rows_by_the_ratio_with_the_agents_generator() -> None:
    def batch(global_seed: int, ratio: float = 0.25) -> dict[str, torch.Tensor]:
        agent = _agent_with(offline_ratio=ratio)
        online = {k: torch.ones_like(v[:10]) for k, v in agent.online.data.items()}
        agent.online.add({**online, "reward": torch.arange(10.0)})
        agent.offline_rows = {**{k: v[:6] for k, v in online.items()},
                              "reward": -1.0 - torch.arange(6.0)}  # fmt: skip
        torch.manual_seed(global_seed)
        return agent._critic_batch(8)

    rewards = batch(0)["reward"]
    assert len(rewards) == 8 and (rewards < 0).sum() == 2  # round(8 * 0.25) offline rows
    assert rewards[:2].lt(0).all() and rewards[2:].ge(0).all()
    assert torch.equal(batch(1)["reward"], rewards)  # the agent's generator, not the global RNG
    assert (batch(0, ratio=0.0)["reward"] >= 0).all()


def test_the_policy_directory_records_the_agents_reward_convention() -> None:
    from robot_rl.algos.agent import saved_reward_convention

    agent = _agent()
    convention = saved_reward_convention(agent.extras()[0])
    assert convention is not None
    assert (convention.scale, convention.bias, convention.discount) == (10.0, -5.0, GAMMA)


def test_a_finished_chunk_bootstraps_from_the_true_final_observation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two observation steps of a 2-d state, so the s' history is visible in its shape.
    torch.manual_seed(0)
    ident = {"obs.x": (torch.ones(2), torch.zeros(2)), "action": (torch.ones(1), torch.zeros(1))}
    cfg = EXPOPolicyConfig(["x"], 2, 1, n_obs_steps=2, horizon=4, n_action_steps=2,
                           hidden_dim=8, num_samples=3, num_critics=2, critic_hidden_dims=[8],
                           edit_hidden_dims=[8])  # fmt: skip
    policy = EXPOPolicy(cfg, Normalizer(ident), {})
    critic = CriticEnsemble(CriticConfig(2, 2, num_critics=2, hidden_dims=[8]))
    agent = EXPOAgent(policy, critic, None, EXPOConfig(discount=GAMMA), 2, 100,
                      torch.Generator().manual_seed(0))  # fmt: skip
    o0 = {"x": torch.tensor([[0.0, 1.0], [2.0, 3.0]])}
    agent.act(o0, 0)
    seen = []
    real = policy.base_chunks

    def base_chunks(hist: torch.Tensor, *args: object) -> torch.Tensor:
        seen.append(hist.clone())
        return real(hist, *args)

    monkeypatch.setattr(policy, "base_chunks", base_chunks)
    final = {"x": torch.tensor([[7.0, 8.0], [9.0, 6.0]])}  # the true last observations
    reset = {"x": torch.tensor([[-1.0, -1.0], [-2.0, -2.0]])}  # what autoreset returns
    # Env 0 is truncated (bootstraps), env 1 terminates.
    agent.observe(o0, torch.zeros(2, 1), torch.ones(2), torch.tensor([False, True]),
                  torch.tensor([True, False]), reset, final)  # fmt: skip
    assert len(agent.online) == 2
    rows = {k: v[:2] for k, v in agent.online.data.items()}
    assert rows["next_obs"].tolist() == [[7.0, 8.0], [9.0, 6.0]]
    assert rows["not_done"].tolist() == [1.0, 0.0]
    # Only the truncated env draws s' samples, at its history ending in the final observation.
    ((hist,),) = [tuple(seen)]
    assert hist.tolist() == [[[0.0, 1.0], [7.0, 8.0]]]
    assert not torch.equal(rows["next_base"][0], rows["base"][0])
    assert torch.equal(rows["next_base"][1], rows["base"][1])  # unused: a terminal


@pytest.mark.parametrize("next_base", ["cache", "fresh"])
def test_update_slices_one_batch_into_utd_minibatches_with_their_bootstraps(
    next_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _agent()
    agent.cfg = EXPOConfig(discount=GAMMA, batch_size=4, utd=3, next_base=next_base)
    obs = _obs(0.0, 1.0)
    for _ in range(6):
        _step(agent, obs, [1.0, 0.0], [False, False], [False, True], obs)
    drawn, fresh, critic_calls, edit_calls = {}, {}, [], []
    real_batch, real_fresh = agent._critic_batch, agent._fresh_next_base

    def critic_batch(n: int) -> dict[str, torch.Tensor]:
        drawn.update(real_batch(n))
        return dict(drawn)

    def fresh_next_base(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fresh["next_base"] = real_fresh(batch)
        return fresh["next_base"]

    def critic_step(*args: object) -> torch.Tensor:
        critic_calls.append(args)
        return torch.tensor(1.0)

    monkeypatch.setattr(agent, "_critic_batch", critic_batch)
    monkeypatch.setattr(agent, "_fresh_next_base", fresh_next_base)
    monkeypatch.setattr(agent.core, "critic_step", critic_step)
    monkeypatch.setattr(agent.core, "edit_step",
                        lambda o, a: edit_calls.append((o, a)) or torch.tensor(2.0))  # fmt: skip
    metrics = agent.update()
    assert len(drawn["reward"]) == 12 and len(critic_calls) == 3
    next_bases = fresh["next_base"] if next_base == "fresh" else drawn["next_base"]
    assert (next_base == "fresh") == bool(fresh)
    for i, (o, a, r, nd, no, nb, gen, boot) in enumerate(critic_calls):
        rows = slice(4 * i, 4 * i + 4)
        for got, key in [(o, "obs"), (a, "action"), (r, "reward"), (nd, "not_done"),
                         (no, "next_obs"), (boot, "bootstrap")]:  # fmt: skip
            assert torch.equal(got, drawn[key][rows]), key
        assert torch.equal(nb, next_bases[rows]) and gen is agent.generator
    ((o, a),) = edit_calls  # the edit policy trains on the last minibatch
    assert torch.equal(o, drawn["obs"][8:]) and torch.equal(a, drawn["action"][8:])
    assert agent.updates == 1 and agent.update() and agent.updates == 2
    assert set(metrics) == {"train/critic_loss", "train/edit_loss", "train/temperature",
                            "train/base_loss"}  # fmt: skip
    assert metrics["train/temperature"] == 1.0 and metrics["train/edit_loss"] == 2.0


def test_fresh_next_base_samples_at_s_prime_repeated_as_a_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = _agent()
    seen = []
    monkeypatch.setattr(agent.policy, "base_chunks",
                        lambda hist, n, *a: seen.append((hist.clone(), n)) or torch.zeros(2, n, 2))  # fmt: skip
    out = agent._fresh_next_base({"next_obs": torch.tensor([[3.0], [4.0]])})
    assert out.shape == (2, 3, 2)
    ((hist, n),) = seen
    assert n == 3 and hist.tolist() == [[[3.0]], [[4.0]]]  # To = 1 here


def test_imitation_steps_are_counted_and_drawn_with_the_agents_generator() -> None:
    def run(global_seed: int) -> tuple[float, int]:
        agent = _agent()
        assert agent._imitation_step() == 0.0  # no data yet: no step
        obs = _obs(0.0, 1.0)
        for _ in range(3):
            _step(agent, obs, [1.0, 0.0], [True, True], [False, False], obs)
        torch.manual_seed(global_seed)
        losses = [agent._imitation_step() for _ in range(2)]
        return losses[1], agent.imitation_steps

    assert run(0) == run(1)
    assert run(0)[1] == 2


def test_per_step_episodes_of_envs_finishing_at_different_times() -> None:
    agent = _agent()
    # Env 0 ends every 2nd step, env 1 every 3rd; obs encode (env, step).
    for t in range(6):
        o = _obs(float(t), 100.0 + t)
        term = [t % 2 == 1, t % 3 == 2]
        _step(agent, o, [float(t), float(-t)], term, [False, False], o)
    got = [(ep["obs"]["x"][:, 0].tolist(), ep["rewards"].tolist()) for ep in agent._episodes]
    assert sorted(got) == sorted([
        ([0.0, 1.0], [0.0, 1.0]), ([2.0, 3.0], [2.0, 3.0]), ([4.0, 5.0], [4.0, 5.0]),
        ([100.0, 101.0, 102.0], [0.0, -1.0, -2.0]), ([103.0, 104.0, 105.0], [-3.0, -4.0, -5.0]),
    ])  # fmt: skip
    assert all(ep["dones"].tolist()[-1] == 1.0 and ep["rewards"].dtype == np.float32
               for ep in agent._episodes)  # fmt: skip
    assert len(agent._log) == 0  # every env just finished: nothing held


def test_resume_restores_every_optimizer_replay_offline_rows_and_episodes() -> None:
    from robot_rl.errors import CheckpointError

    agent = _agent()
    obs = _obs(0.0, 1.0)
    for t in range(7):
        _step(agent, obs, [1.0, 0.0], [t % 3 == 2, t % 2 == 1], [False, False], obs)
    agent.offline_rows = {k: v[:3].clone() + 1 for k, v in agent.online.data.items()}
    agent.update()
    agent.update()
    files, meta = agent.state_dict()
    fresh = _agent()
    fresh.load_state_dict(files, meta)
    for name, opt in agent._optimizers().items():
        mine, theirs = opt.state_dict()["state"], fresh._optimizers()[name].state_dict()["state"]
        assert mine.keys() == theirs.keys() and mine, name
        for idx, slots in mine.items():
            for slot, value in slots.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(theirs[idx][slot]))
    assert fresh.online.size == agent.online.size and fresh.online.pos == agent.online.pos
    for k, v in agent.online.data.items():
        assert torch.equal(fresh.online.data[k][: agent.online.size], v[: agent.online.size])
    assert fresh.offline_rows is not None
    assert all(torch.equal(fresh.offline_rows[k], v) for k, v in agent.offline_rows.items())
    assert len(fresh._episodes) == len(agent._episodes) > 1
    for a, b in zip(agent._episodes, fresh._episodes, strict=True):
        np.testing.assert_array_equal(a["obs"]["x"], b["obs"]["x"])
        np.testing.assert_array_equal(a["actions"], b["actions"])
    assert (fresh.updates, fresh.imitation_steps) == (2, 2)
    wider = EXPOAgent(_agent().policy, CriticEnsemble(CriticConfig(1, 2, num_critics=2,
                      hidden_dims=[16])), None, agent.cfg, 2, 100, torch.Generator())  # fmt: skip
    with pytest.raises(CheckpointError) as err:
        wider.load_state_dict(files, meta)
    assert str(err.value).startswith("EXPO learner state does not match this configuration: ")


def test_episodes_pack_and_unpack_with_dotted_observation_keys() -> None:
    from robot_rl.algos.expo import _pack, _unpack

    def ep(n: int, base: float) -> dict:
        x = base + np.arange(n, dtype=np.float32)[:, None]
        return {"obs": {"eef.pos": x, "q": 2 * x}, "next_obs": {"eef.pos": x + 1, "q": 2 * x + 1},
                "actions": x, "rewards": x[:, 0], "dones": np.zeros(n, np.float32)}  # fmt: skip

    episodes = [ep(2, 0.0), ep(3, 10.0)]
    back = _unpack(_pack(episodes))
    assert len(back) == 2
    for a, b in zip(episodes, back, strict=True):
        for part in ("obs", "next_obs"):
            assert a[part].keys() == b[part].keys()
            for k in a[part]:
                np.testing.assert_array_equal(a[part][k], b[part][k])
        for name in ("actions", "rewards", "dones"):
            np.testing.assert_array_equal(a[name], b[name])
    assert _unpack(_pack([])) == []


def test_the_base_policy_continues_its_offline_ema_and_optimizer_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = _agent()
    group = agent.opt_base.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (agent.cfg.base_lr, 1e-6)
    steps = []
    monkeypatch.setattr(agent.policy, "ema_update", steps.append)
    obs = _obs(0.0, 1.0)
    _step(agent, obs, [1.0, 0.0], [True, True], [False, False], obs)
    agent._imitation_step()
    agent._imitation_step()
    # The EMA decay schedule continues past the offline run's (~10k steps: decay ~0.999).
    assert steps == [10_001, 10_002]


def test_an_env_that_finishes_does_not_cut_short_the_others_chunks() -> None:
    agent = _agent(ta=3)
    o = _obs(0.0, 10.0)
    _step(agent, o, [1.0, 1.0], [True, False], [False, False], o)  # env 0 ends at step 1
    _, plan = _step(agent, o, [1.0, 1.0], [False, False], [False, False], o)
    assert plan is not None and len(plan["obs"]) == 1  # only env 0 replans
    _step(agent, o, [1.0, 1.0], [False, False], [False, False], o)
    # Env 1's chunk ran its 3 steps and waits for s'; env 0's first row was stored at once.
    assert len(agent.online) == 1 and bool(agent._waiting_mask[1])
    assert torch.isclose(agent._waiting["reward"][1], torch.tensor(1 + GAMMA + GAMMA**2))


def test_without_final_obs_the_next_observation_is_the_successor() -> None:
    agent = _agent(num_envs=1, ta=1)
    agent.act(_obs(0.0), 0)
    agent.observe(_obs(0.0), torch.zeros(1, 1), torch.ones(1), torch.tensor([True]),
                  torch.tensor([False]), _obs(3.0))  # fmt: skip
    assert agent.online.data["next_obs"][0].tolist() == [3.0]


def test_fresh_s_prime_samples_condition_on_s_prime_repeated_over_the_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ident = {"obs.x": (torch.ones(2), torch.zeros(2)), "action": (torch.ones(1), torch.zeros(1))}
    cfg = EXPOPolicyConfig(["x"], 2, 1, n_obs_steps=3, horizon=4, n_action_steps=2,
                           hidden_dim=8, num_samples=2, num_critics=2, critic_hidden_dims=[8],
                           edit_hidden_dims=[8])  # fmt: skip
    policy = EXPOPolicy(cfg, Normalizer(ident), {})
    agent = EXPOAgent(policy, CriticEnsemble(CriticConfig(2, 2, num_critics=2, hidden_dims=[8])),
                      None, EXPOConfig(), 1, 10, torch.Generator())  # fmt: skip
    seen = []
    monkeypatch.setattr(policy, "base_chunks",
                        lambda hist, n, *a: seen.append(hist.clone()) or torch.zeros(1, n, 2))  # fmt: skip
    agent._fresh_next_base({"next_obs": torch.tensor([[3.0, 4.0]])})
    assert seen[0].tolist() == [[[3.0, 4.0]] * 3]


def test_adaptive_beta_logs_its_ratio() -> None:
    agent = _agent(beta_mode="adaptive")
    obs = _obs(0.0, 1.0)
    for _ in range(3):
        _step(agent, obs, [1.0, 0.0], [True, True], [False, False], obs)
    metrics = agent.update()
    assert metrics["train/beta_ratio"] == agent.core.beta_ratio and metrics["train/beta_ratio"] > 0


def test_a_single_episode_packs_and_unpacks() -> None:
    from robot_rl.algos.expo import _pack, _unpack

    ep = {"obs": {"x": np.ones((2, 1), np.float32)}, "next_obs": {"x": np.zeros((2, 1), np.float32)},
          "actions": np.ones((2, 1), np.float32), "rewards": np.ones(2, np.float32),
          "dones": np.array([0.0, 1.0], np.float32)}  # fmt: skip
    (back,) = _unpack(_pack([ep]))
    np.testing.assert_array_equal(back["obs"]["x"], ep["obs"]["x"])
    np.testing.assert_array_equal(back["dones"], ep["dones"])

"""EXPO's learner against hand-built references: the chunk TD loss, the edit policy's SAC step,
the temperature's gradient, the adaptive beta's ratio, the chunk replay ring and the settings.

References are written from the method's statement (ALGORITHMS.md, EXPO; Q-chunking), member by
member and candidate by candidate, not through the functions under test.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from robot_rl.algos.expo import EXPO, ChunkReplay, EXPOConfig, adaptive_beta_step
from robot_rl.errors import ConfigError
from robot_rl.policies.critic import CriticConfig, CriticEnsemble
from robot_rl.policies.expo import EditPolicy

D, A, K, B, N = 3, 4, 3, 5, 2  # obs dim, chunk dim, critics, batch, base samples


def _core(seed: int = 0, *, beta: float = 1e-6, chunk: int | None = None, **settings) -> EXPO:  # noqa: ANN003
    torch.manual_seed(seed)
    critic = CriticEnsemble(CriticConfig(D, A, num_critics=K, hidden_dims=[16]))
    target = CriticEnsemble(CriticConfig(D, A, num_critics=K, hidden_dims=[16]))
    edit = EditPolicy(D, A, beta=beta, hidden=(16,))
    cfg = EXPOConfig(**settings)
    return (
        EXPO(critic, target, edit, cfg) if chunk is None else EXPO(critic, target, edit, cfg, chunk)
    )


def _batch(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(B, D, generator=gen),
        "action": torch.rand(B, A, generator=gen) * 2 - 1,
        "reward": torch.randn(B, generator=gen),
        "not_done": torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]),
        "next_obs": torch.randn(B, D, generator=gen),
        "next_base": torch.rand(B, N, A, generator=gen) * 2 - 1,
    }


def _reference_loss(core: EXPO, b: dict[str, torch.Tensor], bootstrap: torch.Tensor,
                    scale: float, bias: float, gamma: float) -> torch.Tensor:  # fmt: skip
    """sum_k mean_b (Q_k(s, a) - y)^2 with y = scale r + bias (1 - g)/(1 - gamma)
    + g (1 - done) max_n min_k Q'_k(s', base_n): all members score (target_subset = K), and
    the edits move a base by at most 1e-6, so the best candidate is a base (to 1e-5)."""
    with torch.no_grad():
        y = torch.empty(B)
        for i in range(B):
            best = max(
                min(float(core.target.forward_members(
                    b["next_obs"][i : i + 1], b["next_base"][i, n : n + 1],
                    torch.tensor([k]))[0, 0]) for k in range(K))
                for n in range(N)
            )  # fmt: skip
            shift = bias * (1 - float(bootstrap[i])) / (1 - gamma)
            r = scale * float(b["reward"][i]) + shift
            y[i] = r + float(bootstrap[i]) * float(b["not_done"][i]) * best
        q = core.critic(b["obs"], b["action"])  # [K, B]
        return sum(((q[k] - y) ** 2).mean() for k in range(K))


@pytest.mark.parametrize("chunk", [None, 3])
def test_critic_loss_is_the_chunk_td_error_summed_over_members(chunk: int | None) -> None:
    settings = {"discount": 0.9, "reward_scale": 2.0, "reward_bias": -1.0, "target_subset": K}
    core, b = _core(chunk=chunk, **settings), _batch()
    g = 0.9 ** (chunk or 1)  # an EXPO without a chunk length backs up one env step
    expected = _reference_loss(copy.deepcopy(core), b, torch.full((B,), g), 2.0, -1.0, 0.9)
    loss = core.critic_step(b["obs"], b["action"], b["reward"], b["not_done"], b["next_obs"],
                            b["next_base"])  # fmt: skip
    torch.testing.assert_close(loss, expected, atol=1e-4, rtol=1e-5)


def test_critic_loss_takes_a_per_row_bootstrap() -> None:
    # Chunks cut short: row i ran i+1 steps, so it bootstraps with gamma^(i+1).
    settings = {"discount": 0.8, "reward_scale": 10.0, "reward_bias": -5.0, "target_subset": K}
    core, b = _core(chunk=4, **settings), _batch(2)
    boot = 0.8 ** torch.arange(1.0, B + 1)
    expected = _reference_loss(copy.deepcopy(core), b, boot, 10.0, -5.0, 0.8)
    loss = core.critic_step(b["obs"], b["action"], b["reward"], b["not_done"], b["next_obs"],
                            b["next_base"], bootstrap=boot)  # fmt: skip
    torch.testing.assert_close(loss, expected, atol=1e-4, rtol=1e-5)


def test_the_critic_steps_subsets_come_from_the_generator() -> None:
    # Edits of 1e-6 make the global RNG's edit noise immaterial; the member subsets of both the
    # selection at s' and its value (2 of 10 critics) are the generator's alone.
    def loss(seed: int, global_seed: int) -> float:
        torch.manual_seed(0)
        critic = CriticEnsemble(CriticConfig(D, A, num_critics=10, hidden_dims=[16]))
        target = CriticEnsemble(CriticConfig(D, A, num_critics=10, hidden_dims=[16]))
        core = EXPO(critic, target, EditPolicy(D, A, 1e-6, (16,)), EXPOConfig(target_subset=2))
        b = _batch()
        next_base = torch.rand(B, 8, A, generator=torch.Generator().manual_seed(4)) * 2 - 1
        torch.manual_seed(global_seed)
        return float(core.critic_step(b["obs"], b["action"], b["reward"], b["not_done"],
                                      b["next_obs"], next_base,
                                      torch.Generator().manual_seed(seed)))  # fmt: skip

    same = [loss(0, global_seed) for global_seed in range(6)]
    assert max(same) - min(same) < 1e-3
    assert max(loss(seed, 0) for seed in range(6)) - min(loss(seed, 0) for seed in range(6)) > 0.1


def test_edit_step_is_sac_against_the_ensemble_mean_and_leaves_the_critics_alone() -> None:
    core, b = _core(beta=0.05), _batch()
    edit = copy.deepcopy(core.edit)
    torch.manual_seed(3)
    loss = core.edit_step(b["obs"], b["action"])
    torch.manual_seed(3)  # the same noise: the same edits and log-probs
    edited, log_pi = edit(b["obs"], b["action"])
    with torch.no_grad():
        q_mean = sum(core.critic(b["obs"], edited)[k] for k in range(K)) / K
    torch.testing.assert_close(loss, (1.0 * log_pi - q_mean).mean().detach())  # temperature 1
    # Temperature: d/d log(alpha) of -log(alpha) (log_pi + H), H = -0.5 |A| = -2.
    grad = core.log_temperature.grad
    assert grad is not None
    torch.testing.assert_close(grad, -(log_pi.detach() - 0.5 * A).mean())
    # The edit's backward does not reach the critics (no wasted second backward).
    assert all(p.grad is None for p in core.critic.parameters())
    assert all(p.requires_grad for p in core.critic.parameters())


def test_adaptive_beta_ratio_divides_by_the_data_disagreement() -> None:
    # Population std over two members: edits (1, 3) and (0, 4) -> 1 and 2, mean 1.5; data
    # actions (0, 1) and (5, 6) -> 0.5 and 0.5, mean 0.5: ratio 3.
    q_edit = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    q_data = torch.tensor([[0.0, 5.0], [1.0, 6.0]])
    lb, ratio = adaptive_beta_step(math.log(0.05), q_edit, q_data, 1.0, 0.1, (0.01, 1.0))
    assert ratio == 3.0
    assert math.isclose(lb, math.log(0.05) - 0.1 * 2.0)


def test_chunk_replay_is_a_ring_in_insertion_order_sampled_with_the_generator() -> None:
    replay = ChunkReplay(capacity=8, obs_dim=D, chunk_dim=A, num_samples=N)  # on the CPU

    def rows(start: int, n: int) -> dict[str, torch.Tensor]:
        v = torch.arange(start, start + n, dtype=torch.float32)
        return {"obs": v[:, None].repeat(1, D), "next_obs": v[:, None].repeat(1, D),
                "action": v[:, None].repeat(1, A), "reward": v, "not_done": v, "bootstrap": v,
                "base": v[:, None, None].repeat(1, N, A),
                "next_base": v[:, None, None].repeat(1, N, A)}  # fmt: skip

    replay.add(rows(0, 5))
    assert len(replay) == 5
    assert replay.data["reward"][:5].tolist() == [0, 1, 2, 3, 4]
    replay.add(rows(5, 5))  # 5, 6, 7 fill the ring; 8, 9 overwrite slots 0 and 1
    assert len(replay) == 8 and replay.pos == 2
    assert replay.data["reward"].tolist() == [8, 9, 2, 3, 4, 5, 6, 7]
    assert replay.data["base"][0].unique().tolist() == [8.0]

    def draw(global_seed: int) -> list[float]:
        torch.manual_seed(global_seed)
        return replay.sample(16, torch.Generator().manual_seed(0))["reward"].tolist()

    assert draw(1) == draw(2)


CONFIG_REFUSALS = [
    ({"num_edits": 3}, "EXPO edits each base sample once: num_edits == num_base_samples"),
    *[(bad, "beta > 0, discount in (0, 1) and offline_ratio in [0, 1] needed") for bad in (
        {"beta": 0.0}, {"discount": 0.0}, {"discount": 1.0}, {"offline_ratio": -0.1},
        {"offline_ratio": 1.5})],
    *[(bad, "utd, batch_size and num_base_samples must be >= 1") for bad in (
        {"utd": 0}, {"batch_size": 0}, {"num_base_samples": 0, "num_edits": 0})],
    ({"beta_mode": "auto"}, "beta_mode 'auto': choose fixed or adaptive"),
    *[({"beta_mode": "adaptive", **bad}, "adaptive beta needs 0 < lo <= beta <= hi (got "
       f"{bad.get('beta_bounds', (0.01, 1.0))[0]}, {bad.get('beta', 0.05)}, "
       f"{bad.get('beta_bounds', (0.01, 1.0))[1]}), beta_target > 0 and beta_lr > 0")
      for bad in ({"beta_bounds": (0.0, 1.0)}, {"beta": 0.005}, {"beta": 2.0},
                  {"beta_target": 0.0}, {"beta_lr": 0.0})],
]  # fmt: skip


@pytest.mark.parametrize(("settings", "message"), CONFIG_REFUSALS)
def test_nonsense_settings_are_refused_with_one_line(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        EXPOConfig(**settings)
    assert str(err.value) == message


@pytest.mark.parametrize("settings", [
    {"offline_ratio": 0.0}, {"offline_ratio": 1.0}, {"discount": 0.5},
    {"beta_mode": "adaptive", "beta": 0.01}, {"beta_mode": "adaptive", "beta": 1.0},
    {"beta_mode": "adaptive", "beta_target": 0.5},
])  # fmt: skip
def test_the_edges_of_each_range_are_accepted(settings: dict) -> None:
    cfg = EXPOConfig(**settings)
    assert all(getattr(cfg, k) == v for k, v in settings.items())


def test_the_paper_preset_is_the_authors_recipe() -> None:
    p = EXPOConfig.paper()
    assert (p.num_base_samples, p.num_edits, p.beta, p.utd, p.num_critics) == (8, 8, 0.05, 20, 10)
    assert p.critic_hidden_dims == (256, 256, 256) and p.edit_hidden_dims == (256, 256)
    assert (p.tau, p.target_subset, p.target_entropy_per_dim) == (0.005, 2, -0.5)
    assert p.next_base == "fresh"  # s' candidates drawn afresh, as the TD target states

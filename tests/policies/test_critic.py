from __future__ import annotations

import json

import pytest
import torch

from robot_rl.checkpoint import save_policy_dir
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.policies.critic import (
    CriticConfig,
    CriticEnsemble,
    critic_checkpoint,
    load_critic,
    load_temperature,
    make_target,
    polyak_update,
)
from robot_rl.policies.modules import mlp


def _critic(e: int = 5, layer_norm: bool = True) -> CriticEnsemble:
    torch.manual_seed(0)
    return CriticEnsemble(
        CriticConfig(
            obs_dim=6, action_dim=3, num_critics=e, hidden_dims=[16, 16], layer_norm=layer_norm
        )
    )


@pytest.mark.parametrize("layer_norm", [True, False])
def test_output_shapes(layer_norm: bool) -> None:
    critic = _critic(5, layer_norm)
    obs, act = torch.randn(7, 6), torch.randn(7, 3)
    assert critic(obs, act).shape == (5, 7)
    # Per-member minibatches: member i sees obs[i].
    q_members = critic(obs.expand(5, -1, -1), act.expand(5, -1, -1))
    torch.testing.assert_close(q_members, critic(obs, act))
    with pytest.raises(ValueError, match="critic input"):
        critic(torch.randn(4, 7, 6), torch.randn(4, 7, 3))


def test_members_match_independent_mlps() -> None:
    """Each member computes exactly what a plain MLP with its weights computes."""
    critic = _critic(3, layer_norm=False)
    obs, act = torch.randn(4, 6), torch.randn(4, 3)
    q = critic(obs, act)
    linears = [m for m in critic.net if hasattr(m, "weight")]
    for i in range(3):
        ref = mlp(9, [16, 16], 1)
        refs = [m for m in ref if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, src in zip(refs, linears, strict=True):
                lin.weight.copy_(src.weight[i].T)
                lin.bias.copy_(src.bias[i, 0])
        torch.testing.assert_close(q[i], ref(torch.cat([obs, act], -1)).squeeze(-1))


def test_members_differ_at_init() -> None:
    q = _critic(4)(torch.randn(8, 6), torch.randn(8, 3))
    assert (q[0] - q[1]).abs().max() > 1e-3


def test_subset_min_and_reductions() -> None:
    q = torch.tensor([[1.0, 5.0], [2.0, 0.0], [3.0, 4.0], [0.5, 6.0]])
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        out = CriticEnsemble.subset_min(q, size=2, generator=gen)
        # The result is the elementwise min of some pair of distinct rows.
        pairs = [
            (i, j)
            for i in range(4)
            for j in range(i + 1, 4)
            if torch.equal(out, torch.minimum(q[i], q[j]))
        ]
        assert pairs
        seen.update(pairs)
    assert len(seen) >= 5  # all 6 pairs get drawn (two give the same result)
    full = CriticEnsemble.subset_min(q, size=4)
    torch.testing.assert_close(full, q.min(0).values)
    with_repl = CriticEnsemble.subset_min(q, size=8, replace=True, generator=gen)
    assert with_repl.shape == (2,)
    with pytest.raises(ConfigError):
        CriticEnsemble.subset_min(q, size=5)
    torch.testing.assert_close(CriticEnsemble.reduce(q, "mean"), torch.tensor([1.625, 3.75]))
    torch.testing.assert_close(CriticEnsemble.reduce(q, "min"), torch.tensor([0.5, 0.0]))
    with pytest.raises(ConfigError):
        CriticEnsemble.reduce(q, "max")  # type: ignore[arg-type]


def test_subset_min_with_replacement_can_repeat() -> None:
    q = torch.arange(3.0).unsqueeze(1)
    gen = torch.Generator().manual_seed(1)
    draws = {
        float(CriticEnsemble.subset_min(q, 2, replace=True, generator=gen)) for _ in range(100)
    }
    assert draws == {0.0, 1.0, 2.0}  # min 2.0 only possible when member 2 is drawn twice


def test_polyak_update() -> None:
    critic = _critic()
    target = make_target(critic)
    assert not any(p.requires_grad for p in target.parameters())
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in critic.parameters():
            p.add_(1.0)
    polyak_update(target, critic, 0.1)
    for b, t, s in zip(before, target.parameters(), critic.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)


def test_save_load_round_trip(tmp_path) -> None:
    critic = _critic()
    target = make_target(critic)
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(1.5)
    extra_config, extra_files = critic_checkpoint(critic, target, temperature=0.05)
    config = {"policy_type": "gaussian", **extra_config}
    save_policy_dir(tmp_path / "p", config, {"x": torch.zeros(1)}, extra_files=extra_files)
    loaded, loaded_target = load_critic(tmp_path / "p")
    obs, act = torch.randn(4, 6), torch.randn(4, 3)
    torch.testing.assert_close(loaded(obs, act), critic(obs, act))
    torch.testing.assert_close(loaded_target(obs, act), target(obs, act))
    assert load_temperature(tmp_path / "p") == pytest.approx(0.05)
    assert loaded.config == critic.config


def test_load_errors_name_the_problem(tmp_path) -> None:
    save_policy_dir(tmp_path / "bc", {"policy_type": "gaussian"}, {"x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="no 'critic'"):
        load_critic(tmp_path / "bc")
    assert load_temperature(tmp_path / "bc") is None
    critic = _critic()
    extra_config, extra_files = critic_checkpoint(critic, make_target(critic))
    save_policy_dir(tmp_path / "p", extra_config, {"x": torch.zeros(1)}, extra_files=extra_files)
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    cfg["critic"]["hidden_dims"] = [32, 32]
    (tmp_path / "p" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match"):
        load_critic(tmp_path / "p")
    with pytest.raises(ConfigError):
        CriticEnsemble(CriticConfig(obs_dim=2, action_dim=1, activation="nope"))


def test_random_subset_min_matches_full_evaluation() -> None:
    torch.manual_seed(0)
    critic = CriticEnsemble(CriticConfig(obs_dim=5, action_dim=2, num_critics=10, hidden_dims=[16]))
    obs, action = torch.randn(7, 5), torch.rand(7, 2) * 2 - 1
    members = torch.tensor([3, 8])
    full = critic(obs, action)
    assert torch.allclose(critic.forward_members(obs, action, members), full[members], atol=1e-6)
    for seed in range(5):
        fast = critic.random_subset_min(
            obs, action, 2, generator=torch.Generator().manual_seed(seed)
        )
        slow = CriticEnsemble.subset_min(full, 2, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(fast, slow, atol=1e-6)


def test_subset_min_defaults_to_two_members_without_replacement() -> None:
    # Members answer 0, 1, 2: the pair {1, 2} gives 1, pairs with member 0 give 0; all three
    # members would always give 0.
    q = torch.tensor([[0.0], [1.0], [2.0]])
    outcomes = {
        float(CriticEnsemble.subset_min(q, generator=torch.Generator().manual_seed(s)))
        for s in range(40)
    }
    assert outcomes == {0.0, 1.0}


def test_load_errors_name_the_file_and_the_net(tmp_path) -> None:
    critic = _critic()
    extra_config, extra_files = critic_checkpoint(critic, make_target(critic))
    save_policy_dir(tmp_path / "p", extra_config, {"x": torch.zeros(1)}, extra_files=extra_files)
    path = tmp_path / "p" / "config.json"
    good = json.loads(path.read_text())
    bad = {**good, "critic": {**good["critic"], "mystery": 1}}
    path.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match=rf"^{tmp_path / 'p'}: invalid critic config: "):
        load_critic(tmp_path / "p")
    bad = {**good, "critic": {**good["critic"], "hidden_dims": [32, 32]}}
    path.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match=": critic weights do not match the critic config"):
        load_critic(tmp_path / "p")


def test_draw_members_bounds_defaults_and_seeding() -> None:
    from robot_rl.policies.critic import draw_members

    # Default: without replacement, so drawing every member is a permutation.
    assert sorted(draw_members(4, 4, generator=torch.Generator().manual_seed(0)).tolist()) == [
        0, 1, 2, 3,
    ]  # fmt: skip
    assert draw_members(4, 1).shape == (1,)
    repeats = draw_members(2, 50, replace=True, generator=torch.Generator().manual_seed(0))
    assert set(repeats.tolist()) == {0, 1}
    for replace in (False, True):
        torch.manual_seed(1)
        a = draw_members(5, 3, replace, torch.Generator().manual_seed(4))
        torch.manual_seed(2)
        b = draw_members(5, 3, replace, torch.Generator().manual_seed(4))
        assert torch.equal(a, b)  # the generator alone decides
    with pytest.raises(
        ConfigError, match=r"^target subset size 0 invalid for 4 critics \(replace=False\)$"
    ):
        draw_members(4, 0)
    with pytest.raises(ConfigError, match="target subset size 5 invalid for 4 critics"):
        draw_members(4, 5)


def test_single_critic_and_error_messages() -> None:
    one = CriticEnsemble(CriticConfig(obs_dim=2, action_dim=1, num_critics=1))
    assert one(torch.zeros(3, 2), torch.zeros(3, 1)).shape[:2] == (1, 3)
    with pytest.raises(ConfigError, match="^num_critics must be >= 1, got 0$"):
        CriticEnsemble(CriticConfig(obs_dim=2, action_dim=1, num_critics=0))
    with pytest.raises(ConfigError, match="^unknown critic activation 'nope'; choose from"):
        CriticEnsemble(CriticConfig(obs_dim=2, action_dim=1, activation="nope"))
    with pytest.raises(
        ConfigError, match="^unknown ensemble reduction 'max'; choose 'mean' or 'min'$"
    ):
        CriticEnsemble.reduce(torch.zeros(2, 1), "max")  # type: ignore[arg-type]


def test_random_subset_min_defaults_to_a_pair_of_distinct_members() -> None:
    critic = CriticEnsemble(CriticConfig(obs_dim=2, action_dim=1, num_critics=3, hidden_dims=[4]))
    last = critic.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        shape = (-1,) + (1,) * (last.bias.dim() - 1)
        last.bias.copy_(torch.arange(3.0).reshape(shape).expand_as(last.bias))
    obs, act = torch.zeros(1, 2), torch.zeros(1, 1)
    outcomes = {
        float(
            critic.random_subset_min(obs, act, generator=torch.Generator().manual_seed(s)).detach()
        )
        for s in range(40)
    }
    assert outcomes == {0.0, 1.0}  # pairs {0,x} give 0, {1,2} gives 1; never a repeated 2


def test_random_subset_min_with_replacement_matches_full_evaluation() -> None:
    torch.manual_seed(0)
    critic = CriticEnsemble(CriticConfig(obs_dim=5, action_dim=2, num_critics=10, hidden_dims=[16]))
    obs, action = torch.randn(7, 5), torch.rand(7, 2) * 2 - 1
    full = critic(obs, action)
    for seed in range(5):
        fast = critic.random_subset_min(
            obs, action, 3, replace=True, generator=torch.Generator().manual_seed(seed)
        )
        slow = CriticEnsemble.subset_min(
            full, 3, replace=True, generator=torch.Generator().manual_seed(seed)
        )
        torch.testing.assert_close(fast, slow, atol=1e-6, rtol=0)


def test_load_critic_moves_both_nets_to_the_requested_device(tmp_path) -> None:
    # The meta device stands in for a GPU.
    critic = _critic()
    extra_config, extra_files = critic_checkpoint(critic, make_target(critic))
    save_policy_dir(tmp_path / "p", extra_config, {"x": torch.zeros(1)}, extra_files=extra_files)
    for device, expected in (("meta", "meta"), (None, "cpu")):
        nets = load_critic(tmp_path / "p", device=device)
        assert {p.device.type for net in nets for p in net.parameters()} == {expected}

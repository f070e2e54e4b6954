"""DiffusionPolicy: schedulers, receding-horizon chunking, EMA, save/load, config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robot_rl.data import OfflineDataset
from robot_rl.data.normalizer import Normalizer
from robot_rl.errors import ConfigError
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, load_policy

OBS_DIM, ACT_DIM = 3, 2


def make_policy(**overrides: object) -> DiffusionPolicy:
    identity = {
        "obs.x": (torch.ones(OBS_DIM), torch.zeros(OBS_DIM)),
        "action": (torch.ones(ACT_DIM), torch.zeros(ACT_DIM)),
    }
    kwargs = {"obs_keys": ["x"], "obs_dim": OBS_DIM, "action_dim": ACT_DIM, "hidden_dim": 32}
    kwargs.update(overrides)
    cfg = DiffusionPolicyConfig(**kwargs)  # type: ignore[arg-type]
    return DiffusionPolicy(cfg, Normalizer(identity), {"env_name": "push"}).eval()


class Oracle(nn.Module):
    """Predicts exactly the noise that separates x_t from a known clean chunk x0."""

    def __init__(self, x0: torch.Tensor, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.x0, self.alphas_cumprod = x0, alphas_cumprod

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t].view(-1, 1, 1)
        return (x - a.sqrt() * self.x0) / (1 - a).sqrt()


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_scheduler_round_trip_recovers_known_sample(sampler: str) -> None:
    steps = 10 if sampler == "ddim" else 100
    policy = make_policy(inference_scheduler=sampler, num_inference_steps=steps)
    x0 = torch.rand(1, 16, ACT_DIM) * 1.6 - 0.8
    # Noise fully (t = T-1) with the training scheduler, then denoise with the oracle.
    noise = torch.randn_like(x0)
    t_last = torch.tensor([policy.config.num_train_timesteps - 1])
    noisy = policy.noise_scheduler.add_noise(x0, noise, t_last)
    assert (noisy - x0).abs().mean() > 0.5
    policy.ema_denoiser = Oracle(x0, policy.noise_scheduler.alphas_cumprod)
    out = policy.denoise(torch.zeros(1, 2 * OBS_DIM), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)
    # At t = 0 the forward process is sqrt(a0) x0 + sqrt(1 - a0) eps with 1 - a0 tiny.
    a0 = policy.noise_scheduler.alphas_cumprod[0]
    near = policy.noise_scheduler.add_noise(x0, noise, torch.tensor([0]))
    torch.testing.assert_close(near, a0.sqrt() * x0 + (1 - a0).sqrt() * noise)
    assert 1 - a0 < 1e-3


@pytest.mark.parametrize("steps", [10, 5, 8])
@pytest.mark.parametrize("clip", [True, False])
def test_fast_ddim_matches_diffusers_step(steps: int, clip: bool) -> None:
    policy = make_policy(num_inference_steps=steps, clip_sample=clip)
    cond = torch.randn(4, 2 * OBS_DIM)
    torch.manual_seed(0)
    fast = policy.denoise(cond)
    torch.manual_seed(0)
    x = torch.randn(4, 16, ACT_DIM)
    with torch.no_grad():
        for t in policy.sampler.timesteps:
            eps = policy.ema_denoiser(x, t.expand(4), cond)
            x = policy.sampler.step(eps, t, x).prev_sample
    torch.testing.assert_close(fast, x.clamp(-1, 1), atol=1e-5, rtol=0)


def test_receding_horizon_executes_chunk_slice_and_replans() -> None:
    policy = make_policy(n_obs_steps=2, horizon=8, n_action_steps=4)
    conds: list[torch.Tensor] = []

    def fake_denoise(cond: torch.Tensor, generator: object = None, **_: object) -> torch.Tensor:
        conds.append(cond.clone())
        # Chunk entry k holds 0.1 * k + 0.01 * (plan number), so executed indices are visible.
        k = torch.arange(8, dtype=torch.float32).view(1, 8, 1) * 0.1 + 0.01 * len(conds)
        return k.expand(cond.shape[0], 8, ACT_DIM).clone()

    policy.denoise = fake_denoise  # type: ignore[method-assign]
    acts = []
    for step in range(6):
        obs = {"x": torch.full((2, OBS_DIM), float(step))}
        acts.append(policy.act(obs)[:, 0])
        if step == 1:
            policy.reset(torch.tensor([1]))  # env 1 starts a new episode at step 2
    acts_t = torch.stack(acts)  # [6, 2]
    # Env 0: plan 1 at step 0 executes pred[1:5]; plan at step 4 (env 0's own replan).
    expected0 = torch.tensor([0.11, 0.21, 0.31, 0.41])
    torch.testing.assert_close(acts_t[:4, 0], expected0)
    # The first history repeats the first observation (edge padding); later it rolls.
    torch.testing.assert_close(conds[0][0], torch.zeros(2 * OBS_DIM))
    # Env 1 replanned alone at step 2 from a fresh history [o2, o2].
    assert conds[1].shape[0] == 1
    torch.testing.assert_close(conds[1][0], torch.full((2 * OBS_DIM,), 2.0))
    torch.testing.assert_close(acts_t[2:6, 1], torch.tensor([0.12, 0.22, 0.32, 0.42]))
    # Env 0 replans at step 4 from history [o3, o4].
    assert conds[2].shape[0] == 1
    torch.testing.assert_close(conds[2][0], torch.tensor([3.0] * OBS_DIM + [4.0] * OBS_DIM))
    torch.testing.assert_close(acts_t[4:6, 0], torch.tensor([0.13, 0.23]))


@pytest.mark.parametrize("n_action_steps", [1, 3, 7])
def test_acting_replays_the_chunks_training_pairs_with_each_observation(
    n_action_steps: int,
) -> None:
    # One episode with obs_t = t and a_t = (t, -t) / 10. A denoiser that returns the training
    # chunk of the history it is given must make act() replay a_0..a_T-1 exactly: executing
    # any other chunk index first (an off-by-one) would shift the actions by a step.
    steps = 10
    t = np.arange(steps, dtype=np.float32)
    obs = np.repeat(t[:, None], OBS_DIM, axis=1)
    episode = {
        "obs": {"x": obs},
        "next_obs": {"x": obs + 1},
        "actions": np.stack([t, -t], axis=1) / 10,
        "rewards": np.zeros(steps),
        "dones": np.zeros(steps),
    }
    dataset = OfflineDataset.from_episodes([episode])
    policy = make_policy(n_obs_steps=2, horizon=8, n_action_steps=n_action_steps)

    def training_chunk(cond: torch.Tensor, generator: object = None, **_: object) -> torch.Tensor:
        now = cond[:, -1].round().long()
        seq = dataset.sequences_at(now, n_obs_steps=2, horizon=8)
        torch.testing.assert_close(cond, seq["obs"]["x"].flatten(1))
        return seq["actions"]

    policy.denoise = training_chunk  # type: ignore[method-assign]
    policy.reset()
    executed = [policy.act({"x": dataset.obs["x"][i : i + 1]})[0] for i in range(steps)]
    torch.testing.assert_close(torch.stack(executed), dataset.actions)


def test_ema_update_follows_power_schedule() -> None:
    policy = make_policy()
    for p in policy.denoiser.parameters():
        nn.init.constant_(p, 1.0)
    assert policy.ema_update(0) == 0.0  # first update copies
    for p in policy.ema_denoiser.parameters():
        torch.testing.assert_close(p, torch.ones_like(p))
    for p in policy.denoiser.parameters():
        nn.init.constant_(p, 3.0)
    decay = policy.ema_update(8, power=0.75)
    assert decay == pytest.approx(1 - 9**-0.75)
    expected = decay * 1.0 + (1 - decay) * 3.0
    for p in policy.ema_denoiser.parameters():
        torch.testing.assert_close(p, torch.full_like(p, expected))
    assert policy.ema_update(10**9) == pytest.approx(0.9999)


def test_sample_draws_many_chunks_per_state() -> None:
    policy = make_policy()
    obs = {"x": torch.randn(3, OBS_DIM)}
    chunks = policy.sample(obs, num_samples=5)
    assert chunks.shape == (3, 5, 16, ACT_DIM)
    assert chunks.abs().max() <= 1.0
    assert not torch.allclose(chunks[:, 0], chunks[:, 1])
    history = {"x": torch.randn(3, 2, OBS_DIM)}
    assert policy.sample(history, num_samples=2).shape == (3, 2, 16, ACT_DIM)


@pytest.mark.parametrize("denoiser", ["mlp", "unet"])
def test_save_load_gives_identical_samples(tmp_path, denoiser: str) -> None:
    policy = make_policy(denoiser=denoiser, down_dims=[16, 32])
    with torch.no_grad():
        for p in policy.ema_denoiser.parameters():
            p.add_(0.01 * torch.randn_like(p))
    policy.save(tmp_path / "dp")
    loaded = load_policy(tmp_path / "dp")
    assert isinstance(loaded, DiffusionPolicy)
    # The directory holds the EMA weights, not the trained ones.
    for a, b in zip(loaded.denoiser.parameters(), policy.ema_denoiser.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    obs = {"x": torch.randn(4, OBS_DIM)}
    torch.manual_seed(7)
    expected = policy.sample(obs, num_samples=3)
    torch.manual_seed(7)
    torch.testing.assert_close(loaded.sample(obs, num_samples=3), expected)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"horizon": 16, "n_obs_steps": 2, "n_action_steps": 16}, "n_action_steps"),
        ({"denoiser": "unet", "horizon": 10, "down_dims": [16, 32, 64]}, "horizon"),
        ({"denoiser": "unet", "down_dims": [12, 32]}, "down_dims"),
        ({"denoiser": "transformer"}, "denoiser"),
        ({"inference_scheduler": "euler"}, "inference_scheduler"),
        ({"n_obs_steps": 0}, "n_obs_steps"),
        ({"num_inference_steps": 200}, "num_inference_steps"),
        ({"mlp_expansion": 0}, "mlp_expansion"),
    ],
)
def test_config_validation_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        make_policy(**overrides)


def test_largest_valid_executed_chunk_is_accepted() -> None:
    make_policy(horizon=16, n_obs_steps=2, n_action_steps=15)
    make_policy(denoiser="unet", horizon=12, down_dims=[16, 32, 64])  # 12 divisible by 4


def test_mlp_conditioned_forward_matches_forward() -> None:
    from robot_rl.policies.denoisers import MLPResNetDenoiser

    torch.manual_seed(0)
    net = MLPResNetDenoiser(action_dim=3, horizon=8, cond_dim=10, hidden_dim=32, time_dim=16)
    x, cond = torch.randn(5, 8, 3), torch.randn(5, 10)
    steps = torch.tensor([90, 50, 10])
    conditioning = net.condition(steps, cond)
    for k, t in enumerate(steps):
        expected = net(x, t.expand(5), cond)
        assert torch.allclose(net.forward_conditioned(x, conditioning[k]), expected, atol=1e-5)


def test_mlp_block_inner_width_and_fast_forward_match_its_layers() -> None:
    from robot_rl.policies.denoisers import MLPResNetBlock

    torch.manual_seed(0)
    block = MLPResNetBlock(16, expansion=2)
    assert block.net[1].out_features == 32
    x = torch.randn(4, 16)
    torch.testing.assert_close(block(x), x + block.net(x))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_deterministic_act_is_a_function_of_the_observation(sampler: str) -> None:
    """Deterministic acting ignores the RNG: two policies fed the same observations from
    differently seeded global RNGs, at different batch positions, act alike."""
    policy = make_policy(inference_scheduler=sampler, num_inference_steps=10)
    obs = torch.randn(3, OBS_DIM, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(1)
    a = policy.act({"x": obs}, deterministic=True)
    policy.reset()
    torch.manual_seed(2)
    b = policy.act({"x": obs.flip(0)}, deterministic=True).flip(0)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # Sampling still samples: two global-RNG states give different plans.
    policy.reset()
    c = policy.act({"x": obs})
    assert not torch.allclose(a, c)


def test_sampling_draws_from_the_given_generator() -> None:
    policy = make_policy(inference_scheduler="ddpm", num_inference_steps=10)
    obs = {"x": torch.randn(4, OBS_DIM, generator=torch.Generator().manual_seed(5))}

    def run(seed: int) -> torch.Tensor:
        policy.reset()
        torch.manual_seed(seed + 100)  # the global RNG must not matter
        return policy.act(obs, generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(run(0), run(0), atol=0, rtol=0)
    assert not torch.allclose(run(0), run(1))


def test_sampler_class_follows_the_config_and_loading_is_strict() -> None:
    from diffusers import DDIMScheduler, DDPMScheduler

    ddpm = make_policy(inference_scheduler="ddpm", num_inference_steps=100)
    assert type(ddpm.sampler) is DDPMScheduler
    assert type(make_policy(inference_scheduler="ddim").sampler) is DDIMScheduler
    state = {k: v for k, v in make_policy().state_dict().items() if not k.endswith(".bias")}
    with pytest.raises(RuntimeError, match="Missing key"):
        make_policy().load_state_dict(state)


def test_reset_with_an_id_of_another_batch_forgets_everything() -> None:
    policy = make_policy()
    policy.act({"x": torch.zeros(2, OBS_DIM)})  # a batch of 2 envs
    policy.reset(torch.tensor([2]))  # id 2 cannot be in that batch: a new batch starts
    assert policy._next is None and policy._plan is None
    policy.act({"x": torch.zeros(2, OBS_DIM)})
    policy.reset(torch.tensor([1]))  # id 1 is: only its queue is cleared
    assert policy._next is not None and policy._next.tolist()[1] == -1


def test_mlp_expansion_sets_the_inner_width_of_every_residual_block() -> None:
    from robot_rl.policies.denoisers import MLPResNetBlock

    for expansion in (2, 4):
        policy = make_policy(hidden_dim=32, mlp_expansion=expansion)
        blocks = [m for m in policy.denoiser.modules() if isinstance(m, MLPResNetBlock)]
        assert len(blocks) == policy.config.num_blocks
        for block in blocks:
            assert block.net[1].out_features == 32 * expansion
            assert block.net[3].in_features == 32 * expansion


def test_acting_state_starts_empty_and_a_saved_one_resumes_its_chunk() -> None:
    policy = make_policy(n_action_steps=4)
    assert policy.acting_state() == (None, None, None)  # nothing to act from yet
    policy.reset(torch.tensor([], dtype=torch.long))  # no env finished: still nothing
    assert policy.acting_state() == (None, None, None)

    gen = torch.Generator().manual_seed(0)
    obs2 = {"x": torch.randn(2, OBS_DIM, generator=gen)}
    first = policy.act(obs2, generator=gen)
    hist, plan, nxt = policy.acting_state()
    assert nxt.tolist() == [1, 1] and plan.shape == (2, 4, ACT_DIM)
    saved = tuple(t.clone() for t in (hist, plan, nxt))
    # An evaluation with another batch size takes over the policy and replans from scratch.
    policy.act({"x": torch.randn(3, OBS_DIM, generator=gen)}, generator=gen)
    assert policy.acting_state()[2].shape == (3,)
    policy.set_acting_state(saved)
    second = policy.act(obs2, generator=gen)  # continues the saved chunk: no replan
    ref = policy.normalizer.unnormalize_action(saved[1][:, 1]).clamp(-1.0, 1.0)
    torch.testing.assert_close(second, ref, atol=0, rtol=0)
    assert not torch.equal(second, first)
    assert policy.acting_state()[2].tolist() == [2, 2]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_obs_steps": 0}, "n_obs_steps=0: must be >= 1"),
        ({"mlp_expansion": 0}, "mlp_expansion=0: must be >= 1"),
        (
            {"horizon": 10, "n_obs_steps": 3, "n_action_steps": 9},
            "n_action_steps=9: must be <= horizon - n_obs_steps + 1 = 8",
        ),
        ({"denoiser": "mpl"}, "denoiser='mpl': choose from ('mlp', 'unet')"),
        (
            {"inference_scheduler": "euler"},
            "inference_scheduler='euler': choose from ('ddim', 'ddpm')",
        ),
        (
            {"num_inference_steps": 101, "num_train_timesteps": 100},
            "num_inference_steps=101: must be <= num_train_timesteps",
        ),
        (
            {"denoiser": "unet", "horizon": 10, "n_action_steps": 4, "down_dims": [8, 16, 32]},
            "horizon=10: must be divisible by 4, the UNet's downsampling "
            "(2^(len(down_dims)-1) for down_dims=[8, 16, 32])",
        ),
        (
            {"denoiser": "unet", "horizon": 12, "n_action_steps": 4, "down_dims": [8, 8, 8, 8]},
            "horizon=12: must be divisible by 8, the UNet's downsampling "
            "(2^(len(down_dims)-1) for down_dims=[8, 8, 8, 8])",
        ),
        (
            {"denoiser": "unet", "down_dims": [8, 12], "n_groups": 8},
            "down_dims=[8, 12]: every entry must be divisible by n_groups=8",
        ),
    ],
)
def test_config_errors_name_the_setting_and_the_bound(overrides: dict, message: str) -> None:
    """The CLI prints these lines as they are: the bound in each must be the true one."""
    kwargs = {"obs_keys": ["x"], "obs_dim": OBS_DIM, "action_dim": ACT_DIM, **overrides}
    with pytest.raises(ConfigError) as err:
        DiffusionPolicyConfig(**kwargs)
    assert str(err.value) == message


def test_a_history_of_the_wrong_length_is_refused_with_both_lengths() -> None:
    policy = make_policy(n_obs_steps=2)
    with pytest.raises(ValueError) as err:
        policy.obs_history({"x": torch.zeros(1, 4, OBS_DIM)})  # 4 != OBS_DIM
    assert str(err.value) == "observation history has 4 steps, policy needs n_obs_steps=2"


def test_load_state_dict_forwards_strict_and_assign_to_torch() -> None:
    policy = make_policy()
    state = {k: v.clone() for k, v in make_policy().state_dict().items()}
    partial = {k: v for k, v in state.items() if not k.endswith(".bias")}
    missing = policy.load_state_dict(partial, strict=False).missing_keys
    assert missing and all(k.endswith(".bias") for k in missing)
    name = next(k for k in state if k.startswith("denoiser.") and k.endswith(".weight"))
    policy.load_state_dict(state, assign=True)  # parameters become the given tensors
    assert policy.state_dict()[name].data_ptr() == state[name].data_ptr()


def test_unet_time_embedding_tables_are_not_saved() -> None:
    # The sinusoidal frequency table is rebuilt from the config: saved weights hold only learned
    # tensors (a checkpoint with the table would not load into a policy that has none, strictly).
    policy = make_policy(denoiser="unet", down_dims=[8, 16], n_groups=4, step_embed_dim=16)
    state = policy.state_dict()
    assert not any(k.endswith("freqs") for k in state)
    assert any(k.endswith("freqs") for k, _ in policy.named_buffers())
    make_policy(denoiser="unet", down_dims=[8, 16], n_groups=4, step_embed_dim=16).load_state_dict(
        state
    )

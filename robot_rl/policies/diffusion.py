"""Diffusion policy (Chi et al. 2023): denoise an action chunk conditioned on recent observations.

Training noises a normalized chunk with ``DDPMScheduler`` and regresses the noise; acting
denoises Gaussian noise with ``DDIMScheduler`` (or DDPM) through the EMA copy of the network and
executes ``pred[n_obs_steps-1 : n_obs_steps-1+n_action_steps]`` before planning again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robot_rl.data.normalizer import Normalizer
from robot_rl.errors import ConfigError
from robot_rl.policies.base import Policy
from robot_rl.policies.denoisers import ConditionalUnet1D, MLPResNetDenoiser, unet_downsampling

DENOISERS = ("mlp", "unet")
INFERENCE_SCHEDULERS = ("ddim", "ddpm")
DETERMINISTIC_NOISE_SEED = 0
"""Seed of the initial noise every deterministic plan starts from."""

if TYPE_CHECKING:
    from sim.vec_env import Obs


@dataclass
class DiffusionPolicyConfig:
    """Network, chunking and noise-schedule settings of :class:`DiffusionPolicy`."""

    obs_keys: list[str]
    """Observation keys read, in concatenation order."""
    obs_dim: int
    """Total flattened observation size of one step."""
    action_dim: int
    """Action size."""
    n_obs_steps: int = 2
    """Observation history length To the denoiser is conditioned on."""
    horizon: int = 16
    """Predicted chunk length Tp (starts at the oldest observation step)."""
    n_action_steps: int = 8
    """Executed chunk length Ta before replanning (<= horizon - n_obs_steps + 1)."""
    denoiser: str = "mlp"
    """Noise-prediction network: mlp (MLP-ResNet, low-dim state) or unet (conditional 1D UNet)."""
    hidden_dim: int = 256
    """mlp: residual width."""
    num_blocks: int = 3
    """mlp: residual blocks."""
    mlp_expansion: int = 4
    """mlp: inner width of a residual block as a multiple of hidden_dim (IDQL and EXPO: 4)."""
    time_dim: int = 64
    """mlp: Fourier time-feature size."""
    down_dims: list[int] = field(default_factory=lambda: [64, 128, 256])
    """unet: channels per level; the chunk is halved between levels."""
    kernel_size: int = 5
    """unet: temporal convolution width."""
    n_groups: int = 8
    """unet: GroupNorm groups (must divide every entry of down_dims)."""
    step_embed_dim: int = 128
    """unet: diffusion-step embedding size."""
    num_train_timesteps: int = 100
    """Diffusion steps of the training (DDPM) schedule."""
    num_inference_steps: int = 10
    """Denoising steps when acting."""
    inference_scheduler: str = "ddim"
    """Sampler when acting: ddim (deterministic given the initial noise) or ddpm."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule."""
    clip_sample: bool = True
    """Clip the predicted clean chunk to [-1, 1] at each denoising step."""

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r}: {why}")

        counts = (
            "n_obs_steps",
            "horizon",
            "n_action_steps",
            "num_inference_steps",
            "mlp_expansion",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if self.n_action_steps > self.horizon - self.n_obs_steps + 1:
            raise bad(
                "n_action_steps",
                f"must be <= horizon - n_obs_steps + 1 = {self.horizon - self.n_obs_steps + 1}",
            )
        if self.denoiser not in DENOISERS:
            raise bad("denoiser", f"choose from {DENOISERS}")
        if self.inference_scheduler not in INFERENCE_SCHEDULERS:
            raise bad("inference_scheduler", f"choose from {INFERENCE_SCHEDULERS}")
        if self.num_inference_steps > self.num_train_timesteps:
            raise bad("num_inference_steps", "must be <= num_train_timesteps")
        if self.denoiser == "unet":
            factor = unet_downsampling(self.down_dims)
            if self.horizon % factor:
                raise bad(
                    "horizon",
                    f"must be divisible by {factor}, the UNet's downsampling "
                    f"(2^(len(down_dims)-1) for down_dims={self.down_dims})",
                )
            if any(d % self.n_groups for d in self.down_dims):
                raise bad("down_dims", f"every entry must be divisible by n_groups={self.n_groups}")


class DiffusionPolicy(Policy):
    """Chunked denoising policy; acts through the EMA network and queues executed actions."""

    policy_type = "diffusion"
    config_cls = DiffusionPolicyConfig

    def __init__(
        self, config: DiffusionPolicyConfig, normalizer: Normalizer, env_info: dict[str, Any]
    ) -> None:
        super().__init__(config, normalizer, env_info)
        cond_dim = config.n_obs_steps * config.obs_dim
        if config.denoiser == "mlp":
            self.denoiser: nn.Module = MLPResNetDenoiser(
                config.action_dim,
                config.horizon,
                cond_dim,
                config.hidden_dim,
                config.num_blocks,
                config.time_dim,
                config.mlp_expansion,
            )
        else:
            self.denoiser = ConditionalUnet1D(
                config.action_dim,
                cond_dim,
                config.down_dims,
                config.kernel_size,
                config.n_groups,
                config.step_embed_dim,
            )
        self.ema_denoiser = copy.deepcopy(self.denoiser).requires_grad_(False)
        # diffusers is imported here, not at module level, so loading a Gaussian policy (e.g. on
        # a robot controller) never loads it.
        from diffusers import DDIMScheduler, DDPMScheduler

        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            prediction_type="epsilon",
        )
        sampler_cls = DDIMScheduler if config.inference_scheduler == "ddim" else DDPMScheduler
        self.sampler = sampler_cls.from_config(self.noise_scheduler.config)
        self.sampler.set_timesteps(config.num_inference_steps)
        self._ddim = isinstance(self.sampler, DDIMScheduler)
        # DDIM (eta 0) coefficients, kept for every policy: deterministic acting denoises with
        # them whatever the sampler. Per step (1/sqrt(a), sqrt(1-a), sqrt(a_prev),
        # sqrt(1-a_prev)) with a the alpha_bar of the step and a_prev the one it steps to, as
        # DDIMScheduler.step computes them.
        ddim = self.sampler if self._ddim else DDIMScheduler.from_config(self.sampler.config)
        ddim.set_timesteps(config.num_inference_steps)
        acp = ddim.alphas_cumprod.tolist()
        stride = config.num_train_timesteps // config.num_inference_steps
        final = float(ddim.final_alpha_cumprod)
        self._ddim_coefs = []
        for t in ddim.timesteps.tolist():
            a, a_prev = acp[t], (acp[t - stride] if t >= stride else final)
            self._ddim_coefs.append((a**-0.5, (1 - a) ** 0.5, a_prev**0.5, (1 - a_prev) ** 0.5))
        # Not saved; moves with the policy's device.
        self.register_buffer("_ddim_steps", ddim.timesteps.clone(), persistent=False)
        self._hist: torch.Tensor | None = None  # [N, To, obs_dim] normalized obs history
        self._plan: torch.Tensor | None = None  # [N, Ta, A] actions being executed
        self._next: torch.Tensor | None = None  # [N] index of the next planned action to run

    # ---- training ------------------------------------------------------------------------

    def loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise-prediction MSE on a ``sample_sequences`` batch (padded steps included: they
        repeat the last action, teaching the chunk to hold still at the end, as Chi et al.)."""
        cond = self.flat_obs(batch["obs"]).flatten(1)
        target = self.normalizer.normalize_action(batch["actions"])
        b, dev = target.shape[0], target.device
        noise = torch.randn(target.shape, generator=generator, device=dev)
        t = torch.randint(self.config.num_train_timesteps, (b,), generator=generator, device=dev)
        noisy = self.noise_scheduler.add_noise(target, noise, t)
        return nn.functional.mse_loss(self.denoiser(noisy, t, cond), noise)

    @torch.no_grad()
    def ema_update(self, step: int, power: float = 0.75, max_decay: float = 0.9999) -> float:
        """Move the EMA network toward the trained one; returns the decay used.

        decay = 1 - (1 + step)^-power (0 at step 0, i.e. a copy), capped at ``max_decay``, as
        in Chi et al.'s EMAModel.
        """
        decay = 0.0 if step <= 0 else min(max_decay, 1.0 - (1.0 + step) ** -power)
        for ema, p in zip(self.ema_denoiser.parameters(), self.denoiser.parameters(), strict=True):
            ema.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.ema_denoiser.buffers(), self.denoiser.buffers(), strict=True):
            ema_b.copy_(b)
        return decay

    def weights_for_save(self) -> dict[str, torch.Tensor]:
        """The EMA weights, under the ``denoiser.`` names (what a deployed policy runs)."""
        return {f"denoiser.{k}": v for k, v in self.ema_denoiser.state_dict().items()}

    def load_state_dict(
        self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False
    ):
        """Also accepts saved weights (EMA only): they seed both the trained and EMA networks."""
        if not any(k.startswith("ema_denoiser.") for k in state_dict):
            state_dict = dict(state_dict)
            for k, v in list(state_dict.items()):
                if k.startswith("denoiser."):
                    state_dict["ema_" + k] = v
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---- sampling ------------------------------------------------------------------------

    @torch.no_grad()
    def denoise(
        self,
        cond: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        deterministic: bool = False,
    ) -> torch.Tensor:
        """Normalized chunks [B, horizon, A] for flattened normalized obs histories [B, C].

        Sampling draws the initial noise (and DDPM's step noise) from ``generator``, or from
        torch's global RNG if None. ``deterministic`` makes the chunk a function of the
        history alone: every row starts from one fixed noise (seed
        :data:`DETERMINISTIC_NOISE_SEED`) and is denoised by DDIM with eta 0, whatever the
        sampler; ``generator`` is then unused.
        """
        cfg = self.config
        b, shape = cond.shape[0], (cfg.horizon, cfg.action_dim)
        if deterministic:
            fixed = torch.Generator(device=cond.device).manual_seed(DETERMINISTIC_NOISE_SEED)
            x = torch.randn((1, *shape), generator=fixed, device=cond.device).expand(b, *shape)
        else:
            x = torch.randn((b, *shape), generator=generator, device=cond.device)
        net = self.ema_denoiser
        if self._ddim or deterministic:
            # DDIM (eta 0) from the scheduler's own coefficients, without its per-step Python
            # overhead, which at batch 1 costs as much as the MLP forward.
            mlp = isinstance(net, MLPResNetDenoiser)
            if mlp:
                conditioning = net.condition(self._ddim_steps, cond)
            for k, (inv_sqrt_a, sqrt_1ma, sqrt_a_prev, sqrt_1ma_prev) in enumerate(
                self._ddim_coefs
            ):
                if mlp:
                    eps = net.forward_conditioned(x, conditioning[k])
                else:
                    eps = net(x, self._ddim_steps[k].expand(b), cond)
                if self.config.clip_sample:
                    x0 = torch.sub(x, eps, alpha=sqrt_1ma).mul_(inv_sqrt_a).clamp_(-1.0, 1.0)
                    x = torch.add(x0.mul_(sqrt_a_prev), eps, alpha=sqrt_1ma_prev)
                else:  # x0 is linear in (x, eps): fold it into one axpy
                    c_eps = sqrt_1ma_prev - sqrt_a_prev * sqrt_1ma * inv_sqrt_a
                    x = torch.add(x * (sqrt_a_prev * inv_sqrt_a), eps, alpha=c_eps)
            return x.clamp(-1.0, 1.0)
        for t in self.sampler.timesteps:
            eps = net(x, t.expand(b).to(cond.device), cond)
            x = self.sampler.step(eps, t, x, generator=generator).prev_sample
        return x.clamp(-1.0, 1.0)

    def obs_history(self, obs: Obs) -> torch.Tensor:
        """Normalized flat history [B, To * obs_dim] from per-key [B, To, d] (or [B, d], taken
        as a history of identical steps, like the start of an episode)."""
        flat = self.flat_obs(obs)
        if flat.dim() == 2:
            flat = flat.unsqueeze(1).expand(-1, self.config.n_obs_steps, -1)
        if flat.shape[1] != self.config.n_obs_steps:
            raise ValueError(
                f"observation history has {flat.shape[1]} steps, policy needs "
                f"n_obs_steps={self.config.n_obs_steps}"
            )
        return flat.flatten(1)

    @torch.no_grad()
    def sample(
        self,
        obs: Obs,
        num_samples: int = 1,
        *,
        normalized: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``num_samples`` candidate chunks per state, [B, num_samples, horizon, A].

        All B * num_samples chains are denoised together (one network call per step). Actions
        are in env units clamped to [-1, 1], or in the policy's normalized space if
        ``normalized``.
        """
        cond = self.obs_history(obs).repeat_interleave(num_samples, dim=0)
        chunk = self.denoise(cond, generator)
        chunk = chunk.view(-1, num_samples, self.config.horizon, self.config.action_dim)
        if normalized:
            return chunk
        return self.normalizer.unnormalize_action(chunk).clamp(-1.0, 1.0)

    # ---- acting (receding horizon) -------------------------------------------------------

    @torch.no_grad()
    def act(
        self, obs: Obs, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Next action per env; replans an env when its queue of executed actions runs out.

        ``deterministic``: each plan is a function of the observation history alone (fixed
        initial noise, DDIM with eta 0), so the same history gives the same actions. Else
        plans are sampled with noise from ``generator`` (torch's global RNG if None).
        """
        cfg = self.config
        flat = self.flat_obs(obs)
        n = flat.shape[0]
        if self._hist is None or self._hist.shape[0] != n:
            self._hist = flat.unsqueeze(1).repeat(1, cfg.n_obs_steps, 1)
            self._plan = torch.zeros(n, cfg.n_action_steps, cfg.action_dim, device=flat.device)
            self._next = torch.full((n,), cfg.n_action_steps, device=flat.device)
        else:
            fresh = (self._next < 0).unsqueeze(1).unsqueeze(2)
            rolled = torch.cat([self._hist[:, 1:], flat.unsqueeze(1)], dim=1)
            # A new episode's history repeats its first observation (the sampler's edge padding).
            self._hist = torch.where(fresh, flat.unsqueeze(1).expand_as(rolled), rolled)
            self._next = torch.where(self._next < 0, cfg.n_action_steps, self._next)
        replan = (self._next >= cfg.n_action_steps).nonzero().flatten()
        if len(replan):
            self._plan[replan] = self.plan(self._hist[replan], generator, deterministic)
            self._next[replan] = 0
        action = self._plan[torch.arange(n, device=flat.device), self._next]
        self._next = self._next + 1
        return self.normalizer.unnormalize_action(action).clamp(-1.0, 1.0)

    def acting_state(self) -> tuple[torch.Tensor | None, ...]:
        """Per-env history and queue, so two users of one policy (a fine-tuning actor and an
        evaluation) can each keep their own (see :meth:`set_acting_state`)."""
        return (self._hist, self._plan, self._next)

    def set_acting_state(self, state: tuple[torch.Tensor | None, ...]) -> None:
        self._hist, self._plan, self._next = state

    def plan(
        self, hist: torch.Tensor, generator: torch.Generator | None, deterministic: bool
    ) -> torch.Tensor:
        """The executed part [R, Ta, A] (normalized) of a chunk for histories [R, To, obs_dim];
        a subclass may choose among candidates here (EXPO)."""
        chunk = self.denoise(hist.flatten(1), generator, deterministic=deterministic)
        start = self.config.n_obs_steps - 1
        return chunk[:, start : start + self.config.n_action_steps]

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Forget history and queued actions of ``env_ids`` (all envs if None)."""
        if env_ids is None or self._next is None:
            self._hist = self._plan = self._next = None
            return
        if len(env_ids) and int(env_ids.max()) >= len(self._next):  # another batch's ids
            self._hist = self._plan = self._next = None
            return
        self._next[env_ids.to(self._next.device)] = -1

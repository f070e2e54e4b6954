"""Diffusion policy training (Chi et al. 2023): regress the noise added to action chunks.

Two scales: ``cpu`` (default; MLP-ResNet denoiser, a few thousand steps, minutes on 2 cores,
and a short chunk, Tp=8 with Ta=2, for the bundled 20 Hz tasks) and ``paper`` (Chi et al.'s
UNet, step count and chunking, Tp=16 with Ta=8, for the GPU machine). Fields left unset take
the scale's value; fields given on the command line win.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from diffusers.optimization import get_cosine_schedule_with_warmup
from torch import optim
from tqdm import trange

from robot_rl.algos.common import (
    OfflineTrainConfig,
    config_json,
    default_log_dir,
    load_task_dataset,
    make_writer,
    seed_everything,
    with_matmul_precision,
)
from robot_rl.checkpoint import check_output
from robot_rl.data import Normalizer
from robot_rl.errors import ConfigError
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig

SCALES: dict[str, dict[str, Any]] = {
    # The bundled tasks' episodes are 15-60 steps at 20 Hz with a 3 cm/step arm: an 8-step
    # open-loop chunk is half a push episode. Push success (100 demos, 50 episodes, MLP):
    # Tp=16/Ta=8 0.64-0.76, Tp=16/Ta=4 0.84-0.88, Tp=8/Ta=2 0.92-0.98 (BC 0.92).
    # 10k steps, not 5k: push_obstacle has 3x the transitions and went 0.38 -> 0.62.
    "cpu": {
        "denoiser": "mlp",
        # 2x, not IDQL's 4x, inner width: DDIM-10 p99 per chunk 1.9 vs 3.4 ms at batch 1 on
        # 2 cores (bench/policy_latency.py); the 4x block's 6 MB of weights overflow the L2.
        "mlp_expansion": 2,
        "steps": 10_000,
        "lr": 3e-4,
        "down_dims": [64, 128, 256],
        "horizon": 8,
        "n_action_steps": 2,
    },
    # Chi et al.: UNet 256-512-1024, AdamW 1e-4, ~3000 epochs (about 200k steps at batch 256).
    "paper": {
        "denoiser": "unet",
        "mlp_expansion": 4,
        "steps": 200_000,
        "lr": 1e-4,
        "down_dims": [256, 512, 1024],
        "horizon": 16,
        "n_action_steps": 8,
    },
}


@dataclass
class DiffusionConfig(OfflineTrainConfig):
    """Train a diffusion policy (DDPM training, DDIM acting, EMA weights) on demonstrations."""

    scale: Literal["cpu", "paper"] = "cpu"
    """Preset for unset fields: cpu (MLP 256 with 2x blocks, 10k steps, lr 3e-4, Tp=8, Ta=2)
    or paper (UNet 256-512-1024, 200k steps, lr 1e-4, Tp=16, Ta=8)."""
    denoiser: Literal["mlp", "unet"] | None = None
    """Noise-prediction network (default from ``scale``)."""
    n_obs_steps: int = 2
    """Observation history length To."""
    horizon: int | None = None
    """Predicted chunk length Tp (default from ``scale``)."""
    n_action_steps: int | None = None
    """Executed actions per chunk Ta, receding horizon (default from ``scale``)."""
    num_train_timesteps: int = 100
    """DDPM training diffusion steps."""
    num_inference_steps: int = 10
    """Denoising steps when acting."""
    inference_scheduler: Literal["ddim", "ddpm"] = "ddim"
    """Sampler when acting."""
    hidden_dim: int = 256
    """mlp denoiser: residual width."""
    num_blocks: int = 3
    """mlp denoiser: residual blocks."""
    mlp_expansion: int | None = None
    """mlp denoiser: block inner width / hidden_dim (default from ``scale``: cpu 2, paper 4)."""
    down_dims: list[int] | None = None
    """unet denoiser: channels per level (default from ``scale``)."""
    steps: int | None = None
    """Gradient steps (default from ``scale``)."""
    batch_size: int = 256
    """Sequences per batch."""
    lr: float | None = None
    """AdamW peak learning rate (default from ``scale``)."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    warmup_steps: int = 500
    """Linear warmup before the cosine decay."""
    ema_power: float = 0.75
    """EMA decay = 1 - (1 + step)^-power, capped at 0.9999."""

    def resolved(self) -> DiffusionConfig:
        """A copy with unset fields taken from ``scale``."""
        if self.scale not in SCALES:
            raise ConfigError(f"scale={self.scale!r}: choose from {sorted(SCALES)}")
        values = asdict(self)
        for name, value in SCALES[self.scale].items():
            if values[name] is None:
                values[name] = value
        return DiffusionConfig(**values)  # checked on construction (check_fields)


@with_matmul_precision
def train_diffusion(cfg: DiffusionConfig, progress: bool = True) -> DiffusionPolicy:
    """Fit the policy, save its EMA weights to ``cfg.out`` and return it."""
    cfg = cfg.resolved()
    check_output(cfg.out, cfg.overwrite)
    generator = seed_everything(cfg.seed)
    dataset, env_info = load_task_dataset(cfg.dataset, cfg.obs_keys, cfg.filter_key)
    obs_keys = cfg.obs_keys or [k for k, v in dataset.obs.items() if v.is_floating_point()]
    policy_cfg = DiffusionPolicyConfig(
        obs_keys=obs_keys,
        obs_dim=sum(dataset.obs[k].shape[-1] for k in obs_keys),
        action_dim=dataset.action_dim,
        n_obs_steps=cfg.n_obs_steps,
        horizon=cfg.horizon,
        n_action_steps=cfg.n_action_steps,
        denoiser=cfg.denoiser,
        hidden_dim=cfg.hidden_dim,
        num_blocks=cfg.num_blocks,
        mlp_expansion=cfg.mlp_expansion,
        down_dims=list(cfg.down_dims),
        num_train_timesteps=cfg.num_train_timesteps,
        num_inference_steps=cfg.num_inference_steps,
        inference_scheduler=cfg.inference_scheduler,
    )
    policy = DiffusionPolicy(policy_cfg, Normalizer.fit(dataset, obs_keys), env_info)
    policy = policy.to(cfg.device).train()
    optimizer = optim.AdamW(policy.denoiser.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps, cfg.steps)
    with make_writer(default_log_dir(cfg), f"diffusion-{cfg.out.name}") as writer:
        bar = trange(cfg.steps, desc="diffusion", disable=not progress, leave=False)
        for step in bar:
            batch = dataset.sample_sequences(
                cfg.batch_size,
                n_obs_steps=cfg.n_obs_steps,
                horizon=cfg.horizon,
                generator=generator,
                device=cfg.device,
            )
            loss = policy.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            decay = policy.ema_update(step, power=cfg.ema_power)
            if step % 200 == 0 or step == cfg.steps - 1:
                value = loss.item()
                writer.add_scalar("train/actor_loss", value, step)
                writer.add_scalar("train/lr", schedule.get_last_lr()[0], step)
                writer.add_scalar("train/ema_decay", decay, step)
                bar.set_postfix(loss=f"{value:.4f}")
    policy.eval()
    policy.save(cfg.out, overwrite=cfg.overwrite, extra_config={"train": config_json(cfg)})
    return policy

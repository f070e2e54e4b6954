"""Noise-prediction networks for the diffusion policy: an MLP-ResNet and a conditional 1D UNet.

Both map ``(noisy chunk [B, H, A], timestep [B], cond [B, C]) -> noise estimate [B, H, A]``.
The MLP-ResNet (IDQL/EXPO style) is the cheap choice for low-dimensional state; the UNet is
Chi et al.'s temporal convolution network with FiLM conditioning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class FourierFeatures(nn.Module):
    """Learned random Fourier features of the diffusion step (IDQL's time encoding)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim // 2, 1) * 0.2)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * t.float()[:, None] @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


class SinusoidalPosEmb(nn.Module):
    """Fixed transformer-style sinusoidal embedding of the diffusion step."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        f = t.float()[:, None] * self.freqs[None]
        return torch.cat([f.sin(), f.cos()], dim=-1)


class MLPResNetBlock(nn.Module):
    """x + W2 swish(W1 LayerNorm(x)), with an ``expansion``-times wide inner layer (IDQL: 4)."""

    def __init__(self, dim: int, expansion: int = 4) -> None:
        super().__init__()
        inner = expansion * dim
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, inner), nn.SiLU(), nn.Linear(inner, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Functional calls instead of running the Sequential: at batch 1 each submodule call
        # costs as much as its matmul, and this block runs 10x per action chunk.
        norm, fc1, fc2 = self.net[0], self.net[1], self.net[3]
        h = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        return x + F.linear(F.silu(F.linear(h, fc1.weight, fc1.bias)), fc2.weight, fc2.bias)


class MLPResNetDenoiser(nn.Module):
    """Flattened chunk + obs features + time features -> residual MLP -> flattened noise."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        hidden_dim: int = 256,
        num_blocks: int = 3,
        time_dim: int = 64,
        expansion: int = 4,
    ) -> None:
        super().__init__()
        self.horizon, self.action_dim = horizon, action_dim
        self.time = nn.Sequential(
            FourierFeatures(time_dim),
            nn.Linear(time_dim, 2 * time_dim),
            nn.SiLU(),
            nn.Linear(2 * time_dim, time_dim),
        )
        self.inp = nn.Linear(horizon * action_dim + cond_dim + time_dim, hidden_dim)
        self.blocks = nn.Sequential(
            *(MLPResNetBlock(hidden_dim, expansion) for _ in range(num_blocks))
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, horizon * action_dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x.flatten(1), cond, self.time(t)], dim=-1)
        return self._trunk(self.inp(h))

    def _trunk(self, h: torch.Tensor) -> torch.Tensor:
        """Residual blocks and output head on the input layer's output."""
        for block in self.blocks:
            h = block(h)
        y = F.linear(F.silu(h), self.out[1].weight, self.out[1].bias)
        return y.view(-1, self.horizon, self.action_dim)

    def condition(self, timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The input layer's share of (time, obs) for every step of a sampling loop, [K, B, H].

        The input layer is linear in the concatenation [x, cond, time], so the cond and time
        parts are the same at every denoising step of one chunk; computing them once leaves
        only the chunk's own projection per step (see :meth:`forward_conditioned`).
        """
        n_x = self.horizon * self.action_dim
        w = self.inp.weight
        w_cond, w_time = w[:, n_x : n_x + cond.shape[-1]], w[:, n_x + cond.shape[-1] :]
        obs_part = torch.addmm(self.inp.bias, cond, w_cond.T)
        return obs_part.unsqueeze(0) + (self.time(timesteps) @ w_time.T).unsqueeze(1)

    def forward_conditioned(self, x: torch.Tensor, conditioning: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward` given one step's slice of :meth:`condition`, [B, H]."""
        w_x = self.inp.weight[:, : self.horizon * self.action_dim]
        return self._trunk(torch.addmm(conditioning, x.flatten(1), w_x.T))


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish (GroupNorm, not BatchNorm, so EMA weights stay valid)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, c_out),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class CondResBlock1D(nn.Module):
    """Two conv blocks with a FiLM (per-channel scale and bias) from ``cond`` between them."""

    def __init__(
        self, c_in: int, c_out: int, cond_dim: int, kernel_size: int, n_groups: int
    ) -> None:
        super().__init__()
        self.conv1 = Conv1dBlock(c_in, c_out, kernel_size, n_groups)
        self.conv2 = Conv1dBlock(c_out, c_out, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.conv2(self.conv1(x) * scale + bias)
        return h + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Chi et al.'s temporal UNet; the chunk is halved in time ``len(down_dims) - 1`` times."""

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        down_dims: Sequence[int] = (64, 128, 256),
        kernel_size: int = 5,
        n_groups: int = 8,
        step_embed_dim: int = 128,
    ) -> None:
        super().__init__()
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        c = step_embed_dim + cond_dim
        dims = [action_dim, *down_dims]
        pairs = list(zip(dims[:-1], dims[1:], strict=True))

        def block(c_in: int, c_out: int) -> CondResBlock1D:
            return CondResBlock1D(c_in, c_out, c, kernel_size, n_groups)

        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            resample = nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, 2, 1)
            self.down.append(nn.ModuleList([block(c_in, c_out), block(c_out, c_out), resample]))
        self.mid = nn.ModuleList([block(dims[-1], dims[-1]), block(dims[-1], dims[-1])])
        self.up = nn.ModuleList()
        # The first level's skip goes unused, as in Chi et al.; every up level upsamples.
        for c_in, c_out in reversed(pairs[1:]):
            upsample = nn.ConvTranspose1d(c_in, c_in, 4, 2, 1)
            self.up.append(nn.ModuleList([block(2 * c_out, c_in), block(c_in, c_in), upsample]))
        self.final = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = torch.cat([self.step_encoder(t), cond], dim=-1)
        h = x.transpose(1, 2)
        skips = []
        for res1, res2, downsample in self.down:
            h = res2(res1(h, c), c)
            skips.append(h)
            h = downsample(h)
        for res in self.mid:
            h = res(h, c)
        for res1, res2, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(res2(res1(h, c), c))
        return self.final(h).transpose(1, 2)


def unet_downsampling(down_dims: Sequence[int]) -> int:
    """Factor by which :class:`ConditionalUnet1D` shortens the chunk; horizon must divide by it."""
    return 2 ** (len(down_dims) - 1)

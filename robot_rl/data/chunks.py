"""n-step chunk returns for chunk-level critics (Q-chunking)."""

from __future__ import annotations

import torch
from torch import Tensor


def chunk_returns(
    rewards: Tensor, terminals: Tensor, dones: Tensor, discount: float
) -> tuple[Tensor, Tensor, Tensor]:
    """For consecutive steps [B, Ta]: discounted reward sum (stopping after the first done),
    not_done (0 if a terminal occurs within the chunk) and the bootstrap discount
    gamma^k, k = steps actually taken (Ta unless the episode ended earlier)."""
    b, ta = rewards.shape
    alive = torch.ones(b, device=rewards.device)
    total = torch.zeros(b, device=rewards.device)
    steps = torch.zeros(b, device=rewards.device)
    not_done = torch.ones(b, device=rewards.device)
    for k in range(ta):
        total = total + alive * discount**k * rewards[:, k]
        steps = steps + alive
        not_done = not_done * (1 - alive * terminals[:, k])
        alive = alive * (1 - dones[:, k])
    return total, not_done, discount**steps

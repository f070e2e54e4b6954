"""EXPO (Dong, Li, Sadigh, Finn 2025) on chunked diffusion policies.

The base diffusion policy trains by imitation only (no critic gradient), on 50/50
offline/online sequence batches, and acts through its EMA copy. A small tanh-Gaussian edit
policy on (state, base action) outputs ``beta * tanh(u)`` added to the base action, then
clipped to [-1, 1] (the clip is outside the density: the log-prob is that of the unclipped
edit, corrected by ``-|A| log beta``); it trains SAC-style against the critic ensemble's mean,
with target entropy ``-|A|/2``. On-the-fly selection draws N base samples and their edits (2N
candidates, one batched denoising call for all states), scores them with the min over a random
pair of target critics and takes the argmax; the same :func:`select` acts
(:class:`~robot_rl.policies.expo.EXPOPolicy`) and forms the TD target.

Chunks (Q-chunking, Li, Zhou, Levine 2025): the critic values the executed chunk
Q(s, a_t..a_{t+Ta-1}) flattened to ``Ta * |A|``, with k-step backups
r_t + ... + gamma^{k-1} r_{t+k-1} + gamma^k Q'(s_{t+k}), k = Ta unless the episode ended
inside the chunk; edits act on the flattened chunk. Ta = 1 is plain EXPO.

Reward convention: r' = reward_scale * r + reward_bias per env step (default 10 r - 5, the
Cal-QL/SAC shift for 0/1 sparse tasks here); over a k-step chunk the bias adds up to
``bias * (1 - gamma^k) / (1 - gamma)``.

Cost, and how it is kept down: every candidate set needs N denoising chains. Acting batches
the chains of all envs that replan at a step into one call. TD targets need N base samples at
each next state: by default (``next_base="cache"``) these are the samples drawn when that state
was acted on (online rows) or once at the start (offline rows), so a critic step runs no
denoising; ``next_base="fresh"`` redraws them every step, as the authors do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from robot_rl.algos.agent import (
    OnlineConfig,
    RewardConvention,
    load_optimizer,
    optimizer_tensors,
    saved_reward_convention,
    strip_prefix,
)
from robot_rl.algos.common import load_task_dataset
from robot_rl.checkpoint import read_config
from robot_rl.data import OfflineDataset
from robot_rl.data.chunks import chunk_returns
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.perf import adam
from robot_rl.policies import load_policy
from robot_rl.policies.critic import CriticConfig, CriticEnsemble, polyak_update
from robot_rl.policies.diffusion import DiffusionPolicy
from robot_rl.policies.expo import EditPolicy, EXPOPolicy, select

DESCRIPTION = "diffusion base + edit policy + on-the-fly selection, chunk critics (needs --init)"

# Fields left unset take these values (cpu: <= 10 min here; paper: the authors'). The cpu
# preset's beta is 0.3, not the authors' 0.05: measured on lift (3 seeds: 12k env steps to 90 %
# each vs 20-28k) and push_obstacle (2 of 3 seeds at 90 % within 20k vs 1 of 3); README, EXPO.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"num_envs": 8, "updates_per_collect": 1, "utd": 4, "batch_size": 256,
            "num_critics": 10, "critic_hidden_dims": [128, 128], "warmup_steps": 1000,
            "random_steps": 0, "actor_delay_updates": 0, "offline_ratio": 0.5,
            "target_entropy_per_dim": -0.5, "num_samples": 4, "beta": 0.3},
    "paper": {"num_envs": 1, "updates_per_collect": 1, "utd": 20, "batch_size": 256,
              "num_critics": 10, "critic_hidden_dims": [256, 256, 256], "warmup_steps": 5000,
              "random_steps": 0, "actor_delay_updates": 0, "offline_ratio": 0.5,
              "target_entropy_per_dim": -0.5, "num_samples": 8, "beta": 0.05},
}  # fmt: skip

REWARD = RewardConvention(scale=10.0, bias=-5.0, discount=0.99)
"""New critics: 10 r - 5 per env step, gamma 0.99 (as SAC here); an EXPO start keeps its own."""

# ---- settings -----------------------------------------------------------------------------


@dataclass
class EXPOConfig:
    """Hyperparameters of EXPO (``cpu()`` / ``paper()`` give the presets)."""

    num_base_samples: int = 4
    """N base samples per state (paper 8)."""
    num_edits: int = 4
    """Edited candidates (one per base sample; paper 8)."""
    beta: float = 0.05
    """Edit scale: candidate = clip(base + beta * tanh(u), -1, 1)."""
    utd: int = 4
    """Critic minibatches per update (paper 20)."""
    batch_size: int = 256
    """Rows per critic minibatch."""
    num_critics: int = 10
    """Critic ensemble size (LayerNorm)."""
    critic_hidden_dims: tuple[int, ...] = (128, 128)
    """Critic widths (paper 3x256)."""
    edit_hidden_dims: tuple[int, ...] = (128, 128)
    """Edit-policy widths."""
    target_subset: int = 2
    """Selection/TD score: min over this many random target critics."""
    tau: float = 0.005
    """Polyak rate."""
    discount: float = 0.99
    """Per-env-step discount (a chunk of k steps bootstraps with discount**k)."""
    lr: float = 3e-4
    """Adam rate of critic, edit policy and temperature."""
    base_lr: float = 1e-4
    """AdamW rate of the base policy's continued imitation."""
    target_entropy_per_dim: float = -0.5
    """Target entropy = this * |A| (of the flattened chunk). The edit's entropy per dim is at
    most log(2 beta) (uniform on [-beta, beta]): for beta < e^-0.5 / 2 ~ 0.30 the target is out
    of reach and the temperature only grows (1.0 -> 1.35 over 10k steps at beta 0.05 on point)."""
    offline_ratio: float = 0.5
    """Share of offline rows in critic and imitation batches."""
    reward_scale: float = 10.0
    """Critics learn on reward_scale * r + reward_bias ..."""
    reward_bias: float = -5.0
    """... per env step (SAC's convention in this project)."""
    next_base: Literal["cache", "fresh"] = "cache"
    """TD-target base samples at s': drawn when s' was acted on (cache) or redrawn (fresh)."""
    beta_mode: Literal["fixed", "adaptive"] = "fixed"
    """fixed: the authors' constant beta. adaptive: beta is a dual variable, tuned like SAC's
    temperature so the critics' disagreement on edited actions stays near ``beta_target`` times
    their disagreement on the batch's own (data) actions (see :func:`adaptive_beta_step`)."""
    beta_target: float = 1.5
    """adaptive: target ratio std_k Q_k(s, edited) / std_k Q_k(s, a_data) over the batch."""
    beta_lr: float = 3e-3
    """adaptive: step of log beta per edit step (times the ratio's gap to its target)."""
    beta_bounds: tuple[float, float] = (0.01, 1.0)
    """adaptive: beta stays in [lo, hi]."""

    def __post_init__(self) -> None:
        if self.num_edits != self.num_base_samples:
            raise ConfigError("EXPO edits each base sample once: num_edits == num_base_samples")
        if self.beta <= 0 or not 0 < self.discount < 1 or not 0 <= self.offline_ratio <= 1:
            raise ConfigError("beta > 0, discount in (0, 1) and offline_ratio in [0, 1] needed")
        if min(self.utd, self.batch_size, self.num_base_samples) < 1:
            raise ConfigError("utd, batch_size and num_base_samples must be >= 1")
        lo, hi = self.beta_bounds
        if self.beta_mode not in ("fixed", "adaptive"):
            raise ConfigError(f"beta_mode {self.beta_mode!r}: choose fixed or adaptive")
        if self.beta_mode == "adaptive" and not (0 < lo <= self.beta <= hi and self.beta_target > 0
                                                 and self.beta_lr > 0):  # fmt: skip
            raise ConfigError(
                f"adaptive beta needs 0 < lo <= beta <= hi (got {lo}, {self.beta}, {hi}), "
                "beta_target > 0 and beta_lr > 0"
            )

    @classmethod
    def cpu(cls) -> EXPOConfig:
        """Small settings for a 2-core machine."""
        return cls()

    @classmethod
    def paper(cls) -> EXPOConfig:
        """The authors' settings."""
        return replace(
            cls(),
            num_base_samples=8,
            num_edits=8,
            beta=0.05,
            utd=20,
            critic_hidden_dims=(256, 256, 256),
            edit_hidden_dims=(256, 256),
            next_base="fresh",
        )


# ---- losses -------------------------------------------------------------------------------


def td_target(
    reward: Tensor,
    not_done: Tensor,
    next_obs: Tensor,
    next_base: Tensor,
    edit: EditPolicy,
    target: CriticEnsemble,
    discount: float | Tensor,
    subset: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Chunk backup: reward (already the discounted k-step sum) + ``discount`` (gamma^k, per
    row or one number) * not_done * Q'(s', select(s'))."""
    with torch.no_grad():
        a_next = select(next_obs, next_base, edit, target, subset, generator)
        q = target.random_subset_min(next_obs, a_next, subset, generator=generator)
        return reward + discount * not_done * q


def adaptive_beta_step(
    log_beta: float, q_edit: Tensor, q_data: Tensor, target: float, lr: float,
    bounds: tuple[float, float],
) -> tuple[float, float]:  # fmt: skip
    """One dual step on log beta; returns (new log beta, ratio).

    ``q_edit`` and ``q_data`` [K, B] are every critic's value of the edited actions and of the
    batch's own actions at the same states. ratio = mean_b std_k q_edit / mean_b std_k q_data
    (population std over the K members). Like SAC's temperature against its entropy target,
    log beta <- clip(log beta - lr * (ratio - target), log lo, log hi): edits may grow while the
    ensemble agrees on them about as well as on the data, and shrink once they reach actions
    where it disagrees (the out-of-distribution actions a larger beta invites).
    """
    ratio = float(
        q_edit.std(0, correction=0).mean() / q_data.std(0, correction=0).mean().clamp_min(1e-8)
    )
    new = log_beta - lr * (ratio - target)
    return min(max(new, math.log(bounds[0])), math.log(bounds[1])), ratio


class EXPO:
    """Critic ensemble, target and edit policy with their optimizers (base policy apart)."""

    def __init__(
        self,
        critic: CriticEnsemble,
        target: CriticEnsemble,
        edit: EditPolicy,
        cfg: EXPOConfig,
        chunk: int = 1,
    ) -> None:
        self.cfg, self.critic, self.target, self.edit, self.chunk = cfg, critic, target, edit, chunk
        self.log_temperature = torch.zeros((), requires_grad=True)
        self.target_entropy = cfg.target_entropy_per_dim * edit.action_dim
        self.opt_critic = adam(critic.parameters(), lr=cfg.lr)
        self.opt_edit = adam(edit.parameters(), lr=cfg.lr)
        self.opt_temp = adam([self.log_temperature], lr=cfg.lr)
        self.beta_ratio = float("nan")
        """adaptive beta: the latest disagreement ratio (edited / data actions)."""

    def critic_step(
        self, obs: Tensor, action: Tensor, reward: Tensor, not_done: Tensor,
        next_obs: Tensor, next_base: Tensor, generator: torch.Generator | None = None,
        bootstrap: Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """One TD step on flattened chunks; ``reward`` is the raw discounted chunk return and
        ``bootstrap`` gamma^k per row (gamma^Ta for every row if None)."""
        cfg = self.cfg
        if bootstrap is None:
            bootstrap = torch.full_like(reward, cfg.discount**self.chunk)
        # The shift applies per env step: sum_j<k gamma^j (s r_j + b) = s R + b (1-g^k)/(1-g).
        bias = cfg.reward_bias * (1.0 - bootstrap) / (1.0 - cfg.discount)
        y = td_target(
            cfg.reward_scale * reward + bias, not_done, next_obs, next_base, self.edit,
            self.target, bootstrap, cfg.target_subset, generator,
        )  # fmt: skip
        loss = (self.critic(obs, action) - y).pow(2).mean(1).sum()
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        polyak_update(self.target, self.critic, cfg.tau)
        return loss.detach()

    def edit_step(self, obs: Tensor, action: Tensor) -> Tensor:
        """SAC step of the edit policy on (s, base action) against the ensemble mean."""
        edited, log_pi = self.edit(obs, action)
        self.critic.requires_grad_(False)
        q_all = self.critic(obs, edited)
        q = q_all.mean(0)
        self.critic.requires_grad_(True)
        temp = self.log_temperature.exp()
        loss = (temp.detach() * log_pi - q).mean()
        self.opt_edit.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_edit.step()
        t_loss = -(self.log_temperature * (log_pi.detach() + self.target_entropy)).mean()
        self.opt_temp.zero_grad(set_to_none=True)
        t_loss.backward()
        self.opt_temp.step()
        if self.cfg.beta_mode == "adaptive":
            with torch.no_grad():
                q_data = self.critic(obs, action)
            log_beta, self.beta_ratio = adaptive_beta_step(
                math.log(self.edit.beta), q_all.detach(), q_data, self.cfg.beta_target,
                self.cfg.beta_lr, self.cfg.beta_bounds,
            )  # fmt: skip
            self.edit.beta = math.exp(log_beta)
        return loss.detach()


# ---- replay of chunk transitions ----------------------------------------------------------

CHUNK_FIELDS = ("obs", "action", "reward", "not_done", "bootstrap", "next_obs", "base", "next_base")


class ChunkReplay:
    """Ring of chunk transitions: ``obs``/``next_obs`` [D] (normalized), ``action`` [Ta*A],
    ``reward`` (discounted k-step sum), ``not_done``, ``bootstrap`` (gamma^k), ``base`` /
    ``next_base`` [N, Ta*A] (base samples at s and s')."""

    def __init__(self, capacity: int, obs_dim: int, chunk_dim: int, num_samples: int,
                 device: torch.device | str = "cpu") -> None:  # fmt: skip
        shapes = {"obs": (obs_dim,), "next_obs": (obs_dim,), "action": (chunk_dim,),
                  "reward": (), "not_done": (), "bootstrap": (),
                  "base": (num_samples, chunk_dim), "next_base": (num_samples, chunk_dim)}  # fmt: skip
        self.data = {k: torch.zeros((capacity, *s), device=device) for k, s in shapes.items()}
        self.capacity, self.pos, self.size = capacity, 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, rows: dict[str, Tensor]) -> None:
        n = len(rows["reward"])
        idx = (self.pos + torch.arange(n)) % self.capacity
        for k in CHUNK_FIELDS:
            self.data[k][idx.to(self.data[k].device)] = rows[k].to(self.data[k].device)
        self.pos, self.size = (self.pos + n) % self.capacity, min(self.size + n, self.capacity)

    def sample(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        idx = torch.randint(self.size, (n,), generator=generator)
        return {k: v[idx.to(v.device)] for k, v in self.data.items()}


def offline_chunk_rows(
    data: OfflineDataset, policy: EXPOPolicy, discount: float, batch: int = 4096
) -> dict[str, Tensor]:
    """Every offline step as a chunk transition (actions padded with the episode's last one),
    with base samples at s drawn once; s' reuses the samples of step t+k (of the last step at
    an episode's end, where a terminal makes them unused)."""
    cfg = policy.config
    ta, to = cfg.n_action_steps, cfg.n_obs_steps
    t = torch.arange(data.num_transitions)
    first = data.episode_starts[data.episode_ids]
    last = first + data.episode_lengths[data.episode_ids] - 1
    idx = t[:, None] + torch.arange(ta)
    valid = (idx <= last[:, None]).float()
    idx = torch.minimum(idx, last[:, None])
    reward, not_done, bootstrap = chunk_returns(
        data.rewards[idx] * valid, data.terminals[idx] * valid, torch.maximum(
            data.dones[idx], 1 - valid), discount,
    )  # fmt: skip
    steps = torch.minimum(last - t + 1, torch.tensor(ta))
    hist_idx = torch.maximum(t[:, None] - (to - 1) + torch.arange(to), first[:, None])
    device = policy.device
    with torch.no_grad():
        obs = policy.flat_obs({k: v[t].to(device) for k, v in data.obs.items()})
        next_obs = policy.flat_obs(
            {k: v[t + steps - 1].to(device) for k, v in data.next_obs.items()}
        )
        base = torch.cat([
            policy.base_chunks(
                policy.flat_obs({k: v[hist_idx[i : i + batch]].to(device)
                                 for k, v in data.obs.items()}),
                cfg.num_samples,
            )
            for i in range(0, len(t), batch)
        ])  # fmt: skip
    next_idx = torch.minimum(t + steps, last)
    return {
        "obs": obs, "action": data.actions[idx].flatten(1).to(device),
        "reward": reward.to(device), "not_done": not_done.to(device),
        "bootstrap": bootstrap.to(device), "next_obs": next_obs,
        "base": base, "next_base": base[next_idx.to(device)],
    }  # fmt: skip


# ---- the agent the fine-tuning loop drives ------------------------------------------------


class EXPOAgent:
    """Acts with on-the-fly selection, turns env steps into chunk transitions and per-step
    episodes, and updates critics, edit policy and base policy.

    Per vector step the loop calls :meth:`act`, steps the env, then :meth:`observe`; once
    learning has started, :meth:`update` (one critic UTD round, one edit step, one imitation
    step). ``policy`` is what evaluation and deployment run.
    """

    def __init__(
        self,
        policy: EXPOPolicy,
        critic: CriticEnsemble,
        offline: OfflineDataset | None,
        cfg: EXPOConfig,
        num_envs: int,
        capacity: int,
        generator: torch.Generator,
        warmup_steps: int = 0,
    ) -> None:
        pc = policy.config
        self.cfg, self.policy, self.generator, self.num_envs = cfg, policy, generator, num_envs
        self.warmup_steps = warmup_steps
        self.reward = RewardConvention(cfg.reward_scale, cfg.reward_bias, cfg.discount)
        self.critic = critic
        self.core = EXPO(critic, policy.target, policy.edit, cfg, chunk=pc.n_action_steps)
        self.opt_base = torch.optim.AdamW(policy.denoiser.parameters(), lr=cfg.base_lr,
                                          weight_decay=1e-6)  # fmt: skip
        self.online = ChunkReplay(capacity // pc.n_action_steps + num_envs, pc.obs_dim,
                                  pc.chunk_dim, pc.num_samples, policy.device)  # fmt: skip
        self.offline = offline
        self.offline_rows = (
            None if offline is None else offline_chunk_rows(offline, policy, cfg.discount)
        )
        self.updates = 0
        self.imitation_steps = 0
        # Per env: the chunk being executed, and a finished chunk waiting for s' samples.
        n, dev = num_envs, policy.device
        self._start: dict[str, Tensor] = {
            "obs": torch.zeros(n, pc.obs_dim, device=dev),
            "action": torch.zeros(n, pc.chunk_dim, device=dev),
            "base": torch.zeros(n, pc.num_samples, pc.chunk_dim, device=dev),
        }
        self._ret = torch.zeros(n, device=dev)
        self._steps = torch.zeros(n, dtype=torch.long, device=dev)
        self._waiting: dict[str, Tensor] | None = None  # rows [n] awaiting next_base
        self._waiting_mask = torch.zeros(n, dtype=torch.bool, device=dev)
        # Per-step episodes for the base policy's imitation.
        # One record per vector step (all envs); env i's running episode starts at step
        # self._ep_start[i], counted from self._log_base (the first step still held).
        self._log: list[dict[str, Any]] = []
        self._log_base = 0
        self._ep_start = np.zeros(n, dtype=np.int64)
        self._episodes: list[dict[str, Any]] = []
        self._online_data: OfflineDataset | None = None
        self._acting: tuple[Tensor | None, ...] = (None, None, None)  # the policy's queues

    # -- acting ----------------------------------------------------------------------------

    def act(self, obs: dict[str, Tensor], env_steps: int) -> Tensor:
        """Actions [N, A]; during the warmup the base policy acts alone."""
        self.policy.selecting = env_steps >= self.warmup_steps
        obs = {k: v.to(self.policy.device) for k, v in obs.items()}
        self.policy.last_plan = None
        self.policy.set_acting_state(self._acting)
        actions = self.policy.act(obs)
        self._acting = self.policy.acting_state()
        plan = self.policy.last_plan
        if plan is not None:
            rows = self._replanned()
            if self._waiting is not None and self._waiting_mask[rows].any():
                done = rows[self._waiting_mask[rows]]
                self._waiting["next_base"][done] = plan["base"][self._waiting_mask[rows]]
                self._emit(self._waiting, done)
                self._waiting_mask[done] = False
            self._start["obs"][rows] = plan["obs"]
            self._start["action"][rows] = plan["chosen"]
            self._start["base"][rows] = plan["base"]
            self._ret[rows] = 0.0
            self._steps[rows] = 0
        return actions

    def _replanned(self) -> Tensor:
        # The policy replans exactly the envs whose queue index was reset to 0.
        return (self._acting[2] == 1).nonzero().flatten()

    def observe(
        self,
        obs: dict[str, Tensor],
        action: Tensor,
        reward: Tensor,
        terminated: Tensor,
        truncated: Tensor,
        next_obs: dict[str, Tensor],
        final_obs: dict[str, Tensor] | None = None,
    ) -> None:
        """Account one env step of every env (``next_obs`` after autoreset; ``final_obs`` the
        true last observation of envs that finished, as in ``info["final_obs"]``)."""
        cfg, pc, dev = self.cfg, self.policy.config, self.policy.device
        reward, terminated, truncated = (x.to(dev) for x in (reward, terminated, truncated))
        done = terminated | truncated
        # info["final_obs"]: the true next observation of every env (before any autoreset).
        true_next = final_obs if final_obs is not None else next_obs
        self._ret += cfg.discount ** self._steps.float() * reward.float()
        self._steps += 1
        self._log_steps(obs, action, reward, terminated, true_next, done)
        full = (self._steps >= pc.n_action_steps) & ~done
        ended = done | full
        if ended.any():
            rows = ended.nonzero().flatten()
            flat_next = self.policy.flat_obs({k: v[rows].to(dev) for k, v in true_next.items()})
            new = {
                "obs": self._start["obs"][rows], "action": self._start["action"][rows],
                "base": self._start["base"][rows], "reward": self._ret[rows],
                "not_done": (~terminated[rows]).float(),
                "bootstrap": cfg.discount ** self._steps[rows].float(),
                "next_obs": flat_next, "next_base": self._start["base"][rows],
            }  # fmt: skip
            term = terminated[rows]
            trunc = truncated[rows] & ~term
            if trunc.any():  # bootstrap from the final observation: sample there now
                hist = self._acting[0][rows[trunc]]
                hist = torch.cat([hist[:, 1:], flat_next[trunc].unsqueeze(1)], 1)
                with torch.no_grad():
                    new["next_base"][trunc] = self.policy.base_chunks(
                        hist, pc.num_samples, self.generator if dev.type == "cpu" else None
                    )
            finished = done[rows]
            if finished.any():
                self.online.add({k: v[finished] for k, v in new.items()})
            cont = ~finished
            if cont.any():
                if self._waiting is None:
                    self._waiting = {k: torch.zeros((self.num_envs, *v.shape[1:]), device=dev)
                                     for k, v in new.items()}  # fmt: skip
                for k, v in new.items():
                    self._waiting[k][rows[cont]] = v[cont]
                self._waiting_mask[rows[cont]] = True
        if done.any():
            self.policy.set_acting_state(self._acting)
            self.policy.reset(done.nonzero().flatten())
            self._acting = self.policy.acting_state()

    def _emit(self, rows: dict[str, Tensor], idx: Tensor) -> None:
        self.online.add({k: v[idx] for k, v in rows.items()})

    def _log_steps(self, obs, action, reward, terminated, next_obs, done) -> None:  # noqa: ANN001
        """Keep this vector step (one host copy for all envs); finished envs' episodes become
        per-step arrays for the base policy's imitation."""
        self._log.append({
            "obs": {k: v.detach().cpu().numpy() for k, v in obs.items()},
            "next_obs": {k: v.detach().cpu().numpy() for k, v in next_obs.items()},
            "actions": action.detach().cpu().numpy(),
            "rewards": reward.detach().cpu().numpy().astype(np.float32),
            "dones": terminated.detach().cpu().numpy().astype(np.float32),
        })  # fmt: skip
        now = self._log_base + len(self._log) - 1
        finished = done.nonzero().flatten().tolist()
        for i in finished:
            steps = self._log[self._ep_start[i] - self._log_base :]
            self._episodes.append({
                **{part: {k: np.stack([s[part][k][i] for s in steps]) for k in steps[0][part]}
                   for part in ("obs", "next_obs")},
                **{name: np.stack([s[name][i] for s in steps])
                   for name in ("actions", "rewards", "dones")},
            })  # fmt: skip
            self._ep_start[i] = now + 1
        if finished:
            self._online_data = None
            drop = int(self._ep_start.min()) - self._log_base
            del self._log[:drop]
            self._log_base += drop

    # -- updates ---------------------------------------------------------------------------

    def learning(self, env_steps: int) -> bool:
        """After the warmup, once an online chunk is stored."""
        return env_steps > self.warmup_steps and len(self.online) > 0

    def _critic_batch(self, n: int) -> dict[str, Tensor]:
        n_off = round(n * self.cfg.offline_ratio) if self.offline_rows is not None else 0
        parts = []
        if n_off:
            idx = torch.randint(
                len(self.offline_rows["reward"]), (n_off,), generator=self.generator
            )
            parts.append({k: v[idx.to(v.device)] for k, v in self.offline_rows.items()})
        parts.append(self.online.sample(n - n_off, self.generator))
        return {k: torch.cat([p[k] for p in parts]) for k in CHUNK_FIELDS}

    def update(self, index: int = 0) -> dict[str, float]:
        """``utd`` critic steps, one edit step and one imitation step of the base policy."""
        cfg = self.cfg
        batch = self._critic_batch(cfg.utd * cfg.batch_size)
        if cfg.next_base == "fresh":
            batch["next_base"] = self._fresh_next_base(batch)
        losses = []
        for i in range(cfg.utd):
            rows = slice(i * cfg.batch_size, (i + 1) * cfg.batch_size)
            losses.append(self.core.critic_step(
                batch["obs"][rows], batch["action"][rows], batch["reward"][rows],
                batch["not_done"][rows], batch["next_obs"][rows], batch["next_base"][rows],
                self.generator, batch["bootstrap"][rows],
            ))  # fmt: skip
        # The edit policy trains on (s, a) of the replay batch, as the authors do.
        last = slice((cfg.utd - 1) * cfg.batch_size, cfg.utd * cfg.batch_size)
        edit_loss = self.core.edit_step(batch["obs"][last], batch["action"][last])
        imitation = self._imitation_step()
        self.updates += 1
        metrics = {
            "train/critic_loss": float(torch.stack(losses).mean()),
            "train/edit_loss": float(edit_loss),
            "train/temperature": float(self.core.log_temperature.detach().exp()),
            "train/base_loss": imitation,
        }
        if cfg.beta_mode == "adaptive":
            # The policy directory records the current beta, so eval acts with it.
            self.policy.config.beta = self.policy.edit.beta
            metrics.update({"train/beta": self.policy.edit.beta,
                            "train/beta_ratio": self.core.beta_ratio})  # fmt: skip
        return metrics

    # -- saving and resuming ---------------------------------------------------------------

    def extras(self) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]]]:
        """The policy directory holds the target critics itself; add the convention."""
        return {"reward": self.reward.to_json()}, {}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        core = self.core
        return {"critic": core.opt_critic, "edit": core.opt_edit, "temperature": core.opt_temp,
                "base": self.opt_base}  # fmt: skip

    def state_dict(self) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
        learner = {f"policy.{k}": v for k, v in self.policy.state_dict().items()}
        learner.update({f"critic.{k}": v for k, v in self.critic.state_dict().items()})
        learner["log_temperature"] = self.core.log_temperature.detach().clone()
        learner["beta"] = torch.tensor([self.policy.edit.beta], dtype=torch.float64)
        groups = {}
        for name, opt in self._optimizers().items():
            tensors, groups[name] = optimizer_tensors(name, opt)
            learner.update(tensors)
        replay = {k: v[: self.online.size].contiguous() for k, v in self.online.data.items()}
        replay["pos_size"] = torch.tensor([self.online.pos, self.online.size])
        files = {"learner": learner, "replay": replay,
                 "offline_rows": dict(self.offline_rows or {}), "episodes": _pack(self._episodes)}  # fmt: skip
        meta = {"optimizers": groups, "updates": self.updates,
                "imitation_steps": self.imitation_steps}  # fmt: skip
        return files, meta

    def load_state_dict(self, files: dict[str, dict[str, Tensor]], meta: dict[str, Any]) -> None:
        learner = files["learner"]
        try:
            self.policy.load_state_dict(strip_prefix(learner, "policy."))
            self.critic.load_state_dict(strip_prefix(learner, "critic."))
            with torch.no_grad():
                self.core.log_temperature.copy_(learner["log_temperature"])
            if "beta" in learner:  # adaptive beta moves; fixed beta stores its constant
                self.policy.edit.beta = self.policy.config.beta = float(learner["beta"])
            for name, opt in self._optimizers().items():
                load_optimizer(name, opt, learner, meta["optimizers"][name])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"EXPO learner state does not match this configuration: {e}"
            ) from e
        pos, size = (int(x) for x in files["replay"]["pos_size"])
        for k, v in self.online.data.items():
            v[:size] = files["replay"][k].to(v.device)
        self.online.pos, self.online.size = pos % self.online.capacity, size
        if files.get("offline_rows"):
            self.offline_rows = {
                k: v.to(self.policy.device) for k, v in files["offline_rows"].items()
            }
        self._episodes = _unpack(files.get("episodes", {}))
        self._online_data = None
        self.updates, self.imitation_steps = int(meta["updates"]), int(meta["imitation_steps"])

    def _fresh_next_base(self, batch: dict[str, Tensor]) -> Tensor:
        # s' histories are not kept per row: condition on s' repeated (an episode-start history).
        pc = self.policy.config
        hist = batch["next_obs"].unsqueeze(1).expand(-1, pc.n_obs_steps, -1)
        with torch.no_grad():
            return self.policy.base_chunks(hist, pc.num_samples)

    def _imitation_step(self) -> float:
        pc, cfg = self.policy.config, self.cfg
        if self._online_data is None and self._episodes:
            self._online_data = OfflineDataset.from_episodes(self._episodes).to(self.policy.device)
        sources = [d for d in (self.offline, self._online_data) if d is not None]
        if not sources:
            return 0.0
        half = cfg.batch_size // len(sources)
        parts = [d.sample_sequences(half, n_obs_steps=pc.n_obs_steps, horizon=pc.horizon,
                                    generator=self.generator, device=self.policy.device)
                 for d in sources]  # fmt: skip
        batch = {
            "obs": {k: torch.cat([p["obs"][k] for p in parts]) for k in parts[0]["obs"]},
            "actions": torch.cat([p["actions"] for p in parts]),
        }
        loss = self.policy.loss(batch, self.generator if self.policy.device.type == "cpu" else None)
        self.opt_base.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_base.step()
        self.imitation_steps += 1
        # Continue the offline run's EMA (decay ~0.999), not restart it from a copy.
        self.policy.ema_update(10_000 + self.imitation_steps)
        return float(loss.detach())


def _pack(episodes: list[dict[str, Any]]) -> dict[str, Tensor]:
    """Episodes (numpy) as flat tensors: concatenated fields plus their lengths."""
    if not episodes:
        return {}
    out = {"lengths": torch.tensor([len(ep["actions"]) for ep in episodes])}
    for part in ("obs", "next_obs"):
        for k in episodes[0][part]:
            out[f"{part}.{k}"] = torch.from_numpy(np.concatenate([ep[part][k] for ep in episodes]))
    for name in ("actions", "rewards", "dones"):
        out[name] = torch.from_numpy(np.concatenate([ep[name] for ep in episodes]))
    return out


def _unpack(packed: dict[str, Tensor]) -> list[dict[str, Any]]:
    if not packed:
        return []
    bounds = np.cumsum([0, *packed["lengths"].tolist()])
    keys = {part: [k.split(".", 1)[1] for k in packed if k.startswith(part + ".")]
            for part in ("obs", "next_obs")}  # fmt: skip
    return [
        {**{part: {k: packed[f"{part}.{k}"][a:b].numpy() for k in keys[part]}
            for part in ("obs", "next_obs")},
         **{name: packed[name][a:b].numpy() for name in ("actions", "rewards", "dones")}}
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]  # fmt: skip


# ---- building from the run settings -------------------------------------------------------


def build(cfg: OnlineConfig, env: Any, generator: torch.Generator) -> EXPOAgent:
    """From a diffusion policy (new critics and edit policy) or an earlier EXPO run's
    ``policy/`` (its edit policy, its target critics as the critics, its reward convention)."""
    if cfg.init is None:
        raise ConfigError(
            "expo needs --init: a diffusion policy (robot-rl train diffusion) or an expo run's policy/"
        )
    start = load_policy(cfg.init, device=cfg.device)
    init_cfg = read_config(cfg.init)
    if start.env_info.get("env_name") != cfg.task:
        raise ConfigError(
            f"start policy was trained for env {start.env_info.get('env_name')!r}, not {cfg.task!r}"
        )
    if not isinstance(start, DiffusionPolicy):
        raise ConfigError(
            f"{cfg.init}: expo fine-tunes a diffusion policy, got {start.policy_type!r}"
        )
    data_path = cfg.dataset
    if data_path is None:
        data_path = init_cfg.get("train", {}).get("dataset") or init_cfg.get("finetune", {}).get(
            "dataset"
        )
    if cfg.offline_ratio > 0 and data_path is None:
        raise ConfigError(f"expo: offline_ratio {cfg.offline_ratio} needs --dataset")
    offline = None
    if data_path is not None:
        offline, _ = load_task_dataset(Path(data_path), obs_keys=start.obs_keys)
        offline = offline.to(cfg.device)
    reward = REWARD
    if isinstance(start, EXPOPolicy):
        policy = start
        critic = CriticEnsemble(policy.target.config).to(cfg.device)
        critic.load_state_dict(policy.target.state_dict())
        reward = saved_reward_convention(init_cfg) or REWARD
    else:
        chunk_dim = start.config.n_action_steps * start.config.action_dim
        critic = CriticEnsemble(CriticConfig(
            start.config.obs_dim, chunk_dim, num_critics=cfg.num_critics,
            hidden_dims=list(cfg.critic_hidden_dims),
        )).to(cfg.device)  # fmt: skip
        policy = EXPOPolicy.from_diffusion(
            start, critic, num_samples=cfg.num_samples, beta=cfg.beta,
            edit_hidden_dims=[256, 256] if cfg.scale == "paper" else [128, 128],
        )  # fmt: skip
    settings = EXPOConfig(
        num_base_samples=policy.config.num_samples, num_edits=policy.config.num_samples,
        beta=policy.config.beta, utd=cfg.utd, batch_size=cfg.batch_size,
        num_critics=critic.num_critics, critic_hidden_dims=tuple(critic.config.hidden_dims),
        target_entropy_per_dim=cfg.target_entropy_per_dim, offline_ratio=cfg.offline_ratio,
        reward_scale=reward.scale if cfg.reward_scale is None else cfg.reward_scale,
        reward_bias=reward.bias if cfg.reward_bias is None else cfg.reward_bias,
        discount=reward.discount if cfg.discount is None else cfg.discount,
        next_base="fresh" if cfg.scale == "paper" else "cache",
        beta_mode=getattr(cfg, "beta_mode", None) or "fixed",
    )  # fmt: skip
    agent = EXPOAgent(policy.train(), critic, offline if settings.offline_ratio > 0 else None,
                      settings, cfg.num_envs, cfg.env_steps + cfg.num_envs, generator,
                      warmup_steps=cfg.warmup_steps)  # fmt: skip
    if cfg.init_temperature is not None:
        with torch.no_grad():
            agent.core.log_temperature.fill_(math.log(cfg.init_temperature))
    return agent


__all__ = [
    "DESCRIPTION",
    "PRESETS",
    "REWARD",
    "build",
    "CHUNK_FIELDS",
    "EXPO",
    "ChunkReplay",
    "EXPOAgent",
    "EXPOConfig",
    "EditPolicy",
    "adaptive_beta_step",
    "offline_chunk_rows",
    "select",
    "td_target",
]

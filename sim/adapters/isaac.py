"""Isaac Lab and Isaac Gym environments as ``VecEnv``s.

Neither package installs from PyPI on a machine without an NVIDIA driver, so the builders import
them only when called and fail with one line naming what to install; the translation below is
what is unit-tested here, on stand-in envs with the same interface
(``tests/sim/test_isaac_adapters.py``).

Isaac Lab (``ManagerBasedRLEnv`` / ``DirectRLEnv``, gymnasium ids from ``isaaclab_tasks``)
    ``step`` returns ``(obs, reward, terminated, time_outs, extras)`` with ``obs`` a dict of
    observation groups (``"policy"``, optionally ``"critic"``, each a tensor or a dict of term
    tensors), and resets finished envs *inside* ``step`` before computing observations: the
    terminal observation is never returned. The adapter therefore takes time limits into its own
    hands: it disables the env's time-out (``cfg.episode_length_s``), counts steps, and at its
    horizon reads the true last observation and then resets those envs with
    ``env.reset(env_ids=...)``, so a truncated transition (which bootstraps) stores the right
    next observation. For envs the task itself terminates, the row of ``final_obs`` is the
    first observation of the next episode (Isaac Lab does not keep the terminal one); TD targets
    never bootstrap from a terminal transition, so learning is unaffected, but know it if you
    record those rows.

Isaac Gym (``VecTask`` from IsaacGymEnvs)
    ``step`` returns ``(obs_dict, reward, reset_buf, extras)`` with ``obs_dict["obs"]`` (and
    ``"states"`` for asymmetric critics) and ``extras["time_outs"]``. Most tasks defer the reset
    of finished envs to the start of the next ``step`` (``pre_physics_step``), so the returned
    observation of a finished env *is* its terminal one. The adapter splits ``reset_buf`` into
    terminated (= done and not a time-out) and truncated (= time-out), keeps the returned
    observation as ``final_obs``, then calls ``reset_idx(done_ids)`` and
    ``compute_observations()`` right away so the returned ``obs`` starts the new episode, as the
    ``VecEnv`` contract asks (``reset_idx`` clears ``reset_buf`` by VecTask convention, so the
    task does not reset those envs twice).

Both: observation groups become flat ``Dict`` entries (``"policy"``, or ``"policy/<term>"`` for
an unconcatenated group), actions in [-1, 1] are mapped affinely to the env's finite action
bounds (Isaac Lab's are unbounded, so actions pass through times ``action_scale``), and success
comes from ``success_fn(final_obs, reward, extras)`` or ``extras["is_success"|"success"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from sim.errors import EnvContractError, EnvSpecError
from sim.vec_env import Obs, StepResult, VecEnv

SuccessFn = Callable[[Obs, torch.Tensor, dict[str, Any]], torch.Tensor]


def _flatten_groups(obs: dict[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in obs.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten_groups(value, f"{name}/"))
        else:
            out[name] = value
    return out


def _success(
    fn: SuccessFn | None, final_obs: Obs, reward: torch.Tensor, extras: dict[str, Any], n: int
) -> torch.Tensor:
    if fn is not None:
        flag = fn(final_obs, reward, extras)
    else:
        flag = next((extras[k] for k in ("is_success", "success") if k in extras), None)
    if flag is None:
        return torch.zeros(n, dtype=torch.bool, device=reward.device)
    return torch.as_tensor(flag, device=reward.device).reshape(n).bool()


class _IsaacBase(VecEnv):
    """Shared translation: observation groups, action mapping, float32 on one device."""

    def _setup_spaces(self, sample: dict[str, torch.Tensor], action_space: gym.spaces.Box) -> None:
        self.observation_space = gym.spaces.Dict(
            {
                k: gym.spaces.Box(-np.inf, np.inf, tuple(v.shape[1:]), np.float32)
                for k, v in sample.items()
            }
        )
        if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
            raise EnvContractError(f"{self.name}: action space {action_space} is not a 1-D Box")
        self.action_space = gym.spaces.Box(-1.0, 1.0, action_space.shape, np.float32)
        low = torch.as_tensor(np.asarray(action_space.low, dtype=np.float64))
        high = torch.as_tensor(np.asarray(action_space.high, dtype=np.float64))
        self._bounded = bool(torch.isfinite(low).all() and torch.isfinite(high).all())
        self._act_low = low.float().to(self.device)
        self._act_high = high.float().to(self.device)

    def _obs(self, raw: dict[str, Any]) -> Obs:
        flat = _flatten_groups(raw)
        return {k: flat[k].to(self.device, torch.float32).clone() for k in self.observation_space}

    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] actions -> the wrapped env's action (bounds, or ``action_scale``)."""
        a = torch.as_tensor(action, device=self.device, dtype=torch.float32).clamp(-1.0, 1.0)
        if self._bounded:
            return self._act_low + (a + 1.0) * 0.5 * (self._act_high - self._act_low)
        return a * self.action_scale

    def _check_action(self, action: torch.Tensor) -> None:
        if tuple(action.shape) != (self.num_envs, self.action_dim):
            raise EnvContractError(
                f"{self.name}: action shape {tuple(action.shape)} != "
                f"({self.num_envs}, {self.action_dim})"
            )


class IsaacLabVecEnv(_IsaacBase):
    """An Isaac Lab ``ManagerBasedRLEnv`` / ``DirectRLEnv`` (or a gymnasium wrapper of one).

    ``horizon``: steps per episode (default: the env's own ``max_episode_length``, which this
    adapter then enforces itself; see the module docstring). ``obs_groups``: groups to expose
    (default all). ``action_scale`` multiplies [-1, 1] actions for unbounded action spaces.
    """

    def __init__(
        self,
        env: Any,
        *,
        horizon: int | None = None,
        obs_groups: list[str] | None = None,
        action_scale: float = 1.0,
        success_fn: SuccessFn | None = None,
        name: str | None = None,
    ) -> None:
        self.env = env
        self.unwrapped = getattr(env, "unwrapped", env)
        u = self.unwrapped
        self.num_envs = int(u.num_envs)
        self.device = torch.device(u.device)
        self.name = (
            name or f"isaaclab:{getattr(getattr(env, 'spec', None), 'id', type(u).__name__)}"
        )
        self.action_scale = float(action_scale)
        self.success_fn = success_fn
        own = int(u.max_episode_length)
        self.horizon = int(horizon) if horizon is not None else own
        if self.horizon < 1:
            raise EnvContractError(f"{self.name}: horizon must be >= 1, got {self.horizon}")
        # Disable the env's own time-out: the adapter truncates, so it sees the last observation.
        u.cfg.episode_length_s = 1e9
        self._t = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        raw, _ = env.reset()
        flat = _flatten_groups(raw)
        groups = obs_groups or sorted(flat)
        missing = [g for g in groups if g not in flat]
        if missing:
            raise EnvContractError(
                f"{self.name}: no observation group {missing}; has {sorted(flat)}"
            )
        self._setup_spaces({g: flat[g] for g in groups}, u.single_action_space)

    def reset(self, seed: int | None = None) -> Obs:
        raw, _ = self.env.reset(seed=seed)
        self._t.zero_()
        return self._obs(raw)

    def step(self, action: torch.Tensor) -> StepResult:
        self._check_action(action)
        raw, reward, terminated, time_outs, extras = self.env.step(self.env_action(action))
        obs = self._obs(raw)
        reward = torch.as_tensor(reward, device=self.device).float().reshape(self.num_envs)
        terminated = torch.as_tensor(terminated, device=self.device).bool().reshape(self.num_envs)
        # The env's own time-outs are disabled; a task's own truncation still counts as one.
        env_trunc = torch.as_tensor(time_outs, device=self.device).bool().reshape(self.num_envs)
        self._t += 1
        self._t[terminated | env_trunc] = 0  # reset inside the env's step already
        ours = (self._t >= self.horizon) & ~terminated
        truncated = (env_trunc | ours) & ~terminated
        final_obs = obs
        if ours.any():  # one host sync per step: which envs hit the horizon
            ids = ours.nonzero().squeeze(1)
            final_obs = {k: v.clone() for k, v in obs.items()}
            raw, _ = self.unwrapped.reset(env_ids=ids)
            fresh = self._obs(raw)
            rows = ours.view(-1, 1)
            obs = {k: torch.where(rows, fresh[k], v) for k, v in obs.items()}
            self._t[ids] = 0
        success = _success(self.success_fn, final_obs, reward, extras, self.num_envs)
        info = {"final_obs": final_obs, "success": success}
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.env.close()


class IsaacGymVecEnv(_IsaacBase):
    """An Isaac Gym ``VecTask`` (IsaacGymEnvs) with the deferred-reset convention."""

    def __init__(
        self,
        task: Any,
        *,
        obs_keys: tuple[str, ...] = ("obs",),
        success_fn: SuccessFn | None = None,
        name: str | None = None,
    ) -> None:
        self.task = task
        self.num_envs = int(task.num_envs)
        self.device = torch.device(getattr(task, "rl_device", task.device))
        self.name = name or f"isaacgym:{type(task).__name__}"
        self.horizon = int(task.max_episode_length)
        self.action_scale = 1.0
        self.success_fn = success_fn
        self.obs_keys = obs_keys
        raw = task.reset()
        missing = [k for k in obs_keys if k not in raw]
        if missing:
            raise EnvContractError(f"{self.name}: obs_dict has no {missing}; has {sorted(raw)}")
        self._setup_spaces({k: raw[k] for k in obs_keys}, task.action_space)

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            torch.manual_seed(seed)  # VecTask tasks draw resets from torch's global RNG
        ids = torch.arange(self.num_envs, device=self.task.device)
        self.task.reset_idx(ids)
        self.task.compute_observations()
        return self._obs(self.task.reset())

    def step(self, action: torch.Tensor) -> StepResult:
        self._check_action(action)
        raw, reward, reset_buf, extras = self.task.step(self.env_action(action))
        n = self.num_envs
        final_obs = self._obs(raw)
        reward = torch.as_tensor(reward, device=self.device).float().reshape(n)
        done = torch.as_tensor(reset_buf, device=self.device).reshape(n) != 0
        time_outs = (
            torch.as_tensor(
                extras.get("time_outs", torch.zeros(n, dtype=torch.bool)), device=self.device
            )
            .reshape(n)
            .bool()
        )
        truncated = done & time_outs
        terminated = done & ~time_outs
        obs = final_obs
        if done.any():  # start the new episodes now (the task would at its next step)
            ids = done.nonzero().squeeze(1).to(self.task.device)
            self.task.reset_idx(ids)
            self.task.compute_observations()
            fresh = self._obs(self.task.reset())
            rows = done.view(-1, 1)
            obs = {k: torch.where(rows, fresh[k], v) for k, v in final_obs.items()}
        success = _success(self.success_fn, final_obs, reward, extras, n)
        return obs, reward, terminated, truncated, {"final_obs": final_obs, "success": success}


# ---- builders (import Isaac only here) -------------------------------------------------------


def make_isaaclab(
    task_id: str, num_envs: int = 1, seed: int | None = None, device: str = "cuda:0", **kw: Any
) -> IsaacLabVecEnv:
    """Launch Isaac Sim headless, build the Isaac Lab task ``task_id`` and adapt it."""
    try:
        from isaaclab.app import AppLauncher
    except ImportError as e:
        raise EnvSpecError(
            f"isaaclab:{task_id} needs Isaac Lab (Isaac Sim + the isaaclab and isaaclab_tasks "
            f"packages; see isaac-sim.github.io/IsaacLab installation); import failed: {e}"
        ) from e
    AppLauncher(headless=True, device=device)
    import isaaclab_tasks  # noqa: F401 - registers the gymnasium ids
    from isaaclab_tasks.utils import parse_env_cfg

    cfg = parse_env_cfg(task_id, device=device, num_envs=num_envs)
    if seed is not None:
        cfg.seed = seed
    return IsaacLabVecEnv(gym.make(task_id, cfg=cfg), name=f"isaaclab:{task_id}", **kw)


def make_isaacgym(
    task: str, num_envs: int = 1, seed: int | None = None, device: str = "cuda:0", **kw: Any
) -> IsaacGymVecEnv:
    """Build the IsaacGymEnvs task ``task`` headless and adapt it."""
    try:
        import isaacgym  # noqa: F401 - must be imported before torch-using isaacgymenvs code
        import isaacgymenvs
    except ImportError as e:
        raise EnvSpecError(
            f"isaacgym:{task} needs Isaac Gym Preview 4 (isaacgym, from NVIDIA) and "
            f"isaacgymenvs; import failed: {e}"
        ) from e
    env = isaacgymenvs.make(
        seed=0 if seed is None else seed,
        task=task,
        num_envs=num_envs,
        sim_device=device,
        rl_device=device,
        graphics_device_id=-1,
        headless=True,
    )
    return IsaacGymVecEnv(env, name=f"isaacgym:{task}", **kw)


__all__ = ["IsaacGymVecEnv", "IsaacLabVecEnv", "make_isaacgym", "make_isaaclab"]

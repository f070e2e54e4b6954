"""Any gymnasium env id, env or vector env as a ``VecEnv``.

- ``Box`` observations become one named key (``obs_key``, default ``"state"``); ``Dict``
  observations of ``Box`` entries pass through; everything is float32 on ``device``.
- Actions in [-1, 1] are rescaled affinely to the env's ``Box`` bounds (which must be finite).
- ``info["success"]`` comes from ``success_fn(final_obs, reward, info)`` when given, else from
  the step's ``info["is_success"]`` or ``info["success"]``, else all False.
- Auto-reset: ids are built as ``SyncVectorEnv`` with ``autoreset_mode=DISABLED`` and finished
  envs are reset here, in the same step, through ``reset(options={"reset_mask": done})``; so
  ``info["final_obs"]`` is the true last observation and success is read from the finishing
  step's own info. A handed-in vector env may use ``DISABLED`` or ``SAME_STEP``
  (gymnasium's default ``NEXT_STEP`` returns a dummy transition after every episode end and is
  refused).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from sim.errors import EnvContractError, EnvSpecError
from sim.importing import import_module_here
from sim.vec_env import Obs, StepResult, VecEnv

SuccessFn = Callable[[Obs, torch.Tensor, dict[str, Any]], torch.Tensor]
"""``(final_obs, reward, info) -> success [N] bool``, on the adapter's tensors."""


def reacher_success(obs: Obs, reward: torch.Tensor, info: dict[str, Any]) -> torch.Tensor:
    """``Reacher-v5``: fingertip within 2 cm of the target (observation entries 8:10)."""
    return torch.linalg.norm(obs["state"][:, 8:10], dim=1) < 0.02


def _callable_spec(fn: SuccessFn | str) -> str | None:
    """``"module:function"`` that imports ``fn`` again, or None (a lambda, a closure, __main__)."""
    if isinstance(fn, str):
        return fn
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or not name or "<" in name or "." in name:
        return None
    try:
        same = getattr(importlib.import_module(module), name) is fn
    except (ImportError, AttributeError):
        return None
    return f"{module}:{name}" if same else None


def _resolve_success_fn(fn: SuccessFn | str | None) -> SuccessFn | None:
    if fn is None or callable(fn):
        return fn
    module, _, attr = str(fn).partition(":")
    try:
        resolved = getattr(import_module_here(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise EnvSpecError(f"success_fn {fn!r}: cannot import ({e})") from e
    if not callable(resolved):
        raise EnvSpecError(f"success_fn {fn!r} is not callable")
    return resolved


def _float_box(box: gym.spaces.Space, what: str) -> gym.spaces.Box:
    if not isinstance(box, gym.spaces.Box):
        raise EnvContractError(f"{what} is {type(box).__name__}; only Box (or Dict of Box) fits")
    return gym.spaces.Box(box.low.astype(np.float32), box.high.astype(np.float32), box.shape,
                          np.float32)  # fmt: skip


class GymnasiumVecEnv(VecEnv):
    """A gymnasium env as a ``VecEnv`` (see the module docstring).

    Args:
        env: a gymnasium id (``"Pendulum-v1"``), a ``gym.Env`` (num_envs 1) or a
            ``gym.vector.VectorEnv``.
        num_envs: envs to build from an id.
        seed: seed of the first reset.
        device: where tensors live.
        obs_key: the observation key of a ``Box`` observation.
        success_fn: a callable or ``"module:function"`` string.
        **make_kwargs: passed to ``gym.make_vec`` (ids only), e.g. ``max_episode_steps``.
    """

    def __init__(
        self,
        env: str | gym.Env | gym.vector.VectorEnv,
        num_envs: int = 1,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        obs_key: str = "state",
        success_fn: SuccessFn | str | None = None,
        **make_kwargs: Any,
    ) -> None:
        if isinstance(env, str):
            try:
                vec = gym.make_vec(
                    env,
                    num_envs=num_envs,
                    vectorization_mode="sync",
                    vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
                    **make_kwargs,
                )
            except gym.error.Error as e:
                raise EnvSpecError(f"gymnasium id {env!r}: {e}") from e
            except TypeError as e:
                raise EnvSpecError(f"gymnasium id {env!r}: bad keyword arguments ({e})") from e
            self.name = f"gym:{env}"
            spec = gym.spec(env)
            steps = make_kwargs.get("max_episode_steps", spec.max_episode_steps)
            self.horizon = int(steps) if steps is not None else None
            self.env_kwargs: dict[str, Any] = {"obs_key": obs_key, **make_kwargs}
            if success_fn is not None:
                fn_spec = _callable_spec(success_fn)
                if fn_spec is None:
                    # Not rebuildable from a name: whoever built this env must rebuild it.
                    self.env_kwargs = {}
                else:
                    self.env_kwargs["success_fn"] = fn_spec
        else:
            if isinstance(env, gym.Env):
                single = env
                vec = gym.vector.SyncVectorEnv([lambda: single],
                                               autoreset_mode=AutoresetMode.DISABLED)  # fmt: skip
            elif isinstance(env, gym.vector.VectorEnv):
                vec = env
            else:
                raise EnvContractError(
                    f"expected a gymnasium id, Env or VectorEnv, got {type(env).__name__}"
                )
            spec = getattr(env, "spec", None)
            self.name = f"gym:{spec.id}" if spec is not None else type(env).__name__
            steps = getattr(spec, "max_episode_steps", None)
            self.horizon = int(steps) if steps is not None else None
            self.env_kwargs = {"obs_key": obs_key}
        mode = vec.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode not in (AutoresetMode.DISABLED, AutoresetMode.SAME_STEP):
            raise EnvContractError(
                f"{self.name}: vector env autoreset_mode {mode}; build it with "
                "autoreset_mode=AutoresetMode.SAME_STEP or DISABLED"
            )
        self.vec = vec
        self.autoreset_mode = mode
        self.num_envs = vec.num_envs
        self.device = torch.device(device)
        self.obs_key = obs_key
        self.success_fn = _resolve_success_fn(success_fn)

        obs_space = vec.single_observation_space
        if isinstance(obs_space, gym.spaces.Dict):
            self._dict_obs = True
            spaces = {k: _float_box(s, f"{self.name}: observation {k!r}")
                      for k, s in obs_space.spaces.items()}  # fmt: skip
        else:
            self._dict_obs = False
            spaces = {obs_key: _float_box(obs_space, f"{self.name}: observation space")}
        self.observation_space = gym.spaces.Dict(spaces)
        act = vec.single_action_space
        if not isinstance(act, gym.spaces.Box) or len(act.shape) != 1:
            raise EnvContractError(f"{self.name}: action space {act} is not a 1-D Box")
        if not (np.isfinite(act.low).all() and np.isfinite(act.high).all()):
            raise EnvContractError(f"{self.name}: action bounds must be finite to rescale")
        self._act_low = torch.as_tensor(act.low, dtype=torch.float64)
        self._act_high = torch.as_tensor(act.high, dtype=torch.float64)
        self._act_dtype = act.dtype
        self.action_space = gym.spaces.Box(-1.0, 1.0, act.shape, np.float32)
        self._seed = seed
        self._needs_seed = seed is not None

    # ---- conversion --------------------------------------------------------------------------

    def _obs(self, raw: Any) -> Obs:
        if self._dict_obs:
            return {k: torch.as_tensor(np.asarray(raw[k]), dtype=torch.float32).to(self.device)
                    for k in self.observation_space.spaces}  # fmt: skip
        return {self.obs_key: torch.as_tensor(np.asarray(raw), dtype=torch.float32).to(self.device)}

    def scale_action(self, action: torch.Tensor) -> np.ndarray:
        """[-1, 1] actions [N, A] -> the wrapped env's bounds, as numpy."""
        a = torch.as_tensor(action, dtype=torch.float64).cpu().clamp(-1.0, 1.0)
        scaled = self._act_low + (a + 1.0) * 0.5 * (self._act_high - self._act_low)
        return scaled.numpy().astype(self._act_dtype)

    @staticmethod
    def _info_flag(info: dict[str, Any], n: int) -> np.ndarray | None:
        for key in ("is_success", "success"):
            if key in info:
                values = np.asarray(info[key]).astype(bool).reshape(n)
                mask = np.asarray(info.get(f"_{key}", np.ones(n, bool))).reshape(n)
                return values & mask
        return None

    # ---- VecEnv ------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> Obs:
        if seed is None and self._needs_seed:
            seed = self._seed
        self._needs_seed = False
        raw, _ = self.vec.reset(seed=seed)
        return self._obs(raw)

    def step(self, action: torch.Tensor) -> StepResult:
        if tuple(action.shape) != (self.num_envs, self.action_dim):
            raise EnvContractError(
                f"{self.name}: action shape {tuple(action.shape)} != "
                f"({self.num_envs}, {self.action_dim})"
            )
        raw, reward, terminated, truncated, info = self.vec.step(self.scale_action(action))
        n = self.num_envs
        term = np.asarray(terminated, dtype=bool).reshape(n)
        trunc = np.asarray(truncated, dtype=bool).reshape(n) & ~term
        done = term | trunc
        reward_t = torch.as_tensor(np.asarray(reward, dtype=np.float32)).to(self.device)
        obs = self._obs(raw)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            final_obs = {k: v.clone() for k, v in obs.items()}
            flag = self._info_flag(info, n)
            if done.any():
                finals = info["final_obs"]
                for i in np.flatnonzero(done):
                    row = self._obs(finals[i] if self._dict_obs else finals[i][None])
                    if self._dict_obs:
                        row = {k: v[None] for k, v in row.items()}
                    for k in final_obs:
                        final_obs[k][i] = row[k][0]
                final_flag = self._info_flag(info.get("final_info", {}), n)
                if final_flag is not None:
                    flag = np.where(done, final_flag, flag if flag is not None else False)
        else:
            final_obs = obs
            flag = self._info_flag(info, n)
            if done.any():
                raw, _ = self.vec.reset(options={"reset_mask": done})
                obs = self._obs(raw)
        if self.success_fn is not None:
            success = torch.as_tensor(self.success_fn(final_obs, reward_t, info), dtype=torch.bool)
        elif flag is not None:
            success = torch.as_tensor(flag, dtype=torch.bool)
        else:
            success = torch.zeros(n, dtype=torch.bool)
        info_out = {"final_obs": final_obs, "success": success.to(self.device).reshape(n)}
        dev = self.device
        return (obs, reward_t, torch.as_tensor(term).to(dev), torch.as_tensor(trunc).to(dev),
                info_out)  # fmt: skip

    def close(self) -> None:
        self.vec.close()


def make_gymnasium_env(
    env_id: str,
    num_envs: int = 1,
    seed: int | None = None,
    device: str = "cpu",
    **kwargs: Any,
) -> GymnasiumVecEnv:
    """Factory for ``make_env("gym:<id>")``."""
    return GymnasiumVecEnv(env_id, num_envs=num_envs, seed=seed, device=device, **kwargs)


__all__ = ["GymnasiumVecEnv", "SuccessFn", "make_gymnasium_env", "reacher_success"]

"""The policy runtime: robot observations in, safe joint commands out, at control rate.

Per control step: build the observation the policy was trained on (sim key names, tool position
from forward kinematics), keep the observation history the policy needs, run the policy (it
owns its normalizer), take the next action from the chunk queue (receding horizon: ``Ta`` of
the ``Tp`` predicted actions), map it to joint targets with the simulator's own controller
(:class:`sim.control.ArmController`), and pass the targets through the safety envelope, always.

Chunked policies (diffusion) infer asynchronously: when the queue falls to a threshold, the next
chunk is computed in a worker thread from the newest history while the current chunk executes;
when it lands, actions already in the past are skipped (the chunk is indexed by the step of the
observation it was conditioned on), so the control loop never waits on the policy.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.errors import RobotRLError
from robot_rl.policies import Policy, load_policy
from robot_rl.robot.envelope import EnvelopeConfig, SafetyEnvelope, panda_envelope_config
from robot_rl.robot.kinematics import ArmKinematics

N_ARM = 7


def robot_obs(
    kin: ArmKinematics,
    q: np.ndarray,
    qd: np.ndarray,
    object_pose: np.ndarray | None = None,
    goal: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The sim's observation dict from robot measurements.

    ``q``/``qd``: 7 arm + 2 finger joints; ``object_pose``: position + quaternion (w, x, y, z);
    ``goal``: goal position. Keys and layouts are the sim tasks' (``object`` = pose and the
    object position relative to the tool).
    """
    q = np.asarray(q, dtype=np.float64)
    eef = kin.tool_pos(q[None, :N_ARM])[0]
    obs = {
        "robot0_joint_pos": q[:N_ARM],
        "robot0_joint_vel": np.asarray(qd, dtype=np.float64)[:N_ARM],
        "robot0_eef_pos": eef,
        "robot0_gripper_qpos": q[N_ARM : N_ARM + 2],
    }
    if object_pose is not None:
        pose = np.asarray(object_pose, dtype=np.float64)
        obs["object"] = np.concatenate([pose, pose[:3] - eef])
    if goal is not None:
        obs["goal"] = np.asarray(goal, dtype=np.float64)
    return {k: v.astype(np.float32) for k, v in obs.items()}


@dataclass
class StepResult:
    """One control step's outcome."""

    command: np.ndarray
    """Safe joint targets [9] (what goes to the robot)."""
    raw_command: np.ndarray
    """Controller output before the envelope [9]."""
    action: np.ndarray
    """Policy action executed this step (env units, [-1, 1])."""
    flags: int
    """Envelope report flags (see :mod:`robot_rl.robot.envelope`)."""
    fresh_chunk: bool = False
    """A new chunk started with this step."""


@dataclass
class _Chunk:
    start: int
    """Control step of the observation the chunk was conditioned on (its first action's step)."""
    actions: np.ndarray
    """[n, A] actions for steps ``start .. start + n - 1``."""


@dataclass
class RuntimeStats:
    steps: int = 0
    chunks: int = 0
    starved: int = 0
    """Steps with no planned action (inference too slow): held."""
    infer_s: list[float] = field(default_factory=list)


class PolicyRuntime:
    """Runs one policy directory on one robot behind a :class:`SafetyEnvelope`."""

    def __init__(
        self,
        policy: str | Path | Policy,
        *,
        control_hz: float = 20.0,
        envelope: EnvelopeConfig | None = None,
        async_inference: bool = True,
        replan_threshold: int | None = None,
        deterministic: bool = True,
        device: str = "cpu",
    ) -> None:
        self.policy = load_policy(policy, device) if isinstance(policy, (str, Path)) else policy
        self.policy.eval()
        env_kwargs = self.policy.env_info.get("env_kwargs", {})
        self.mode = env_kwargs.get("controller", "ee_delta")
        self.kin = ArmKinematics()
        self.controller = self.kin.controller(self.mode)
        self.dt = 1.0 / control_hz
        self.env_cfg = envelope or panda_envelope_config(self.dt)
        if abs(self.env_cfg.dt - self.dt) > 1e-9:
            raise RobotRLError(f"envelope dt {self.env_cfg.dt} != control period {self.dt}")
        self.deterministic = deterministic
        cfg = self.policy.config
        self.chunked = all(hasattr(cfg, a) for a in ("horizon", "n_obs_steps", "n_action_steps"))
        self.n_obs = int(getattr(cfg, "n_obs_steps", 1))
        self.n_act = int(getattr(cfg, "n_action_steps", 1))
        self.async_inference = async_inference and self.chunked
        # Start the next chunk when this many planned steps remain (half a chunk by default).
        self.replan_threshold = (
            replan_threshold if replan_threshold is not None else max(1, self.n_act // 2)
        )
        self.obs_keys = self.policy.obs_keys
        self.envelope: SafetyEnvelope | None = None
        self.stats = RuntimeStats()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="policy") if self.chunked else None
        self._lock = threading.Lock()

    # ---- episode ----------------------------------------------------------------------------

    def start(self, q: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        """Begin an episode at measured joints ``q`` [9] with the first observation."""
        self._check_obs(obs)
        if self.envelope is None:
            self.envelope = SafetyEnvelope(self.env_cfg, self.kin.tool_pos, np.asarray(q))
        else:
            self.envelope.rehome(np.asarray(q))
        self.policy.reset()
        self._k = 0
        self._hist: deque[dict[str, np.ndarray]] = deque([obs] * self.n_obs, maxlen=self.n_obs)
        self._chunk: _Chunk | None = None
        self._pending: Future | None = None
        self._last_action: np.ndarray | None = None
        if self.chunked:  # the first chunk is computed before the loop starts
            self._chunk = self._infer(0, list(self._hist))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PolicyRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- control step -----------------------------------------------------------------------

    def step(
        self,
        q: np.ndarray,
        obs: dict[str, np.ndarray],
        obs_age: float = 0.0,
        first: bool = False,
        action_override: np.ndarray | None = None,
    ) -> StepResult:
        """One control period: joint targets for measured ``q`` [9] and observation ``obs``.

        ``obs_age``: seconds since the observation was measured (the envelope holds when stale).
        ``first``: ``obs`` is the one given to :meth:`start` (not appended to the history again).
        ``action_override``: an action (env units, clipped to [-1, 1]) that replaces the
        policy's this step (a human intervening); it goes through the same controller and
        envelope.
        """
        if self.envelope is None:
            raise RobotRLError("PolicyRuntime.step before start()")
        if not first:
            self._hist.append(obs)
        fresh = False
        if action_override is not None:
            action = np.clip(np.asarray(action_override, dtype=np.float32), -1.0, 1.0)
            if action.shape != (self._action_dim(),):
                raise RobotRLError(
                    f"intervention action has shape {action.shape}, policy acts in "
                    f"{self._action_dim()} dims"
                )
        elif self.chunked:
            action, fresh = self._next_chunk_action()
        else:
            action = self._act_now(obs)
        if action is None:  # starved: nothing planned for this step; hold
            self.stats.starved += 1
            raw = self.envelope.last[0].copy()
            action = np.full(self._action_dim(), np.nan, dtype=np.float32)
        else:
            act_t = torch.as_tensor(action, dtype=torch.float32)[None]
            raw = self.kin.command(self.controller, act_t, np.asarray(q)[None, :N_ARM])[0].numpy()
        safe, flags = self.envelope(raw.astype(np.float64)[None], obs_age)
        self._k += 1
        self.stats.steps += 1
        self._last_action = action
        return StepResult(safe[0], raw, action, int(flags[0]), fresh)

    def _action_dim(self) -> int:
        return int(getattr(self.policy.config, "action_dim", self.controller.action_dim))

    def _act_now(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        batch = {k: torch.as_tensor(obs[k])[None] for k in self.obs_keys}
        with torch.no_grad():
            return self.policy.act(batch, deterministic=self.deterministic)[0].numpy()

    def _next_chunk_action(self) -> tuple[np.ndarray | None, bool]:
        k, fresh = self._k, False
        if self._pending is not None and (self._pending.done() or not self.async_inference):
            self._chunk = self._pending.result()
            self._pending = None
            fresh = True
        chunk = self._chunk
        remaining = 0 if chunk is None else chunk.start + self.n_act - k
        threshold = self._threshold() if self.async_inference else 0
        if self._pending is None and remaining <= threshold:
            hist = list(self._hist)
            if self.async_inference:
                self._pending = self._pool.submit(self._infer, k, hist)
            else:
                self._chunk, fresh = self._infer(k, hist), True
                chunk = self._chunk
        chunk = self._chunk
        if chunk is None or not (chunk.start <= k < chunk.start + len(chunk.actions)):
            return None, fresh
        return chunk.actions[k - chunk.start], fresh

    def _threshold(self) -> int:
        """Planned steps left when the next chunk starts: the configured value, or more when
        measured inference takes longer (so the new chunk lands before the queue runs dry)."""
        with self._lock:
            recent = self.stats.infer_s[-20:]
        if not recent:
            return self.replan_threshold
        need = int(np.ceil(max(recent) / self.dt)) + 1
        return min(max(self.replan_threshold, need), self.n_act)

    def _infer(self, k: int, hist: list[dict[str, np.ndarray]]) -> _Chunk:
        """A chunk conditioned on the history ending at step ``k`` (runs in the worker)."""
        import time

        start = time.perf_counter()
        batch = {
            key: torch.as_tensor(np.stack([h[key] for h in hist]))[None] for key in self.obs_keys
        }
        with torch.no_grad():
            chunk = self.policy.sample(batch, 1)[0, 0]  # [Tp, A], env units in [-1, 1]
        # The executable part starts at the newest observation's step.
        actions = chunk[self.n_obs - 1 :].numpy()
        with self._lock:
            self.stats.chunks += 1
            self.stats.infer_s.append(time.perf_counter() - start)
        return _Chunk(k, actions)

    # ---- previews (JointTrajectory output) --------------------------------------------------

    def preview(self, q: np.ndarray, steps: int) -> np.ndarray:
        """Safe joint targets ``[n, 9]`` for the next ``n <= steps`` queued actions.

        Assumes the arm tracks each target; runs the same controller and a copy of the envelope,
        so every previewed point obeys the limits. Empty for per-step policies.
        """
        if not self.chunked or self._chunk is None or self.envelope is None:
            return np.zeros((0, len(self.env_cfg.q_low)))
        env = copy.deepcopy(self.envelope)
        chunk, out = self._chunk, []
        q_now = np.asarray(q, dtype=np.float64)[:N_ARM]
        for j in range(self._k, min(chunk.start + len(chunk.actions), self._k + steps)):
            act_t = torch.as_tensor(chunk.actions[j - chunk.start], dtype=torch.float32)[None]
            raw = self.kin.command(self.controller, act_t, q_now[None])[0].numpy()
            safe, _ = env(raw.astype(np.float64)[None], 0.0)
            out.append(safe[0])
            q_now = safe[0, :N_ARM]
        return np.asarray(out).reshape(-1, len(self.env_cfg.q_low))

    def _check_obs(self, obs: dict[str, Any]) -> None:
        missing = [k for k in self.obs_keys if k not in obs]
        if missing:
            raise RobotRLError(
                f"the policy reads observations {missing} that the robot does not provide "
                f"(has {sorted(obs)}); publish the object/goal pose topics"
            )

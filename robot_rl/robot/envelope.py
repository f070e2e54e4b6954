"""The safety envelope: the last thing every joint command passes through on the robot side.

It sits after the policy and the controller and is built from the robot's configuration, never
from a policy directory; :class:`~robot_rl.robot.runtime.PolicyRuntime` always applies it and
there is no switch to turn it off. Per control step, for each robot row of a batch:

1. e-stop latched ⇒ hold (until :meth:`SafetyEnvelope.reset`, with the e-stop input released);
2. observation older than ``stale_periods`` control periods ⇒ hold;
3. NaN/inf anywhere in the command ⇒ hold and report;
4. clamp to the joint position limits;
5. rate limit: each joint moves at most ``vel_limit * dt`` from the last safe command;
6. workspace box on the commanded tool position (forward kinematics of the commanded joints):
   if outside, scale the step back (1/2, 1/4) and hold if none fits.

"Hold" repeats the last safe command. Batched over rows so it can be fuzzed at 10^6 commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_rl.errors import RobotRLError

# Report flags per row (bit mask).
CLAMPED = 1
RATE_LIMITED = 2
WORKSPACE = 4
NONFINITE = 8
STALE = 16
ESTOP = 32
HELD = 64

PANDA_VEL_LIMITS = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
"""Franka Panda joint velocity limits, rad/s."""


@dataclass
class EnvelopeConfig:
    """Limits of one arm (7 joints + 2 fingers by default; any joint count works)."""

    q_low: tuple[float, ...]
    q_high: tuple[float, ...]
    vel_limit: tuple[float, ...]
    """Per-joint speed limit (rad/s or m/s); the per-step change is ``vel_limit * dt``."""
    dt: float = 0.05
    """Control period, seconds."""
    workspace_low: tuple[float, float, float] = (0.23, -0.37, -0.015)
    workspace_high: tuple[float, float, float] = (0.82, 0.37, 0.47)
    """Box for the commanded tool position (the controller's box grown by 2 cm)."""
    stale_periods: float = 1.5
    """Hold when the newest observation is older than this many control periods (1.5: the
    second period without a new observation already holds)."""
    scale_back: tuple[float, ...] = field(default=(0.5, 0.25))
    """Fractions of the step tried when the full step leaves the workspace."""

    def __post_init__(self) -> None:
        n = len(self.q_low)
        if not (len(self.q_high) == len(self.vel_limit) == n):
            raise RobotRLError("envelope: q_low, q_high and vel_limit need one value per joint")
        if any(lo > hi for lo, hi in zip(self.q_low, self.q_high, strict=True)):
            raise RobotRLError("envelope: q_low must be <= q_high for every joint")
        if self.dt <= 0 or any(v <= 0 for v in self.vel_limit) or self.stale_periods <= 0:
            raise RobotRLError("envelope: dt, vel_limit and stale_periods must be positive")


def panda_envelope_config(dt: float, finger_speed: float = 1.0) -> EnvelopeConfig:
    """Limits of the sim's Panda (joint ranges from its MJCF) at control period ``dt``."""
    from sim.robots.panda import FINGER_OPEN, PANDA_JOINT_LIMITS

    lo = tuple(a for a, _ in PANDA_JOINT_LIMITS) + (0.0, 0.0)
    hi = tuple(b for _, b in PANDA_JOINT_LIMITS) + (FINGER_OPEN, FINGER_OPEN)
    return EnvelopeConfig(lo, hi, PANDA_VEL_LIMITS + (finger_speed, finger_speed), dt=dt)


class SafetyEnvelope:
    """Stateful filter ``command -> safe command`` for ``rows`` robots (1 on a real robot).

    ``tool_pos`` maps arm joint angles ``[N, n_arm]`` to tool positions ``[N, 3]``; the first
    ``n_arm`` joints of a command are the arm's.
    """

    def __init__(
        self,
        config: EnvelopeConfig,
        tool_pos: Callable[[np.ndarray], np.ndarray],
        initial: np.ndarray,
        n_arm: int = 7,
    ) -> None:
        self.cfg = config
        self.tool_pos = tool_pos
        self.n_arm = n_arm
        self.low = np.asarray(config.q_low, dtype=np.float64)
        self.high = np.asarray(config.q_high, dtype=np.float64)
        self.max_step = np.asarray(config.vel_limit, dtype=np.float64) * config.dt
        self.ws_low = np.asarray(config.workspace_low, dtype=np.float64)
        self.ws_high = np.asarray(config.workspace_high, dtype=np.float64)
        initial = np.atleast_2d(np.asarray(initial, dtype=np.float64))
        if initial.shape[1] != len(self.low) or not np.isfinite(initial).all():
            raise RobotRLError(
                f"envelope: initial command must be finite with {len(self.low)} joints"
            )
        # The starting hold is the measured posture, clamped into the joint limits.
        self.last = np.clip(initial, self.low, self.high)
        self._estop_latched = np.zeros(len(self.last), dtype=bool)
        self._estop_input = np.zeros(len(self.last), dtype=bool)
        self.counts: dict[str, int] = {
            k: 0 for k in ("clamped", "rate_limited", "workspace", "nonfinite", "stale", "estop")
        }

    # ---- e-stop -----------------------------------------------------------------------------

    def set_estop(self, active: bool | np.ndarray) -> None:
        """Feed the e-stop input; ``True`` latches a hold that only :meth:`reset` clears."""
        active = np.broadcast_to(np.asarray(active, dtype=bool), self._estop_input.shape)
        self._estop_input = active.copy()
        self._estop_latched |= active

    def reset(self) -> bool:
        """Clear the e-stop latch where the e-stop input is released; True if none is latched."""
        self._estop_latched &= self._estop_input
        return not self._estop_latched.any()

    @property
    def estopped(self) -> np.ndarray:
        return self._estop_latched.copy()

    def rehome(self, measured: np.ndarray) -> None:
        """Restart holding the measured posture (after a robot reset); the e-stop stays."""
        self.last = np.clip(np.atleast_2d(np.asarray(measured, np.float64)), self.low, self.high)

    # ---- filter -----------------------------------------------------------------------------

    def __call__(
        self, command: np.ndarray, obs_age: float | np.ndarray = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Safe commands ``[N, J]`` and report flags ``[N]`` for raw commands ``[N, J]``.

        ``obs_age``: seconds since the newest observation the command was computed from.
        """
        cmd = np.array(np.atleast_2d(command), dtype=np.float64)
        if cmd.shape != self.last.shape:
            raise RobotRLError(f"envelope: command shape {cmd.shape} != {self.last.shape}")
        flags = np.zeros(len(cmd), dtype=np.int64)
        age = np.broadcast_to(np.asarray(obs_age, dtype=np.float64), (len(cmd),))
        # NaN ages count as stale: an unknown age is not a fresh observation.
        stale = ~(age <= self.cfg.stale_periods * self.cfg.dt)
        nonfinite = ~np.isfinite(cmd).all(axis=1)
        hold = self._estop_latched | stale | nonfinite
        flags[self._estop_latched] |= ESTOP
        flags[stale] |= STALE
        flags[nonfinite] |= NONFINITE
        cmd[hold] = self.last[hold]

        clipped = np.clip(cmd, self.low, self.high)
        flags[(clipped != cmd).any(axis=1)] |= CLAMPED
        step = np.clip(clipped - self.last, -self.max_step, self.max_step)
        flags[(step != clipped - self.last).any(axis=1)] |= RATE_LIMITED

        out = np.clip(self.last + step, self.low, self.high)  # rounding must not cross a limit
        bad = ~self._inside(out)
        if bad.any():
            flags[bad] |= WORKSPACE
            for frac in self.cfg.scale_back:
                rows = np.flatnonzero(bad)
                trial = np.clip(self.last[rows] + frac * step[rows], self.low, self.high)
                fits = self._inside(trial)
                out[rows[fits]] = trial[fits]
                bad[rows[fits]] = False
                if not bad.any():
                    break
            out[bad] = self.last[bad]
            hold |= bad
        flags[hold] |= HELD
        self.last = out
        for name, bit in (
            ("clamped", CLAMPED),
            ("rate_limited", RATE_LIMITED),
            ("workspace", WORKSPACE),
            ("nonfinite", NONFINITE),
            ("stale", STALE),
            ("estop", ESTOP),
        ):
            self.counts[name] += int(((flags & bit) != 0).sum())
        return out.copy(), flags

    def _inside(self, cmd: np.ndarray) -> np.ndarray:
        if len(cmd) == 0:
            return np.zeros(0, dtype=bool)
        p = self.tool_pos(cmd[:, : self.n_arm])
        return ((p >= self.ws_low) & (p <= self.ws_high)).all(axis=1)


def describe(flags: int) -> str:
    """Human-readable names of a row's report flags."""
    names = [
        n
        for n, b in (
            ("clamped", CLAMPED),
            ("rate_limited", RATE_LIMITED),
            ("workspace", WORKSPACE),
            ("nonfinite", NONFINITE),
            ("stale", STALE),
            ("estop", ESTOP),
            ("held", HELD),
        )
        if flags & b
    ]
    return ",".join(names) or "ok"

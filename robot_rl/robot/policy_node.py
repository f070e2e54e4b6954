"""The policy node: joint states (+ object/goal poses, e-stop) in, safe joint commands out.

:class:`PolicyNodeCore` is the transport-agnostic logic: it takes messages by their ROS field
names (so both this package's Cyclone DDS structs and rclpy messages fit), runs the
:class:`~robot_rl.robot.runtime.PolicyRuntime` (policy, chunk queue, shared controller, safety
envelope), tracks episodes (success, horizon) and records them. :class:`DdsPolicyNode` is the
Cyclone DDS shell with two pacings: ``realtime`` (a wall-clock timer at the control rate, the
way a real controller is driven) and ``lockstep`` (one command per new joint state, with the sim
robot node in lockstep, faster than real time). The rclpy shell in ``ros_ws`` wraps the same
core.

Outputs: ``std_msgs/Float64MultiArray`` (``forward_command_controller``) or
``trajectory_msgs/JointTrajectory`` (``joint_trajectory_controller``; the queued chunk as timed
points, each passed through a copy of the envelope).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.errors import RobotRLError
from robot_rl.robot.convert import joint_state_arrays, pose_array, stamp_seconds
from robot_rl.robot.runtime import PolicyRuntime, StepResult, robot_obs

DEFAULT_JOINTS = tuple(f"robot0_joint{i}" for i in range(1, 8)) + (
    "robot0_finger_left",
    "robot0_finger_right",
)


@dataclass
class TickOutput:
    """What a tick asks the transport to do."""

    command: np.ndarray | None = None
    """Joint targets to publish now [9]."""
    points: np.ndarray | None = None
    """Future targets [n, 9] at ``(i + 2) * dt`` after this command (trajectory output)."""
    episode_end: bool = False
    """The episode ended at this tick (success or horizon); the transport resets the robot."""
    success: bool = False
    result: StepResult | None = None
    obs_stamp: float = 0.0


@dataclass
class NodeStats:
    """Timing and outcome figures of a run (written as JSON by ``--stats``)."""

    period_error_s: list[float] = field(default_factory=list)
    obs_to_command_s: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)
    missed_periods: int = 0
    successes: list[bool] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    swap_periods: list[int] = field(default_factory=list)
    """Indices into ``period_error_s`` of the periods in which new weights were swapped in."""
    interventions: int = 0

    def summary(self) -> dict[str, Any]:
        def pct(xs: list[float], q: float) -> float:
            return float(np.percentile(np.abs(xs), q)) if xs else float("nan")

        return {
            "ticks": len(self.compute_s),
            "period_error_ms_p50": 1e3 * pct(self.period_error_s, 50),
            "period_error_ms_p99": 1e3 * pct(self.period_error_s, 99),
            "obs_to_command_ms_p50": 1e3 * pct(self.obs_to_command_s, 50),
            "obs_to_command_ms_p99": 1e3 * pct(self.obs_to_command_s, 99),
            "compute_ms_p99": 1e3 * pct(self.compute_s, 99),
            "missed_periods": self.missed_periods,
            "episodes": len(self.successes),
            "success_rate": float(np.mean(self.successes)) if self.successes else float("nan"),
            "envelope": self.flags,
            "weight_swaps": len(self.swap_periods),
            "intervention_steps": self.interventions,
        }


class PolicyNodeCore:
    """Episode-level node logic shared by every transport."""

    def __init__(
        self,
        runtime: PolicyRuntime,
        *,
        joint_names: tuple[str, ...] = DEFAULT_JOINTS,
        horizon: int | None = None,
        recorder: Any = None,
        preview_steps: int = 0,
        transitions: Any = None,
        weights: Any = None,
        teleop_timeout_s: float = 0.5,
        success_fn: Any = None,
    ) -> None:
        """``transitions``: a sink with ``add(obs, action, reward, next_obs, terminal,
        intervention, t)`` (the actor link); ``weights``: a callable returning staged
        ``(version, state_dict)`` or None, polled between episodes only."""
        self.rt = runtime
        self.transitions = transitions
        self.weights = weights
        self.teleop_timeout_s = teleop_timeout_s
        self.success_fn = success_fn
        """Optional ``obs -> bool`` (a success classifier), or-ed with the success topic."""
        self.teleop_action: np.ndarray | None = None
        self.teleop_stamp = -np.inf
        self.intervening = False
        self.weights_version = -1
        self.swaps: list[tuple[int, float]] = []
        """(version, seconds the swap took) per weight swap."""
        self.joint_names = tuple(joint_names)
        env_kwargs = runtime.policy.env_info.get("env_kwargs", {})
        self.horizon = int(horizon or env_kwargs.get("horizon", 100))
        self.recorder = recorder
        self.preview_steps = preview_steps
        self.q: np.ndarray | None = None
        self.qd: np.ndarray | None = None
        self.js_stamp = -np.inf
        self.object_pose: np.ndarray | None = None
        self._object_poses: list[tuple[float, np.ndarray]] = []
        self.goal: np.ndarray | None = None
        self.success = False
        self.episode_success = False
        """Outcome of the last episode that ended."""
        self._estop_pending: bool | None = None
        self._estop_reset_pending = False
        self._started = False
        self._steps = 0
        self._pending: tuple[dict[str, np.ndarray], np.ndarray, float, bool] | None = None
        self._last_obs: dict[str, np.ndarray] | None = None
        self.fresh_after = -np.inf
        self._missing_since: float | None = None
        self.pose_wait_s = 2.0
        """At an episode start, wait this long for every observation the policy reads."""
        """Joint states stamped before this are ignored (set after a reset request)."""

    # ---- inputs (ROS field names) -------------------------------------------------------------

    def on_joint_state(self, msg: Any) -> bool:
        """Store a JointState; False if it is not newer than the last one (or too old)."""
        t = stamp_seconds(msg.header.stamp)
        if t <= self.js_stamp or t < self.fresh_after:
            return False
        self.q, self.qd = joint_state_arrays(msg, self.joint_names)
        self.js_stamp = t
        self._match_object_pose()
        return True

    def on_object_pose(self, msg: Any) -> None:
        t = stamp_seconds(msg.header.stamp)
        if t < self.fresh_after:
            return  # from before the reset
        self._object_poses.append((t, pose_array(msg)))
        del self._object_poses[:-16]
        self._match_object_pose()

    def _match_object_pose(self) -> None:
        """The object pose stamped with the current joint state's time (the robot publishes
        both per step on separate topics, which arrive in either order), else the newest
        not after it, else the newest heard."""
        if not self._object_poses:
            return
        before = [p for t, p in self._object_poses if t <= self.js_stamp]
        self.object_pose = before[-1] if before else self._object_poses[-1][1]

    def on_goal_pose(self, msg: Any) -> None:
        self.goal = pose_array(msg)[:3]

    def on_success(self, msg: Any) -> None:
        self.success = bool(msg.data)

    def on_teleop_action(self, msg: Any, now: float | None = None) -> None:
        """A human's action (``Float64MultiArray``, env units in [-1, 1])."""
        self.teleop_action = np.asarray(msg.data, dtype=np.float32)
        self.teleop_stamp = time.monotonic() if now is None else now

    def on_intervention(self, msg: Any) -> None:
        """``Bool``: True while a human takes over (their actions replace the policy's)."""
        self.intervening = bool(msg.data)

    def _override(self) -> np.ndarray | None:
        if not self.intervening or self.teleop_action is None:
            return None
        if time.monotonic() - self.teleop_stamp > self.teleop_timeout_s:
            return None  # a stale teleop action never drives the arm
        return self.teleop_action

    def on_estop(self, msg: Any) -> None:
        """E-stop input: True latches a hold until :meth:`on_estop_reset`."""
        if self.rt.envelope is None:
            self._estop_pending = bool(msg.data)
        else:
            self.rt.envelope.set_estop(bool(msg.data))

    def on_estop_reset(self, msg: Any) -> None:
        if not msg.data:
            return
        if self.rt.envelope is None:
            self._estop_reset_pending = True
        else:
            self.rt.envelope.reset()

    # ---- control ----------------------------------------------------------------------------

    def observation(self) -> dict[str, np.ndarray]:
        return robot_obs(self.rt.kin, self.q, self.qd, self.object_pose, self.goal)

    def warmup(self) -> bool:
        """Run the policy, controller and envelope once on the current observation, so their
        first-call costs (torch, kinematics) land before the control loop instead of in its
        first periods; nothing is commanded and the episode still starts at the next tick.
        False (and nothing done) without a complete observation yet."""
        from robot_rl.robot.runtime import RuntimeStats

        if self.q is None or self._started:
            return False
        obs = self.observation()
        try:
            self.rt.start(self.q, obs)
        except RobotRLError:  # a pose topic not heard yet: the first tick will say so
            return False
        result = self.rt.step(self.q, obs, first=True)
        if self.preview_steps:
            self.rt.preview(result.command, self.preview_steps)
        self.rt.stats = RuntimeStats()  # the warm-up's slow first inference is not a measure
        self.q = None
        self.object_pose = self.goal = None
        self._object_poses = []
        return True

    def tick(self, now: float) -> TickOutput | None:
        """One control period at wall time ``now``; None until a joint state has arrived."""
        if self.q is None:
            return None
        obs = self.observation()
        if self._pending is not None:
            ended = self._close_step(obs)
            if ended:
                return TickOutput(episode_end=True, success=self.episode_success)
        first = not self._started
        if first and any(k not in obs for k in self.rt.obs_keys):
            # after a reset the joint state can arrive before the object/goal pose (separate
            # topics): wait for it a little; after pose_wait_s the runtime names what is missing
            if self._missing_since is None:
                self._missing_since = now
            if now - self._missing_since < self.pose_wait_s:
                return None
        self._missing_since = None
        if first:
            self.rt.start(self.q, obs)
            self._apply_pending_estop()
            self._started = True
            self._steps = 0
        override = self._override()
        result = self.rt.step(
            self.q, obs, obs_age=now - self.js_stamp, first=first, action_override=override
        )
        human = override is not None
        if np.isfinite(result.action).all():
            self._pending = (obs, result.action, self.js_stamp, human)
        else:  # starved or held without an action: nothing to record for this step
            self._pending = (obs, None, self.js_stamp, human)  # type: ignore[assignment]
        self._last_obs = obs
        points = None
        if self.preview_steps:
            points = self.rt.preview(result.command, self.preview_steps)
        return TickOutput(result.command, points, False, False, result, self.js_stamp)

    def _close_step(self, next_obs: dict[str, np.ndarray]) -> bool:
        """Record the previous step with its outcome; True when the episode is over."""
        obs, action, t, human = self._pending  # type: ignore[misc]
        self._pending = None
        self._steps += 1
        if self.success_fn is not None and self.success_fn(next_obs):
            self.success = True
        done = self.success
        self.episode_success = bool(done)  # end_episode clears self.success
        if self.recorder is not None and action is not None:
            self.recorder.add_step(obs, action, float(done), done, False, t)
        if self.transitions is not None and action is not None:
            self.transitions.add(obs, action, float(done), next_obs, done, human, t)
        if done or self._steps >= self.horizon:
            self.end_episode(done, next_obs)
            return True
        return False

    def end_episode(self, success: bool, final_obs: dict[str, np.ndarray] | None = None) -> None:
        if self.recorder is not None and self.recorder.steps_in_episode():
            self.recorder.end_episode(success, final_obs)
        self._started = False
        self._pending = None
        self.success = False
        self.q = None
        self.object_pose = self.goal = None
        self._object_poses = []
        if self.transitions is not None:
            self.transitions.end_episode()
        if hasattr(self.success_fn, "reset"):
            self.success_fn.reset()
        self.swap_weights()

    def swap_weights(self) -> bool:
        """Load weights staged by the link (between episodes only); True if swapped."""
        if self.weights is None:
            return False
        got = self.weights()
        if got is None:
            return False
        version, state = got
        t0 = time.perf_counter()
        try:
            self.rt.policy.load_state_dict(state)
        except (RuntimeError, KeyError) as e:  # checked before; keep running on the old ones
            print(f"[actor] weights v{version} failed to load ({e}); keeping "
                  f"v{self.weights_version}", flush=True)  # fmt: skip
            return False
        self.rt.policy.eval()
        self.weights_version = version
        self.swaps.append((version, time.perf_counter() - t0))
        return True

    def _apply_pending_estop(self) -> None:
        env = self.rt.envelope
        if self._estop_pending is not None:
            env.set_estop(self._estop_pending)
            self._estop_pending = None
        if self._estop_reset_pending:
            env.reset()
            self._estop_reset_pending = False


class DdsPolicyNode:
    """The policy node over Cyclone DDS (ROS 2 wire format), one process."""

    def __init__(
        self,
        core: PolicyNodeCore,
        domain_id: int = 0,
        *,
        output: str = "forward",
        joint_state_topic: str = "/joint_states",
        command_topic: str = "/commands",
        trajectory_topic: str = "/joint_trajectory",
        object_topic: str = "/object_pose",
        goal_topic: str = "/goal_pose",
        success_topic: str = "/success",
        reset_topic: str = "/reset",
        estop_topic: str = "/estop",
        estop_reset_topic: str = "/estop_reset",
        teleop_topic: str = "/teleop/action",
        intervention_topic: str = "/teleop/intervention",
    ) -> None:
        from robot_rl.robot import dds
        from robot_rl.robot import msgs as m

        if output not in ("forward", "trajectory"):
            raise RobotRLError(f"unknown output {output!r}; choose from ['forward', 'trajectory']")
        from robot_rl.robot.convert import cyclonedds_types

        self.m, self.dds = m, dds
        self.types = cyclonedds_types()
        self.core = core
        self.output = output
        self.node = dds.Node(domain_id)
        self.js_r = self.node.reader(joint_state_topic, m.JointState, dds.SENSOR)
        self.obj_r = self.node.reader(object_topic, m.PoseStamped, dds.SENSOR)
        self.goal_r = self.node.reader(goal_topic, m.PoseStamped, dds.SENSOR)
        self.succ_r = self.node.reader(success_topic, m.Bool)
        self.estop_r = self.node.reader(estop_topic, m.Bool)
        self.estop_reset_r = self.node.reader(estop_reset_topic, m.Bool)
        self.teleop_r = self.node.reader(teleop_topic, m.Float64MultiArray, dds.SENSOR)
        self.intervention_r = self.node.reader(intervention_topic, m.Bool)
        if output == "forward":
            self.cmd_w = self.node.writer(command_topic, m.Float64MultiArray)
        else:
            self.cmd_w = self.node.writer(trajectory_topic, m.JointTrajectory)
        self.reset_w = self.node.writer(reset_topic, m.Bool)
        self.stats = NodeStats()
        self._n_success = 0
        self._n_commands = 0

    # ---- wire -------------------------------------------------------------------------------

    def _poll(self) -> bool:
        """Feed every waiting message to the core; True if a new joint state arrived."""
        c = self.core
        fresh = False
        for msg in self.js_r.take_all():
            fresh |= c.on_joint_state(msg)
        for msg in self.obj_r.take_all():
            c.on_object_pose(msg)
        for msg in self.goal_r.take_all():
            c.on_goal_pose(msg)
        for msg in self.estop_r.take_all():
            c.on_estop(msg)
        for msg in self.estop_reset_r.take_all():
            c.on_estop_reset(msg)
        for msg in self.intervention_r.take_all():
            c.on_intervention(msg)
        for msg in self.teleop_r.take_all():
            c.on_teleop_action(msg)
        for msg in self.succ_r.take_all():
            c.on_success(msg)
            self._n_success += 1
        for msg in self.js_r.take_all():  # states that arrived while the poses were read
            fresh |= c.on_joint_state(msg)
        return fresh

    def publish(self, out: TickOutput) -> None:
        from robot_rl.robot import convert

        if self.output == "forward":
            self.cmd_w.write(convert.command_msg(self.types, out.command))
        else:
            msg = convert.trajectory_msg(
                self.types,
                self.core.joint_names,
                out.command,
                out.points,
                self.core.rt.dt,
                time.time(),
            )
            self.cmd_w.write(msg)
        self._n_commands += 1
        self.stats.obs_to_command_s.append(time.time() - out.obs_stamp)

    def request_reset(self, settle_s: float = 0.0) -> None:
        """Ask the robot to reset; joint states stamped before it (+ ``settle_s``) are ignored."""
        self.core.fresh_after = time.time() + settle_s
        self.js_r.take_all()
        self.reset_w.write(self.m.Bool(True))

    def _count_flags(self, out: TickOutput) -> None:
        from robot_rl.robot.envelope import describe

        if self.core._pending is not None and self.core._pending[3]:
            self.stats.interventions += 1
        if out.result is not None and out.result.flags:
            for name in describe(out.result.flags).split(","):
                self.stats.flags[name] = self.stats.flags.get(name, 0) + 1

    def wait_for_robot(self, timeout_s: float = 10.0) -> None:
        """Block until a robot publishes joint states; give a reset listener (the sim robot)
        a moment to match too (a real arm has none)."""
        end = time.monotonic() + timeout_s
        while not self.js_r.reader.get_matched_publications():
            if time.monotonic() > end:
                raise RobotRLError(f"no robot publishing joint states within {timeout_s:.0f} s")
            time.sleep(0.01)
        self.dds.wait_matched(self.reset_w, 1, 1.0)

    def warmup(self, timeout_s: float = 2.0) -> bool:
        """Wait for a joint state, run the core's warm-up, and serialize one command so the
        message type's first-use cost is paid too (nothing is published)."""
        from robot_rl.robot import convert

        end = time.monotonic() + timeout_s
        while self.core.q is None and time.monotonic() < end:
            self._poll()
            time.sleep(0.002)
        ok = self.core.warmup()
        q = np.zeros(len(self.core.joint_names))
        if self.output == "forward":
            convert.command_msg(self.types, q).serialize()
        else:
            msg = convert.trajectory_msg(self.types, self.core.joint_names, q, q[None], 0.05, 0.0)
            msg.serialize()
        return ok

    # ---- pacings ----------------------------------------------------------------------------

    def spin_lockstep(self, episodes: int, idle_timeout_s: float = 10.0) -> NodeStats:
        """One command per new joint state (the sim robot node in lockstep)."""
        self.wait_for_robot()
        self.request_reset()
        last = time.monotonic()
        done = 0
        while done < episodes:
            if not self._poll():
                if time.monotonic() - last > idle_timeout_s:
                    raise RobotRLError(f"no joint state for {idle_timeout_s:.0f} s")
                time.sleep(0.0002)
                continue
            last = time.monotonic()
            # the sim reports success once per command; make sure this step's report is in
            end = time.monotonic() + 0.2
            while self._n_success < self._n_commands and time.monotonic() < end:
                got = self.succ_r.take_all()
                for msg in got:
                    self.core.on_success(msg)
                    self._n_success += 1
                if not got:
                    time.sleep(0.0001)
            start = time.perf_counter()
            out = self.core.tick(time.time())
            if out is None:
                continue
            if out.episode_end:
                self.stats.successes.append(out.success)
                done += 1
                if done < episodes:
                    self.request_reset()
                last = time.monotonic()  # an episode end may wait (--max-learner-lag)
                continue
            self.stats.compute_s.append(time.perf_counter() - start)
            self._count_flags(out)
            self.publish(out)
        return self.stats

    def spin_realtime(
        self, episodes: int, max_ticks: int | None = None, idle_timeout_s: float = 10.0
    ) -> NodeStats:
        """A wall-clock timer at the control rate; each tick uses the newest joint state."""
        self.wait_for_robot()
        period = self.core.rt.dt
        self.warmup()
        self.request_reset(settle_s=2 * period)
        start = time.monotonic()
        last_js = start
        k = done = ticks = 0
        while done < episodes and (max_ticks is None or ticks < max_ticks):
            k += 1
            deadline = start + k * period
            while (now := time.monotonic()) < deadline:
                time.sleep(min(0.0005, deadline - now))
            late = now - deadline
            if late > period:
                missed = int(late / period)
                self.stats.missed_periods += missed
                k += missed
            self.stats.period_error_s.append(late)
            if self._poll():
                last_js = now
            elif now - last_js > idle_timeout_s:
                raise RobotRLError(f"no joint state for {idle_timeout_s:.0f} s")
            t0 = time.perf_counter()
            out = self.core.tick(time.time())
            ticks += 1
            if out is None:
                continue
            if out.episode_end:
                self.stats.successes.append(out.success)
                if self.core.swaps and len(self.core.swaps) > len(self.stats.swap_periods):
                    self.stats.swap_periods.append(len(self.stats.period_error_s) - 1)
                done += 1
                if done < episodes:
                    self.request_reset(settle_s=2 * period)
                continue
            self.stats.compute_s.append(time.perf_counter() - t0)
            self._count_flags(out)
            self.publish(out)
        return self.stats


def write_stats(path: Path, stats: NodeStats, extra: dict[str, Any] | None = None) -> None:
    """Summary and raw timings as JSON."""
    data = {
        "summary": stats.summary(),
        "period_error_s": stats.period_error_s,
        "obs_to_command_s": stats.obs_to_command_s,
        "compute_s": stats.compute_s,
        "successes": stats.successes,
        **(extra or {}),
    }
    Path(path).write_text(json.dumps(data))

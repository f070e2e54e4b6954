"""``robot-rl robot record``: the episode recorder as its own process over Cyclone DDS.

The logic is :class:`~robot_rl.robot.recorder.RecorderCore` (topics -> steps) and
:class:`~robot_rl.robot.recorder.EpisodeRecorder` (crash-safe file); this is the transport.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from typing import Any

from robot_rl.errors import RobotRLError
from robot_rl.robot.recorder import EpisodeRecorder, RecorderCore, robot_env_args


class DdsRecorder:
    """The recorder over Cyclone DDS (ROS 2 wire format), one process.

    Samples of all topics taken in one poll are handled in source-timestamp order, so a command
    is paired with the joint state that was published before it, not one that merely arrived
    in the same poll. Samples from different processes can arrive slightly out of that order
    (a reset request may land after the state the robot published after resetting), so each
    sample waits ``reorder_s`` before it is handled. Readers keep every sample until taken (QoS history keep-all), so the
    messages that arrive while an episode is being committed wait instead of being dropped.
    """

    def __init__(
        self,
        core: RecorderCore,
        domain_id: int = 0,
        *,
        joint_state_topic: str = "/joint_states",
        command_topic: str = "/commands",
        trajectory_topic: str = "/joint_trajectory",
        object_topic: str = "/object_pose",
        goal_topic: str = "/goal_pose",
        success_topic: str = "/success",
        reset_topic: str = "/reset",
        intervention_topic: str = "/intervention",
        reorder_s: float = 0.25,
        settle_s: float = 0.5,
    ) -> None:
        from robot_rl.robot import dds
        from robot_rl.robot import msgs as m

        self.core = core
        self.node = dds.Node(domain_id)
        self.reorder_ns = int(reorder_s * 1e9)
        self._buffer: list[tuple[int, int, Any, Any]] = []
        self._matched_at: float | None = None
        self._heard = False
        self.settle_s = settle_s
        c = core
        rel, sensor = dds.RECORD, dds.SENSOR_RECORD
        # state first: at equal timestamps the state a command was computed from goes first
        self.inputs = [
            (self.node.reader(reset_topic, m.Bool, rel), m.Bool, c.on_reset),
            (self.node.reader(joint_state_topic, m.JointState, sensor), m.JointState, c.on_joint_state),
            (self.node.reader(object_topic, m.PoseStamped, sensor), m.PoseStamped, c.on_object_pose),
            (self.node.reader(goal_topic, m.PoseStamped, sensor), m.PoseStamped, c.on_goal_pose),
            (self.node.reader(success_topic, m.Bool, rel), m.Bool, c.on_success),
            (self.node.reader(intervention_topic, m.Bool, rel), m.Bool, c.on_intervention),
            (self.node.reader(command_topic, m.Float64MultiArray, rel), m.Float64MultiArray, c.on_command),
            (self.node.reader(trajectory_topic, m.JointTrajectory, rel), m.JointTrajectory, c.on_trajectory),
        ]  # fmt: skip
        self._js_reader = self.inputs[1][0].reader
        self._cmd_readers = [self.inputs[-2][0].reader, self.inputs[-1][0].reader]

    def poll(self, flush: bool = False) -> int:
        """Take every waiting sample; handle, in source-time order, those older than the
        reorder window (all of them with ``flush``). Returns how many were taken."""
        taken = 0
        for order, (reader, msg_type, handler) in enumerate(self.inputs):
            while True:  # drain: a backlog (after a slow commit) is handled in time order too
                batch = reader.reader.take(N=256)
                for s in batch:
                    if isinstance(s, msg_type):
                        self._buffer.append((s.sample_info.source_timestamp, order, handler, s))
                        taken += 1
                if len(batch) < 256:
                    break
        if not self._accepting():
            self._buffer.clear()
            return taken
        self._buffer.sort(key=lambda x: (x[0], x[1]))
        horizon = math.inf if flush else time.time_ns() - self.reorder_ns
        ready = 0
        while ready < len(self._buffer) and self._buffer[ready][0] <= horizon:
            ready += 1
        handle, self._buffer = self._buffer[:ready], self._buffer[ready:]
        for ts, _, handler, msg in handle:
            handler(msg, ts * 1e-9)
        return taken

    def _accepting(self) -> bool:
        """The robot's joint states have had a publisher for ``settle_s`` (time for its other
        topics' endpoints to match too, so the first episode has every observation key);
        until then samples are discarded."""
        if self._matched_at is None:
            if not self._js_reader.get_matched_publications():
                return False
            self._matched_at = time.monotonic()
        return time.monotonic() - self._matched_at >= self.settle_s

    def _listening(self) -> bool:
        """A command publisher is connected: silence now means an idle robot."""
        if not self._heard:
            self._heard = (
                any(r.get_matched_publications() for r in self._cmd_readers) and self._accepting()
            )
        return self._heard

    def spin(
        self,
        max_episodes: int | None = None,
        idle_timeout_s: float | None = None,
        stop: Any = None,
        on_commit: Any = None,
        on_ready: Any = None,
    ) -> None:
        """Record until ``max_episodes`` are committed, nothing arrives for ``idle_timeout_s``,
        or ``stop()`` is true (drops the episode in progress). ``on_ready()`` is called once
        the robot is heard (samples are handled from then on)."""
        last = time.monotonic()
        reported = 0
        ready = False
        while stop is None or not stop():
            if self.poll():
                last = time.monotonic()
            if not ready and self._accepting():
                ready = True
                if on_ready is not None:
                    on_ready()
            self.core.poll(time.time() - self.reorder_ns * 1e-9, self._listening())
            for entry in self.core.committed[reported:]:
                if on_commit is not None:
                    on_commit(entry)
            reported = len(self.core.committed)
            if max_episodes is not None and reported >= max_episodes:
                break
            if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                break
            time.sleep(0.0005)
        self.poll(flush=True)
        self.core.shutdown()


def run_record(cfg: Any) -> list[tuple[str, int, bool, str]]:
    """``robot-rl robot record``: returns the committed episodes."""
    if cfg.rate_hz <= 0:
        raise RobotRLError(f"--rate-hz must be positive, got {cfg.rate_hz}")
    recorder = EpisodeRecorder(
        cfg.out,
        robot_env_args(cfg.env_name, cfg.action, cfg.rate_hz, cfg.horizon),
        append=cfg.append,
    )
    core = RecorderCore(
        recorder,
        action=cfg.action,
        horizon=cfg.horizon,
        gap_s=cfg.gap_s,
        end_on_success=cfg.end_on_success,
    )
    node = DdsRecorder(
        core,
        cfg.domain_id,
        joint_state_topic=cfg.joint_state_topic,
        command_topic=cfg.command_topic,
        trajectory_topic=cfg.trajectory_topic,
        object_topic=cfg.object_topic,
        goal_topic=cfg.goal_topic,
        success_topic=cfg.success_topic,
        reset_topic=cfg.reset_topic,
        intervention_topic=cfg.intervention_topic,
    )
    stopping: list[int] = []

    def _stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)

    def _report(entry: tuple[str, int, bool, str]) -> None:
        name, steps, success, why = entry
        print(f"recorded {name} steps={steps} success={int(success)} ended={why}", flush=True)

    print(f"recording to {cfg.out} (demo_{recorder.num_episodes} next)", flush=True)

    def _ready() -> None:
        print("robot heard; recording from the next episode start", flush=True)

    node.spin(cfg.episodes, cfg.idle_timeout_s, lambda: bool(stopping), _report, _ready)
    print(f"stopped: {len(core.committed)} episodes committed to {cfg.out}", file=sys.stderr)
    return core.committed

"""``robot-rl import rosbag``: rosbag2 recordings (sqlite3 or mcap) become demonstrations.

Topics are mapped by a small YAML config (:class:`TopicMap`; the default is the project's own
topic names, what ``robot-rl robot sim`` and the policy node use). Messages are read with
``rosbags`` and timed by their bag receive time (commands carry no header).

- Episodes: a new episode starts at each ``True`` on the episode-marker topic (``/reset`` by
  default) and after any gap in the commands longer than ``gap_s``; with ``end_on_success``
  an episode ends at its first success report.
- Resampling to the control rate: on a grid ``t0 + k / rate_hz`` from the first instant at
  which a command, a joint state (and an object pose, when the bag has that topic) are all
  known within the episode, to its last command. Commands, success, intervention and goals
  are zero-order held (a command holds until the next, as ``forward_command_controller``
  does). Joint states and object poses are zero-order held too by default (``resample:
  zoh``: causal, the observation a policy would have had at that instant); ``resample:
  linear`` interpolates them between the samples around each grid time instead (quaternions
  normalized, sign-aligned).
- Observations are built by the same :func:`~robot_rl.robot.runtime.robot_obs` as the policy
  node and the recorder; actions are the commands as ``joint_delta`` actions (or the raw
  joint targets); the reward of a step is the success reported at the next grid time.

The output is written like the recorder's (:class:`~robot_rl.robot.recorder.EpisodeRecorder`),
in one atomic commit.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from robot_rl.errors import ConfigError, DatasetError, OutputExistsError, RobotRLError
from robot_rl.robot.recorder import (
    ACTIONS,
    DEFAULT_JOINTS,
    TMP_SUFFIX,
    EpisodeRecorder,
    joint_arrays,
    joint_delta_action,
    robot_env_args,
)

TYPES = {
    "joint_state": ("sensor_msgs/msg/JointState",),
    "command": ("std_msgs/msg/Float64MultiArray", "trajectory_msgs/msg/JointTrajectory"),
    "object_pose": ("geometry_msgs/msg/PoseStamped",),
    "goal_pose": ("geometry_msgs/msg/PoseStamped",),
    "success": ("std_msgs/msg/Bool",),
    "episode_marker": ("std_msgs/msg/Bool",),
    "intervention": ("std_msgs/msg/Bool",),
}
"""The message types each role is read from."""
TIME_EPS = 1e-6
"""Seconds: a message this close to a grid time counts as at it (bag times are integer ns,
grid times sums of floats)."""
OPTIONAL_TOPICS = ("object_pose", "goal_pose", "success", "episode_marker", "intervention")


@dataclass
class TopicMap:
    """Which bag topic is what, and how to resample (the YAML config's keys)."""

    joint_state: str = "/joint_states"
    """sensor_msgs/JointState (required)."""
    command: str = "/commands"
    """std_msgs/Float64MultiArray joint targets or trajectory_msgs/JointTrajectory (its first
    point) (required)."""
    object_pose: str | None = "/object_pose"
    """geometry_msgs/PoseStamped of the object."""
    goal_pose: str | None = "/goal_pose"
    """geometry_msgs/PoseStamped of the goal (position used)."""
    success: str | None = "/success"
    """std_msgs/Bool success reports."""
    episode_marker: str | None = "/reset"
    """std_msgs/Bool; True starts a new episode."""
    intervention: str | None = "/intervention"
    """std_msgs/Bool, latched: True while a human drives (per-step intervention flag)."""
    rate_hz: float = 20.0
    """Control rate to resample to."""
    resample: Literal["zoh", "linear"] = "zoh"
    """Joint states and object poses: zero-order hold or linear interpolation."""
    action: Literal["joint_delta", "joint_targets"] = "joint_delta"
    """Commands as joint_delta actions (the sim's controller) or raw joint targets."""
    gap_s: float = 1.0
    """A pause in the commands longer than this splits episodes."""
    end_on_success: bool = True
    """End an episode at its first success report."""
    min_steps: int = 2
    """Episodes shorter than this are skipped."""
    env_name: str = "robot"
    """env_name stored in the file (the task's name for a sim robot)."""
    joint_names: list[str] = field(default_factory=lambda: list(DEFAULT_JOINTS))
    """Joint order of observations and commands (7 arm joints, 2 fingers)."""
    required: list[str] = field(default_factory=list)
    """Optional topics that must be in the bag (every topic a config file names)."""


def load_topic_map(path: Path | None) -> TopicMap:
    """The default map, updated by a YAML file; topics it names become required."""
    if path is None:
        return TopicMap()
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    known = {f.name for f in dataclasses.fields(TopicMap)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; known: {sorted(known)}")
    cfg = dataclasses.replace(TopicMap(), **raw)
    cfg.required = sorted({*cfg.required, *(k for k in OPTIONAL_TOPICS if raw.get(k))})
    if cfg.rate_hz <= 0 or cfg.gap_s <= 0 or cfg.min_steps < 1:
        raise ConfigError(f"{path}: rate_hz and gap_s must be positive, min_steps >= 1")
    if cfg.resample not in ("zoh", "linear") or cfg.action not in ACTIONS:
        raise ConfigError(f"{path}: resample is zoh|linear, action is {'|'.join(ACTIONS)}")
    return cfg


# ---- reading --------------------------------------------------------------------------------


@dataclass
class Stream:
    """One topic's messages as arrays: times [N] (s) and values [N, D]."""

    t: np.ndarray
    v: np.ndarray


def read_bag(bag: Path, cfg: TopicMap) -> dict[str, Stream]:
    """The mapped topics of a rosbag2 directory (or .mcap / .db3 file) as streams."""
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ModuleNotFoundError as e:
        raise RobotRLError("importing rosbags needs rosbags: pip install 'robot_rl[ros]'") from e
    from robot_rl.robot.policy_node import pose_array

    if not bag.exists():
        raise DatasetError(f"{bag}: no such bag")
    path = bag.parent if bag.is_file() and bag.suffix in (".db3", ".mcap") else bag
    wanted = {
        "joint_state": cfg.joint_state,
        "command": cfg.command,
        **{k: getattr(cfg, k) for k in OPTIONAL_TOPICS if getattr(cfg, k)},
    }
    names = tuple(cfg.joint_names)
    parse = {
        "sensor_msgs/msg/JointState": lambda m: np.concatenate(joint_arrays(m, names)),
        "geometry_msgs/msg/PoseStamped": pose_array,
        "std_msgs/msg/Bool": lambda m: np.array([float(m.data)]),
        "std_msgs/msg/Float64MultiArray": lambda m: np.asarray(m.data, dtype=np.float64),
        "trajectory_msgs/msg/JointTrajectory": lambda m: (
            np.asarray(m.points[0].positions, dtype=np.float64) if len(m.points) else None
        ),
    }
    out: dict[str, list[tuple[float, np.ndarray]]] = {k: [] for k in wanted}
    try:
        with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
            by_topic = {c.topic: c for c in reader.connections}
            for key, topic in wanted.items():
                if topic not in by_topic and (
                    key in ("joint_state", "command") or key in cfg.required
                ):
                    have = ", ".join(sorted(by_topic)) or "none"
                    raise DatasetError(f"{bag}: no topic {topic} ({key}); the bag has: {have}")
            role = {topic: key for key, topic in wanted.items() if topic in by_topic}
            for conn in by_topic.values():
                allowed = TYPES[role[conn.topic]] if conn.topic in role else ()
                if allowed and conn.msgtype not in allowed:
                    raise DatasetError(
                        f"{bag}: topic {conn.topic} is {conn.msgtype}; {role[conn.topic]} must be "
                        f"{' or '.join(allowed)}"
                    )
            conns = [c for c in reader.connections if c.topic in role]
            for conn, t_ns, raw in reader.messages(connections=conns):
                value = parse[conn.msgtype](reader.deserialize(raw, conn.msgtype))
                if value is not None:
                    out[role[conn.topic]].append((t_ns * 1e-9, value))
    except RobotRLError:
        raise
    except Exception as e:  # rosbags raises many kinds for a broken or foreign bag
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DatasetError(f"{bag}: cannot read as a rosbag2 recording: {msg}") from e
    streams = {}
    for key, items in out.items():
        if not items:
            continue
        try:
            streams[key] = Stream(np.array([t for t, _ in items]), np.stack([v for _, v in items]))
        except ValueError as e:
            raise DatasetError(f"{bag}: {wanted[key]} messages differ in size: {e}") from e
    for key in ("joint_state", "command"):
        if key not in streams:
            raise DatasetError(f"{bag}: topic {wanted[key]} ({key}) has no messages")
    if streams["command"].v.shape[1] != len(names):
        raise DatasetError(
            f"{bag}: {cfg.command} has {streams['command'].v.shape[1]} targets, need {len(names)}"
        )
    return streams


# ---- resampling and episodes ----------------------------------------------------------------


def zoh(s: Stream, grid: np.ndarray) -> np.ndarray:
    """The last value at or before each grid time (within ``TIME_EPS``; grid times before the
    first sample take the first)."""
    idx = np.clip(np.searchsorted(s.t, grid + TIME_EPS, side="right") - 1, 0, len(s.t) - 1)
    return s.v[idx]


def linear(s: Stream, grid: np.ndarray, quat: slice | None = None) -> np.ndarray:
    """Linear interpolation between the samples around each grid time (held at the ends);
    ``quat`` columns are a quaternion: sign-aligned, interpolated, renormalized."""
    hi = np.clip(np.searchsorted(s.t, grid, side="right"), 1, len(s.t) - 1)
    lo = hi - 1
    if len(s.t) == 1:
        return s.v[np.zeros(len(grid), dtype=int)]
    span = s.t[hi] - s.t[lo]
    w = np.clip((grid - s.t[lo]) / np.where(span > 0, span, 1.0), 0.0, 1.0)[:, None]
    a, b = s.v[lo], s.v[hi].copy()
    if quat is not None:
        flip = np.sum(a[:, quat] * b[:, quat], axis=1) < 0
        b[flip, quat] *= -1
    out = (1 - w) * a + w * b
    if quat is not None:
        out[:, quat] /= np.linalg.norm(out[:, quat], axis=1, keepdims=True)
    return out


def segments(streams: dict[str, Stream], cfg: TopicMap) -> list[tuple[float, float]]:
    """(start, end) of each episode: split at episode markers and at gaps in the commands.

    Messages from ``start`` on belong to the episode (its marker, or the last command before
    the gap that opened it); it ends at its last command."""
    cmd_t = streams["command"].t
    cuts = [-np.inf]
    marker = streams.get("episode_marker")
    if marker is not None:
        cuts += sorted(marker.t[marker.v[:, 0] > 0.5].tolist())
    cuts.append(np.inf)
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        t = cmd_t[(cmd_t >= lo) & (cmd_t < hi)]
        if not len(t):
            continue
        breaks = np.flatnonzero(np.diff(t) > cfg.gap_s)
        # an episode's states count from its marker, or from the last command before the gap
        starts = np.r_[max(lo, t[0] - cfg.gap_s), t[breaks]]
        ends = np.r_[t[breaks], t[-1]]
        out += [(float(s), float(e)) for s, e in zip(starts, ends, strict=True)]
    return out


def build_episode(
    streams: dict[str, Stream], cfg: TopicMap, start: float, end: float, kin: Any
) -> dict[str, Any] | None:
    """One episode resampled on the control grid within [start, end]; None if too short."""
    from robot_rl.robot.runtime import robot_obs

    def first_in(key: str) -> float:
        s = streams[key]
        inside = s.t[s.t > start] if key == "command" else s.t[s.t >= start]
        return float(inside[0]) if len(inside) else np.inf

    need = ["command", "joint_state"] + [k for k in ("object_pose",) if k in streams]
    t0 = max(first_in(k) for k in need)
    if not np.isfinite(t0) or t0 > end:
        return None
    dt = 1.0 / cfg.rate_hz
    steps = int(np.floor((end - t0) / dt + 1e-9)) + 1
    grid = t0 + dt * np.arange(steps + 1)  # one more: the outcome of the last step
    n = len(cfg.joint_names)
    hold = cfg.resample == "zoh"
    js = zoh(streams["joint_state"], grid) if hold else linear(streams["joint_state"], grid)
    cmd = zoh(streams["command"], grid)
    obj = None
    if "object_pose" in streams:
        s = streams["object_pose"]
        obj = zoh(s, grid) if hold else linear(s, grid, quat=slice(3, 7))
    goal = zoh(streams["goal_pose"], grid)[:, :3] if "goal_pose" in streams else None
    succ = (
        zoh(streams["success"], grid)[:, 0] > 0.5
        if "success" in streams
        else np.zeros(len(grid), bool)
    )
    # a success report before this episode's start is not this episode's
    if "success" in streams:
        succ &= grid >= first_in("success")
    inter = np.zeros(len(grid), bool)
    if "intervention" in streams:  # latched; off before its first message
        s = streams["intervention"]
        inter = (zoh(s, grid)[:, 0] > 0.5) & (grid + TIME_EPS >= s.t[0])
    obs = [
        robot_obs(kin, js[k, :n], js[k, n:], None if obj is None else obj[k], None if goal is None else goal[k])
        for k in range(len(grid))
    ]  # fmt: skip
    reward = succ[1:].astype(np.float32)
    if cfg.end_on_success and reward.any():
        steps = int(np.argmax(reward)) + 1
    if steps < cfg.min_steps:
        return None
    if cfg.action == "joint_delta":
        actions = np.stack([joint_delta_action(js[k, :n], cmd[k]) for k in range(steps)])
    else:
        actions = cmd[:steps].astype(np.float32)
    keys = sorted(obs[0])
    return {
        "obs": {key: np.stack([o[key] for o in obs[:steps]]) for key in keys},
        "next_obs": {key: np.stack([o[key] for o in obs[1 : steps + 1]]) for key in keys},
        "actions": actions,
        "rewards": reward[:steps],
        "dones": reward[:steps].astype(np.int64),
        "interventions": inter[:steps],
        "timestamps": grid[:steps],
        "attrs": {"success": bool(reward[:steps].any()), "start_time": float(t0)},
    }


def import_rosbag(
    bag: Path, out: Path, cfg: TopicMap, *, overwrite: bool = False, append: bool = False
) -> list[int]:
    """Converts a bag; returns each written episode's length."""
    from robot_rl.robot.kinematics import ArmKinematics

    if out.exists() and not (overwrite or append):
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it or --append")
    streams = read_bag(bag, cfg)
    kin = ArmKinematics()
    episodes = []
    for start, end in segments(streams, cfg):
        ep = build_episode(streams, cfg, start, end, kin)
        if ep is not None:
            episodes.append(ep)
    if not episodes:
        raise DatasetError(
            f"{bag}: no episode of {cfg.min_steps}+ steps (commands with joint states after them)"
        )
    env_args = robot_env_args(cfg.env_name, cfg.action, cfg.rate_hz)
    env_args["source"] = f"rosbag:{bag.name}"
    if append and out.exists():
        EpisodeRecorder(out, env_args, append=True).write_episodes(episodes)
    else:  # a fresh file beside the target, renamed over it: an old file survives a failure
        tmp = out.with_name(f".{out.name}.import{TMP_SUFFIX}")
        tmp.unlink(missing_ok=True)
        try:
            EpisodeRecorder(tmp, env_args).write_episodes(episodes)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return [len(ep["actions"]) for ep in episodes]


@dataclass
class RosbagImportConfig:
    """Convert a rosbag2 recording (sqlite3 or mcap) into robomimic-layout demonstrations."""

    bag: tyro.conf.Positional[Path]
    """rosbag2 directory (with metadata.yaml), or its .db3 / .mcap file."""
    out: Path
    """HDF5 file to write."""
    config: Path | None = None
    """YAML topic map (keys of TopicMap; default: the project's topic names, 20 Hz, zoh)."""
    overwrite: bool = False
    """Replace an existing output file."""
    append: bool = False
    """Add the episodes to an existing file (same env name and observation keys)."""


def run_import(cfg: RosbagImportConfig) -> list[int]:
    topics = load_topic_map(cfg.config)
    lengths = import_rosbag(cfg.bag, cfg.out, topics, overwrite=cfg.overwrite, append=cfg.append)
    print(
        f"{cfg.bag} -> {cfg.out}: {len(lengths)} episodes, {sum(lengths)} steps at "
        f"{topics.rate_hz:g} Hz ({topics.resample}), actions {topics.action}"
    )
    return lengths

"""A minimal stand-in for the part of rclpy's API the ``robot_rl_ros`` shells use, for running
their wiring (parameters, subscriptions, publishers, timers, message classes) where ROS 2 is
not installed. It is not ROS: one in-process bus, a simulated clock, and rosbags' message
classes as the generated ones. What it shows is that the shells call the robot_rl cores the way
the DDS verbs do; ROS itself is exercised only on a machine that has it.
"""

from __future__ import annotations

import heapq
import sys
import types
from dataclasses import dataclass, field
from typing import Any


class Bus:
    """Topics, queued messages, timers and a simulated clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.subs: dict[str, list[Any]] = {}
        self.pubs: dict[str, int] = {}
        self.queue: list[tuple[str, Any]] = []
        self.timers: list[tuple[float, int, Any]] = []
        self.published: dict[str, list[Any]] = {}
        self._n = 0

    def deliver(self) -> None:
        while self.queue:
            topic, msg = self.queue.pop(0)
            for cb in list(self.subs.get(topic, [])):
                cb(msg)

    def run(self, seconds: float) -> None:
        """Advance the clock, firing due timers in time order and delivering between them."""
        end = self.now + seconds
        while self.timers and self.timers[0][0] <= end:
            due, n, timer = heapq.heappop(self.timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, due)
            self.deliver()
            timer.callback()
            self.deliver()
            if not timer.cancelled:
                heapq.heappush(self.timers, (due + timer.period, n, timer))
        self.now = end


BUS = Bus()


@dataclass
class Timer:
    period: float
    callback: Any
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Publisher:
    def __init__(self, topic: str) -> None:
        self.topic = topic

    def publish(self, msg: Any) -> None:
        BUS.queue.append((self.topic, msg))
        BUS.published.setdefault(self.topic, []).append(msg)


@dataclass
class Subscription:
    topic_name: str


@dataclass
class Param:
    value: Any


class Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, **_: Any) -> None:
        self.lines.append(msg)

    warn = warning = error = info


@dataclass
class Time:
    nanoseconds: int


class Clock:
    def now(self) -> Time:
        return Time(int(round(BUS.now * 1e9)))


class Node:
    overrides: dict[str, dict[str, Any]] = {}
    """Node name -> parameter values (what a launch file's YAML would give)."""
    remaps: dict[str, dict[str, str]] = {}
    """Node name -> relative topic -> absolute topic."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._params: dict[str, Any] = {}
        self._logger = Logger()

    def _topic(self, topic: str) -> str:
        topic = Node.remaps.get(self.name, {}).get(topic, topic)
        return topic if topic.startswith("/") else "/" + topic

    def declare_parameter(self, name: str, value: Any, descriptor: Any = None) -> None:
        given = Node.overrides.get(self.name, {})
        self._params[name] = given.get(name, value)

    def get_parameter(self, name: str) -> Param:
        return Param(self._params[name])

    def create_subscription(self, msg_type: Any, topic: str, cb: Any, qos: Any) -> Subscription:
        full = self._topic(topic)
        BUS.subs.setdefault(full, []).append(cb)
        return Subscription(full)

    def create_publisher(self, msg_type: Any, topic: str, qos: Any) -> Publisher:
        full = self._topic(topic)
        BUS.pubs[full] = BUS.pubs.get(full, 0) + 1
        return Publisher(full)

    def create_timer(self, period: float, cb: Any) -> Timer:
        t = Timer(period, cb)
        BUS._n += 1
        heapq.heappush(BUS.timers, (BUS.now + period, BUS._n, t))
        return t

    def count_publishers(self, topic: str) -> int:
        return BUS.pubs.get(topic, 0)

    def get_clock(self) -> Clock:
        return Clock()

    def get_logger(self) -> Logger:
        return self._logger

    def destroy_node(self) -> None:
        pass


@dataclass
class QoSProfile:
    reliability: Any = None
    history: Any = None
    depth: int = 10
    durability: Any = None


class _Enum:
    def __getattr__(self, name: str) -> str:
        return name


@dataclass
class ParameterDescriptor:
    description: str = ""
    dynamic_typing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def install(monkeypatch: Any) -> Bus:
    """Put the stand-in modules (and rosbags' message classes) in ``sys.modules``."""
    from rosbags.typesys import Stores, get_typestore

    global BUS
    BUS = Bus()
    Node.overrides, Node.remaps = {}, {}
    store = get_typestore(Stores.ROS2_HUMBLE)
    mods: dict[str, types.ModuleType] = {}

    def mod(name: str) -> types.ModuleType:
        mods[name] = mods.get(name) or types.ModuleType(name)
        return mods[name]

    rclpy = mod("rclpy")
    rclpy.init = lambda args=None: None
    rclpy.ok = lambda: True
    rclpy.shutdown = lambda: None
    mod("rclpy.node").Node = Node
    qos = mod("rclpy.qos")
    qos.QoSProfile = QoSProfile
    qos.ReliabilityPolicy = qos.HistoryPolicy = qos.DurabilityPolicy = _Enum()
    mod("rcl_interfaces")
    mod("rcl_interfaces.msg").ParameterDescriptor = ParameterDescriptor
    for full, cls in store.types.items():
        pkg, kind, name = full.split("/")
        if kind == "msg" and pkg in (
            "std_msgs",
            "sensor_msgs",
            "geometry_msgs",
            "trajectory_msgs",
            "builtin_interfaces",
        ):
            mod(pkg)
            setattr(mod(f"{pkg}.msg"), name, cls)
    for name, m in mods.items():
        monkeypatch.setitem(sys.modules, name, m)
    return BUS

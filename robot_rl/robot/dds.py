"""Cyclone DDS transport with ROS 2 naming and explicit QoS.

Topic ``/x`` is DDS topic ``rt/x``; types come from :mod:`robot_rl.robot.msgs`. Commands and
control signals are reliable keep-last 10 (the ROS default); sensor data is best-effort depth 5.
"""

from __future__ import annotations

import time
from typing import Any

from robot_rl.errors import RobotRLError

RELIABLE = "reliable"
SENSOR = "sensor"
RECORD = "record"
SENSOR_RECORD = "sensor_record"
"""Reader profiles of a recorder: as ``reliable`` / ``sensor`` but keep every sample until it is
taken, so nothing is lost while the recorder is busy committing an episode."""


def _dds() -> Any:
    try:
        import cyclonedds.core as core
        import cyclonedds.domain as domain
        import cyclonedds.pub as pub
        import cyclonedds.sub as sub
        import cyclonedds.topic as topic
        import cyclonedds.util as util
    except ModuleNotFoundError as e:
        raise RobotRLError("the DDS transport needs cyclonedds: pip install 'robot_rl[ros]'") from e
    return core, domain, pub, sub, topic, util


def dds_topic_name(ros_topic: str) -> str:
    """ROS 2 topic ``/a/b`` -> DDS topic ``rt/a/b``."""
    if not ros_topic.startswith("/") or ros_topic.endswith("/") or "//" in ros_topic:
        raise RobotRLError(f"ROS topic must be absolute like '/joint_states', got {ros_topic!r}")
    return "rt" + ros_topic


def make_qos(profile: str) -> Any:
    """QoS for ``reliable`` (commands/control) or ``sensor`` (state streams)."""
    core, _, _, _, _, util = _dds()
    P = core.Policy
    if profile == RELIABLE:
        return core.Qos(
            P.Reliability.Reliable(max_blocking_time=util.duration(milliseconds=100)),
            P.History.KeepLast(10),
            P.Durability.Volatile,
        )
    if profile == SENSOR:
        return core.Qos(P.Reliability.BestEffort, P.History.KeepLast(5), P.Durability.Volatile)
    if profile == RECORD:
        return core.Qos(
            P.Reliability.Reliable(max_blocking_time=util.duration(milliseconds=100)),
            P.History.KeepAll,
            P.Durability.Volatile,
        )
    if profile == SENSOR_RECORD:
        return core.Qos(P.Reliability.BestEffort, P.History.KeepAll, P.Durability.Volatile)
    profiles = [RELIABLE, SENSOR, RECORD, SENSOR_RECORD]
    raise RobotRLError(f"unknown QoS profile {profile!r}; choose from {profiles}")


class Node:
    """One DDS participant with ROS-named writers and readers."""

    def __init__(self, domain_id: int = 0) -> None:
        _, domain, _, _, _, _ = _dds()
        self.participant = domain.DomainParticipant(domain_id)
        self._topics: dict[str, Any] = {}

    def _topic(self, ros_topic: str, msg_type: type) -> Any:
        _, _, _, _, topic, _ = _dds()
        name = dds_topic_name(ros_topic)
        if name not in self._topics:
            self._topics[name] = topic.Topic(self.participant, name, msg_type)
        return self._topics[name]

    def writer(self, ros_topic: str, msg_type: type, qos: str = RELIABLE) -> Any:
        _, _, pub, _, _, _ = _dds()
        return pub.DataWriter(self.participant, self._topic(ros_topic, msg_type), qos=make_qos(qos))

    def reader(self, ros_topic: str, msg_type: type, qos: str = RELIABLE) -> Reader:
        _, _, _, sub, _, _ = _dds()
        r = sub.DataReader(self.participant, self._topic(ros_topic, msg_type), qos=make_qos(qos))
        return Reader(r, msg_type)


class Reader:
    """A DataReader with deadline-aware take."""

    def __init__(self, reader: Any, msg_type: type | None = None) -> None:
        self.reader = reader
        self.msg_type = msg_type

    def take_all(self) -> list[Any]:
        """Every valid sample waiting now (never blocks); skips the invalid samples that
        announce a writer leaving."""
        if self.msg_type is not None:
            return [s for s in self.reader.take(N=64) if isinstance(s, self.msg_type)]
        return [
            s
            for s in self.reader.take(N=64)
            if s is not None and hasattr(s, "__dataclass_fields__")
        ]

    def take_latest(self) -> Any | None:
        """The newest waiting sample, or None (never blocks)."""
        got = self.take_all()
        return got[-1] if got else None

    def wait_take(self, deadline: float, poll_s: float = 0.0002) -> Any | None:
        """Newest sample arriving before ``deadline`` (``time.monotonic()``), else None."""
        while True:
            got = self.take_latest()
            if got is not None:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(poll_s, left))


def wait_matched(writer: Any, count: int = 1, timeout_s: float = 5.0) -> bool:
    """Block until ``writer`` sees ``count`` matched readers (or time out)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if len(writer.get_matched_subscriptions()) >= count:
            return True
        time.sleep(0.005)
    return False

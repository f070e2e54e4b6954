"""Wire types of the actor-learner link (Cyclone DDS ``@final`` IDL structs, plain CDR).

Not ROS standard messages (ROS has none for this): a package of their own,
``robot_rl_msgs``, named the ROS 2 way so ``ros2 topic echo`` can show them once an IDL
package is built from these fields. Payloads are ``sequence<uint8>`` (written from ``bytes``) holding
safetensors: self-describing (names, dtypes, shapes), no code, nothing pickled.
No ``from __future__ import annotations`` here: cyclonedds resolves annotations as real types.
"""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.annotations import final
from cyclonedds.idl.types import float64, int32, int64, sequence, uint8


@final
@dataclass
class LinkHeartbeat(IdlStruct, typename="robot_rl_msgs::msg::dds_::LinkHeartbeat_"):
    role: str = ""
    """``actor`` or ``learner``."""
    name: str = ""
    """Stable node name (an actor's transitions are keyed by it)."""
    instance: str = ""
    """Random id of this process run: a new one means the peer restarted."""
    stamp: float64 = 0.0
    """Wall time of sending (seconds)."""
    info: str = ""
    """JSON status (weights version, transitions, updates)."""


@final
@dataclass
class TransitionBatch(IdlStruct, typename="robot_rl_msgs::msg::dds_::TransitionBatch_"):
    actor: str = ""
    instance: str = ""
    first_seq: int64 = 0
    """Sequence id of the first row (ids are consecutive within a batch)."""
    count: int32 = 0
    oldest_held: int64 = 0
    """The actor's oldest unacknowledged id: ids below it are acknowledged or dropped."""
    payload: sequence[uint8] = field(default_factory=bytes)
    """safetensors of the rows (see :func:`robot_rl.robot.link.encode_rows`)."""


@final
@dataclass
class TransitionAck(IdlStruct, typename="robot_rl_msgs::msg::dds_::TransitionAck_"):
    actor: str = ""
    learner: str = ""
    """Learner instance id."""
    through: int64 = -1
    """Every id <= this is stored durably by the learner."""
    nack: bool = False
    """The learner saw a gap: resend from ``through + 1``."""


@final
@dataclass
class WeightsChunk(IdlStruct, typename="robot_rl_msgs::msg::dds_::WeightsChunk_"):
    learner: str = ""
    version: int64 = 0
    index: int32 = 0
    total: int32 = 1
    size: int64 = 0
    """Length of the whole payload (bytes)."""
    stamp: float64 = 0.0
    """Wall time the learner published this version (for latency figures; not signed)."""
    signature: sequence[uint8] = field(default_factory=bytes)
    """HMAC-SHA256 over domain tag, version and the whole payload."""
    data: sequence[uint8] = field(default_factory=bytes)

"""Actor-learner link: transitions robot -> learner, signed weights learner -> robot.

Transport-agnostic logic first, then the Cyclone DDS binding (:class:`ActorLink`,
:class:`LearnerLink`), each running its network I/O on a thread of its own so the robot's
control loop never waits on the network.

Transitions. The actor numbers every transition (``seq`` 0, 1, 2, ...) and keeps it in an
:class:`Outbox` until the learner acknowledges it. The learner acknowledges cumulatively
(``through``: every id up to it is stored), and only after the rows are on disk in its journal
(fsync + rename), so a learner killed at any moment has either stored a row (and the journal
gives it back on restart) or not acknowledged it (and the actor still holds it). The actor
sends go-back-N: batches of ``batch`` rows, at most ``window`` unacknowledged in flight; it
rewinds to its oldest held row when the learner asks (``nack``), when a new learner instance
appears, and when no ack arrives for ``resend_s``. When the outbox is full (``capacity``
rows, a learner away for long) it drops its oldest rows and counts them: the control loop
never blocks; the learner sees the gap from ``oldest_held`` and reports it.

Weights. The learner broadcasts ``(version, safetensors bytes)`` in chunks, signed with
HMAC-SHA256 under a shared key (:func:`load_key`: a file or an environment variable, never a
committed config). The robot reassembles, checks the signature (constant time), that the
version is newer than what it runs, and that tensor names, dtypes and shapes match its policy,
and that every value is finite, all on the link thread; it then stages the weights, and the
control loop swaps them in between episodes (:meth:`ActorLink.take_weights`). Anything that
fails is rejected with a reason and the robot keeps its last good weights.

Liveness. Both sides send heartbeats every ``heartbeat_s``; a peer silent for ``dead_after_s``
is reported dead (a log line and :attr:`PeerWatch.alive`), and each side keeps running: the
robot on its last good weights, the learner waiting. Every DDS write is reliable with a 100 ms
blocking limit, every wait has a deadline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.errors import RobotRLError

KEY_ENV = "ROBOT_RL_LINK_KEY"
"""Environment variable holding the shared weights key (alternative: a key file)."""
MIN_KEY_BYTES = 16
SIGN_TAG = b"robot_rl.weights.v1\0"

TRANSITIONS_TOPIC = "/robot_rl/transitions"
ACK_TOPIC = "/robot_rl/transitions_ack"
WEIGHTS_TOPIC = "/robot_rl/weights"
HEARTBEAT_TOPIC = "/robot_rl/heartbeat"


class LinkError(RobotRLError):
    """A link message was rejected (the reason is the message)."""


class DuplicateWeights(LinkError):
    """A correctly signed re-broadcast of the version already accepted (ignored)."""


# ---- keys and signatures ----------------------------------------------------------------------


def load_key(path: str | Path | None = None, env: str = KEY_ENV) -> bytes:
    """The shared key from ``path`` (file contents, stripped) or else environment ``env``."""
    if path is not None:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as e:
            raise RobotRLError(f"cannot read link key file {path}: {e.strerror}") from e
        where = str(path)
    else:
        key = os.environ.get(env, "").encode()
        where = f"${env}"
        if not key:
            raise RobotRLError(f"no link key: pass --key-file or set {env} (>= 16 bytes)")
    if len(key) < MIN_KEY_BYTES:
        raise RobotRLError(f"link key from {where} is {len(key)} bytes; need >= {MIN_KEY_BYTES}")
    return key


def sign(key: bytes, version: int, payload: bytes) -> bytes:
    """HMAC-SHA256 over the domain tag, the version and the payload."""
    return hmac.new(key, SIGN_TAG + struct.pack(">q", version) + payload, hashlib.sha256).digest()


# ---- payloads (safetensors, never pickle) -------------------------------------------------------


def encode_state(state: dict[str, Any]) -> bytes:
    """A module state dict as safetensors bytes."""
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def decode_state(payload: bytes) -> dict[str, Any]:
    """safetensors bytes -> tensors (LinkError if malformed)."""
    from safetensors.torch import load

    try:
        return load(payload)
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise LinkError(f"weights payload is not valid safetensors: {e}") from e


def state_template(state: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names -> (shape, dtype) a weights message must match."""
    return {k: (tuple(v.shape), str(v.dtype)) for k, v in state.items()}


def encode_rows(rows: list[dict[str, np.ndarray]], seqs: list[int]) -> bytes:
    """Transition rows (same keys, per-row arrays) as one safetensors blob, ``seq`` included."""
    from safetensors.numpy import save

    out = {k: np.ascontiguousarray(np.stack([r[k] for r in rows])) for k in rows[0]}
    out["seq"] = np.asarray(seqs, dtype=np.int64)
    return save(out)


def decode_rows(payload: bytes) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    try:
        rows = load(payload)
    except Exception as e:
        raise LinkError(f"transition payload is not valid safetensors: {e}") from e
    if "seq" not in rows:
        raise LinkError("transition payload has no 'seq'")
    return rows


# ---- weights: chunking, reassembly, verification ------------------------------------------------


@dataclass
class Chunk:
    """One piece of a weights broadcast (transport-neutral mirror of the wire struct)."""

    learner: str
    version: int
    index: int
    total: int
    size: int
    stamp: float
    signature: bytes
    data: bytes


def make_chunks(
    key: bytes, version: int, payload: bytes, learner: str, chunk_bytes: int = 64 * 1024
) -> list[Chunk]:
    sig = sign(key, version, payload)
    total = max(1, -(-len(payload) // chunk_bytes))
    now = time.time()
    return [
        Chunk(learner, version, i, total, len(payload), now, sig,
              payload[i * chunk_bytes : (i + 1) * chunk_bytes])
        for i in range(total)
    ]  # fmt: skip


class Assembler:
    """Reassembles chunks; keeps only the newest version in progress."""

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._parts: dict[int, bytes] = {}
        self._first: Chunk | None = None

    def add(self, c: Chunk) -> tuple[Chunk, bytes] | None:
        """The first chunk and the whole payload once every piece of a version is in."""
        key = (c.learner, c.version)
        if key != self._key:
            if self._key is not None and c.learner == self._key[0] and c.version < self._key[1]:
                return None  # a stale version's straggler
            self._key, self._parts, self._first = key, {}, c
        if not (0 <= c.index < c.total) or c.total != self._first.total:  # type: ignore[union-attr]
            raise LinkError(f"weights v{c.version}: chunk {c.index} of {c.total} is inconsistent")
        self._parts[c.index] = c.data
        if len(self._parts) < c.total:
            return None
        payload = b"".join(self._parts[i] for i in range(c.total))
        first = self._first
        self._key, self._parts, self._first = None, {}, None
        if len(payload) != first.size:  # type: ignore[union-attr]
            raise LinkError(
                f"weights v{c.version}: truncated ({len(payload)} of {first.size} bytes)"  # type: ignore[union-attr]
            )
        return first, payload  # type: ignore[return-value]


class WeightsVerifier:
    """Checks a complete weights message against the key and the robot's policy."""

    def __init__(self, key: bytes, template: dict[str, tuple[tuple[int, ...], str]]) -> None:
        self.key = key
        self.template = template
        self.version = -1
        """Newest version accepted."""

    def verify(self, version: int, payload: bytes, signature: bytes) -> dict[str, Any]:
        """The state dict, or LinkError naming why it is rejected."""
        import torch

        if not hmac.compare_digest(sign(self.key, version, payload), signature):
            raise LinkError(f"weights v{version}: bad signature (tampered, truncated or wrong key)")
        if version == self.version:
            raise DuplicateWeights(f"weights v{version}: already have it")
        if version < self.version:
            raise LinkError(f"weights v{version}: not newer than v{self.version}")
        state = decode_state(payload)
        got = state_template(state)
        if set(got) != set(self.template):
            missing = sorted(set(self.template) - set(got))[:3]
            extra = sorted(set(got) - set(self.template))[:3]
            raise LinkError(f"weights v{version}: tensor names differ (missing {missing}, "
                            f"unexpected {extra})")  # fmt: skip
        for name, want in self.template.items():
            if got[name] != want:
                raise LinkError(f"weights v{version}: {name} is {got[name]}, policy has {want}")
        for name, t in state.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise LinkError(f"weights v{version}: {name} has non-finite values")
        self.version = version
        return state


# ---- transitions: actor outbox, learner inbox -------------------------------------------------


class Outbox:
    """The actor's unacknowledged transitions (bounded; drops the oldest when full)."""

    def __init__(self, capacity: int = 200_000, batch: int = 32, window: int = 2048) -> None:
        if min(capacity, batch, window) < 1:
            raise RobotRLError("outbox capacity, batch and window must be >= 1")
        self.capacity, self.batch, self.window = capacity, batch, window
        self._rows: deque[dict[str, np.ndarray]] = deque()
        self._first = 0
        """Seq of ``_rows[0]``."""
        self.next_seq = 0
        self.send_from = 0
        self.acked = -1
        self.dropped = 0
        self._lock = threading.Lock()

    def push(self, row: dict[str, np.ndarray]) -> int:
        """Store one transition (never blocks on the network); its seq."""
        with self._lock:
            if len(self._rows) >= self.capacity:
                self._rows.popleft()
                self._first += 1
                self.dropped += 1
                self.send_from = max(self.send_from, self._first)
            self._rows.append(row)
            seq = self.next_seq
            self.next_seq += 1
            return seq

    @property
    def held(self) -> int:
        return len(self._rows)

    def ack(self, through: int, nack: bool = False) -> None:
        with self._lock:
            while self._rows and self._first <= through:
                self._rows.popleft()
                self._first += 1
            self.acked = max(self.acked, through)
            if nack:
                self.send_from = max(self._first, through + 1)
            else:
                self.send_from = max(self.send_from, self._first)

    def rewind(self) -> None:
        """Send everything held again (a new learner, or no ack for a while)."""
        with self._lock:
            self.send_from = self._first

    def next_batch(self) -> tuple[int, int, list[dict[str, np.ndarray]]] | None:
        """``(first_seq, oldest_held, rows)`` to send now, or None (nothing, or window full)."""
        with self._lock:
            end = min(self.next_seq, self.send_from + self.batch, self._first + self.window)
            if end <= self.send_from:
                return None
            i0 = self.send_from - self._first
            rows = [self._rows[i] for i in range(i0, i0 + end - self.send_from)]
            first = self.send_from
            self.send_from = end
            return first, self._first, rows


class Inbox:
    """The learner's view of each actor's ids: what is stored, what to ask again."""

    def __init__(self, expected: dict[str, int] | None = None) -> None:
        self.expected: dict[str, int] = dict(expected or {})
        """Actor name -> next id to store."""
        self.gaps: dict[str, int] = {}
        """Actor name -> ids the actor dropped (its outbox overflowed)."""

    def accept(self, actor: str, first: int, count: int, oldest_held: int) -> tuple[int, int, bool]:
        """``(skip, through, nack)``: store the batch's rows from ``skip`` on (none if
        ``skip >= count``), then acknowledge ``through`` (a nack asks to resend after it)."""
        exp = self.expected.get(actor, oldest_held)
        if oldest_held > exp:  # the actor no longer holds ids exp..oldest_held-1
            self.gaps[actor] = self.gaps.get(actor, 0) + oldest_held - exp
            exp = oldest_held
        if first > exp:  # an earlier batch is missing: ask again
            self.expected[actor] = exp
            return count, exp - 1, True
        skip = exp - first
        if skip < count:
            exp = first + count
        self.expected[actor] = exp
        return skip, exp - 1, False


# ---- liveness ---------------------------------------------------------------------------------


@dataclass
class PeerWatch:
    """Tracks one kind of peer from its heartbeats."""

    dead_after_s: float = 1.0
    last_seen: float = -np.inf
    instance: str | None = None
    alive: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    deaths: list[float] = field(default_factory=list)
    """Monotonic times a death was detected."""
    restarts: int = 0

    def seen(self, instance: str, now: float, info: dict[str, Any] | None = None) -> bool:
        """Record a heartbeat; True if this is a new peer instance (first or restarted)."""
        new = instance != self.instance
        if new and self.instance is not None:
            self.restarts += 1
        self.instance, self.last_seen, self.alive = instance, now, True
        self.info = info or {}
        return new

    def check(self, now: float) -> bool:
        """True exactly when the peer has just been found dead."""
        if self.alive and now - self.last_seen > self.dead_after_s:
            self.alive = False
            self.deaths.append(now)
            return True
        return False


def _log(msg: str) -> None:
    print(f"[link] {msg}", file=sys.stderr, flush=True)


# ---- Cyclone DDS binding ----------------------------------------------------------------------


def _link_qos(depth: int) -> Any:
    from robot_rl.robot.dds import _dds

    core, _, _, _, _, util = _dds()
    P = core.Policy
    return core.Qos(
        P.Reliability.Reliable(max_blocking_time=util.duration(milliseconds=100)),
        P.History.KeepLast(depth),
        P.Durability.Volatile,
    )


class _Endpoint:
    """A DDS participant with the link's four topics."""

    def __init__(self, domain_id: int, role: str, name: str, heartbeat_s: float) -> None:
        from robot_rl.robot import dds
        from robot_rl.robot import link_msgs as lm

        _, _, pub, sub, _, _ = dds._dds()
        self.lm, self.role, self.name = lm, role, name
        self.instance = uuid.uuid4().hex[:12]
        self.node = dds.Node(domain_id)
        self.heartbeat_s = heartbeat_s

        def w(topic: str, t: type, depth: int) -> Any:
            return pub.DataWriter(
                self.node.participant, self.node._topic(topic, t), qos=_link_qos(depth)
            )

        def r(topic: str, t: type, depth: int) -> Any:
            return dds.Reader(
                sub.DataReader(
                    self.node.participant, self.node._topic(topic, t), qos=_link_qos(depth)
                ),
                t,
            )

        self._w, self._r = w, r
        self.hb_w = w(HEARTBEAT_TOPIC, lm.LinkHeartbeat, 10)
        self.hb_r = r(HEARTBEAT_TOPIC, lm.LinkHeartbeat, 64)
        self._next_hb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def heartbeat(self, now: float, info: dict[str, Any]) -> None:
        if now >= self._next_hb:
            self._next_hb = now + self.heartbeat_s
            self.hb_w.write(
                self.lm.LinkHeartbeat(
                    self.role, self.name, self.instance, time.time(), json.dumps(info)
                )
            )

    def peer_heartbeats(self, role: str) -> list[Any]:
        return [h for h in self.hb_r.take_all() if h.role == role and h.instance != self.instance]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.role}-link", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.spin_once(time.monotonic())
            except Exception as e:  # keep the link (and the robot) alive; report
                msg = f"{type(e).__name__}: {e}"
                self.errors.append(msg)
                _log(f"{self.role} link error: {msg}")
                busy = False
            if not busy:
                self._stop.wait(0.002)

    def spin_once(self, now: float) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.node.participant = None


class ActorLink(_Endpoint):
    """The robot side: streams transitions, receives and checks weights (own thread)."""

    def __init__(
        self,
        key: bytes,
        template: dict[str, tuple[tuple[int, ...], str]],
        *,
        domain_id: int = 0,
        name: str = "robot",
        heartbeat_s: float = 0.1,
        dead_after_s: float = 1.0,
        resend_s: float = 0.5,
        outbox: Outbox | None = None,
        start: bool = True,
    ) -> None:
        super().__init__(domain_id, "actor", name, heartbeat_s)
        lm = self.lm
        self.outbox = outbox or Outbox()
        self.verifier = WeightsVerifier(key, template)
        self.assembler = Assembler()
        self.learner = PeerWatch(dead_after_s)
        self.resend_s = resend_s
        self.batch_w = self._w(TRANSITIONS_TOPIC, lm.TransitionBatch, 64)
        self.ack_r = self._r(ACK_TOPIC, lm.TransitionAck, 256)
        self.weights_r = self._r(WEIGHTS_TOPIC, lm.WeightsChunk, 64)
        self._pending: tuple[int, dict[str, Any], float] | None = None
        self._pending_lock = threading.Lock()
        self.running_version = -1
        self.rejected: list[str] = []
        self.swap_latency_s: list[float] = []
        """Learner publish -> swapped in (waits for the episode to end)."""
        self.arrival_latency_s: list[float] = []
        """Learner publish -> verified and staged on the robot (the wire and the checks)."""
        self._last_progress = time.monotonic()
        if start:
            self.start()

    # control-loop side (never blocks on the network)

    def push(self, row: dict[str, np.ndarray]) -> int:
        return self.outbox.push(row)

    def take_weights(self) -> tuple[int, dict[str, Any]] | None:
        """Verified weights staged since the last call (newest only), or None."""
        with self._pending_lock:
            got, self._pending = self._pending, None
        if got is None:
            return None
        version, state, stamp = got
        self.running_version = version
        self.swap_latency_s.append(time.time() - stamp)
        return version, state

    def status(self) -> dict[str, Any]:
        ob = self.outbox
        return {
            "learner_alive": self.learner.alive,
            "learner_deaths": len(self.learner.deaths),
            "learner_restarts": self.learner.restarts,
            "weights_version": self.running_version,
            "weights_rejected": len(self.rejected),
            "sent_through": ob.acked,
            "held": ob.held,
            "dropped": ob.dropped,
        }

    # link thread

    def spin_once(self, now: float) -> bool:
        ob = self.outbox
        self.heartbeat(now, {"acked": ob.acked, "held": ob.held, "weights": self.running_version})
        for hb in self.peer_heartbeats("learner"):
            if self.learner.seen(hb.instance, now, json.loads(hb.info or "{}")):
                _log(f"learner {hb.name} ({hb.instance}) up: resending {ob.held} held transitions")
                ob.rewind()
                self._last_progress = now
        if self.learner.check(now):
            _log(f"learner silent for {self.learner.dead_after_s:.1f} s: robot continues on "
                 f"weights v{self.running_version}, holding {ob.held} transitions")  # fmt: skip
        for ack in self.ack_r.take_all():
            if ack.actor != self.name:
                continue
            if ack.through > ob.acked or ack.nack:
                self._last_progress = now
            ob.ack(ack.through, ack.nack)
        if ob.held and now - self._last_progress > self.resend_s:
            ob.rewind()
            self._last_progress = now
        for msg in self.weights_r.take_all():
            self._on_chunk(msg)
        busy = False
        if self.learner.alive:
            for _ in range(4):
                nb = ob.next_batch()
                if nb is None:
                    break
                first, oldest, rows = nb
                seqs = list(range(first, first + len(rows)))
                self.batch_w.write(self.lm.TransitionBatch(
                    self.name, self.instance, first, len(rows), oldest, encode_rows(rows, seqs)
                ))  # fmt: skip
                busy = True
        return busy

    def _on_chunk(self, msg: Any) -> None:
        c = Chunk(msg.learner, msg.version, msg.index, msg.total, msg.size, msg.stamp,
                  bytes(msg.signature), bytes(msg.data))  # fmt: skip
        try:
            done = self.assembler.add(c)
            if done is None:
                return
            first, payload = done
            state = self.verifier.verify(first.version, payload, first.signature)
        except LinkError as e:
            if isinstance(e, DuplicateWeights):
                return  # a re-broadcast of what is already staged or running
            self.rejected.append(str(e))
            _log(f"rejected: {e}; keeping weights v{self.running_version}")
            return
        self.arrival_latency_s.append(time.time() - first.stamp)
        with self._pending_lock:
            self._pending = (first.version, state, first.stamp)


class LearnerLink(_Endpoint):
    """The learner side: stores transitions durably, then acks; broadcasts signed weights.

    ``store(actor, rows)`` is called on the link thread with the new rows of a batch (a dict of
    arrays with a leading row dim, ``seq`` included) and must make them durable before it
    returns; only then is the batch acknowledged.
    """

    def __init__(
        self,
        key: bytes,
        store: Callable[[str, dict[str, np.ndarray]], None],
        *,
        domain_id: int = 0,
        name: str = "learner",
        expected: dict[str, int] | None = None,
        heartbeat_s: float = 0.1,
        dead_after_s: float = 1.0,
        chunk_bytes: int = 64 * 1024,
        info: Callable[[], dict[str, Any]] | None = None,
        start: bool = True,
    ) -> None:
        super().__init__(domain_id, "learner", name, heartbeat_s)
        lm = self.lm
        self.key = key
        self.store = store
        self.inbox = Inbox(expected)
        self.actors: dict[str, PeerWatch] = {}
        self.dead_after_s = dead_after_s
        self.chunk_bytes = chunk_bytes
        self.info = info or dict
        self.batch_r = self._r(TRANSITIONS_TOPIC, lm.TransitionBatch, 256)
        self.ack_w = self._w(ACK_TOPIC, lm.TransitionAck, 64)
        self.weights_w = self._w(WEIGHTS_TOPIC, lm.WeightsChunk, 64)
        self._latest: list[Chunk] | None = None
        self._send_lock = threading.Lock()
        self.received = 0
        if start:
            self.start()

    def publish_weights(self, version: int, state: dict[str, Any]) -> None:
        """Sign and broadcast ``state`` as ``version`` (re-sent to actors that appear later)."""
        chunks = make_chunks(
            self.key, version, encode_state(state), self.instance, self.chunk_bytes
        )
        with self._send_lock:
            self._latest = chunks
        self._write_chunks(chunks)

    def _write_chunks(self, chunks: list[Chunk]) -> None:
        with self._send_lock:
            for c in chunks:
                self.weights_w.write(self.lm.WeightsChunk(
                    c.learner, c.version, c.index, c.total, c.size, c.stamp, c.signature, c.data
                ))  # fmt: skip

    def spin_once(self, now: float) -> bool:
        self.heartbeat(now, {"received": self.received, **self.info()})
        for hb in self.peer_heartbeats("actor"):
            watch = self.actors.setdefault(hb.name, PeerWatch(self.dead_after_s))
            if watch.seen(hb.instance, now):
                _log(f"actor {hb.name} ({hb.instance}) up")
                if self._latest is not None:
                    self._write_chunks(self._latest)
        for name, watch in self.actors.items():
            if watch.check(now):
                _log(f"actor {name} silent for {self.dead_after_s:.1f} s: learner waits")
        busy = False
        for b in self.batch_r.take_all():
            busy = True
            skip, through, nack = self.inbox.accept(b.actor, b.first_seq, b.count, b.oldest_held)
            if skip < b.count:
                rows = decode_rows(bytes(b.payload))
                if len(rows["seq"]) != b.count or int(rows["seq"][0]) != b.first_seq:
                    raise LinkError(f"batch from {b.actor}: header and payload ids differ")
                new = {k: v[skip:] for k, v in rows.items()}
                self.store(b.actor, new)
                self.received += b.count - skip
            self.ack_w.write(self.lm.TransitionAck(b.actor, self.instance, through, nack))
        return busy


# ---- the learner's journal ----------------------------------------------------------------------


class Journal:
    """Received transitions on disk, one safetensors file per stored batch (fsync + rename).

    The learner's source of truth for what it has: on restart it resumes the ids after the
    newest stored row of each actor and reloads every row.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, actor: str, rows: dict[str, np.ndarray]) -> None:
        from safetensors.numpy import save

        if "/" in actor or actor.startswith("."):
            raise LinkError(f"actor name {actor!r} is not a plain name")
        seq = rows["seq"]
        d = self.root / actor
        d.mkdir(exist_ok=True)
        final_path = d / f"{int(seq[0]):012d}-{int(seq[-1]):012d}.safetensors"
        tmp = final_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(save({k: np.ascontiguousarray(v) for k, v in rows.items()}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final_path)

    def files(self, actor: str) -> list[Path]:
        return sorted((self.root / actor).glob("*.safetensors"))

    def actors(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def expected(self) -> dict[str, int]:
        """Actor -> next id (one past the newest stored row)."""
        out = {}
        for a in self.actors():
            files = self.files(a)
            if files:
                out[a] = max(int(p.stem.split("-")[1]) for p in files) + 1
        return out

    def read(self, actor: str, after: int = -1) -> dict[str, np.ndarray] | None:
        """Every stored row of ``actor`` with id > ``after``, in id order (None if none)."""
        from safetensors.numpy import load_file

        parts = [load_file(p) for p in self.files(actor) if int(p.stem.split("-")[1]) > after]
        if not parts:
            return None
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        keep = rows["seq"] > after
        return {k: v[keep] for k, v in rows.items()}

"""The actor-learner link: id bookkeeping, weight checks, and over real Cyclone DDS on loopback
(separate participants; the learner in a separate process that is killed with SIGKILL)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("cyclonedds")

from waiting import wait_until  # noqa: E402 - beside this file

from robot_rl.robot import link  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
KEY = b"k" * 32
DOMAIN = 40 + (os.getpid() + 7) % 150


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "net.0.weight": torch.randn(8, 4, generator=g),
        "net.0.bias": torch.randn(8, generator=g),
    }


def _row(i: int) -> dict[str, np.ndarray]:
    return {"obs.x": np.full(3, i, np.float32), "action": np.zeros(2, np.float32),
            "intervention": np.array(i % 2, np.uint8)}  # fmt: skip


# ---- logic ------------------------------------------------------------------------------------


def test_key_from_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k").write_bytes(b"0123456789abcdef0123\n")
    assert link.load_key(tmp_path / "k") == b"0123456789abcdef0123"
    monkeypatch.setenv(link.KEY_ENV, "z" * 20)
    assert link.load_key() == b"z" * 20
    monkeypatch.setenv(link.KEY_ENV, "short")
    with pytest.raises(link.RobotRLError, match=">= 16"):
        link.load_key()
    monkeypatch.delenv(link.KEY_ENV)
    with pytest.raises(link.RobotRLError, match="no link key"):
        link.load_key()


def test_signature_is_hmac_sha256() -> None:
    import hashlib
    import hmac

    want = hmac.new(KEY, b"robot_rl.weights.v1\0" + (7).to_bytes(8, "big") + b"abc", hashlib.sha256)
    assert link.sign(KEY, 7, b"abc") == want.digest()


def _deliver(chunks: list[link.Chunk], verifier: link.WeightsVerifier) -> dict:
    asm = link.Assembler()
    for c in chunks:
        done = asm.add(c)
    assert done is not None
    first, payload = done
    return verifier.verify(first.version, payload, first.signature)


def test_weights_rejected_unless_signed_newer_and_same_shapes() -> None:
    good = _state(0)
    v = link.WeightsVerifier(KEY, link.state_template(good))
    payload = link.encode_state(good)
    got = _deliver(link.make_chunks(KEY, 5, payload, "L", chunk_bytes=100), v)
    assert torch.equal(got["net.0.weight"], good["net.0.weight"]) and v.version == 5

    def rejected(chunks: list[link.Chunk], match: str) -> None:
        with pytest.raises(link.LinkError, match=match):
            _deliver(chunks, v)
        assert v.version == 5  # last good kept

    # tampered: one byte of one chunk flipped
    chunks = link.make_chunks(KEY, 6, payload, "L", chunk_bytes=100)
    chunks[1].data = bytes([chunks[1].data[0] ^ 1]) + chunks[1].data[1:]
    rejected(chunks, "bad signature")
    # truncated: a chunk shortened
    chunks = link.make_chunks(KEY, 6, payload, "L", chunk_bytes=100)
    chunks[-1].data = chunks[-1].data[:-3]
    rejected(chunks, "truncated")
    # truncated and re-signed with the size adjusted (a sender bug): not safetensors
    short = payload[:-3]
    rejected(link.make_chunks(KEY, 6, short, "L"), "not valid safetensors")
    rejected(link.make_chunks(b"w" * 32, 6, payload, "L"), "bad signature")  # wrong key
    rejected(link.make_chunks(KEY, 4, payload, "L"), "not newer")  # an old one replayed
    with pytest.raises(link.DuplicateWeights):  # a re-broadcast of the running version
        _deliver(link.make_chunks(KEY, 5, payload, "L"), v)
    bad = dict(good, **{"net.0.bias": torch.zeros(9)})
    rejected(link.make_chunks(KEY, 6, link.encode_state(bad), "L"), r"net.0.bias is \(\(9,\)")
    renamed = {"w": good["net.0.weight"], "net.0.bias": good["net.0.bias"]}
    rejected(link.make_chunks(KEY, 6, link.encode_state(renamed), "L"), "names differ")
    nan = dict(good, **{"net.0.bias": torch.full((8,), float("nan"))})
    rejected(link.make_chunks(KEY, 6, link.encode_state(nan), "L"), "non-finite")
    half = {k: t.half() for k, t in good.items()}
    rejected(link.make_chunks(KEY, 6, link.encode_state(half), "L"), "float16")


def test_outbox_inbox_lose_nothing_under_loss_duplication_and_restarts() -> None:
    """A lossy, duplicating, reordering channel and learner restarts (journal keeps
    ``expected``): every id stored exactly once, in order."""
    rng = random.Random(0)
    ob = link.Outbox(capacity=10_000, batch=7, window=40)
    inbox = link.Inbox()
    stored: list[int] = []
    in_flight: list[tuple[int, int, list]] = []
    for step in range(20_000):
        if step >= 2000 and ob.held == 0:
            break
        if step < 2000:
            ob.push(_row(step))
        nb = ob.next_batch()
        if nb is not None:
            in_flight.append(nb)
            if rng.random() < 0.2:
                in_flight.append(nb)  # duplicated
        rng.shuffle(in_flight) if rng.random() < 0.3 else None
        if in_flight and rng.random() < 0.8:
            first, oldest, rows = in_flight.pop(0)
            if rng.random() < 0.15:
                continue  # lost
            skip, through, nack = inbox.accept("a", first, len(rows), oldest)
            stored.extend(range(first + skip, first + len(rows)))
            if rng.random() > 0.1:  # the ack itself may be lost
                ob.ack(through, nack)
        if step % 500 == 250:  # learner restart: in-flight lost, state from the journal
            in_flight.clear()
            inbox = link.Inbox({"a": stored[-1] + 1 if stored else 0})
            ob.rewind()
        if step % 50 == 0:
            ob.rewind()  # the resend timer
    assert stored == list(range(2000))
    assert ob.held == 0 and not inbox.gaps


def test_outbox_full_drops_oldest_and_learner_sees_the_gap() -> None:
    ob = link.Outbox(capacity=10, batch=4, window=100)
    for i in range(25):
        ob.push(_row(i))
    assert ob.held == 10 and ob.dropped == 15
    inbox = link.Inbox({"a": 0})
    first, oldest, rows = ob.next_batch()
    assert (first, oldest, len(rows)) == (15, 15, 4)
    assert int(rows[0]["obs.x"][0]) == 15
    assert inbox.accept("a", first, 4, oldest) == (0, 18, False)
    assert inbox.gaps == {"a": 15}


def test_peer_watch_detects_silence_and_restarts() -> None:
    w = link.PeerWatch(dead_after_s=1.0)
    assert w.seen("a", 0.0) and not w.check(0.9) and w.check(1.01) and not w.alive
    assert not w.check(2.0)  # reported once
    assert w.seen("b", 3.0) and w.restarts == 1 and w.alive


# ---- over DDS -----------------------------------------------------------------------------------


def test_weights_over_dds_tampered_rejected_last_good_kept() -> None:
    good = _state(0)
    stored: list = []
    learner = link.LearnerLink(KEY, lambda a, r: stored.append(r), domain_id=DOMAIN,
                               chunk_bytes=64)  # fmt: skip
    actor = link.ActorLink(KEY, link.state_template(good), domain_id=DOMAIN)
    try:
        assert wait_until(lambda: actor.learner.alive and learner.actors, 5)
        learner.publish_weights(1, _state(1))
        assert wait_until(lambda: actor._pending is not None, 5)
        v, st = actor.take_weights()
        assert v == 1 and torch.equal(st["net.0.bias"], _state(1)["net.0.bias"])
        assert actor.take_weights() is None
        # a forged broadcast (wrong key) and a reshaped one: both rejected, v1 stays
        forged = link.LearnerLink(b"x" * 32, lambda a, r: None, domain_id=DOMAIN)
        try:
            forged.publish_weights(2, _state(2))
            learner.publish_weights(3, dict(good, **{"net.0.bias": torch.zeros(3)}))
            assert wait_until(lambda: len(actor.rejected) >= 2, 5), actor.rejected
        finally:
            forged.close()
        assert actor.take_weights() is None and actor.running_version == 1
        assert any("bad signature" in r for r in actor.rejected)
        assert any("net.0.bias" in r for r in actor.rejected)
        # transitions flow with acks
        for i in range(100):
            actor.push(_row(i))
        assert wait_until(lambda: actor.outbox.acked == 99, 5)
        seqs = np.concatenate([r["seq"] for r in stored])
        assert seqs.tolist() == list(range(100))
        assert np.concatenate([r["intervention"] for r in stored]).tolist() == [
            i % 2 for i in range(100)
        ]
    finally:
        actor.close()
        learner.close()


LEARNER_SCRIPT = """
import sys, time
from pathlib import Path
from robot_rl.robot import link
j = link.Journal(Path(sys.argv[1]))
l = link.LearnerLink(b"k" * 32, j.write, domain_id=int(sys.argv[2]), expected=j.expected())
print("up", flush=True)
time.sleep(600)
"""


def _spawn_learner(journal: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen(
        [sys.executable, "-c", LEARNER_SCRIPT, str(journal), str(DOMAIN + 1)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_learner_killed_three_times_loses_nothing_and_death_is_detected(tmp_path: Path) -> None:
    """SIGKILL the learner process mid-stream 3 times: every id 0..N-1 ends up in its journal
    exactly once; the actor reports each death within dead_after_s + one heartbeat + slack."""
    journal = tmp_path / "journal"
    actor = link.ActorLink(KEY, link.state_template(_state()), domain_id=DOMAIN + 1,
                           dead_after_s=1.0, heartbeat_s=0.1)  # fmt: skip
    n = 0
    detect_s = []
    try:
        for _ in range(3):
            proc = _spawn_learner(journal)
            assert proc.stdout.readline().strip() == "up"
            t_end = time.monotonic() + 1.5
            while time.monotonic() < t_end:  # a 500 Hz robot pushing while the learner runs
                actor.push(_row(n))
                n += 1
                time.sleep(0.002)
            deaths = len(actor.learner.deaths)
            proc.send_signal(signal.SIGKILL)
            t_kill = time.monotonic()
            proc.wait()
            for _ in range(200):  # the robot keeps going while the learner is dead
                actor.push(_row(n))
                n += 1
                time.sleep(0.002)
            assert wait_until(lambda d=deaths: len(actor.learner.deaths) > d, 3)
            detect_s.append(actor.learner.deaths[-1] - t_kill)
        proc = _spawn_learner(journal)
        assert proc.stdout.readline().strip() == "up"
        assert wait_until(lambda: actor.outbox.acked == n - 1, 10), (actor.outbox.acked, n)
        proc.kill()
        proc.wait()
    finally:
        actor.close()
    j = link.Journal(journal)
    seqs = j.read("robot")["seq"].tolist()
    assert seqs == list(range(n))
    xs = j.read("robot")["obs.x"][:, 0]
    assert xs.tolist() == list(range(n))
    assert actor.outbox.dropped == 0 and actor.learner.restarts == 3
    assert max(detect_s) < 1.0 + 0.1 + 0.3, detect_s

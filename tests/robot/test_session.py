"""On-robot fine-tuning session: interventions in the policy node, and sim robot + actor +
learner as separate processes over real Cyclone DDS, the learner killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cyclonedds")

from robot_rl.robot import link  # noqa: E402
from robot_rl.robot import msgs as m  # noqa: E402

DOMAIN = 40 + (os.getpid() + 61) % 150
KEY = "0123456789abcdef0123"


Q0 = np.array([0, -0.3, 0, -2.2, 0, 2.0, 0.8, 0.02, 0.02])


def _feed(core, t: float) -> None:  # noqa: ANN001
    """A joint state and an object pose stamped ``t``."""
    core.on_joint_state(
        m.JointState(header=m.Header(m.stamp(t)), position=list(Q0), velocity=[0.0] * 9)
    )
    core.on_object_pose(m.PoseStamped(pose=m.Pose(m.Point(0.5, 0.0, 0.02))))


class _Sink:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, *row) -> None:  # noqa: ANN002
        self.rows.append(row)

    def end_episode(self) -> None:
        self.rows.append(("end",))


def test_intervention_drives_the_arm_and_is_flagged(bc_policy: Path) -> None:
    from robot_rl.robot.policy_node import PolicyNodeCore
    from robot_rl.robot.runtime import PolicyRuntime

    rt = PolicyRuntime(bc_policy, async_inference=False)
    sink = _Sink()
    core = PolicyNodeCore(rt, horizon=5, transitions=sink)
    human = np.array([1.5, -0.2, 0.1, -1.0], np.float32)  # outside [-1, 1]: clipped
    outs = []
    for i in range(4):
        _feed(core, 100.0 + i)
        if i == 1:
            core.on_intervention(m.Bool(True))
            core.on_teleop_action(m.Float64MultiArray(data=list(map(float, human))))
        if i == 2:  # the teleop stream went stale: the policy acts, not flagged
            core.teleop_stamp -= 10.0
        outs.append(core.tick(100.0 + i))
    flags = [r[5] for r in sink.rows]
    actions = [r[1] for r in sink.rows]
    assert flags == [False, True, False]
    np.testing.assert_allclose(actions[1], np.clip(human, -1, 1))
    np.testing.assert_allclose(outs[1].result.action, np.clip(human, -1, 1))
    assert not np.allclose(actions[2], np.clip(human, -1, 1))
    # next_obs of a step is the obs of the next one
    for a, b in zip(sink.rows[:-1], sink.rows[1:], strict=True):
        np.testing.assert_array_equal(a[3]["robot0_eef_pos"], b[0]["robot0_eef_pos"])
    with pytest.raises(link.RobotRLError, match="intervention action has shape"):
        core.on_intervention(m.Bool(True))
        core.on_teleop_action(m.Float64MultiArray(data=[0.0, 0.0]))
        _feed(core, 200.0)
        core.tick(200.0)
    rt.close()


def test_weight_swap_only_between_episodes(bc_policy: Path) -> None:
    import torch

    from robot_rl.robot.policy_node import PolicyNodeCore
    from robot_rl.robot.runtime import PolicyRuntime

    rt = PolicyRuntime(bc_policy, async_inference=False)
    new = {k: torch.zeros_like(v) for k, v in rt.policy.state_dict().items()}
    staged = [(7, new)]
    core = PolicyNodeCore(rt, horizon=3, weights=lambda: staged.pop() if staged else None)
    before = {k: v.clone() for k, v in rt.policy.state_dict().items()}
    for i in range(3):
        _feed(core, 10.0 + i)
        out = core.tick(10.0 + i)
        assert not out.episode_end
        assert all(torch.equal(before[k], v) for k, v in rt.policy.state_dict().items())
    _feed(core, 13.0)
    assert core.tick(13.0).episode_end
    assert core.weights_version == 7 and len(core.swaps) == 1
    assert all(float(v.abs().sum()) == 0 for v in rt.policy.state_dict().values())
    rt.close()


def _teleop(domain: int, stop: threading.Event) -> None:
    """A person holding the intervention button 1 s out of every 3."""
    from robot_rl.robot import dds

    node = dds.Node(domain)
    act_w = node.writer("/teleop/action", m.Float64MultiArray, dds.SENSOR)
    flag_w = node.writer("/teleop/intervention", m.Bool)
    t0 = time.monotonic()
    while not stop.is_set():
        on = (time.monotonic() - t0) % 3.0 < 1.0
        flag_w.write(m.Bool(on))
        act_w.write(m.Float64MultiArray(data=[0.0, 0.0, 0.5, -1.0]))
        time.sleep(0.02)


@pytest.mark.slow
def test_session_over_dds_learner_killed_and_resumed(
    bc_policy: Path, tmp_path: Path, spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sim robot, actor and learner in three processes; the learner is SIGKILLed mid-session
    and resumed: every transition id reaches its journal once, interventions are flagged,
    the robot runs the learner's weights and never stops."""
    monkeypatch.setenv(link.KEY_ENV, KEY)
    dom = str(DOMAIN)
    out = tmp_path / "run"
    data = bc_policy.parent / "lift.hdf5"

    def learner(*extra: str):  # noqa: ANN202
        return spawn(
            "learner", "--algo", "rlpd", "--init", str(bc_policy), "--dataset", str(data),
            "--out", str(out), "--env-steps", "100000", "--batch-size", "32", "--utd", "1",
            "--num-critics", "2", "--critic-hidden-dims", "32", "32", "--random-steps", "40",
            "--updates-per-step", "0.25", "--publish-every", "5", "--domain-id", dom,
            "--log-every", "50", "--checkpoint-every", "60", "--idle-exit-s", "4", *extra,
        )  # fmt: skip

    sim_p = spawn(
        "robot", "sim", "--mode", "realtime", "--domain-id", dom, "--idle-timeout-s", "20"
    )
    learn_p = learner()
    stats = tmp_path / "actor.json"
    stop = threading.Event()
    tele = threading.Thread(target=_teleop, args=(DOMAIN, stop), daemon=True)
    tele.start()
    act_p = spawn(
        "robot", "actor", "--policy", str(bc_policy), "--mode", "realtime", "--domain-id", dom,
        "--episodes", "12", "--horizon", "25", "--stats", str(stats),
    )  # fmt: skip
    try:
        # kill the learner once it has checkpointed, while the robot keeps going
        end = time.monotonic() + 90
        while not (out / "learner_state.json").is_file() and time.monotonic() < end:
            time.sleep(0.1)
        if not (out / "learner_state.json").is_file():
            learn_p.kill()
            act_p.kill()
            pytest.fail("no learner checkpoint: " + learn_p.communicate()[0][-3000:]
                        + act_p.communicate()[0][-2000:])  # fmt: skip
        learn_p.send_signal(signal.SIGKILL)
        learn_p.wait()
        time.sleep(1.5)
        learn_p = learner("--resume")
        act_out, _ = act_p.communicate(timeout=180)
        assert act_p.returncode == 0, act_out
        learn_out, _ = learn_p.communicate(timeout=120)
        assert learn_p.returncode == 0, learn_out
    finally:
        stop.set()
        for p in (act_p, learn_p, sim_p):
            p.kill()
            p.wait()
    s = json.loads(stats.read_text())["runtime"]
    j = link.Journal(out / "journal")
    rows = j.read("robot")
    assert rows["seq"].tolist() == list(range(s["transitions"]))
    assert s["dropped"] == 0 and s["held"] == 0 and s["learner_restarts"] == 1
    assert s["learner_deaths"] >= 1 and s["missed_periods"] == 0
    assert s["weights_version"] > 0 and s["weights_rejected"] == 0
    assert rows["intervention"].sum() > 0 and rows["intervention"].sum() < len(rows["seq"])
    human = rows["intervention"] > 0
    np.testing.assert_allclose(rows["action"][human], [[0.0, 0.0, 0.5, -1.0]] * int(human.sum()))
    summary = json.loads((out / "learner_summary.json").read_text())
    assert summary["env_steps"] == s["transitions"] and summary["updates"] > 0
    # HIL-SERL: after the restart the demo buffer holds every intervention row (journal replay)
    assert summary["intervention_rows"] == int(human.sum())
    assert (out / "policy" / "model.safetensors").is_file()
    curve = json.loads((out / "curve.json").read_text())
    assert all("robot_s" in r for r in curve["rows"])


@pytest.mark.slow
def test_success_classifier_reports_held_out_precision_recall(tmp_path: Path) -> None:
    """Labels from a file whose success depends on one state coordinate: the classifier
    recovers it on held-out episodes, saves, reloads and debounces."""
    from robot_rl.data.hdf5 import write_robomimic
    from robot_rl.robot.success import SuccessClassifier, SuccessConfig, train_success

    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(24):
        z = np.cumsum(rng.uniform(0.0, 0.02, 30)).astype(np.float32)[:, None]  # object height
        xy = rng.normal(size=(30, 2)).astype(np.float32)
        episodes.append({
            "obs": {"object": np.concatenate([xy, z], 1)},
            "next_obs": {"object": np.concatenate([xy, z], 1)},
            "actions": np.zeros((30, 2), np.float32),
            "rewards": (z[:, 0] > 0.25).astype(np.float32),
            "dones": np.eye(30, dtype=np.float32)[-1],
        })  # fmt: skip
    data = tmp_path / "labelled.hdf5"
    write_robomimic(data, episodes, env_args={"env_name": "toy"})
    rep = train_success(SuccessConfig(dataset=data, out=tmp_path / "clf", obs_keys=["object"],
                                      steps=2000, hidden_dims=[32], consecutive=2))  # fmt: skip
    assert rep["held_out_episodes"] == 6 and rep["held_out"]["positives"] > 10
    assert rep["held_out"]["precision"] > 0.9 and rep["held_out"]["recall"] > 0.9
    clf = SuccessClassifier(tmp_path / "clf")
    lo, hi = {"object": np.array([0, 0, 0.05])}, {"object": np.array([0, 0, 0.5])}
    assert clf.probability(lo) < 0.5 < clf.probability(hi)
    assert [clf(hi), clf(hi), clf(lo), clf(hi)] == [False, True, False, False]
    by_ep = rep["held_out_by_episode"]
    assert by_ep["episodes"] == 6 and by_ep["precision"] > 0.8 and by_ep["recall"] > 0.8


def test_episode_precision_recall_by_hand() -> None:
    from robot_rl.robot.success import episode_precision_recall

    pred = np.array([0, 1, 0, 0, 0, 0, 1, 1, 0], bool)
    label = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    episode = np.repeat([4, 7, 9], 3)
    # episodes predicted [T, F, T], labelled [T, F, F]: 1 TP, 1 FP, 0 FN
    got = episode_precision_recall(pred, label, episode)
    assert got == {"precision": 0.5, "recall": 1.0, "positives": 1, "episodes": 3}


@pytest.mark.slow
def test_lockstep_session_follows_the_in_process_update_schedule(
    bc_policy: Path, tmp_path: Path, spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --max-learner-lag 0 the faster-than-real-time sim robot waits at episode ends, so
    the learner runs exactly updates_per_step * (steps - learn_start) updates, as
    `robot-rl finetune` would, and the robot runs each episode on the newest weights."""
    monkeypatch.setenv(link.KEY_ENV, KEY)
    dom = str(DOMAIN + 1)
    out = tmp_path / "run"
    learn_p = spawn(
        "learner", "--algo", "rlpd", "--init", str(bc_policy), "--dataset",
        str(bc_policy.parent / "lift.hdf5"), "--out", str(out), "--env-steps", "200",
        "--batch-size", "32", "--utd", "1", "--num-critics", "2", "--critic-hidden-dims", "32",
        "32", "--random-steps", "40", "--updates-per-step", "0.5", "--publish-every", "10",
        "--domain-id", dom, "--idle-exit-s", "10", "--snapshot-every", "75",
    )  # fmt: skip
    sim_p = spawn(
        "robot", "sim", "--mode", "lockstep", "--domain-id", dom, "--idle-timeout-s", "20"
    )
    stats = tmp_path / "actor.json"
    act_p = spawn(
        "robot", "actor", "--policy", str(bc_policy), "--mode", "lockstep", "--domain-id", dom,
        "--episodes", "8", "--horizon", "25", "--max-learner-lag", "0", "--stats", str(stats),
    )  # fmt: skip
    try:
        act_out, _ = act_p.communicate(timeout=180)
        assert act_p.returncode == 0, act_out
        learn_out, _ = learn_p.communicate(timeout=60)
        assert learn_p.returncode == 0, learn_out
    finally:
        for p in (act_p, learn_p, sim_p):
            p.kill()
            p.wait()
    s = json.loads(stats.read_text())["runtime"]
    summary = json.loads((out / "learner_summary.json").read_text())
    assert s["transitions"] == summary["env_steps"] == 200
    assert summary["updates"] == int(0.5 * (200 - 40))
    assert s["weight_swaps"] >= 6  # a new version before (nearly) every episode
    snaps = sorted(p.name for p in (out / "snapshots").iterdir())
    assert snaps == ["0000075", "0000150"]
    assert all((out / "snapshots" / n / "model.safetensors").is_file() for n in snaps)


def test_episode_start_waits_for_the_object_pose_then_names_it(bc_policy: Path) -> None:
    """After a reset the joint state may arrive before the pose (separate topics)."""
    from robot_rl.robot.policy_node import PolicyNodeCore
    from robot_rl.robot.runtime import PolicyRuntime

    rt = PolicyRuntime(bc_policy, async_inference=False)
    core = PolicyNodeCore(rt, horizon=5)
    core.on_joint_state(
        m.JointState(header=m.Header(m.stamp(5.0)), position=list(Q0), velocity=[0.0] * 9)
    )
    assert core.tick(5.0) is None and core.tick(6.9) is None  # waiting for the pose
    _feed(core, 7.0)
    assert core.tick(7.0).command is not None
    core.end_episode(False)
    core.on_joint_state(
        m.JointState(header=m.Header(m.stamp(8.0)), position=list(Q0), velocity=[0.0] * 9)
    )
    assert core.tick(8.0) is None
    with pytest.raises(link.RobotRLError, match="object"):
        core.tick(10.5)
    rt.close()

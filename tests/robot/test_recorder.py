"""The episode recorder: file layout and round trip, append, atomic commits, and the topic ->
step logic (pairing, rewards, episode ends) on hand-built message sequences."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace as NS

import h5py
import numpy as np
import pytest
import torch

from robot_rl.data.hdf5 import read_robomimic
from robot_rl.errors import DatasetError, OutputExistsError
from robot_rl.robot.recorder import (
    DEFAULT_JOINTS,
    TMP_SUFFIX,
    EpisodeRecorder,
    RecorderCore,
    joint_delta_action,
    robot_env_args,
)

ENV = {"env_name": "lift", "env_kwargs": {"controller": "joint_delta"}}


def _episode(rng: np.random.Generator, steps: int) -> list[tuple]:
    return [
        (
            {
                "a": rng.normal(size=3).astype(np.float32),
                "b": rng.normal(size=2).astype(np.float32),
            },
            rng.uniform(-1, 1, size=4).astype(np.float32),
            float(i == steps - 1),
            i == steps - 1,
            bool(i % 3 == 0),
            100.0 + 0.05 * i,
        )
        for i in range(steps)
    ]


def _record(rec: EpisodeRecorder, steps: list[tuple], final: dict | None = None) -> str | None:
    for s in steps:
        rec.add_step(*s)
    return rec.end_episode(bool(steps[-1][3]), final)


def test_round_trip_layout_and_values(tmp_path: Path) -> None:
    path = tmp_path / "rec.hdf5"
    rng = np.random.default_rng(0)
    rec = EpisodeRecorder(path, ENV, valid_every=2)
    eps = [_episode(rng, n) for n in (5, 3, 4)]
    final = {"a": np.full(3, 7.0, np.float32), "b": np.full(2, 8.0, np.float32)}
    assert _record(rec, eps[0], final) == "demo_0"
    assert _record(rec, eps[1]) == "demo_1"
    assert _record(rec, eps[2]) == "demo_2"
    ds = read_robomimic(path)
    assert ds.env_args["env_name"] == "lift"
    assert ds.env_args["env_kwargs"] == {"controller": "joint_delta"}
    assert ds.episode_lengths.tolist() == [5, 3, 4]
    flat = [s for ep in eps for s in ep]
    np.testing.assert_array_equal(ds.obs["a"].numpy(), np.stack([s[0]["a"] for s in flat]))
    np.testing.assert_array_equal(ds.actions.numpy(), np.stack([s[1] for s in flat]))
    np.testing.assert_array_equal(ds.rewards.numpy(), [s[2] for s in flat])
    # next_obs: the next step's obs, and the final observation (or a repeat) at the end
    nxt = ds.next_obs["a"].numpy()
    np.testing.assert_array_equal(nxt[:4], np.stack([s[0]["a"] for s in eps[0][1:]]))
    np.testing.assert_array_equal(nxt[4], final["a"])
    np.testing.assert_array_equal(nxt[7], eps[1][-1][0]["a"])
    with h5py.File(path, "r") as f:
        assert f["data"].attrs["total"] == 12
        g = f["data/demo_0"]
        assert g.attrs["num_samples"] == 5 and bool(g.attrs["success"])
        assert g["interventions"][()].tolist() == [s[4] for s in eps[0]]
        np.testing.assert_allclose(g["timestamps"][()], [s[5] for s in eps[0]])
        assert [n.decode() for n in f["mask/train"][()]] == ["demo_0", "demo_2"]
        assert [n.decode() for n in f["mask/valid"][()]] == ["demo_1"]
        assert json.loads(f["data"].attrs["env_args"])["env_type"] == "robot_rl"


def test_existing_file_refused_then_appended(tmp_path: Path) -> None:
    path = tmp_path / "rec.hdf5"
    rng = np.random.default_rng(1)
    _record(EpisodeRecorder(path, ENV), _episode(rng, 3))
    with pytest.raises(OutputExistsError, match="--append"):
        EpisodeRecorder(path, ENV)
    with pytest.raises(DatasetError, match="holds env 'lift'"):
        EpisodeRecorder(path, {"env_name": "push"}, append=True)
    with pytest.raises(DatasetError, match="obs keys"):
        EpisodeRecorder(path, ENV, ["a"], append=True)
    rec = EpisodeRecorder(path, ENV, append=True)
    assert rec.num_episodes == 1
    assert _record(rec, _episode(rng, 2)) == "demo_1"
    assert read_robomimic(path).episode_lengths.tolist() == [3, 2]
    # a step shape that differs from the file's is refused before anything is written
    bad = [({"a": np.zeros(3), "b": np.zeros(2)}, np.zeros(5), 0.0, False, False, 0.0)]
    with pytest.raises(DatasetError, match="step shapes"):
        _record(rec, bad)
    assert read_robomimic(path).episode_lengths.tolist() == [3, 2]


def test_failed_commit_leaves_file_whole_and_stale_copies_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rec.hdf5"
    rng = np.random.default_rng(2)
    rec = EpisodeRecorder(path, ENV)
    _record(rec, _episode(rng, 3))
    before = path.read_bytes()

    def crash(*_a: object) -> None:
        raise KeyboardInterrupt  # as if killed between writing the copy and renaming it

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _record(rec, _episode(rng, 4))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(f"*{TMP_SUFFIX}"))
    # a copy a kill left behind is cleared by the next recorder on the file
    stale = tmp_path / f".rec.hdf5.abc{TMP_SUFFIX}"
    stale.write_bytes(b"half a file")
    EpisodeRecorder(path, ENV, append=True)
    assert not stale.exists() and path.read_bytes() == before


def test_joint_delta_action_inverts_the_sims_controller() -> None:
    from robot_rl.robot.kinematics import ArmKinematics

    kin = ArmKinematics()
    ctl = kin.controller("joint_delta")
    rng = np.random.default_rng(3)
    q = kin.home.numpy()[None] + rng.uniform(-0.3, 0.3, size=(16, 7)).astype(np.float32)
    action = rng.uniform(-1, 1, size=(16, 8)).astype(np.float32)
    targets = kin.command(ctl, torch.from_numpy(action), q).numpy()
    for i in range(16):
        got = joint_delta_action(q[i], targets[i])
        np.testing.assert_allclose(got, action[i], atol=1e-4)
    # a step beyond one control period is recorded at full scale
    big = joint_delta_action(np.zeros(9), np.r_[np.full(7, 1.0), 0.0, 0.0])
    np.testing.assert_array_equal(big, np.r_[np.ones(7), 1.0].astype(np.float32))


def _js(q: list[float]) -> NS:
    return NS(name=list(DEFAULT_JOINTS), position=q, velocity=[0.1] * 9, header=None)


def _b(v: bool) -> NS:
    return NS(data=v)


def _cmd(x: list[float]) -> NS:
    return NS(data=x)


def test_core_pairs_commands_with_the_state_before_them(tmp_path: Path) -> None:
    path = tmp_path / "rec.hdf5"
    rec = EpisodeRecorder(path, robot_env_args("lift", "joint_targets", 20.0))
    core = RecorderCore(rec, action="joint_targets", gap_s=1.0)
    q = [[0.01 * k + 0.001 * j for j in range(9)] for k in range(10)]
    t = 0.0
    core.on_reset(_b(True), t)
    core.on_command(_cmd([9.0] * 9), 0.1)  # before any joint state: dropped
    assert core.dropped == 1
    core.on_reset(_b(True), 0.2)  # that episode's start was not seen: the next one is recorded
    for k in range(3):  # episode 0: three steps, success reported after the third command
        t = 1.0 + 0.05 * k
        core.on_joint_state(_js(q[k]), t)
        core.on_intervention(_b(k == 1), t)
        core.on_command(_cmd([k + 0.5] * 9), t + 0.01)
        core.on_success(_b(k == 2), t + 0.02)
    core.on_joint_state(_js(q[3]), 1.2)
    core.on_command(_cmd([7.0] * 9), 1.21)  # closes step 2 -> success ends the episode
    core.on_command(_cmd([7.0] * 9), 1.26)  # after success, before reset: not recorded
    assert [c[:4] for c in core.committed] == [("demo_0", 3, True, "success")]
    core.on_reset(_b(True), 1.3)
    core.on_joint_state(_js(q[5]), 1.31)
    core.on_command(_cmd([1.0] * 9), 1.32)
    core.on_success(_b(False), 1.33)
    core.on_joint_state(_js(q[6]), 1.34)
    core.on_command(_cmd([2.0] * 9), 1.35)
    core.on_success(_b(False), 1.36)
    core.on_joint_state(_js(q[7]), 1.37)
    core.poll(1.5)  # no gap yet
    assert len(core.committed) == 1
    core.poll(2.5)  # gap: the episode ends, its last step closes with what was reported
    assert [c[:4] for c in core.committed][1] == ("demo_1", 2, False, "gap")

    ds = read_robomimic(path)
    np.testing.assert_allclose(ds.obs["robot0_joint_pos"][:3].numpy(), np.array(q)[:3, :7], 1e-6)
    np.testing.assert_allclose(ds.obs["robot0_joint_pos"][3:].numpy(), np.array(q)[5:7, :7], 1e-6)
    np.testing.assert_allclose(ds.obs["robot0_joint_vel"].numpy(), 0.1, 1e-6)
    np.testing.assert_allclose(ds.actions[:, 0].numpy(), [0.5, 1.5, 2.5, 1.0, 2.0])
    assert ds.rewards.tolist() == [0, 0, 1, 0, 0]
    # the last next_obs of each episode is the state after its last command
    np.testing.assert_allclose(ds.next_obs["robot0_joint_pos"][2].numpy(), q[3][:7], 1e-6)
    np.testing.assert_allclose(ds.next_obs["robot0_joint_pos"][4].numpy(), q[7][:7], 1e-6)
    with h5py.File(path, "r") as f:
        assert f["data/demo_0/interventions"][()].tolist() == [False, True, False]
        np.testing.assert_allclose(f["data/demo_0/timestamps"][()], [1.01, 1.06, 1.11])
        assert f["data/demo_1"].attrs["ended"] == "gap"


def test_core_horizon_and_trajectory_input(tmp_path: Path) -> None:
    rec = EpisodeRecorder(tmp_path / "rec.hdf5", robot_env_args("lift", "joint_delta", 20.0))
    core = RecorderCore(rec, horizon=2)
    home = [0.0, 0.0, 0.0, -1.5, 0.0, 1.5, 0.8, 0.04, 0.04]
    core.poll(-5.0)
    core.poll(-2.5)  # idle (no command) for longer than gap_s: ready to record
    for k in range(5):
        core.on_joint_state(_js(home), 0.1 * k)
        target = list(np.add(home, 0.025 * np.r_[np.ones(7), 0, 0]))
        core.on_trajectory(NS(points=[NS(positions=target)]), 0.1 * k + 0.01)
    core.shutdown()  # the step in progress and the unfinished episode are dropped
    assert [c[1] for c in core.committed] == [2]
    ds = read_robomimic(tmp_path / "rec.hdf5")
    np.testing.assert_allclose(ds.actions.numpy(), [[0.5] * 7 + [-1.0]] * 2, atol=1e-5)


def test_core_started_mid_episode_waits_for_the_next_start(tmp_path: Path) -> None:
    rec = EpisodeRecorder(tmp_path / "rec.hdf5", robot_env_args("lift", "joint_targets", 20.0))
    core = RecorderCore(rec, action="joint_targets", gap_s=1.0)
    q = [0.1] * 9
    for k in range(40):  # commands flow from the start, every 0.05 s: an episode in progress
        t = 0.05 * k
        core.poll(t)
        core.on_joint_state(_js(q), t)
        core.on_command(_cmd([float(k)] * 9), t + 0.01)
    assert rec.steps_in_episode() == 0 and not core.committed
    core.on_reset(_b(True), 2.0)
    for k in range(3):
        core.on_joint_state(_js(q), 2.1 + 0.05 * k)
        core.on_command(_cmd([100.0 + k] * 9), 2.11 + 0.05 * k)
    core.on_reset(_b(True), 2.5)
    assert [c[1] for c in core.committed] == [3]
    np.testing.assert_array_equal(read_robomimic(rec.path).actions[:, 0], [100, 101, 102])

"""``robot-rl import rosbag`` on bags written here with rosbags (sqlite3 and mcap): known
signals come back resampled to the control rate, split into the right episodes; expected values
are computed by plain loops over the messages written, not by the importer's code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")

from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from robot_rl.cli import main  # noqa: E402
from robot_rl.data.hdf5 import read_robomimic  # noqa: E402
from robot_rl.errors import DatasetError  # noqa: E402
from robot_rl.robot.recorder import DEFAULT_JOINTS  # noqa: E402
from robot_rl.robot.rosbag_import import TopicMap, import_rosbag, load_topic_map  # noqa: E402

TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types
HOME = np.array([0.0, -0.2, 0.0, -2.0, 0.0, 1.9, 0.8, 0.04, 0.04])
SLOPE = 0.2  # rad/s on every joint
RATE = 20.0


def _stamp(t: float):  # noqa: ANN202
    return T["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(round((t % 1) * 1e9)))


def _header(t: float):  # noqa: ANN202
    return T["std_msgs/msg/Header"](stamp=_stamp(t), frame_id="world")


def q_at(t: float) -> np.ndarray:
    return HOME + SLOPE * (t - 10.0)


def scenario() -> list[tuple[str, str, float, object]]:
    """(topic, type, time, message): three episodes of a teleop session.

    Episode 0 starts with a reset at 10.0 and succeeds at 10.62; episode 1 starts with a reset
    at 12.0; a 2 s pause in the commands at 12.5 starts episode 2. Joint states at 100 Hz (names
    in a shuffled order), object pose at 50 Hz, commands at 50 Hz (joint state + 0.02 rad on the
    arm, fingers half open), intervention on 10.3-10.5.
    """
    msgs = []
    order = [3, 0, 8, 1, 2, 7, 4, 5, 6]
    names = [DEFAULT_JOINTS[i] for i in order]
    bool_t, f64 = "std_msgs/msg/Bool", "std_msgs/msg/Float64MultiArray"
    for k in range(600):  # 10.003 .. 15.993
        t = 10.003 + 0.01 * k
        q = q_at(t)
        js = T["sensor_msgs/msg/JointState"](
            header=_header(t),
            name=names,
            position=q[order],
            velocity=np.full(9, SLOPE)[order],
            effort=np.zeros(0),
        )
        msgs.append(("/joint_states", "sensor_msgs/msg/JointState", t, js))
    for k in range(300):
        t = 10.006 + 0.02 * k
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=0.5 + 0.01 * (t - 10), y=0.0, z=0.02),
            orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        )
        msgs.append(("/object_pose", "geometry_msgs/msg/PoseStamped", t, T["geometry_msgs/msg/PoseStamped"](header=_header(t), pose=pose)))  # fmt: skip
    cmd_times = [10.012 + 0.02 * k for k in range(74)]  # until 11.47
    cmd_times += [12.01 + 0.02 * k for k in range(25)]  # 12.01 .. 12.49
    cmd_times += [14.51 + 0.02 * k for k in range(25)]  # after a 2 s pause
    for t in cmd_times:
        target = q_at(t - 0.005) + np.r_[np.full(7, 0.02), 0.0, 0.0]
        target[7:] = 0.02
        layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        msgs.append(("/commands", f64, t, T[f64](layout=layout, data=target)))
        msgs.append(("/success", bool_t, t + 0.004, T[bool_t](data=10.62 <= t + 0.004 < 11.9)))
    for t in (10.0, 12.0):
        msgs.append(("/reset", bool_t, t, T[bool_t](data=True)))
    for t, v in ((10.3, True), (10.5, False)):
        msgs.append(("/intervention", bool_t, t, T[bool_t](data=v)))
    return sorted(msgs, key=lambda m: m[2])


def write_bag(path: Path, storage: StoragePlugin, msgs: list | None = None) -> Path:
    msgs = scenario() if msgs is None else msgs
    with Writer(path, version=9, storage_plugin=storage) as w:
        conns = {}
        for topic, typ, t, msg in msgs:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, typ, typestore=TS)
            w.write(conns[topic], int(round(t * 1e9)), TS.serialize_cdr(msg, typ))
    return path


def last_before(msgs: list, topic: str, t: float) -> object:
    got = None
    for top, _, tm, msg in msgs:
        if top == topic and tm <= t + 1e-12:
            got = msg
    return got


def expected_grids() -> list[np.ndarray]:
    """Grid times per episode, from the rules: start at the first instant with a command, a
    joint state and an object pose in the episode; 1/rate steps; to the last command (ep 0:
    through its first step whose next grid time sees success)."""
    dt = 1 / RATE
    g0 = 10.012 + dt * np.arange(30)  # success (10.624 report) seen at 10.662 = step 13's next
    g0 = g0[: next(i for i in range(30) if g0[i + 1] >= 10.624) + 1]
    g1 = 12.01 + dt * np.arange(int((12.49 - 12.01) / dt + 1e-9) + 1)
    g2 = 14.51 + dt * np.arange(int((14.99 - 14.51) / dt + 1e-9) + 1)
    return [g0, g1, g2]


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_import_round_trips_known_signals(tmp_path: Path, storage: StoragePlugin) -> None:
    bag = write_bag(tmp_path / "bag", storage)
    out = tmp_path / "demos.hdf5"
    assert main(["import", "rosbag", str(bag), "--out", str(out)]) == 0
    ds = read_robomimic(out)
    grids = expected_grids()
    assert ds.episode_lengths.tolist() == [len(g) for g in grids]
    msgs = scenario()
    grid = np.concatenate(grids)
    q = np.array([list(last_before(msgs, "/joint_states", g).position) for g in grid])
    order = [3, 0, 8, 1, 2, 7, 4, 5, 6]
    q_named = np.empty_like(q)
    q_named[:, order] = q
    np.testing.assert_allclose(ds.obs["robot0_joint_pos"].numpy(), q_named[:, :7], atol=1e-6)
    np.testing.assert_allclose(ds.obs["robot0_gripper_qpos"].numpy(), q_named[:, 7:], atol=1e-6)
    np.testing.assert_allclose(ds.obs["robot0_joint_vel"].numpy(), SLOPE, atol=1e-6)
    obj_x = np.array([last_before(msgs, "/object_pose", g).pose.position.x for g in grid])
    np.testing.assert_allclose(ds.obs["object"][:, 0].numpy(), obj_x, atol=1e-6)
    cmd = np.array([list(last_before(msgs, "/commands", g).data) for g in grid])
    want = np.clip((cmd[:, :7] - q_named[:, :7]) / 0.05, -1, 1)
    np.testing.assert_allclose(ds.actions[:, :7].numpy(), want, atol=1e-4)
    np.testing.assert_allclose(ds.actions[:, 7].numpy(), 1 - 2 * 0.02 / 0.04, atol=1e-6)
    n0 = len(grids[0])
    assert ds.rewards[:n0].tolist() == [0.0] * (n0 - 1) + [1.0]
    assert float(ds.rewards[n0:].sum()) == 0.0
    assert [a["success"] for a in ds.episode_attrs] == [True, False, False]
    import h5py

    with h5py.File(out, "r") as f:
        inter = f["data/demo_0/interventions"][()]
        np.testing.assert_allclose(f["data/demo_1/timestamps"][()], grids[1])
    np.testing.assert_array_equal(inter, (grids[0] >= 10.3) & (grids[0] < 10.5))


def test_both_storages_give_the_same_file_and_linear_resampling(tmp_path: Path) -> None:
    a = import_rosbag(
        write_bag(tmp_path / "a", StoragePlugin.SQLITE3), tmp_path / "a.hdf5", TopicMap()
    )
    b = import_rosbag(
        write_bag(tmp_path / "b", StoragePlugin.MCAP), tmp_path / "b.hdf5", TopicMap()
    )
    assert a == b
    da, db = read_robomimic(tmp_path / "a.hdf5"), read_robomimic(tmp_path / "b.hdf5")
    for k in da.obs_keys:
        np.testing.assert_array_equal(da.obs[k].numpy(), db.obs[k].numpy())
    np.testing.assert_array_equal(da.actions.numpy(), db.actions.numpy())
    # linear: the joint ramp comes back exactly at grid times (joint states are a ramp in t)
    cfg_file = tmp_path / "topics.yaml"
    cfg_file.write_text("resample: linear\nrate_hz: 10\nend_on_success: false\n")
    cfg = load_topic_map(cfg_file)
    import_rosbag(tmp_path / "a", tmp_path / "lin.hdf5", cfg)
    dl = read_robomimic(tmp_path / "lin.hdf5")
    t0 = 10.012
    grid0 = t0 + 0.1 * np.arange(int(dl.episode_lengths[0]))
    assert int(dl.episode_lengths[0]) == int((11.47 - t0) / 0.1) + 1
    want = np.stack([q_at(t) for t in grid0])
    np.testing.assert_allclose(
        dl.obs["robot0_joint_pos"][: len(grid0)].numpy(), want[:, :7], atol=1e-6
    )


def test_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = write_bag(tmp_path / "bag", StoragePlugin.MCAP)
    cfg = tmp_path / "topics.yaml"
    cfg.write_text("joint_state: /arm/joint_states\n")
    rc = main(
        ["import", "rosbag", str(bag), "--out", str(tmp_path / "x.hdf5"), "--config", str(cfg)]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "no topic /arm/joint_states" in err and len(err.strip().splitlines()) == 1
    # an optional topic the config names must be there too
    cfg.write_text("success: /done\n")
    with pytest.raises(DatasetError, match="no topic /done"):
        import_rosbag(bag, tmp_path / "x.hdf5", load_topic_map(cfg))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "metadata.yaml").write_text("not: a bag\n")
    rc = main(["import", "rosbag", str(junk), "--out", str(tmp_path / "y.hdf5")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot read as a rosbag2 recording" in err
    rc = main(["import", "rosbag", str(tmp_path / "missing"), "--out", str(tmp_path / "y.hdf5")])
    assert rc == 2 and "no such bag" in capsys.readouterr().err
    cfg.write_text("rate: 20\n")
    rc = main(
        ["import", "rosbag", str(bag), "--out", str(tmp_path / "y.hdf5"), "--config", str(cfg)]
    )
    assert rc == 2 and "unknown key 'rate'" in capsys.readouterr().err
    # a bag whose command topic has the wrong type
    bool_t = "std_msgs/msg/Bool"
    js = next(m for top, _, _, m in scenario() if top == "/joint_states")
    bad = write_bag(tmp_path / "bad", StoragePlugin.SQLITE3, [
        ("/joint_states", "sensor_msgs/msg/JointState", 1.0, js),
        ("/commands", bool_t, 1.1, T[bool_t](data=True)),
    ])  # fmt: skip
    rc = main(["import", "rosbag", str(bad), "--out", str(tmp_path / "z.hdf5")])
    assert rc == 2 and "/commands is std_msgs/msg/Bool" in capsys.readouterr().err
    out = tmp_path / "ok.hdf5"
    out.write_bytes(b"")
    rc = main(["import", "rosbag", str(bag), "--out", str(out)])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err


def test_trajectory_commands_custom_topics_and_bc_trains(tmp_path: Path) -> None:
    """JointTrajectory commands on custom topic names, a topic switched off (null), no marker
    topic: one episode split only by the gap; the file trains with BC as it is."""
    import torch

    from robot_rl.algos.bc import BCConfig, train_bc

    jt = "trajectory_msgs/msg/JointTrajectory"
    rename = {"/joint_states": "/arm/joint_states", "/object_pose": "/cube"}
    msgs = []
    for topic, typ, t, msg in scenario():
        if topic == "/commands":
            pt = T["trajectory_msgs/msg/JointTrajectoryPoint"](
                positions=msg.data,
                velocities=np.zeros(0),
                accelerations=np.zeros(0),
                effort=np.zeros(0),
                time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=50_000_000),
            )
            traj = T[jt](header=_header(t), joint_names=list(DEFAULT_JOINTS), points=[pt])
            msgs.append(("/arm/trajectory", jt, t, traj))
        elif topic in ("/reset", "/success"):
            continue
        else:
            msgs.append((rename.get(topic, topic), typ, t, msg))
    bag = write_bag(tmp_path / "bag", StoragePlugin.MCAP, msgs)
    cfg = tmp_path / "topics.yaml"
    cfg.write_text(
        "joint_state: /arm/joint_states\ncommand: /arm/trajectory\nobject_pose: /cube\n"
        "intervention: null\nenv_name: lift\n"
    )
    out = tmp_path / "demos.hdf5"
    assert (
        main(
            [
                "import",
                "rosbag",
                str(next(bag.glob("*.mcap"))),
                "--out",
                str(out),
                "--config",
                str(cfg),
            ]
        )
        == 0
    )
    ds = read_robomimic(out)
    # no markers: only the 2 s pause splits (the 0.54 s one at 11.47 is under gap_s)
    dt = 1 / RATE
    n0 = int((12.49 - 10.012) / dt + 1e-9) + 1
    assert ds.episode_lengths.tolist() == [n0, int((14.99 - 14.51) / dt + 1e-9) + 1]
    assert ds.env_args["env_name"] == "lift" and float(ds.rewards.sum()) == 0.0
    grid = 10.012 + dt * np.arange(n0)
    ref = scenario()
    cmd = np.array([list(last_before(ref, "/commands", g).data) for g in grid])
    q = np.array([q_at(last_before(ref, "/joint_states", g).header.stamp.sec
                       + last_before(ref, "/joint_states", g).header.stamp.nanosec * 1e-9)
                  for g in grid])  # fmt: skip
    want = np.clip((cmd[:, :7] - q[:, :7]) / 0.05, -1, 1)
    np.testing.assert_allclose(ds.actions[:n0, :7].numpy(), want, atol=1e-4)
    torch.set_num_threads(1)
    train_bc(
        BCConfig(dataset=out, out=tmp_path / "bc", hidden_dims=[16], steps=3, batch_size=8,
                 log_dir=tmp_path / "runs"),
        progress=False,
    )  # fmt: skip
    assert (tmp_path / "bc" / "model.safetensors").is_file()

"""``kill -9`` campaign: a recording process is killed at random moments, restarted on the same
file (``append``), killed again; after every kill the file must be readable and every episode
the process reported committed must be in it, identical to what was sent, with nothing else
(at most the episode whose commit had begun may also be there, complete)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from robot_rl.data.hdf5 import read_robomimic
from robot_rl.robot.recorder import TMP_SUFFIX

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
import numpy as np
from robot_rl.robot.recorder import EpisodeRecorder
sys.path.insert(0, sys.argv[2])
from test_recorder_kill import sent_episode

rec = EpisodeRecorder(sys.argv[1], {"env_name": "kill"}, append=True)
print("ready", rec.num_episodes, flush=True)
while True:
    i = rec.num_episodes
    for step in sent_episode(i):
        rec.add_step(*step)
    print("begin", i, flush=True)
    rec.end_episode(i % 3 == 0)
    print("done", i, flush=True)
"""


def sent_episode(i: int) -> list[tuple]:
    """Episode ``i`` as the recording process sends it (deterministic in ``i``)."""
    rng = np.random.default_rng(1000 + i)
    steps = 40 + (7 * i) % 60
    obs_a = rng.normal(size=(steps, 32)).astype(np.float32)
    obs_b = rng.normal(size=(steps, 7)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(steps, 8)).astype(np.float32)
    return [
        (
            {"a": obs_a[t], "b": obs_b[t]},
            actions[t],
            float(t == steps - 1),
            t == steps - 1,
            bool(rng.random() < 0.1),
            i * 1000.0 + t * 0.05,
        )
        for t in range(steps)
    ]


def _check_file(path: Path) -> int:
    """Every demo in the file equals the episode sent; returns how many there are."""
    read_robomimic(path)  # the project's reader accepts it whole
    with h5py.File(path, "r") as f:
        names = sorted(f["data"], key=lambda n: int(n.split("_")[1]))
        assert names == [f"demo_{i}" for i in range(len(names))]
        for i, name in enumerate(names):
            g, sent = f["data"][name], sent_episode(i)
            assert g.attrs["num_samples"] == len(sent)
            assert bool(g.attrs["success"]) == (i % 3 == 0)
            for key in ("a", "b"):
                want = np.stack([s[0][key] for s in sent])
                np.testing.assert_array_equal(g["obs"][key][()], want)
                np.testing.assert_array_equal(g["next_obs"][key][()][:-1], want[1:])
            np.testing.assert_array_equal(g["actions"][()], np.stack([s[1] for s in sent]))
            np.testing.assert_array_equal(g["rewards"][()], [s[2] for s in sent])
            np.testing.assert_array_equal(g["dones"][()], [s[3] for s in sent])
            np.testing.assert_array_equal(g["interventions"][()], [s[4] for s in sent])
            np.testing.assert_array_equal(g["timestamps"][()], [s[5] for s in sent])
        assert f["data"].attrs["total"] == sum(len(sent_episode(i)) for i in range(len(names)))
    return len(names)


def run_campaign(path: Path, kills: int, seed: int = 0) -> dict[str, float]:
    """Kill the recording process ``kills`` times at random moments; check after each kill."""
    rnd = random.Random(seed)
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    mid_commit = 0
    in_file = 0
    stale_seen = 0
    for _ in range(kills):
        p = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(Path(__file__).parent)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = p.stdout.readline()
        assert first.startswith("ready"), first + p.stderr.read()
        assert int(first.split()[1]) == in_file
        time.sleep(rnd.uniform(0.0, 0.6))
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=30)
        lines = out.split()
        done = [int(n) for tag, n in zip(lines[::2], lines[1::2], strict=True) if tag == "done"]
        began = [int(n) for tag, n in zip(lines[::2], lines[1::2], strict=True) if tag == "begin"]
        last_done = done[-1] if done else in_file - 1
        if began and began[-1] > last_done:
            mid_commit += 1
        stale_seen += len(list(path.parent.glob(f".{path.name}.*{TMP_SUFFIX}")))
        if not path.exists():  # killed before the first commit
            assert last_done == -1
            continue
        n = _check_file(path)
        # every commit reported is there; at most the one in flight besides
        assert last_done + 1 <= n <= last_done + 2
        in_file = n
    return {
        "kills": kills,
        "kills_mid_commit": mid_commit,
        "episodes_in_file": in_file,
        "stale_copies_left_by_kills": stale_seen,
    }


def test_kill_campaign_3(tmp_path: Path) -> None:
    figures = run_campaign(tmp_path / "rec.hdf5", kills=3, seed=1)
    assert figures["episodes_in_file"] > 0


@pytest.mark.slow
def test_kill_campaign_20(tmp_path: Path) -> None:
    figures = run_campaign(tmp_path / "rec.hdf5", kills=20, seed=2)
    print("kill campaign:", figures)
    assert figures["episodes_in_file"] > 20

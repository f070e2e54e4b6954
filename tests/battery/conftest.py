"""The bad-input battery: a real dataset and a real policy directory, made once per session,
and a check that runs one CLI call in-process and classifies how it ended.

Every case must end as a *clean error*: exit status 2, exactly one line on stderr, no
traceback, and every file that existed before the call byte-for-byte unchanged (and nothing
new left behind). The other outcomes are counted separately and printed at the end of the
run (``battery: ...`` in pytest's terminal summary):

- ``traceback``: an exception escaped ``main`` (or a traceback was printed);
- ``silent accept``: exit status 0;
- ``data lost``: a pre-existing file changed or disappeared;
- ``messy error``: a non-zero exit with more or less than one line, or a leftover file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _battery import OUTCOMES, Fixtures

from robot_rl.cli import main


@pytest.fixture(scope="session")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    """A 3-episode reach dataset from the scripted expert and a 5-step BC policy on it."""
    root = tmp_path_factory.mktemp("battery-originals")
    dataset, policy = root / "reach.hdf5", root / "bc"
    args = ["demos", "--task", "reach", "--episodes", "3", "--num-envs", "3", "--out"]
    assert main([*args, str(dataset)]) == 0
    args = ["train", "bc", "--dataset", str(dataset), "--out", str(policy), "--steps", "5"]
    assert main([*args, "--hidden-dims", "16", "16"]) == 0
    return Fixtures(root, dataset, policy)


@pytest.fixture
def work(tmp_path: Path, originals: Fixtures) -> Fixtures:
    """Fresh copies of the dataset and policy for one case."""
    shutil.copy2(originals.dataset, tmp_path / "reach.hdf5")
    shutil.copytree(originals.policy, tmp_path / "bc")
    return Fixtures(tmp_path, tmp_path / "reach.hdf5", tmp_path / "bc")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if OUTCOMES:
        parts = [f"{OUTCOMES['cases']} cases"] + [
            f"{k}: {v}" for k, v in sorted(OUTCOMES.items()) if k != "cases"
        ]
        terminalreporter.write_line("battery: " + ", ".join(parts))

"""Shared fixtures: small demonstration files made with the real sim and scripted experts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robot_rl.demos import DemosConfig, generate_demos
from robot_rl.record import RecordConfig, run_record


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests skip on machines without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def push_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six expert episodes of ``push`` (a few seconds to generate)."""
    path = tmp_path_factory.mktemp("demos") / "push.hdf5"
    generate_demos(DemosConfig(task="push", episodes=6, out=path, num_envs=3), progress=False)
    return path


@pytest.fixture(scope="session")
def reach_mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four mixed-quality ``reach`` episodes (expert, noisy and failing demonstrators)."""
    path = tmp_path_factory.mktemp("demos") / "reach_mixed.hdf5"
    generate_demos(
        DemosConfig(task="reach", episodes=4, quality="mixed", out=path, num_envs=2),
        progress=False,
    )
    return path


@pytest.fixture(scope="session")
def point_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four recorded episodes of the pure-torch ``point`` env (keys goal, pos; under a second)."""
    path = tmp_path_factory.mktemp("demos") / "point.hdf5"
    run_record(RecordConfig(env="point", out=path, episodes=4, num_envs=2), progress=False)
    return path

"""Offline trainers close their TensorBoard writer on every path, not only on success.

An open ``SummaryWriter`` is a live ``_AsyncWriterThread`` holding the event file open; a
trainer that raised mid-training used to leave both behind (and the events logged so far
unflushed). Here the second batch draw raises: the error propagates, no writer thread the
trainer started is still alive, no file descriptor points into its log directory, the event
file holds the step-0 scalars, and no policy directory was written.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from robot_rl.algos.bc import BCConfig, train_bc
from robot_rl.algos.calql import CalQLConfig, train_calql
from robot_rl.algos.common import default_log_dir
from robot_rl.algos.diffusion import DiffusionConfig, train_diffusion
from robot_rl.algos.iql import IQLConfig, train_iql
from robot_rl.data import OfflineDataset

SMALL = {"hidden_dims": [16], "batch_size": 8}
CRITICS = {"num_critics": 2, "critic_hidden_dims": [16]}
TRAINERS: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict[str, Any], str]] = {
    "bc": (train_bc, BCConfig, SMALL, "sample"),
    "iql": (train_iql, IQLConfig, {**SMALL, **CRITICS}, "sample"),
    "calql": (train_calql, CalQLConfig, {**SMALL, **CRITICS, "cql_n_actions": 2}, "sample"),
    "diffusion": (train_diffusion, DiffusionConfig, {"hidden_dim": 16, "num_blocks": 1,
                                                     "batch_size": 8}, "sample_sequences"),
}  # fmt: skip


class Boom(RuntimeError):
    pass


def _writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if type(t).__name__ == "_AsyncWriterThread"}


def _open_paths_under(root: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(root)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("name", list(TRAINERS))
@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_writer_is_closed_when_training_fails(
    name: str,
    error: type[BaseException],
    push_demos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    train, config, fields, method = TRAINERS[name]
    real = getattr(OfflineDataset, method)
    calls = {"n": 0}

    def fail_on_second_draw(self: OfflineDataset, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise error("injected failure")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(OfflineDataset, method, fail_on_second_draw)
    cfg = config(dataset=push_demos, out=tmp_path / "policy", steps=5, **fields)
    before = _writer_threads()
    with pytest.raises(error, match="injected failure"):
        train(cfg, progress=False)
    assert calls["n"] == 2  # it failed mid-training, after the step-0 log
    left = [t for t in _writer_threads() - before if t.is_alive()]
    assert not left, f"{name}: the TensorBoard writer thread is still running"
    log_dir = default_log_dir(cfg)
    assert not _open_paths_under(log_dir), f"{name}: files under {log_dir} are still open"
    # Closed means flushed: the step-0 scalars are in the event file.
    (events,) = log_dir.glob("events.out.tfevents.*")
    tags = {v.tag for e in EventFileLoader(str(events)).Load() for v in e.summary.value}
    assert "train/actor_loss" in tags
    assert not cfg.out.exists()

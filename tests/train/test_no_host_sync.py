"""The fine-tuning loop's hot path (act, env step, store, episode statistics, update calls)
reads nothing back from the device: on CUDA each such read waits for the queued work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from robot_rl.algos import sac as sac_module
from robot_rl.train.collector import Collector
from robot_rl.train.finetune import FinetuneConfig, resolve

SYNCING = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy")
"""Tensor methods that copy a device value to the host (a sync on CUDA)."""
INDEXING = ("__getitem__", "__setitem__")
"""Indexing with a boolean mask (``x[done] = 0``) counts the mask on the host: a sync too."""


def _has_mask(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)


@contextlib.contextmanager
def _no_host_sync(allowed: list[bool]) -> Iterator[None]:
    """Every host-sync method of Tensor raises, except while ``allowed[0]``."""
    saved = {name: getattr(torch.Tensor, name) for name in SYNCING + INDEXING}

    def guard(name: str) -> Any:
        real = saved[name]

        def call(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if not allowed[0] and (name not in INDEXING or _has_mask(args[0])):
                raise AssertionError(f"host sync on the hot path: Tensor.{name}")
            return real(self, *args, **kwargs)

        return call

    try:
        for name in SYNCING + INDEXING:
            setattr(torch.Tensor, name, guard(name))
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)


@pytest.mark.parametrize("phase", ["random", "learning"])
def test_a_vector_step_and_its_updates_make_no_host_sync(phase: str, tmp_path: Path) -> None:
    """Three vector steps at the gpu scale (sizes cut down) with every Tensor host read
    raising; the env's own step is exempt (the toy env checks ``done.any()``)."""
    from sim.toy import PointReachEnv

    torch.set_num_threads(1)
    cfg = resolve(FinetuneConfig(
        algo="sac", task="point", out=tmp_path, scale="gpu", env_steps=64, num_envs=4,
        batch_size=8, random_steps=8, compile_critic=False, critic_hidden_dims=[16, 16],
    ))  # fmt: skip
    env = PointReachEnv(4, "cpu", 0)
    agent = sac_module.build(cfg, env, torch.Generator().manual_seed(0))
    collector = Collector(env, agent.observe, seed=0)
    allowed = [True]
    real_step = env.step

    def step(action: torch.Tensor) -> Any:
        allowed[0] = True
        try:
            return real_step(action)
        finally:
            allowed[0] = False

    env.step = step  # type: ignore[method-assign]
    collector.collect(lambda obs: agent.act(obs, 0), vector_steps=3)  # fill the replay
    start = 0 if phase == "random" else 64
    metrics: dict[str, Any] = {}
    with _no_host_sync(allowed):
        allowed[0] = False
        for update in range(3):
            before = collector.env_steps + start
            collector.collect(lambda obs: agent.act(obs, before))  # noqa: B023
            if phase == "learning":
                metrics = agent.update(update)
    assert collector.env_steps == 24
    if phase == "learning":
        assert {"train/critic_loss", "train/actor_loss"} <= set(metrics)
    assert collector.pop_stats()["train/episodes"] >= 0

"""ReplayBuffer ring writes and state round trip; MixedSampler offline/online proportions."""

from __future__ import annotations

import pytest
import torch

from robot_rl.data import OfflineDataset
from robot_rl.data.replay import MixedSampler, ReplayBuffer
from robot_rl.errors import CheckpointError, ConfigError

OBS_SHAPES = {"x": ((2,), torch.float32)}


def _buffer(capacity: int = 8) -> ReplayBuffer:
    return ReplayBuffer(capacity, OBS_SHAPES, action_dim=1)


def _add(buf: ReplayBuffer, values: list[float]) -> None:
    v = torch.tensor(values)
    buf.add(
        {"x": v[:, None].repeat(1, 2)}, v[:, None], v, {"x": v[:, None].repeat(1, 2) + 1}, v > 0
    )


def _offline(n: int = 20) -> OfflineDataset:
    """A dataset whose rewards are all -1, so offline rows are recognisable."""
    ep = {
        "obs": {"x": torch.zeros(n, 2).numpy(), "extra": torch.zeros(n, 3).numpy()},
        "next_obs": {"x": torch.zeros(n, 2).numpy(), "extra": torch.zeros(n, 3).numpy()},
        "actions": torch.zeros(n, 1).numpy(),
        "rewards": -torch.ones(n).numpy(),
        "dones": torch.zeros(n).numpy(),
    }
    return OfflineDataset.from_episodes([ep])


def test_add_wraps_around_and_keeps_newest() -> None:
    buf = _buffer(4)
    _add(buf, [1.0, 2.0, 3.0])
    _add(buf, [4.0, 5.0, 6.0])
    assert len(buf) == 4 and buf.pos == 2
    assert sorted(buf.rewards.tolist()) == [3.0, 4.0, 5.0, 6.0]
    row = int((buf.rewards == 5.0).nonzero())
    assert buf.next_obs["x"][row].tolist() == [6.0, 6.0]
    assert buf.terminals[row] == 1.0


def test_sample_only_filled_rows() -> None:
    buf = _buffer(100)
    _add(buf, [1.0, 2.0])
    batch = buf.sample(64, torch.Generator().manual_seed(0))
    assert set(batch["rewards"].unique().tolist()) == {1.0, 2.0}
    assert batch["obs"]["x"].shape == (64, 2)


def test_state_dict_round_trip() -> None:
    buf = _buffer(4)
    _add(buf, [1.0, 2.0, 3.0])
    _add(buf, [4.0, 5.0])
    other = _buffer(4)
    other.load_state_dict(buf.state_dict())
    assert (other.pos, other.size) == (buf.pos, buf.size)
    assert torch.equal(other.rewards, buf.rewards)
    with pytest.raises(CheckpointError, match="capacity"):
        _buffer(5).load_state_dict(buf.state_dict())


def test_offline_ratio_zero_draws_nothing_offline() -> None:
    buf = _buffer(16)
    _add(buf, [1.0] * 8)
    sampler = MixedSampler(buf, _offline(), offline_ratio=0.0)
    batch = sampler.sample(256, torch.Generator().manual_seed(0))
    assert (batch["rewards"] == 1.0).all()
    assert set(batch["obs"]) == {"x"}


def test_mixed_ratio_half_is_symmetric() -> None:
    buf = _buffer(16)
    _add(buf, [1.0] * 8)
    batch = MixedSampler(buf, _offline(), offline_ratio=0.5).sample(
        256, torch.Generator().manual_seed(0)
    )
    assert int((batch["rewards"] == -1.0).sum()) == 128
    assert int((batch["rewards"] == 1.0).sum()) == 128
    assert set(batch["obs"]) == {"x"}  # offline-only keys are dropped
    batch = MixedSampler(buf, _offline(), offline_ratio=0.25).sample(100)
    assert int((batch["rewards"] == -1.0).sum()) == 25


def test_mixed_sampler_bad_config() -> None:
    with pytest.raises(ConfigError, match="needs an offline dataset"):
        MixedSampler(_buffer(), None, 0.5)
    with pytest.raises(ConfigError, match="offline_ratio"):
        MixedSampler(_buffer(), _offline(), 1.5)

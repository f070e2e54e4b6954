"""ReplayBuffer ring writes and state round trip; MixedSampler offline/online proportions."""

from __future__ import annotations

import re

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


def test_storage_keeps_image_dtype_and_for_space_picks_keys() -> None:
    import gymnasium as gym
    import numpy as np

    space = gym.spaces.Dict(
        {
            "image": gym.spaces.Box(0, 255, (2, 2, 3), np.uint8),
            "x": gym.spaces.Box(-1.0, 1.0, (2,), np.float64),
            "unused": gym.spaces.Box(-1.0, 1.0, (5,), np.float32),
        }
    )
    buf = ReplayBuffer.for_space(4, space, action_dim=1, keys=["image", "x"])
    assert buf.obs_keys == ["image", "x"]
    assert buf.obs["image"].dtype == torch.uint8 and buf.next_obs["image"].dtype == torch.uint8
    assert buf.obs["x"].dtype == torch.float32  # float64 observations are stored as float32
    image = torch.full((1, 2, 2, 3), 200, dtype=torch.uint8)
    x = torch.tensor([[0.25, -0.5]], dtype=torch.float64)
    extra = torch.zeros(1, 5)
    buf.add({"image": image, "x": x, "unused": extra}, torch.ones(1, 1), torch.ones(1),
            {"image": image, "x": x, "unused": extra}, torch.ones(1, dtype=torch.bool))  # fmt: skip
    batch = buf.sample(3, torch.Generator().manual_seed(0))
    assert batch["obs"]["image"].dtype == torch.uint8 and (batch["obs"]["image"] == 200).all()
    assert batch["terminals"].dtype == torch.float32 and (batch["terminals"] == 1.0).all()
    assert set(ReplayBuffer.for_space(4, space, 1).obs_keys) == {"image", "x", "unused"}


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="^replay capacity must be >= 1, got 0$"):
        ReplayBuffer(0, OBS_SHAPES, 1)
    buf = _buffer(2)
    with pytest.raises(ConfigError, match="^cannot sample from an empty replay buffer$"):
        buf.sample(1)
    with pytest.raises(ConfigError, match="^cannot add 3 transitions to a buffer of capacity 2$"):
        _add(buf, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("missing", ["obs.x", "next_obs.x", "actions", "rewards", "terminals"])
def test_load_state_dict_names_a_missing_or_misshapen_entry(missing: str) -> None:
    src = _buffer(8)
    _add(src, [1.0, 2.0, 3.0])
    state = src.state_dict()
    assert state["pos"].dtype == torch.int64 and state["pos"].tolist() == [3, 3, 8]
    assert state["actions"].shape == (3, 1)  # only the filled rows
    short = {k: v for k, v in state.items() if k != missing}
    with pytest.raises(
        CheckpointError, match=rf"^replay state entry '{missing}' is None, expected \(3,"
    ):
        _buffer(8).load_state_dict(short)
    wrong_rows = {**state, missing: state[missing][:2]}
    got = tuple(state[missing][:2].shape)
    with pytest.raises(CheckpointError, match=rf"'{missing}' is {re.escape(str(got))}, expected"):
        _buffer(8).load_state_dict(wrong_rows)
    wrong_width = {**state, missing: torch.zeros(3, 7)}
    with pytest.raises(CheckpointError, match=rf"'{missing}' is \(3, 7\)"):
        _buffer(8).load_state_dict(wrong_width)
    with pytest.raises(CheckpointError, match="^replay state has no 'pos' entry$"):
        _buffer(8).load_state_dict({k: v for k, v in state.items() if k != "pos"})


def test_mixed_sampler_edges_and_seeding() -> None:
    buf = _buffer(16)
    _add(buf, [float(i) for i in range(1, 9)])
    # Ratio 0 needs no offline data; ratio 1 never touches the (here empty) online buffer.
    online_only = MixedSampler(buf, None, 0.0).sample(4, torch.Generator().manual_seed(0))
    assert (online_only["rewards"] >= 1.0).all()
    offline_only = MixedSampler(_buffer(4), _offline(), 1.0).sample(5)
    assert (offline_only["rewards"] == -1.0).all() and offline_only["actions"].shape == (5, 1)
    # Both parts draw from the given generator only: the global RNG does not matter.
    offline = _offline()
    offline.rewards = -torch.arange(1.0, 21.0)  # distinguishable offline rows
    sampler = MixedSampler(buf, offline, 0.5)
    torch.manual_seed(1)
    a = sampler.sample(64, torch.Generator().manual_seed(7))
    torch.manual_seed(2)
    b = sampler.sample(64, torch.Generator().manual_seed(7))
    assert torch.equal(a["rewards"], b["rewards"]) and torch.equal(a["obs"]["x"], b["obs"]["x"])
    with pytest.raises(ConfigError, match=r"^offline dataset lacks observation keys \['y'\]$"):
        MixedSampler(
            ReplayBuffer(4, {**OBS_SHAPES, "y": ((1,), torch.float32)}, 1), _offline(), 0.5
        )


def test_storage_lives_on_the_buffers_device() -> None:
    """Every ring tensor is allocated on ``device`` (also through ``for_space``), and the
    sampler moves offline data there. The meta device stands in for a second device."""
    import gymnasium as gym
    import numpy as np

    space = gym.spaces.Dict({"x": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})
    meta = torch.device("meta")
    for buf in (ReplayBuffer(4, OBS_SHAPES, 1, device="meta"),
                ReplayBuffer.for_space(4, space, 1, device="meta")):  # fmt: skip
        assert buf.device == meta
        stored = [*buf.obs.values(), *buf.next_obs.values(), buf.actions, buf.rewards,
                  buf.terminals]  # fmt: skip
        assert all(t.device == meta for t in stored)
    sampler = MixedSampler(ReplayBuffer(4, OBS_SHAPES, 1, device="meta"), _offline(), 0.5)
    assert sampler.offline is not None
    assert sampler.offline.actions.device == meta and sampler.offline.obs["x"].device == meta


def test_add_converts_env_dtypes_to_the_storage_dtypes() -> None:
    """Envs hand over float64 rewards and actions and bool ``terminated``; the ring stores
    float32 (the same values as a cast), whatever torch's default dtype is."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        buf = _buffer(4)
    finally:
        torch.set_default_dtype(previous)
    assert {buf.actions.dtype, buf.rewards.dtype, buf.terminals.dtype} == {torch.float32}
    actions = torch.tensor([[0.1], [-0.7]], dtype=torch.float64)
    rewards = torch.tensor([1.0 / 3.0, 2.5], dtype=torch.float64)
    obs = torch.tensor([[0.2, 0.4], [0.6, 0.8]], dtype=torch.float64)
    buf.add({"x": obs}, actions, rewards, {"x": obs + 1}, torch.tensor([True, False]))
    batch = buf.gather(torch.tensor([0, 1]))
    assert torch.equal(batch["actions"], actions.float())
    assert torch.equal(batch["rewards"], rewards.float())
    assert torch.equal(batch["terminals"], torch.tensor([1.0, 0.0]))
    assert torch.equal(batch["next_obs"]["x"], (obs + 1).float())


def test_load_error_spells_out_a_multidimensional_shape() -> None:
    shapes = {"image": ((4, 5), torch.uint8)}
    src = ReplayBuffer(8, shapes, 1)
    frame = torch.zeros(3, 4, 5, dtype=torch.uint8)
    src.add({"image": frame}, torch.zeros(3, 1), torch.zeros(3), {"image": frame}, torch.zeros(3))
    state = {**src.state_dict(), "obs.image": torch.zeros(3, 5, 4, dtype=torch.uint8)}
    with pytest.raises(
        CheckpointError,
        match=r"^replay state entry 'obs.image' is \(3, 5, 4\), expected \(3, 4, 5\)$",
    ):
        ReplayBuffer(8, shapes, 1).load_state_dict(state)


def test_mixed_sampler_takes_a_single_offline_row() -> None:
    # batch 3 at ratio 0.25 rounds to one offline row: it must not be dropped.
    buf = _buffer(16)
    _add(buf, [1.0] * 8)
    batch = MixedSampler(buf, _offline(), offline_ratio=0.25).sample(3)
    assert batch["rewards"].tolist() == [-1.0, 1.0, 1.0]  # offline rows first

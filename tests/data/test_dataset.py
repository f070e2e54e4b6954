"""OfflineDataset: bookkeeping, transition sampling, and sequence sampling with edge padding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.data import OfflineDataset


def tiny_dataset() -> OfflineDataset:
    """Two episodes, steps 0..2 and 3..6; every value encodes its global step index."""
    episodes: list[dict[str, Any]] = []
    for start, length in ((0, 3), (3, 4)):
        idx = np.arange(start, start + length, dtype=np.float64)
        dones = np.zeros(length)
        dones[-1] = start == 0  # the first episode succeeds, the second times out
        episodes.append(
            {
                "obs": {"x": idx[:, None], "image": np.full((length, 2, 2, 3), start, np.uint8)},
                "next_obs": {
                    "x": idx[:, None] + 0.5,
                    "image": np.zeros((length, 2, 2, 3), np.uint8),
                },
                "actions": np.stack([idx, -idx], axis=1),
                "rewards": idx * 10,
                "dones": dones,
                "attrs": {"quality": "expert"},
            }
        )
    return OfflineDataset.from_episodes(episodes, env_args={"env_name": "lift"})


def test_bookkeeping() -> None:
    ds = tiny_dataset()
    assert ds.num_transitions == 7 and ds.num_episodes == 2
    assert ds.obs_keys == ["x", "image"] and ds.action_dim == 2
    assert ds.obs_dims() == {"x": (1,), "image": (2, 2, 3)}
    assert ds.obs["x"].dtype == torch.float32 and ds.obs["image"].dtype == torch.uint8
    assert ds.episode_ids.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert ds.episode_starts.tolist() == [0, 3] and ds.episode_lengths.tolist() == [3, 4]
    assert ds.terminals.tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert ds.dones.tolist() == [0, 0, 1, 0, 0, 0, 1]
    assert ds.episode_names == ["demo_0", "demo_1"]
    assert ds.states is None


def test_episode_slices() -> None:
    ep = tiny_dataset().episode(1)
    assert ep["actions"][:, 0].tolist() == [3, 4, 5, 6]
    assert ep["obs"]["x"][:, 0].tolist() == [3, 4, 5, 6]
    assert ep["rewards"].tolist() == [30, 40, 50, 60]
    assert ep["attrs"] == {"quality": "expert"}
    with pytest.raises(IndexError):
        tiny_dataset().episode(2)


def test_sample_is_consistent_and_seeded() -> None:
    ds = tiny_dataset()
    batch = ds.sample(64, generator=torch.Generator().manual_seed(0))
    t = batch["obs"]["x"][:, 0]
    assert batch["actions"].shape == (64, 2)
    torch.testing.assert_close(batch["next_obs"]["x"][:, 0], t + 0.5)
    torch.testing.assert_close(batch["actions"][:, 1], -t)
    torch.testing.assert_close(batch["rewards"], t * 10)
    torch.testing.assert_close(batch["dones"], ds.dones[t.long()])
    again = ds.sample(64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again["actions"], batch["actions"])
    assert set(ds.sample(1)) == {"obs", "next_obs", "actions", "rewards", "dones", "terminals"}


# (t, obs steps, action steps, is_pad) for n_obs_steps=2, horizon=4; episodes are 0..2, 3..6.
SEQUENCE_CASES = [
    (0, [0, 0], [0, 0, 1, 2], [False] * 4),
    (1, [0, 1], [0, 1, 2, 2], [False, False, False, True]),
    (2, [1, 2], [1, 2, 2, 2], [False, False, True, True]),
    (3, [3, 3], [3, 3, 4, 5], [False] * 4),
    (5, [4, 5], [4, 5, 6, 6], [False, False, False, True]),
    (6, [5, 6], [5, 6, 6, 6], [False, False, True, True]),
]


def test_sequences_pad_at_episode_edges() -> None:
    ds = tiny_dataset()
    t = torch.tensor([case[0] for case in SEQUENCE_CASES])
    seq = ds.sequences_at(t, n_obs_steps=2, horizon=4)
    assert seq["obs"]["x"].shape == (6, 2, 1) and seq["obs"]["image"].shape == (6, 2, 2, 2, 3)
    assert seq["obs"]["x"][..., 0].tolist() == [case[1] for case in SEQUENCE_CASES]
    assert seq["actions"].shape == (6, 4, 2)
    assert seq["actions"][..., 0].tolist() == [case[2] for case in SEQUENCE_CASES]
    assert seq["is_pad"].tolist() == [case[3] for case in SEQUENCE_CASES]
    assert (seq["action_mask"] == ~seq["is_pad"]).all()


def test_sample_sequences_matches_sequences_at() -> None:
    ds = tiny_dataset()
    seq = ds.sample_sequences(
        128, n_obs_steps=3, horizon=5, generator=torch.Generator().manual_seed(1)
    )
    t = seq["obs"]["x"][:, -1, 0].long()  # the current step is the last observation
    assert set(t.tolist()) == set(range(7))
    expected = ds.sequences_at(t, n_obs_steps=3, horizon=5)
    torch.testing.assert_close(seq["actions"], expected["actions"])
    torch.testing.assert_close(seq["obs"]["x"], expected["obs"]["x"])
    assert torch.equal(seq["is_pad"], expected["is_pad"])


def test_sequences_reject_bad_sizes() -> None:
    with pytest.raises(ValueError, match="horizon"):
        tiny_dataset().sample_sequences(4, n_obs_steps=1, horizon=0)


def test_to_device_copies_everything() -> None:
    ds = tiny_dataset().to("cpu")
    batch = ds.sample(4, device="cpu")
    assert batch["obs"]["x"].device.type == "cpu"
    assert ds.env_args == {"env_name": "lift"}


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def test_to_and_device_arguments_move_every_tensor() -> None:
    """``to``, ``sample(device=)`` and ``sample_sequences(device=)`` put every tensor (states
    and episode bookkeeping included) on the device. The meta device stands in for a GPU."""
    import dataclasses

    src = tiny_dataset()
    src = dataclasses.replace(src, states=torch.zeros(src.num_transitions, 2, dtype=torch.float64))
    meta = torch.device("meta")
    moved = src.to("meta")
    fields = {f.name: getattr(moved, f.name) for f in dataclasses.fields(moved)}
    tensors = {k: v for k, v in fields.items() if _tensors(v)}
    assert {"obs", "next_obs", "actions", "rewards", "dones", "terminals", "episode_ids",
            "episode_starts", "episode_lengths", "states"} <= set(tensors)  # fmt: skip
    for name, value in tensors.items():
        assert all(t.device == meta for t in _tensors(value)), name
    gen = torch.Generator().manual_seed(0)
    batch = src.sample(4, generator=gen, device="meta")
    assert all(t.device == meta for t in _tensors(batch))
    seq = src.sample_sequences(3, n_obs_steps=2, horizon=4, generator=gen, device="meta")
    assert all(t.device == meta for t in _tensors(seq))
    # Without a device the batch stays where the data is.
    assert all(t.device.type == "cpu" for t in _tensors(src.sample(4, generator=gen)))


def test_sample_sequences_draws_only_from_the_generator() -> None:
    ds = tiny_dataset()
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        gen = torch.Generator().manual_seed(7)
        draws.append(ds.sample_sequences(16, n_obs_steps=2, horizon=4, generator=gen))
    assert torch.equal(draws[0]["actions"], draws[1]["actions"])


def test_episode_negative_indices_bounds_and_missing_attrs() -> None:
    import dataclasses

    ds = tiny_dataset()
    assert ds.episode(-2)["actions"][0, 0].item() == 0.0  # -num_episodes is the first episode
    assert ds.episode(-1)["actions"][0, 0].item() == 3.0
    for bad in (2, -3):
        with pytest.raises(IndexError, match=rf"^episode {bad} out of range for 2 episodes$"):
            ds.episode(bad)
    assert dataclasses.replace(ds, episode_attrs=[]).episode(0)["attrs"] == {}

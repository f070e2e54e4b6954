"""Property-based tests (hypothesis) for the dataset reader, the normalizer and the replay buffer.

Each property is checked against an independent model: per-episode numpy arrays, plain
affine arithmetic, a Python list of transitions.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from robot_rl.data import Normalizer, read_robomimic, write_robomimic
from robot_rl.data.dataset import OfflineDataset
from robot_rl.data.replay import MixedSampler, ReplayBuffer

# Small example budgets: the suite stays fast; CI can raise them with a hypothesis profile.
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

layouts = st.fixed_dictionaries(
    {
        "lengths": st.lists(st.integers(1, 6), min_size=1, max_size=5),
        "obs_dims": st.dictionaries(
            st.sampled_from(["a", "joint_pos", "z_obj"]), st.integers(1, 3), min_size=1
        ),
        "action_dim": st.integers(1, 3),
        "terminal_last": st.lists(st.booleans(), min_size=5, max_size=5),
        "seed": st.integers(0, 2**16),
    }
)


def _episodes(layout: dict[str, Any]) -> list[dict[str, Any]]:
    """Episodes whose every value names its episode and step (so mixing would show)."""
    rng = np.random.default_rng(layout["seed"])
    out = []
    for e, t in enumerate(layout["lengths"]):
        dones = np.zeros(t, dtype=bool)
        dones[-1] = layout["terminal_last"][e]
        obs = {k: rng.normal(size=(t, d)) + 100 * e for k, d in layout["obs_dims"].items()}
        out.append(
            {
                "obs": obs,
                "next_obs": {k: v + 0.5 for k, v in obs.items()},
                "actions": rng.uniform(-1, 1, size=(t, layout["action_dim"])),
                "rewards": rng.normal(size=t),
                "dones": dones,
                "states": rng.normal(size=(t, 2)),
                "attrs": {"episode": e},
            }
        )
    return out


@FAST
@given(layouts)
def test_hdf5_round_trip_of_random_layouts(layout: dict[str, Any]) -> None:
    episodes = _episodes(layout)
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.hdf5"
        write_robomimic(path, episodes, {"env_name": "reach"})
        data = read_robomimic(path)
    lengths = layout["lengths"]
    assert data.episode_lengths.tolist() == lengths
    assert data.episode_starts.tolist() == np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    assert data.episode_ids.tolist() == [e for e, t in enumerate(lengths) for _ in range(t)]
    assert sorted(data.obs_keys) == sorted(layout["obs_dims"])
    for e, ep in enumerate(episodes):
        got = data.episode(e)
        for k in layout["obs_dims"]:
            np.testing.assert_allclose(got["obs"][k].numpy(), ep["obs"][k], rtol=1e-6)
            np.testing.assert_allclose(got["next_obs"][k].numpy(), ep["next_obs"][k], rtol=1e-6)
        np.testing.assert_allclose(got["actions"].numpy(), ep["actions"], rtol=1e-6)
        np.testing.assert_allclose(got["rewards"].numpy(), ep["rewards"], rtol=1e-6)
        np.testing.assert_array_equal(got["states"].numpy(), ep["states"])  # float64 kept
        # terminals: the file's flags; dones: also 1 on the last step (time limit).
        np.testing.assert_array_equal(got["terminals"].numpy(), ep["dones"].astype(np.float32))
        expected_dones = ep["dones"].astype(np.float32)
        expected_dones[-1] = 1.0
        np.testing.assert_array_equal(got["dones"].numpy(), expected_dones)
        assert got["attrs"]["episode"] == e


@FAST
@given(
    layouts,
    st.integers(1, 4),
    st.integers(1, 8),
    st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
)
def test_sequences_pad_at_the_edges_and_never_cross_episodes(
    layout: dict[str, Any], n_obs: int, horizon: int, picks: list[int]
) -> None:
    episodes = _episodes(layout)
    data = OfflineDataset.from_episodes(episodes)
    t = torch.tensor([p % data.num_transitions for p in picks])
    seq = data.sequences_at(t, n_obs_steps=n_obs, horizon=horizon)
    key = next(iter(layout["obs_dims"]))
    for row, step in enumerate(t.tolist()):
        e = int(data.episode_ids[step])
        i = step - int(data.episode_starts[e])  # step within the episode
        length = layout["lengths"][e]
        ep = episodes[e]
        # Reference: clamp each wanted index into [0, length - 1] of this episode alone.
        obs_idx = np.clip(np.arange(i - n_obs + 1, i + 1), 0, length - 1)
        act_idx = np.arange(i - n_obs + 1, i - n_obs + 1 + horizon)
        np.testing.assert_allclose(seq["obs"][key][row].numpy(), ep["obs"][key][obs_idx], rtol=1e-6)
        np.testing.assert_allclose(
            seq["actions"][row].numpy(), ep["actions"][np.clip(act_idx, 0, length - 1)], rtol=1e-6
        )
        assert seq["is_pad"][row].tolist() == (act_idx > length - 1).tolist()
        assert torch.equal(seq["action_mask"][row], ~seq["is_pad"][row])


@FAST
@given(
    st.integers(2, 40),
    st.integers(1, 4),
    st.sampled_from(["gaussian", "minmax"]),
    st.integers(0, 2**16),
    st.floats(1e-3, 1e3),
)
@example(2, 3, "minmax", 1, 0.0078125)  # a narrow column that broke a fixed 1e-3 tolerance
def test_normalizer_round_trip_and_fit(n: int, d: int, mode: str, seed: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    data = torch.from_numpy(rng.normal(size=(n, d)) * spread + rng.normal(size=d) * 10)
    data[:, 0] = 3.0  # a constant dim: gaussian floors its std, minmax keeps its units
    norm = Normalizer()
    norm.fit_field("f", data, mode, min_std=0.05)
    x = data.float()
    y = norm.normalize("f", x)
    torch.testing.assert_close(norm.unnormalize("f", y), x, atol=1e-3 * max(1.0, spread), rtol=1e-4)
    ref = x.double()  # float32 arithmetic on values ~10 with offsets ~1e3: tolerance 1e-3
    if mode == "gaussian":
        std = ref.std(0, unbiased=False).clamp_min(0.05)
        torch.testing.assert_close(y.double(), (ref - ref.mean(0)) / std, atol=1e-3, rtol=1e-4)
        assert torch.all(y[:, 0] == 0.0) and norm.params["f"][0][0] == 1 / 0.05
    else:
        lo, hi = ref.amin(0), ref.amax(0)
        wide = (hi - lo) >= 1e-6
        ref_y = 2 * (ref[:, wide] - lo[wide]) / (hi - lo)[wide] - 1
        # x * scale + offset in float32 cancels: its error is ~eps32 * |x| * 2 / span, which a
        # narrow column (span 1e-3 at values ~30) makes larger than 1e-3.
        cancel = 1e-6 * float(ref.abs().max() / (hi - lo)[wide].min()) if wide.any() else 0.0
        torch.testing.assert_close(y[:, wide].double(), ref_y, atol=1e-3 + cancel, rtol=1e-4)
        assert torch.all(y[:, 0] == 0.0) and norm.params["f"][0][0] == 1.0
    # state_dict round trip gives the same map.
    loaded = Normalizer.from_state_dict(norm.state_dict("p."), "p.")
    assert list(loaded.params) == ["f"]
    assert torch.equal(loaded.normalize("f", x), y)


transition_counts = st.lists(st.integers(1, 5), min_size=1, max_size=12)


@FAST
@given(st.integers(1, 9), transition_counts)
def test_replay_ring_matches_a_list_model(capacity: int, adds: list[int]) -> None:
    buf = ReplayBuffer(capacity, {"o": ((2,), torch.float32)}, 1)
    model: list[float] = []  # every transition ever added, in order; a row holds its serial
    serial = 0
    for n in adds:
        if n > capacity:
            continue
        ids = torch.arange(serial, serial + n, dtype=torch.float32)
        obs = {"o": ids[:, None].repeat(1, 2)}
        buf.add(obs, ids[:, None], ids, {"o": obs["o"] + 0.5}, (ids % 2 == 0).float())
        model += ids.tolist()
        serial += n
        kept = model[-capacity:]
        assert len(buf) == len(kept)
        assert buf.pos == len(model) % capacity
        # The rows hold exactly the newest `capacity` transitions, each whole.
        rows = buf.gather(torch.arange(len(buf)))
        assert sorted(rows["rewards"].tolist()) == sorted(kept)
        torch.testing.assert_close(rows["actions"][:, 0], rows["rewards"])
        torch.testing.assert_close(rows["obs"]["o"][:, 1], rows["rewards"])
        torch.testing.assert_close(rows["next_obs"]["o"][:, 0], rows["rewards"] + 0.5)
        torch.testing.assert_close(rows["terminals"], (rows["rewards"] % 2 == 0).float())
        # Storage is a ring: serial s lives in row s mod capacity.
        for r, s in enumerate(rows["rewards"].tolist()):
            assert int(s) % capacity == r
    # A sample only returns stored transitions.
    if len(buf):
        sample = buf.sample(16, torch.Generator().manual_seed(0))
        assert set(sample["rewards"].tolist()) <= set(model[-capacity:])
        # state_dict round trip restores the same rows and write position.
        other = ReplayBuffer(capacity, {"o": ((2,), torch.float32)}, 1)
        other.load_state_dict(buf.state_dict())
        assert (other.pos, len(other)) == (buf.pos, len(buf))
        torch.testing.assert_close(other.rewards[: len(buf)], buf.rewards[: len(buf)])


@FAST
@given(st.floats(0.0, 1.0), st.integers(1, 64), st.integers(0, 2**16))
def test_mixed_sampler_takes_round_ratio_b_offline_rows(ratio: float, b: int, seed: int) -> None:
    online = ReplayBuffer(8, {"o": ((1,), torch.float32)}, 1)
    obs = {"o": -torch.ones(8, 1)}
    online.add(obs, torch.zeros(8, 1), torch.zeros(8), obs, torch.zeros(8))
    episode = {
        "obs": {"o": np.ones((5, 1))},
        "next_obs": {"o": np.ones((5, 1))},
        "actions": np.ones((5, 1)),
        "rewards": np.ones(5),
        "dones": np.zeros(5),
    }
    sampler = MixedSampler(online, OfflineDataset.from_episodes([episode]), ratio)
    batch = sampler.sample(b, torch.Generator().manual_seed(seed))
    n_off = round(ratio * b)
    # Offline rows first, then online rows; every field agrees on where a row came from.
    assert batch["rewards"].tolist() == [1.0] * n_off + [0.0] * (b - n_off)
    assert batch["obs"]["o"][:, 0].tolist() == [1.0] * n_off + [-1.0] * (b - n_off)
    assert set(batch) == {"obs", "next_obs", "actions", "rewards", "terminals"}

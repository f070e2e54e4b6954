"""Normalizer: gaussian observations, [-1, 1] actions, constant dims, safetensors round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from robot_rl.data import Normalizer, OfflineDataset
from robot_rl.errors import CheckpointError


def dataset(steps: int = 200) -> OfflineDataset:
    rng = np.random.default_rng(0)
    joint = rng.normal(loc=[1.0, -3.0, 0.0], scale=[0.5, 2.0, 1e-5], size=(steps, 3))
    actions = rng.uniform([-0.2, 0.0, 5.0], [0.6, 3.0, 5.0], size=(steps, 3))
    episode = {
        "obs": {"joint": joint, "image": np.zeros((steps, 2, 2, 3), np.uint8)},
        "next_obs": {"joint": joint, "image": np.zeros((steps, 2, 2, 3), np.uint8)},
        "actions": actions,
        "rewards": np.zeros(steps),
        "dones": np.zeros(steps),
    }
    return OfflineDataset.from_episodes([episode])


def test_gaussian_obs() -> None:
    ds = dataset()
    norm = Normalizer.fit(ds)
    assert norm.obs_keys == ["joint"]  # uint8 images are left to the image encoder
    out = norm.normalize_obs(ds.obs)
    torch.testing.assert_close(out["joint"][:, :2].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out["joint"][:, :2].std(0, unbiased=False), torch.ones(2))
    # The near-constant dim is floored at std 1e-2, so its 1e-5 noise stays small.
    assert out["joint"][:, 2].abs().max() < 1e-2
    assert out["image"] is ds.obs["image"]


def test_actions_map_to_unit_box_and_back() -> None:
    ds = dataset()
    norm = Normalizer.fit(ds, ["joint"])
    scaled = norm.normalize_action(ds.actions)
    assert scaled.min() >= -1 - 1e-6 and scaled.max() <= 1 + 1e-6
    torch.testing.assert_close(scaled[:, :2].amin(0), -torch.ones(2))
    torch.testing.assert_close(scaled[:, :2].amax(0), torch.ones(2))
    # A constant action dim maps to 0 and comes back unchanged.
    assert torch.all(scaled[:, 2] == 0)
    torch.testing.assert_close(norm.unnormalize_action(scaled), ds.actions)


def test_any_leading_shape() -> None:
    ds = dataset()
    norm = Normalizer.fit(ds)
    chunk = ds.actions[:24].reshape(2, 3, 4, 3)
    out = norm.normalize_action(chunk)
    assert out.shape == chunk.shape
    torch.testing.assert_close(out.reshape(24, 3), norm.normalize_action(ds.actions[:24]))
    torch.testing.assert_close(norm.unnormalize_action(out), chunk)


def test_safetensors_round_trip(tmp_path: Path) -> None:
    ds = dataset()
    norm = Normalizer.fit(ds)
    tensors = norm.state_dict("normalizer.")
    assert set(tensors) == {
        "normalizer.obs.joint.scale",
        "normalizer.obs.joint.offset",
        "normalizer.action.scale",
        "normalizer.action.offset",
    }
    save_file({**tensors, "actor.weight": torch.ones(2)}, tmp_path / "model.safetensors")
    loaded = Normalizer.from_state_dict(load_file(tmp_path / "model.safetensors"), "normalizer.")
    assert loaded.obs_keys == ["joint"]
    torch.testing.assert_close(
        loaded.normalize_obs(ds.obs)["joint"], norm.normalize_obs(ds.obs)["joint"]
    )
    torch.testing.assert_close(
        loaded.unnormalize_action(ds.actions), norm.unnormalize_action(ds.actions)
    )


def test_incomplete_state_dict_and_unknown_field() -> None:
    with pytest.raises(CheckpointError, match="normalizer.action has a scale but no offset"):
        Normalizer.from_state_dict({"normalizer.action.scale": torch.ones(2)})
    with pytest.raises(KeyError, match="no field 'action'"):
        Normalizer().normalize_action(torch.zeros(2))


def test_default_prefix_is_the_on_disk_layout() -> None:
    # Saved policies hold `normalizer.<field>.scale/offset`; the defaults must write and read
    # exactly those names (a renamed default would orphan every saved checkpoint).
    norm = Normalizer({"action": (torch.tensor([2.0]), torch.tensor([-1.0]))})
    assert set(norm.state_dict()) == {"normalizer.action.scale", "normalizer.action.offset"}
    fresh = Normalizer()
    fresh.load_state_dict(
        {"normalizer.action.scale": torch.tensor([4.0]), "normalizer.action.offset": torch.zeros(1)}
    )
    assert fresh.normalize_action(torch.tensor([0.5])).item() == 2.0


def test_std_floor_default_and_passed_through_fit() -> None:
    # Values +-0.1 around 3: std 0.1, above the default floor 1e-2, so the scale is 1/0.1.
    data = torch.tensor([[2.9], [3.1]], dtype=torch.float64)
    norm = Normalizer()
    norm.fit_field("obs.x", data, "gaussian")
    scale, offset = norm.params["obs.x"]
    torch.testing.assert_close(scale, torch.tensor([10.0]))
    torch.testing.assert_close(offset, torch.tensor([-30.0]))
    # Normalizer.fit hands its own floor to every observation field: 0.5 beats std 0.1.
    episode = {
        "obs": {"x": np.array([[2.9], [3.1]])},
        "next_obs": {"x": np.array([[2.9], [3.1]])},
        "actions": np.array([[0.0], [1.0]]),
        "rewards": np.zeros(2),
        "dones": np.zeros(2),
    }
    fitted = Normalizer.fit(OfflineDataset.from_episodes([episode]), min_std=0.5)
    torch.testing.assert_close(fitted.params["obs.x"][0], torch.tensor([2.0]))


def test_normalize_keeps_the_input_float_dtype() -> None:
    norm = Normalizer({"action": (torch.tensor([2.0]), torch.tensor([-1.0]))})
    for dtype in (torch.float64, torch.bfloat16):
        out = norm.normalize_action(torch.tensor([0.75], dtype=dtype))
        assert out.dtype == dtype and out.item() == 0.5
    # Integer data (e.g. a step counter) is promoted to float32, not truncated.
    assert norm.normalize_action(torch.tensor([1])).dtype == torch.float32


def test_errors_name_the_problem() -> None:
    norm = Normalizer()
    with pytest.raises(ValueError, match="unknown normalization mode 'zscore'"):
        norm.fit_field("obs.a", torch.zeros(2, 1), "zscore")
    norm.fit_field("obs.a", torch.randn(4, 1), "gaussian")
    norm.fit_field("action", torch.randn(4, 1), "minmax")
    with pytest.raises(KeyError, match="no field 'obs.b'; fitted: obs.a, action"):
        norm.normalize("obs.b", torch.zeros(1))


def test_env_action_mode_and_unknown_mode_messages() -> None:
    norm = Normalizer.fit(dataset(), actions="env")
    scale, offset = norm.params["action"]
    assert scale.shape == offset.shape == (3,)  # per action dim, like a fitted field
    assert torch.equal(scale, torch.ones(3)) and torch.equal(offset, torch.zeros(3))
    with pytest.raises(ValueError) as err:
        Normalizer.fit(dataset(), actions="zscore")
    assert str(err.value) == "unknown action normalization 'zscore'; use 'minmax' or 'env'"


def test_stats_are_computed_in_float64_whatever_the_input_dtype() -> None:
    data = torch.tensor([[0.1], [0.3], [0.7]], dtype=torch.float16)
    norm = Normalizer()
    norm.fit_field("action", data, "minmax")
    lo, hi = data.double().min(), data.double().max()  # float16 values, float64 arithmetic
    scale, offset = norm.params["action"]
    torch.testing.assert_close(scale, (2.0 / (hi - lo)).float().view(1), atol=0, rtol=1e-6)
    torch.testing.assert_close(offset, (-1.0 - lo * 2.0 / (hi - lo)).float().view(1), atol=0,
                               rtol=1e-6)  # fmt: skip


def test_a_span_of_exactly_the_threshold_is_scaled_not_constant() -> None:
    norm = Normalizer()
    norm.fit_field("action", torch.tensor([[0.0, 5.0], [1e-6, 5.0]], dtype=torch.float64), "minmax")
    scale, _ = norm.params["action"]
    assert scale[0].item() == pytest.approx(2e6) and scale[1].item() == 1.0  # span < 1e-6: kept


def test_stats_follow_the_input_to_its_device() -> None:
    # The meta device stands in for a GPU: a CPU scale multiplied into a meta batch would raise.
    norm = Normalizer.fit(dataset())
    out = norm.normalize("action", torch.zeros(4, 3, device="meta"))
    back = norm.unnormalize_action(torch.zeros(4, 3, device="meta"))
    assert out.device.type == back.device.type == "meta"

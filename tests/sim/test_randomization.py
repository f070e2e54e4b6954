"""Domain randomization: validation, seeding, per-env resampling, physics effects, latency."""

from __future__ import annotations

import mujoco
import pytest
import torch

import sim
from sim.errors import SimError
from sim.randomization import Randomization, mass_constants

FULL = {
    "friction": [0.5, 1.5],
    "object_mass": [0.5, 2.0],
    "link_mass": [0.8, 1.2],
    "damping": [0.5, 2.0],
    "actuator_gain": [0.7, 1.3],
    "obs_noise": 0.01,
    "action_latency": [0, 2],
}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"fricton": [0.5, 1.5]}, "unknown keys"),
        ({"friction": [1.5, 0.5]}, "low <= high"),
        ({"object_mass": [-1.0, 2.0]}, "> 0"),
        ({"damping": [1.0]}, r"\[low, high\]"),
        ({"actuator_gain": ["a", 1.0]}, r"\[low, high\]"),
        ({"action_latency": [0.5, 1]}, "whole control steps"),
        ({"action_latency": [0, 50]}, "whole control steps"),
        ({"obs_noise": -0.1}, "obs_noise"),
        ({"friction": [0.5, float("inf")]}, "finite"),
        ([0.5, 1.5], "dict"),
    ],
)
def test_bad_ranges_are_one_line_errors(spec, match: str) -> None:
    with pytest.raises(SimError, match=match):
        Randomization.from_dict(spec)


def _scales(env) -> dict[str, torch.Tensor]:
    b = env.backend
    m = b.model
    cube = m.body("cube").id
    act = int(env._act_ids[0])
    dof = int(env._arm_dadr[0])
    return {
        "friction": b.model_field("geom_friction")[:, 0, 0] / m.geom_friction[0, 0],
        "object_mass": b.model_field("body_mass")[:, cube] / m.body_mass[cube],
        "damping": b.model_field("dof_damping")[:, dof] / m.dof_damping[dof],
        "gain": b.model_field("actuator_gainprm")[:, act, 0] / m.actuator_gainprm[act, 0],
        "bias": b.model_field("actuator_biasprm")[:, act, 1] / m.actuator_biasprm[act, 1],
    }


def test_seeded_per_env_within_ranges_and_resampled_only_on_reset() -> None:
    a = sim.make("lift", num_envs=4, seed=3, randomize=FULL)
    b = sim.make("lift", num_envs=4, seed=3, randomize=FULL)
    sa, sb = _scales(a), _scales(b)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # same seed, same draws
        assert len(set(sa[k].tolist())) == 4, k  # every env its own value
    assert ((sa["friction"] >= 0.5 - 1e-6) & (sa["friction"] <= 1.5 + 1e-6)).all()
    assert ((sa["object_mass"] >= 0.5 - 1e-6) & (sa["object_mass"] <= 2.0 + 1e-6)).all()
    torch.testing.assert_close(sa["gain"], sa["bias"])  # kp and -kp scaled together
    c = sim.make("lift", num_envs=4, seed=4, randomize=FULL)
    assert not torch.equal(_scales(c)["friction"], sa["friction"])
    # Stepping does not resample; resetting env 2 resamples env 2 only.
    a.step(torch.zeros(4, 4))
    assert torch.equal(_scales(a)["friction"], sa["friction"])
    a._reset_envs(torch.tensor([2]))
    after = _scales(a)["friction"]
    assert after[2] != sa["friction"][2]
    assert torch.equal(after[[0, 1, 3]], sa["friction"][[0, 1, 3]])
    assert a.env_kwargs["randomize"] == FULL


def test_unit_ranges_are_bit_identical_to_no_randomization() -> None:
    unit = {k: [1.0, 1.0] for k in ("friction", "object_mass", "link_mass", "damping")}
    unit["actuator_gain"] = [1.0, 1.0]
    plain = sim.make("push", num_envs=2, seed=1)
    same = sim.make("push", num_envs=2, seed=1, randomize=unit)
    gen = torch.Generator().manual_seed(0)
    o1, o2 = plain.reset(seed=1), same.reset(seed=1)
    for _ in range(30):
        action = torch.rand(2, 4, generator=gen) * 2 - 1
        o1, *_ = plain.step(action)
        o2, *_ = same.step(action)
        for k in o1:
            assert torch.equal(o1[k], o2[k]), k


def test_weaker_servos_track_a_joint_step_more_slowly() -> None:
    soft = {"actuator_gain": [0.3, 0.3]}
    moved = {}
    for name, spec in (("nominal", None), ("soft", soft)):
        env = sim.make("reach", num_envs=1, seed=0, controller="joint_delta", randomize=spec)
        env.reset(seed=0)
        before = env.joint_pos[0, 1].item()
        action = torch.zeros(1, 8)
        action[0, 1] = 1.0  # +0.05 rad target on joint 2
        env.step(action)
        moved[name] = env.joint_pos[0, 1].item() - before
    assert 0 < moved["soft"] < moved["nominal"]


def test_heavier_cube_has_proportional_mass_and_consistent_constants() -> None:
    env = sim.make("lift", num_envs=2, seed=0, randomize={"object_mass": [3.0, 3.0]})
    m = env.backend.model
    cube = m.body("cube").id
    mass = env.backend.model_field("body_mass")[:, cube]
    torch.testing.assert_close(mass, torch.full((2,), 3 * m.body_mass[cube], dtype=mass.dtype))
    # The derived constants match what MuJoCo computes for a model with that mass.
    ref = mujoco.MjModel.from_xml_string(env.build_xml())
    ref.body_mass[cube] *= 3
    ref.body_inertia[cube] *= 3
    mujoco.mj_setConst(ref, mujoco.MjData(ref))
    got = env.backend.model_field("dof_invweight0")[0]
    torch.testing.assert_close(got, torch.tensor(ref.dof_invweight0, dtype=got.dtype))
    assert not torch.allclose(got, torch.tensor(m.dof_invweight0, dtype=got.dtype))


def test_mass_constants_against_mujoco() -> None:
    env = sim.make("lift", num_envs=1, seed=0)
    m = env.backend.model
    mass = torch.tensor(m.body_mass).unsqueeze(0) * 0.5
    inertia = torch.tensor(m.body_inertia).unsqueeze(0) * 0.5
    got = mass_constants(m, mass, inertia)
    ref = mujoco.MjModel.from_xml_string(env.build_xml())
    ref.body_mass[:] *= 0.5
    ref.body_inertia[:] *= 0.5
    mujoco.mj_setConst(ref, mujoco.MjData(ref))
    for name, value in got.items():
        torch.testing.assert_close(value[0], torch.tensor(getattr(ref, name)), msg=name)


def test_latency_delays_actions_by_exactly_k_steps() -> None:
    k = 2
    late = sim.make("reach", num_envs=1, seed=0, randomize={"action_latency": [k, k]})
    now = sim.make("reach", num_envs=1, seed=0)
    late.reset(seed=0)
    now.reset(seed=0)
    gen = torch.Generator().manual_seed(1)
    chosen = [torch.rand(1, 4, generator=gen) * 2 - 1 for _ in range(8)]
    # What the latency env applies: a_{max(0, t - k)} (the episode's first action meanwhile).
    applied = [chosen[max(0, t - k)] for t in range(8)]
    for t in range(8):
        late.step(chosen[t])
        now.step(applied[t])
        assert torch.equal(late.joint_pos, now.joint_pos), t


def test_observation_noise_has_the_stated_std_and_leaves_rewards_true() -> None:
    env = sim.make("reach", num_envs=64, seed=0, randomize={"obs_noise": 0.02})
    obs = env.reset(seed=0)
    true = env._compute_obs()
    diff = torch.cat([(obs[k] - true[k]).flatten() for k in obs])
    assert abs(diff.std().item() - 0.02) < 0.002
    assert abs(diff.mean().item()) < 0.002
    # Success and reward come from the simulator state, not from the noisy observation.
    _, reward, _, _, info = env.step(torch.zeros(64, 4))
    dense, success = env._evaluate()
    assert torch.equal(info["success"], success)


@pytest.mark.slow
def test_warp_backend_randomizes_like_cpu() -> None:
    pytest.importorskip("mujoco_warp")
    spec = {k: v for k, v in FULL.items() if k not in ("obs_noise", "action_latency")}
    cpu = sim.make("lift", num_envs=3, seed=5, randomize=spec)
    gpu = sim.make("lift", num_envs=3, seed=5, randomize=spec, backend="mujoco_warp")
    for name in ("geom_friction", "body_mass", "dof_damping", "actuator_gainprm", "dof_invweight0"):
        want = cpu.backend.model_field(name).float()
        torch.testing.assert_close(gpu.backend.model_field(name), want, msg=name)
    # The randomized model is what Warp steps: same actions, same trajectory within parity.
    action = torch.tensor([[0.4, -0.3, -0.6, -1.0]]).repeat(3, 1)
    for _ in range(5):
        cpu.step(action)
        gpu.step(action)
    assert (cpu.joint_pos - gpu.joint_pos).abs().max() < 1e-3

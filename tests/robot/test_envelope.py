"""Safety envelope fuzz and behaviour: no command ever leaves the limits."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robot_rl.robot import envelope as E
from robot_rl.robot.kinematics import ArmKinematics

DT = 0.05


@pytest.fixture(scope="module")
def kin() -> ArmKinematics:
    return ArmKinematics()


def _envelope(kin: ArmKinematics, rows: int) -> E.SafetyEnvelope:
    home = np.r_[kin.spec.home_qpos, 0.04, 0.04]
    return E.SafetyEnvelope(E.panda_envelope_config(DT), kin.tool_pos, np.tile(home, (rows, 1)))


def _fuzz_commands(rng: np.random.Generator, last: np.ndarray, low, high) -> np.ndarray:
    """A mix of plausible, wild, huge, NaN and inf policy outputs."""
    n, j = last.shape
    kind = rng.integers(0, 6, size=n)
    cmd = last + rng.normal(0, 0.05, size=(n, j))  # plausible small steps
    span = high - low
    wild = rng.uniform(low - span, high + span, size=(n, j))
    cmd[kind == 1] = wild[kind == 1]
    huge = rng.choice([-1.0, 1.0], size=(n, j)) * 10.0 ** rng.uniform(3, 308, size=(n, j))
    cmd[kind == 2] = huge[kind == 2]
    special = rng.choice([np.nan, np.inf, -np.inf], size=(n, j))
    mask = (rng.random((n, j)) < 0.3) & (kind == 3)[:, None]
    cmd[mask] = special[mask]
    cmd[kind == 4] = last[kind == 4] + rng.normal(0, 0.5, size=(n, j))[kind == 4]
    cmd[kind == 5] = last[kind == 5] + rng.normal(0, 0.005, size=(n, j))[kind == 5]
    return cmd


def _fuzz(kin: ArmKinematics, rows: int, steps: int) -> dict[str, int]:
    rng = np.random.default_rng(7)
    env = _envelope(kin, rows)
    cfg = env.cfg
    low, high = np.asarray(cfg.q_low), np.asarray(cfg.q_high)
    max_step = np.asarray(cfg.vel_limit) * cfg.dt
    violations = {"nonfinite": 0, "joint": 0, "rate": 0, "workspace": 0, "nan_not_held": 0}
    for _ in range(steps):
        prev = env.last.copy()
        raw = _fuzz_commands(rng, prev, low, high)
        out, flags = env(raw)
        violations["nonfinite"] += int((~np.isfinite(out)).any(axis=1).sum())
        violations["joint"] += int(((out < low) | (out > high)).any(axis=1).sum())
        violations["rate"] += int((np.abs(out - prev) > max_step + 1e-12).any(axis=1).sum())
        # the box, by the FK that test_control holds to mj_kinematics
        p = kin.tool_pos(out[:, :7])
        inside = ((p >= cfg.workspace_low) & (p <= cfg.workspace_high)).all(axis=1)
        violations["workspace"] += int((~inside).sum())
        bad = ~np.isfinite(raw).all(axis=1)
        violations["nan_not_held"] += int((out[bad] != prev[bad]).any(axis=1).sum())
        assert ((flags[bad] & E.NONFINITE) != 0).all()
    # the fuzz reached every branch
    assert all(env.counts[k] > 0 for k in ("clamped", "rate_limited", "workspace", "nonfinite"))
    return violations


def test_fuzz_1e4_commands_never_leave_the_limits(kin: ArmKinematics) -> None:
    got = _fuzz(kin, rows=1000, steps=10)
    assert got == {"nonfinite": 0, "joint": 0, "rate": 0, "workspace": 0, "nan_not_held": 0}


@pytest.mark.slow  # ~6-8 s alone, more on a loaded machine
def test_fuzz_1e6_commands_never_leave_the_limits(kin: ArmKinematics) -> None:
    start = time.perf_counter()
    got = _fuzz(kin, rows=20_000, steps=50)
    print(f"10^6 fuzzed commands in {time.perf_counter() - start:.1f} s")
    assert got == {"nonfinite": 0, "joint": 0, "rate": 0, "workspace": 0, "nan_not_held": 0}


def test_fk_in_the_box_check_is_mujocos(kin: ArmKinematics) -> None:
    import mujoco

    q = np.r_[kin.spec.home_qpos]
    kin.data.qpos[kin.qadr] = q
    mujoco.mj_kinematics(kin.model, kin.data)
    np.testing.assert_allclose(kin.tool_pos(q[None])[0], kin.data.site_xpos[kin.site], atol=1e-12)


def test_workspace_scales_the_step_back_then_holds(kin: ArmKinematics) -> None:
    env = _envelope(kin, 1)
    start = env.last.copy()
    # joint 2 forward lowers the tool toward the table; keep pushing far past the box
    for _ in range(200):
        out, flags = env(env.last + np.r_[0, 0.3, 0, 0.3, 0, 0, 0, 0, 0])
    p = kin.tool_pos(out[:, :7])[0]
    assert (p >= env.cfg.workspace_low).all() and (p <= env.cfg.workspace_high).all()
    assert flags[0] & E.WORKSPACE and flags[0] & E.HELD
    # it got close to the box edge before holding (scale-back, not an early hold)
    lo, hi = np.asarray(env.cfg.workspace_low), np.asarray(env.cfg.workspace_high)
    assert min((p - lo).min(), (hi - p).min()) < 0.01
    assert not np.allclose(out, start)


def test_stale_observation_holds_within_two_periods(kin: ArmKinematics) -> None:
    env = _envelope(kin, 1)
    target = env.last + 0.01
    outs = []
    # observations stop after t=0; commands keep coming every period with 2 ms of latency
    for k in range(6):
        out, flags = env(target + 0.01 * k, obs_age=k * DT + 0.002)
        outs.append((out.copy(), int(flags[0])))
    assert not outs[1][1] & E.STALE  # one missed observation is jitter, not a fault
    for k in range(2, 6):
        assert outs[k][1] & E.STALE and outs[k][1] & E.HELD
        assert np.array_equal(outs[k][0], outs[1][0])
    # fresh observation: moves again
    out, flags = env(target + 0.1, obs_age=0.001)
    assert not flags[0] & E.HELD and not np.array_equal(out, outs[1][0])
    # an unknown age is stale
    _, flags = env(target, obs_age=float("nan"))
    assert flags[0] & E.STALE


def test_estop_holds_until_explicit_reset(kin: ArmKinematics) -> None:
    env = _envelope(kin, 1)
    arm = np.r_[np.ones(7), 0, 0]
    env(env.last + 0.02 * arm)
    held = env.last.copy()
    env.set_estop(True)
    for _ in range(5):
        out, flags = env(held + 0.05)
        assert np.array_equal(out, held) and flags[0] & E.ESTOP
    env.set_estop(False)  # releasing the button alone does not resume
    out, flags = env(held + 0.05)
    assert np.array_equal(out, held) and flags[0] & E.ESTOP
    env.set_estop(True)
    assert env.reset() is False  # reset while the e-stop is still pressed does nothing
    out, _ = env(held + 0.05)
    assert np.array_equal(out, held)
    env.set_estop(False)
    assert env.reset() is True
    out, flags = env(held + 0.01 * arm)
    assert not flags[0] & E.HELD
    np.testing.assert_allclose(out, held + 0.01 * arm)


def test_bad_config_is_rejected() -> None:
    from robot_rl.errors import RobotRLError

    with pytest.raises(RobotRLError):
        E.EnvelopeConfig((0.0,), (1.0, 2.0), (1.0,))
    with pytest.raises(RobotRLError):
        E.EnvelopeConfig((1.0,), (0.0,), (1.0,))

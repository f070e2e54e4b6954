"""MuJoCo Warp backend: one batched model for all envs, stepped by Warp kernels.

Same interface as :class:`sim.backends.mujoco_cpu.MujocoBackend`, so the task code (rewards,
resets, controllers, all batched in torch) runs unchanged on it:

- one ``mujoco_warp`` model and one ``Data`` with ``nworld = num_envs``;
- on CUDA the ``nsteps`` physics steps of a control step are captured once into a CUDA graph
  and replayed; on Warp's CPU device (tests, CI) the kernels are launched directly;
- state is shared with torch without copies (``wp.to_torch`` views of the Warp arrays). After
  each step the backend publishes ``qpos`` / ``qvel`` / ``site_xpos`` / ``site_xmat`` as
  device-side snapshots (one ``copy_`` each, no host transfer), because the task keeps
  observations across steps and the views would change under it;
- resets of finished envs happen inside the batch: ``mujoco_warp.reset_data`` with a per-world
  mask, the new states written with masked torch ops, one ``forward`` for the batch; worlds that
  did not reset keep every quantity the task reads, bit for bit;
- contact and constraint buffers are sized (``nconmax`` / ``njmax`` per world) and an overflow
  is checked on the device every step and reported on the host every ``overflow_check_every``
  steps as a :class:`~sim.errors.SimError` naming the buffer to enlarge.

Semantics match the CPU backend: after a step, site poses and Jacobians are those of the last
physics step's ``forward`` (as ``mj_step`` leaves them). Results are float32, and not
bit-deterministic on the GPU; ``tests/sim/test_mujoco_warp.py`` states the parity tolerance.
Domain randomization writes per-world model fields (``set_model_field``); the first write of a
field makes it batched and drops the captured graph, which is recaptured on the next step.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from sim.errors import SimError
from sim.randomization import check_field

try:  # optional dependency: the ``warp`` extra
    import mujoco_warp as mjw
    import warp as wp
except ImportError as _e:  # pragma: no cover - exercised only where the extra is missing
    mjw = None
    wp = None
    _IMPORT_ERROR: ImportError | None = _e
else:
    _IMPORT_ERROR = None


# Overflow bits that mean a buffer is too small (the solver-iteration bits are not sizing).
_SIZING_BITS = {
    "NEFC": "njmax (constraint rows per world)",
    "NJMAX_NNZ": "njmax_nnz (nonzeros of the constraint Jacobian)",
    "BROADPHASE": "nconmax (broadphase pairs)",
    "NARROWPHASE": "nconmax (contacts per world)",
    "CCD": "nconmax (CCD contacts)",
    "NVMAX": "nvmax",
    "EPA_HORIZON": "the EPA horizon buffer",
}


def warp_device(device: torch.device) -> str:
    """The Warp device name for a torch device (``cpu`` or ``cuda:<index>``)."""
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    raise SimError(f"mujoco_warp backend runs on cpu or cuda devices, not {device}")


def require_warp() -> None:
    """Raise a one-line :class:`SimError` naming what to install if Warp is missing."""
    if _IMPORT_ERROR is not None:
        raise SimError(
            "backend 'mujoco_warp' needs the warp extra: pip install 'robot_rl[warp]' "
            f"(mujoco-warp and warp-lang; import failed: {_IMPORT_ERROR})"
        )


class MujocoWarpBackend:
    """Steps ``num_envs`` worlds of one MJCF model with MuJoCo Warp.

    State after each step, float32 on ``device``: ``qpos`` [N, nq], ``qvel`` [N, nv],
    ``site_xpos`` [N, nsite, 3], ``site_xmat`` [N, nsite, 3, 3].

    ``nconmax`` / ``njmax``: contacts and constraint rows allocated per world (default: a
    generous multiple of what the model needs at rest, see :meth:`default_sizes`).
    """

    name = "mujoco_warp"

    def __init__(
        self,
        xml: str,
        num_envs: int,
        device: str | torch.device = "cpu",
        *,
        nconmax: int | None = None,
        njmax: int | None = None,
        overflow_check_every: int = 50,
    ) -> None:
        require_warp()
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise SimError(f"mujoco_warp: device {device!r} asked for, but CUDA is not available")
        self._wp_device = warp_device(self.device)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.num_envs = num_envs
        m = self.model
        default_con, default_j = self.default_sizes(m)
        self.nconmax = default_con if nconmax is None else int(nconmax)
        self.njmax = default_j if njmax is None else int(njmax)
        if self.nconmax < 1 or self.njmax < 1:
            raise SimError(f"mujoco_warp: nconmax and njmax must be >= 1, got {nconmax}, {njmax}")
        self.overflow_check_every = max(1, int(overflow_check_every))
        wp.config.quiet = True  # no banner, no per-module load lines (warnings still show)
        wp.config.log_level = wp.LOG_WARNING
        wp.init()
        self._batched: dict[str, torch.Tensor] = {}
        with wp.ScopedDevice(self._wp_device):
            self._m = self._put_model()
            self._d = mjw.put_data(
                m, mujoco.MjData(m), nworld=num_envs, nconmax=self.nconmax, njmax=self.njmax
            )
            mjw.forward(self._m, self._d)
        self._sync_once()
        d = self._d
        # Zero-copy torch views of the Warp arrays (writes go straight to the simulator).
        self._v_qpos = wp.to_torch(d.qpos)
        self._v_qvel = wp.to_torch(d.qvel)
        self._v_ctrl = wp.to_torch(d.ctrl)
        self._v_site_xpos = wp.to_torch(d.site_xpos)
        self._v_site_xmat = wp.to_torch(d.site_xmat)
        self._v_overflow = wp.to_torch(d.overflow)
        self._v_jac_keep = (wp.to_torch(d.subtree_com), wp.to_torch(d.cdof))
        self._overflow_seen = torch.zeros_like(self._v_overflow)
        self._steps_since_check = 0
        self._graphs: dict[int, object] = {}
        self._stream = wp.Stream(self._wp_device) if self.device.type == "cuda" else None
        # Jacobian work arrays: one query point and body per world.
        with wp.ScopedDevice(self._wp_device):
            self._jac_point = wp.zeros(num_envs, dtype=wp.vec3)
            self._jac_body = wp.zeros(num_envs, dtype=int)
            self._jacp = wp.zeros((num_envs, 3, m.nv), dtype=float)
            self._jacr = wp.zeros((num_envs, 3, m.nv), dtype=float)
        self._v_jac_point = wp.to_torch(self._jac_point)
        self._v_jac_body = wp.to_torch(self._jac_body)
        self._v_jacp = wp.to_torch(self._jacp)
        self._v_jacr = wp.to_torch(self._jacr)
        self._publish()

    # ---- sizing ------------------------------------------------------------------------------

    @staticmethod
    def default_sizes(m: mujoco.MjModel) -> tuple[int, int]:
        """``(nconmax, njmax)`` per world: room for every geom pair that can touch, bounded.

        A free box resting on a plane makes up to 4-8 contacts, each elliptic contact of
        ``condim`` c adds c constraint rows; joint limits add one row each. The default allows
        8 contacts per collidable body and 6 rows per contact plus every limit.
        """
        bodies_with_geoms = len({int(b) for b in m.geom_bodyid if b > 0}) + 1
        nconmax = max(64, 8 * bodies_with_geoms)
        njmax = max(256, 6 * nconmax + int(m.njnt))
        return int(nconmax), int(njmax)

    # ---- model (and domain randomization) ----------------------------------------------------

    def _put_model(self):
        sizes = {name: self.num_envs for name in self._batched}
        mw = mjw.put_model(self.model, batch_sizes=sizes or None)
        # Report sizing overflows only (iteration-limit bits are not a buffer problem).
        bits = 0
        for name in _SIZING_BITS:
            bits |= int(getattr(mjw.OverflowType, name))
        mw.opt.warn_overflow = bits
        for name, values in self._batched.items():
            wp.to_torch(getattr(mw, name)).copy_(values.view_as(wp.to_torch(getattr(mw, name))))
        return mw

    def model_field(self, name: str) -> torch.Tensor:
        """Per-env values of a randomizable model field, ``[N, *shape]`` (a copy)."""
        check_field(name)
        if name in self._batched:
            return self._batched[name].clone()
        value = torch.as_tensor(np.asarray(getattr(self.model, name)), dtype=torch.float32)
        return value.to(self.device).expand(self.num_envs, *value.shape).clone()

    def set_model_field(self, name: str, env_ids: torch.Tensor, values: torch.Tensor) -> None:
        """Set a model field for the envs in ``env_ids`` (``values`` [k, *shape])."""
        check_field(name)
        ids = torch.as_tensor(env_ids, device=self.device).long()
        if name not in self._batched:
            self._batched[name] = self.model_field(name)
            with self._torch_order():
                self._m = self._put_model()
            self._sync_once()
            self._graphs.clear()  # captured graphs hold the old model arrays
        current = self._batched[name]
        current[ids] = values.to(self.device, torch.float32).view(len(ids), *current.shape[1:])
        view = wp.to_torch(getattr(self._m, name))
        view.copy_(current.view_as(view))

    # ---- state -------------------------------------------------------------------------------

    @property
    def timestep(self) -> float:
        """Physics timestep in seconds."""
        return float(self.model.opt.timestep)

    def _publish(self) -> None:
        self.qpos = self._v_qpos.clone()
        self.qvel = self._v_qvel.clone()
        self.site_xpos = self._v_site_xpos.clone()
        self.site_xmat = self._v_site_xmat.clone()

    def _check_overflow(self, force: bool = False) -> None:
        self._overflow_seen |= self._v_overflow
        self._steps_since_check += 1
        if not force and self._steps_since_check < self.overflow_check_every:
            return
        self._steps_since_check = 0
        seen = self._overflow_seen.amax().item()  # one host sync per check interval
        if not seen:
            return
        self._overflow_seen.zero_()
        self._v_overflow.zero_()
        names = [
            what for bit, what in _SIZING_BITS.items() if seen & int(getattr(mjw.OverflowType, bit))
        ]
        raise SimError(
            f"mujoco_warp: buffer overflow ({', '.join(names)}) with nconmax={self.nconmax}, "
            f"njmax={self.njmax} per world; contacts or constraints were dropped. Pass larger "
            "nconmax / njmax to the backend"
        )

    # ---- stepping ----------------------------------------------------------------------------

    def _sync_once(self) -> None:
        """Full device sync after (re)building arrays: rare, never on the step path."""
        if self.device.type == "cuda":
            wp.synchronize_device(self._wp_device)
            torch.cuda.synchronize(self.device)

    def _torch_order(self):
        """Run Warp work on this device, ordered with torch's work: on CUDA, on torch's
        current stream (so reads and writes through the ``wp.to_torch`` views never race)."""
        if self.device.type != "cuda":
            return wp.ScopedDevice(self._wp_device)
        return wp.ScopedStream(wp.stream_from_torch(torch.cuda.current_stream(self.device)))

    def _run_steps(self, nsteps: int) -> None:
        if self._stream is None:  # Warp's CPU device: launch the kernels directly
            with wp.ScopedDevice(self._wp_device):
                for _ in range(nsteps):
                    mjw.step(self._m, self._d)
            return
        # Graphs cannot be captured on torch's (legacy default) stream: capture and replay on a
        # stream of our own, ordered both ways with torch's by events (no host sync).
        torch_stream = wp.stream_from_torch(torch.cuda.current_stream(self.device))
        self._stream.wait_stream(torch_stream)  # the ctrl written by torch first
        with wp.ScopedDevice(self._wp_device), wp.ScopedStream(self._stream):
            graph = self._graphs.get(nsteps)
            if graph is None:  # captured once per step count (as mujoco_warp's own CLI does)
                with wp.ScopedCapture() as capture:
                    for _ in range(nsteps):
                        mjw.step(self._m, self._d)
                graph = self._graphs[nsteps] = capture.graph
            wp.capture_launch(graph)
        torch_stream.wait_stream(self._stream)

    def step(self, ctrl: torch.Tensor, nsteps: int) -> None:
        """Hold ``ctrl`` [N, nu] for ``nsteps`` physics steps in every env."""
        self._v_ctrl.copy_(ctrl.detach().to(self.device, torch.float32))
        self._run_steps(nsteps)
        self._check_overflow()
        self._publish()

    def reset_envs(
        self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor, ctrl: torch.Tensor
    ) -> None:
        """Set the state of the envs in ``env_ids`` and recompute their derived quantities.

        One masked ``reset_data`` and one batched ``forward``; worlds outside ``env_ids`` keep
        the site poses and Jacobian inputs of their last step (restored after the forward), so
        a reset in one env never changes what another env observes.
        """
        dev = self.device
        ids = torch.as_tensor(env_ids, device=dev).long()
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=dev)
        mask[ids] = True
        keep = [v.clone() for v in (self._v_site_xpos, self._v_site_xmat, *self._v_jac_keep)]
        with self._torch_order():
            mjw.reset_data(self._m, self._d, reset=wp.from_torch(mask))
        self._v_qpos[ids] = qpos.to(dev, torch.float32)
        self._v_qvel[ids] = qvel.to(dev, torch.float32)
        self._v_ctrl[ids] = ctrl.to(dev, torch.float32)
        with self._torch_order():
            mjw.forward(self._m, self._d)
        views = (self._v_site_xpos, self._v_site_xmat, *self._v_jac_keep)
        for view, old in zip(views, keep, strict=True):
            rows = mask.view(-1, *([1] * (view.dim() - 1)))
            view.copy_(torch.where(rows, view, old))
        self._publish()

    def site_jacobian(self, site_id: int, dof_ids: torch.Tensor) -> torch.Tensor:
        """Stacked [translational; rotational] Jacobian of a site, [N, 6, len(dof_ids)]."""
        self._v_jac_point.copy_(self._v_site_xpos[:, site_id])
        self._v_jac_body.fill_(int(self.model.site_bodyid[site_id]))
        with self._torch_order():
            mjw.jac(self._m, self._d, self._jacp, self._jacr, self._jac_point, self._jac_body)
        cols = dof_ids.to(self.device)
        return torch.cat([self._v_jacp[:, :, cols], self._v_jacr[:, :, cols]], dim=1)

    def get_flat_state(self) -> torch.Tensor:
        """Physics state (qpos, qvel) per env, [N, nq + nv] float64 on the CPU (from float32)."""
        return torch.cat([self.qpos, self.qvel], dim=1).to("cpu", torch.float64)

    def close(self) -> None:
        """Drop captured graphs and device arrays."""
        self._graphs.clear()

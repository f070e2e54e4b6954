"""CPU MuJoCo backend: one ``MjData`` per env, batched state exposed as torch tensors.

A backend only steps physics, applies resets and reports state; task logic (rewards, resets
distributions, controllers) lives in the task and is written once, batched in torch.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import torch

from sim.randomization import check_field


class MujocoBackend:
    """Steps ``num_envs`` copies of one MJCF model on the CPU.

    State read back after each step: ``qpos`` [N, nq], ``qvel`` [N, nv], ``site_xpos``
    [N, nsite, 3], ``site_xmat`` [N, nsite, 3, 3], float32 on ``device``.

    All envs share one ``MjModel`` until domain randomization first sets a per-env field
    (:meth:`set_model_field`); from then on each env steps its own copy.
    """

    name = "mujoco"

    def __init__(self, xml: str, num_envs: int, device: str | torch.device = "cpu") -> None:
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        self.models: list[mujoco.MjModel] = [self.model] * num_envs
        m = self.model
        # Host-side staging arrays, refilled in place each step (no per-step allocation).
        self._qpos = np.zeros((num_envs, m.nq))
        self._qvel = np.zeros((num_envs, m.nv))
        self._site_xpos = np.zeros((num_envs, m.nsite, 3))
        self._site_xmat = np.zeros((num_envs, m.nsite, 9))
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        for d in self.datas:
            mujoco.mj_forward(m, d)
        self._read_state()

    @property
    def timestep(self) -> float:
        """Physics timestep in seconds."""
        return float(self.model.opt.timestep)

    def _read_state(self) -> None:
        for i, d in enumerate(self.datas):
            self._qpos[i] = d.qpos
            self._qvel[i] = d.qvel
            self._site_xpos[i] = d.site_xpos
            self._site_xmat[i] = d.site_xmat
        to = self.device
        self.qpos = torch.from_numpy(self._qpos).to(to, torch.float32)
        self.qvel = torch.from_numpy(self._qvel).to(to, torch.float32)
        self.site_xpos = torch.from_numpy(self._site_xpos).to(to, torch.float32)
        self.site_xmat = (
            torch.from_numpy(self._site_xmat).to(to, torch.float32).view(self.num_envs, -1, 3, 3)
        )

    def step(self, ctrl: torch.Tensor, nsteps: int) -> None:
        """Hold ``ctrl`` [N, nu] for ``nsteps`` physics steps in every env."""
        ctrl_np = ctrl.detach().to("cpu", torch.float64).numpy()
        for i, d in enumerate(self.datas):
            d.ctrl[:] = ctrl_np[i]
            mujoco.mj_step(self.models[i], d, nsteps)
        self._read_state()

    def reset_envs(
        self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor, ctrl: torch.Tensor
    ) -> None:
        """Set the state of the envs in ``env_ids`` and recompute derived quantities."""
        ids = env_ids.tolist()
        qpos_np = qpos.detach().to("cpu", torch.float64).numpy()
        qvel_np = qvel.detach().to("cpu", torch.float64).numpy()
        ctrl_np = ctrl.detach().to("cpu", torch.float64).numpy()
        for k, i in enumerate(ids):
            d, m = self.datas[i], self.models[i]
            mujoco.mj_resetData(m, d)
            d.qpos[:] = qpos_np[k]
            d.qvel[:] = qvel_np[k]
            d.ctrl[:] = ctrl_np[k]
            mujoco.mj_forward(m, d)
        self._read_state()

    def site_jacobian(self, site_id: int, dof_ids: torch.Tensor) -> torch.Tensor:
        """Stacked [translational; rotational] Jacobian of a site, [N, 6, len(dof_ids)]."""
        cols = dof_ids.cpu().numpy()
        out = np.empty((self.num_envs, 6, len(cols)))
        for i, d in enumerate(self.datas):
            mujoco.mj_jacSite(self.models[i], d, self._jacp, self._jacr, site_id)
            out[i, :3] = self._jacp[:, cols]
            out[i, 3:] = self._jacr[:, cols]
        return torch.from_numpy(out).to(self.device, torch.float32)

    def get_flat_state(self) -> torch.Tensor:
        """MuJoCo physics state (qpos, qvel) per env, float64 for exact replay, [N, nq + nv]."""
        return torch.from_numpy(np.concatenate([self._qpos, self._qvel], axis=1).copy())

    # ---- domain randomization ----------------------------------------------------------------

    def model_field(self, name: str) -> torch.Tensor:
        """Per-env values of a randomizable model field, ``[N, *shape]`` float64 (a copy, exact)."""
        check_field(name)
        return torch.from_numpy(np.stack([getattr(m, name) for m in self.models]))

    def set_model_field(self, name: str, env_ids: torch.Tensor, values: torch.Tensor) -> None:
        """Set a model field for the envs in ``env_ids`` (``values`` [k, *shape])."""
        check_field(name)
        if self.models[0] is self.model:  # first write: give every env its own model
            self.models = [copy.copy(self.model) for _ in range(self.num_envs)]
        vals = values.detach().to("cpu", torch.float64).numpy()
        for k, i in enumerate(torch.as_tensor(env_ids).tolist()):
            getattr(self.models[i], name)[:] = vals[k]

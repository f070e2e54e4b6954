"""Domain randomization per env: physics scales resampled at reset, observation noise, latency.

A task takes ``randomize={...}`` (JSON-able, so it is recorded in ``env_kwargs`` and datasets'
``env_args``); every key is optional:

``friction``       [lo, hi]  scale of every geom's sliding friction
``object_mass``    [lo, hi]  scale of the free objects' mass and inertia
``link_mass``      [lo, hi]  scale of the robot links' mass and inertia
``damping``        [lo, hi]  scale of the arm joints' damping
``actuator_gain``  [lo, hi]  scale of the position servos' stiffness (kp and -kp together)
``obs_noise``      std       Gaussian noise added to every observation entry (not to the state
                             rewards and success are computed from)
``action_latency`` [lo, hi]  integer control steps between choosing an action and applying it

Scales are drawn uniformly per env at each reset of that env, from a generator seeded by the
env seed, and written as per-env model fields through the backend's ``set_model_field`` (CPU
MuJoCo: one model per env; MuJoCo Warp: batched model arrays). Everything is batched in torch;
nothing loops over envs in Python.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import torch

from sim.errors import SimError

RANDOMIZABLE_FIELDS = (
    "geom_friction",
    "body_mass",
    "body_inertia",
    "dof_damping",
    "actuator_gainprm",
    "actuator_biasprm",
    # derived from masses and inertias by mj_setConst (see mass_constants)
    "body_subtreemass",
    "body_invweight0",
    "dof_invweight0",
    "actuator_acc0",
)
"""Model fields a backend's ``set_model_field`` accepts (MjModel names), per env."""
MASS_DERIVED = ("body_subtreemass", "body_invweight0", "dof_invweight0", "actuator_acc0")

SCALE_KEYS = ("friction", "object_mass", "link_mass", "damping", "actuator_gain")
KEYS = (*SCALE_KEYS, "obs_noise", "action_latency")
MAX_LATENCY = 10


def _pair(name: str, value: Any, integer: bool = False) -> tuple[float, float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise SimError(f"randomize.{name} must be [low, high], got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise SimError(f"randomize.{name} must be finite with low <= high, got {value!r}")
    if integer:
        if lo != int(lo) or hi != int(hi) or lo < 0 or hi > MAX_LATENCY:
            raise SimError(
                f"randomize.{name} must be whole control steps in [0, {MAX_LATENCY}], got {value!r}"
            )
    elif lo <= 0:
        raise SimError(f"randomize.{name} scales must be > 0, got {value!r}")
    return lo, hi


@dataclass(frozen=True)
class Randomization:
    """Validated randomization ranges (``None``: not randomized)."""

    friction: tuple[float, float] | None = None
    object_mass: tuple[float, float] | None = None
    link_mass: tuple[float, float] | None = None
    damping: tuple[float, float] | None = None
    actuator_gain: tuple[float, float] | None = None
    obs_noise: float = 0.0
    action_latency: tuple[int, int] = (0, 0)

    @classmethod
    def from_dict(cls, spec: dict[str, Any] | None) -> Randomization:
        """Parse ``randomize={...}``; one-line :class:`SimError` on anything wrong."""
        if spec is None:
            return cls()
        if not isinstance(spec, dict):
            raise SimError(f"randomize must be a dict of ranges, got {type(spec).__name__}")
        unknown = sorted(set(spec) - set(KEYS))
        if unknown:
            raise SimError(f"randomize has unknown keys {unknown}; known: {list(KEYS)}")
        kw: dict[str, Any] = {k: _pair(k, spec[k]) for k in SCALE_KEYS if k in spec}
        if "obs_noise" in spec:
            std = spec["obs_noise"]
            if not isinstance(std, (int, float)) or isinstance(std, bool) or not 0 <= std < 1:
                raise SimError(f"randomize.obs_noise must be a std in [0, 1), got {std!r}")
            kw["obs_noise"] = float(std)
        if "action_latency" in spec:
            lo, hi = _pair("action_latency", spec["action_latency"], integer=True)
            kw["action_latency"] = (int(lo), int(hi))
        return cls(**kw)

    @property
    def physics(self) -> bool:
        """Whether any model field is randomized."""
        return any(getattr(self, k) is not None for k in SCALE_KEYS)


class Randomizer:
    """Applies a :class:`Randomization` to a task's backend, batched over envs.

    ``object_bodies`` / ``link_bodies``: body ids whose mass is scaled; ``arm_dofs``: dofs whose
    damping is scaled; ``servo_actuators``: position actuators whose gains are scaled.
    """

    def __init__(
        self,
        spec: Randomization,
        backend: Any,
        *,
        num_envs: int,
        action_dim: int,
        device: torch.device,
        object_bodies: list[int],
        link_bodies: list[int],
        arm_dofs: list[int],
        servo_actuators: list[int],
        seed: int,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self._noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
        self._groups = {
            "object_mass": torch.tensor(object_bodies, dtype=torch.long),
            "link_mass": torch.tensor(link_bodies, dtype=torch.long),
            "damping": torch.tensor(arm_dofs, dtype=torch.long),
            "actuator_gain": torch.tensor(servo_actuators, dtype=torch.long),
        }
        fields = set()
        if spec.friction is not None:
            fields.add("geom_friction")
        if spec.object_mass is not None or spec.link_mass is not None:
            fields |= {"body_mass", "body_inertia"}
        if spec.damping is not None:
            fields.add("dof_damping")
        if spec.actuator_gain is not None:
            fields |= {"actuator_gainprm", "actuator_biasprm"}
        # Nominal values (env 0 before any randomization), on the CPU.
        self.nominal = {f: backend.model_field(f)[0].cpu() for f in sorted(fields)}
        self.scales = {k: torch.ones(num_envs, dtype=torch.float64) for k in SCALE_KEYS}
        lo, hi = spec.action_latency
        self.max_latency = hi
        self.latency = torch.zeros(num_envs, dtype=torch.long, device=device)
        self._history = torch.zeros(hi + 1, num_envs, action_dim, device=device)
        self._head = 0

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)
        self._noise_gen.manual_seed(seed + 1)

    def _draw(self, k: int, bounds: tuple[float, float]) -> torch.Tensor:
        lo, hi = bounds
        return lo + (hi - lo) * torch.rand(k, generator=self.generator, dtype=torch.float64)

    def on_reset(self, env_ids: torch.Tensor) -> None:
        """Resample every randomized quantity of the envs in ``env_ids`` and apply it."""
        k = len(env_ids)
        spec = self.spec
        cpu_ids = env_ids.cpu()
        for key in SCALE_KEYS:
            bounds = getattr(spec, key)
            if bounds is not None:
                self.scales[key][cpu_ids] = self._draw(k, bounds)
        lo, hi = spec.action_latency
        if hi > 0:
            draw = torch.randint(lo, hi + 1, (k,), generator=self.generator)
            self.latency[env_ids] = draw.to(self.device)
        if not spec.physics:
            return
        s = {key: self.scales[key][cpu_ids] for key in SCALE_KEYS}
        if spec.friction is not None:
            values = self.nominal["geom_friction"].repeat(k, 1, 1)
            values[:, :, 0] *= s["friction"][:, None]
            self.backend.set_model_field("geom_friction", env_ids, values)
        if spec.object_mass is not None or spec.link_mass is not None:
            body_scale = torch.ones(k, self.nominal["body_mass"].shape[0], dtype=torch.float64)
            body_scale[:, self._groups["object_mass"]] = s["object_mass"][:, None]
            body_scale[:, self._groups["link_mass"]] = s["link_mass"][:, None]
            mass = self.nominal["body_mass"] * body_scale
            inertia = self.nominal["body_inertia"] * body_scale[:, :, None]
            self.backend.set_model_field("body_mass", env_ids, mass)
            self.backend.set_model_field("body_inertia", env_ids, inertia)
            for name, values in mass_constants(self.backend.model, mass, inertia).items():
                self.backend.set_model_field(name, env_ids, values)
        if spec.damping is not None:
            damping = self.nominal["dof_damping"].repeat(k, 1)
            damping[:, self._groups["damping"]] *= s["damping"][:, None]
            self.backend.set_model_field("dof_damping", env_ids, damping)
        if spec.actuator_gain is not None:
            acts = self._groups["actuator_gain"]
            gain = self.nominal["actuator_gainprm"].repeat(k, 1, 1)
            bias = self.nominal["actuator_biasprm"].repeat(k, 1, 1)
            g = s["actuator_gain"][:, None]
            gain[:, acts, 0] *= g  # kp
            bias[:, acts, 1] *= g  # -kp
            self.backend.set_model_field("actuator_gainprm", env_ids, gain)
            self.backend.set_model_field("actuator_biasprm", env_ids, bias)

    def delay(self, action: torch.Tensor, steps_in_episode: torch.Tensor) -> torch.Tensor:
        """The action to apply now: each env's action from ``min(latency, t)`` steps ago.

        ``steps_in_episode`` [N] counts the env's steps since reset before this one, so an
        episode never applies its predecessor's actions (the first action stands in meanwhile).
        """
        if self.max_latency == 0:
            return action
        size = self.max_latency + 1
        self._head = (self._head + 1) % size
        self._history[self._head] = action
        lag = torch.minimum(self.latency, steps_in_episode)
        slot = (self._head - lag) % size
        return self._history[slot, torch.arange(action.shape[0], device=action.device)]

    def noisy(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Observations with Gaussian noise of std ``obs_noise`` (fresh tensors)."""
        std = self.spec.obs_noise
        if std == 0:
            return obs
        return {
            k: v + std * torch.randn(v.shape, generator=self._noise_gen, device=v.device)
            for k, v in obs.items()
        }


def body_groups(model: mujoco.MjModel, arm_joint_ids: list[int]) -> tuple[list[int], list[int]]:
    """``(object_bodies, link_bodies)``: bodies with a free joint, and the arm's whole subtree."""
    free = [int(model.jnt_bodyid[j]) for j in range(model.njnt) if model.jnt_type[j] == 0]
    root = int(model.body_rootid[model.jnt_bodyid[arm_joint_ids[0]]])
    links = [b for b in range(1, model.nbody) if int(model.body_rootid[b]) == root]
    return free, links


def check_field(name: str) -> None:
    """One-line :class:`SimError` unless ``name`` is in :data:`RANDOMIZABLE_FIELDS`."""
    if name not in RANDOMIZABLE_FIELDS:
        raise SimError(
            f"model field {name!r} cannot be randomized; choose from {RANDOMIZABLE_FIELDS}"
        )


def mass_constants(
    model: mujoco.MjModel, mass: torch.Tensor, inertia: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The model constants MuJoCo derives from masses (:data:`MASS_DERIVED`), per row.

    Changing ``body_mass`` alone leaves ``dof_invweight0`` / ``body_invweight0`` (which scale
    the constraint solver's regularization) at the old masses, and a lighter cube then blows
    up (measured: NaN velocities within a few seconds at 0.5x). So for each resetting env this
    runs ``mj_setConst`` on a host scratch copy of the model (about 0.1 ms each) and returns
    the fields to write per env, ``{name: [k, *shape]}``.
    """
    scratch = copy.copy(model)
    data = mujoco.MjData(scratch)
    out: dict[str, list[np.ndarray]] = {name: [] for name in MASS_DERIVED}
    for row in range(len(mass)):
        scratch.body_mass[:] = mass[row].double().numpy()
        scratch.body_inertia[:] = inertia[row].double().numpy()
        mujoco.mj_setConst(scratch, data)
        for name in MASS_DERIVED:
            out[name].append(np.array(getattr(scratch, name), dtype=np.float64))
    return {name: torch.from_numpy(np.stack(rows)) for name, rows in out.items()}

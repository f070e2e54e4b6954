"""Per-field affine normalization, fitted on a dataset and saved inside the policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from robot_rl.errors import CheckpointError

if TYPE_CHECKING:
    from robot_rl.data.dataset import OfflineDataset

ACTION_FIELD = "action"
_OBS_PREFIX = "obs."


class Normalizer:
    """Maps each field to `x * scale + offset`, with one (scale, offset) per dimension.

    Observations use `gaussian` (zero mean, unit std); actions use `minmax` (to [-1, 1], as
    diffusion policies expect). Both reduce to an affine map, so only scale and offset are
    stored, and a saved normalizer never depends on how it was fitted.
    """

    def __init__(self, params: dict[str, tuple[Tensor, Tensor]] | None = None) -> None:
        """Args: params: field name -> (scale, offset), each [d...] float32."""
        self.params: dict[str, tuple[Tensor, Tensor]] = dict(params or {})

    @classmethod
    def fit(
        cls,
        dataset: OfflineDataset,
        obs_keys: list[str] | None = None,
        *,
        min_std: float = 1e-2,
        actions: str = "minmax",
    ) -> Normalizer:
        """Fits gaussian stats on observations and, for actions, minmax stats (``"minmax"``,
        the data's range, as diffusion policies expect) or the env's own [-1, 1] box
        (``"env"``: identity, so a policy can reach every action the env takes, e.g. open a
        gripper the demonstrations always held closed).

        Args:
            dataset: the data to fit on.
            obs_keys: observation keys to normalize; default every float observation key.
            min_std: std floor, so near-constant dims are not blown up by tiny noise.
            actions: ``"minmax"`` or ``"env"``.
        """
        if obs_keys is None:
            obs_keys = [k for k, v in dataset.obs.items() if v.is_floating_point()]
        norm = cls()
        for key in obs_keys:
            norm.fit_field(_OBS_PREFIX + key, dataset.obs[key], "gaussian", min_std=min_std)
        if actions == "env":
            ones = torch.ones(dataset.actions.shape[1:])
            norm.params[ACTION_FIELD] = (ones, torch.zeros_like(ones))
        elif actions == "minmax":
            norm.fit_field(ACTION_FIELD, dataset.actions, "minmax")
        else:
            raise ValueError(f"unknown action normalization {actions!r}; use 'minmax' or 'env'")
        return norm

    def fit_field(self, name: str, data: Tensor, mode: str, *, min_std: float = 1e-2) -> None:
        """Fits one field on data [N, d...] in mode `gaussian` or `minmax`."""
        x = data.detach().to(torch.float64)
        if mode == "gaussian":
            mean = x.mean(0)
            std = x.std(0, unbiased=False).clamp_min(min_std)
            scale, offset = 1.0 / std, -mean / std
        elif mode == "minmax":
            lo, hi = x.amin(0), x.amax(0)
            span = hi - lo
            # A constant dim keeps its units and maps to 0, the middle of [-1, 1].
            constant = span < 1e-6
            scale = torch.where(constant, torch.ones_like(span), 2.0 / span.clamp_min(1e-6))
            offset = torch.where(constant, -(hi + lo) / 2, -1.0 - lo * scale)
        else:
            raise ValueError(f"unknown normalization mode {mode!r}; use 'gaussian' or 'minmax'")
        self.params[name] = (scale.float().cpu(), offset.float().cpu())

    def normalize(self, name: str, x: Tensor) -> Tensor:
        """Normalizes field `name` of x [..., d...]."""
        x = x if x.is_floating_point() else x.float()
        scale, offset = self._get(name, x)
        return x * scale + offset

    def unnormalize(self, name: str, y: Tensor) -> Tensor:
        """Inverts `normalize` for field `name`."""
        scale, offset = self._get(name, y)
        return (y - offset) / scale

    def normalize_obs(self, obs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Normalizes every fitted key; other keys (e.g. uint8 images) pass through."""
        return {
            k: self.normalize(_OBS_PREFIX + k, v) if _OBS_PREFIX + k in self.params else v
            for k, v in obs.items()
        }

    def normalize_action(self, action: Tensor) -> Tensor:
        """Maps actions into [-1, 1] (for data inside the fitted range)."""
        return self.normalize(ACTION_FIELD, action)

    def unnormalize_action(self, action: Tensor) -> Tensor:
        """Maps normalized actions back to the data's units."""
        return self.unnormalize(ACTION_FIELD, action)

    @property
    def obs_keys(self) -> list[str]:
        """Observation keys this normalizer was fitted on."""
        return [n[len(_OBS_PREFIX) :] for n in self.params if n.startswith(_OBS_PREFIX)]

    def state_dict(self, prefix: str = "normalizer.") -> dict[str, Tensor]:
        """Flat tensors for safetensors: `<prefix><field>.scale` and `<prefix><field>.offset`."""
        out = {}
        for name, (scale, offset) in self.params.items():
            out[f"{prefix}{name}.scale"] = scale.contiguous()
            out[f"{prefix}{name}.offset"] = offset.contiguous()
        return out

    def load_state_dict(self, tensors: dict[str, Tensor], prefix: str = "normalizer.") -> None:
        """Replaces the parameters with those under `prefix` in `tensors`; others are ignored."""
        params: dict[str, tuple[Tensor, Tensor]] = {}
        for key, scale in tensors.items():
            if not (key.startswith(prefix) and key.endswith(".scale")):
                continue
            name = key[len(prefix) : -len(".scale")]
            offset = tensors.get(f"{prefix}{name}.offset")
            if offset is None:
                raise CheckpointError(f"normalizer field {prefix}{name} has a scale but no offset")
            params[name] = (scale.float(), offset.float())
        self.params = params

    @classmethod
    def from_state_dict(cls, tensors: dict[str, Tensor], prefix: str = "normalizer.") -> Normalizer:
        """Builds a normalizer from `state_dict` output."""
        norm = cls()
        norm.load_state_dict(tensors, prefix)
        return norm

    def _get(self, name: str, x: Tensor) -> tuple[Tensor, Tensor]:
        if name not in self.params:
            raise KeyError(f"normalizer has no field {name!r}; fitted: {', '.join(self.params)}")
        scale, offset = self.params[name]
        # No-op when already on x's device and dtype; lets one normalizer serve CPU and GPU.
        return scale.to(x.device, x.dtype), offset.to(x.device, x.dtype)

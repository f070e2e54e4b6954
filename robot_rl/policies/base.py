"""The policy interface every policy class implements, and its directory format.

A policy directory holds ``config.json`` (policy type, network config, the task it acts in)
and ``model.safetensors`` (weights and the normalizer, under ``normalizer.``). Loading never
executes code from the files: the type name picks a registered class.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from robot_rl.checkpoint import save_policy_dir
from robot_rl.data.normalizer import Normalizer
from robot_rl.errors import CheckpointError

FORMAT_VERSION = 1

if TYPE_CHECKING:
    from sim.vec_env import Obs


class Policy(nn.Module):
    """Maps a batch of observation dicts to env actions in [-1, 1].

    Subclasses own a dataclass config (``config_cls``) and a :class:`Normalizer`; they
    implement :meth:`act` and may keep per-env state (observation history, action queue)
    cleared by :meth:`reset`.
    """

    policy_type: ClassVar[str]
    config_cls: ClassVar[type]

    def __init__(self, config: Any, normalizer: Normalizer, env_info: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.normalizer = normalizer
        self.env_info = dict(env_info)
        """``env_name`` and ``env_kwargs`` of the task the policy was trained for."""

    @property
    def obs_keys(self) -> list[str]:
        """Observation keys the policy reads, in the order they are concatenated."""
        return list(self.config.obs_keys)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def flat_obs(self, obs: Obs) -> torch.Tensor:
        """Normalized observation keys concatenated to [..., obs_dim]."""
        missing = [k for k in self.obs_keys if k not in obs]
        if missing:
            raise KeyError(f"observation lacks keys {missing}; has {sorted(obs)}")
        normed = self.normalizer.normalize_obs({k: obs[k].float() for k in self.obs_keys})
        return torch.cat([normed[k] for k in self.obs_keys], dim=-1)

    @abstractmethod
    def act(self, obs: Obs, deterministic: bool = False) -> torch.Tensor:
        """Env actions [N, action_dim] in [-1, 1] for a batch of observations.

        ``deterministic``: the same observation (history) gives the same action, whatever the
        RNG state. Otherwise actions are sampled from torch's global RNG; a subclass may also
        take a ``generator`` keyword to draw from instead.
        """

    def reset(self, env_ids: torch.Tensor | None = None) -> None:  # noqa: B027 - stateless default
        """Clear per-env state (history, queued actions) for ``env_ids`` (all if None)."""

    def save(
        self,
        path: str | Path,
        *,
        overwrite: bool = False,
        extra_config: dict[str, Any] | None = None,
        extra_files: dict[str, dict[str, torch.Tensor]] | None = None,
    ) -> None:
        """Write the policy directory (atomically; refuses to replace unless ``overwrite``)."""
        config = {
            "format_version": FORMAT_VERSION,
            "policy_type": self.policy_type,
            "policy": dataclasses.asdict(self.config),
            "env": self.env_info,
            **(extra_config or {}),
        }
        tensors = {f"model.{k}": v for k, v in self.weights_for_save().items()}
        tensors.update(self.normalizer.state_dict("normalizer."))
        save_policy_dir(path, config, tensors, overwrite=overwrite, extra_files=extra_files)

    def weights_for_save(self) -> dict[str, torch.Tensor]:
        """Weights written to ``model.safetensors`` (EMA weights where a policy keeps them)."""
        return {k: v for k, v in self.state_dict().items()}

    @classmethod
    def from_saved(
        cls, config: dict[str, Any], tensors: dict[str, torch.Tensor], path: str | Path
    ) -> Policy:
        """Rebuild from a loaded directory; errors name the directory and the problem."""
        version = config.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: format_version {version!r} is newer than this robot_rl reads "
                f"({FORMAT_VERSION}); upgrade robot_rl"
            )
        unknown = [k for k in tensors if not k.startswith(("model.", "normalizer."))]
        if unknown:
            raise CheckpointError(f"{path}: unexpected tensor {unknown[0]!r} in the model file")
        section = config.get("policy")
        keys = section.get("obs_keys") if isinstance(section, dict) else None
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
        ):
            raise CheckpointError(f"{path}: policy.obs_keys must be a list of names, got {keys!r}")
        env_info = config.get("env", {})
        if not isinstance(env_info, dict):
            raise CheckpointError(f"{path}: config 'env' must be an object")
        try:
            policy_cfg = cls.config_cls(**config["policy"])
            normalizer = Normalizer.from_state_dict(tensors, "normalizer.")
            policy = cls(policy_cfg, normalizer, env_info)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: invalid policy config: {e}") from e
        weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            policy.load_state_dict(weights)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: weights do not match the config: {e}") from e
        policy.eval()
        return policy

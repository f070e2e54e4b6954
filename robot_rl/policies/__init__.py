"""Policy classes and loading a policy directory by its saved type name."""

from __future__ import annotations

from pathlib import Path

from robot_rl.checkpoint import load_policy_dir
from robot_rl.errors import CheckpointError
from robot_rl.policies.base import Policy
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig
from robot_rl.policies.expo import EXPOPolicy, EXPOPolicyConfig
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig

POLICY_TYPES: dict[str, type[Policy]] = {
    GaussianPolicy.policy_type: GaussianPolicy,
    DiffusionPolicy.policy_type: DiffusionPolicy,
    EXPOPolicy.policy_type: EXPOPolicy,
}


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Make a policy class loadable by its ``policy_type`` (usable as a decorator)."""
    POLICY_TYPES[cls.policy_type] = cls
    return cls


def load_policy(path: str | Path, device: str | None = None) -> Policy:
    """Load any policy directory written by :meth:`Policy.save`."""
    config, tensors = load_policy_dir(path)
    kind = config.get("policy_type")
    if kind not in POLICY_TYPES:
        raise CheckpointError(
            f"{path}: unknown policy_type {kind!r}; known types: {sorted(POLICY_TYPES)}"
        )
    policy = POLICY_TYPES[kind].from_saved(config, tensors, path)
    return policy.to(device) if device else policy


__all__ = [
    "POLICY_TYPES",
    "DiffusionPolicy",
    "DiffusionPolicyConfig",
    "EXPOPolicy",
    "EXPOPolicyConfig",
    "GaussianPolicy",
    "GaussianPolicyConfig",
    "Policy",
    "load_policy",
    "register_policy",
]

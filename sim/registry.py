"""One registry of env specs: built-in tasks, ``module:factory``, gymnasium ids, entry points.

``make_env(spec, num_envs, seed, device, **kwargs)`` resolves ``spec`` in this order:

1. ``gym:<id>`` (or ``gymnasium:<id>``): a gymnasium id through the gymnasium adapter;
   ``isaaclab:<task id>`` / ``isaacgym:<task>``: Isaac Lab / Isaac Gym tasks through
   :mod:`sim.adapters.isaac` (imported only then; a one-line error if not installed);
2. a registered name: the built-in tasks (``reach``, ``push``, ``lift``, ``push_obstacle``,
   ``point``), the ``reacher`` showcase, and whatever :func:`register_env` added;
3. a name in the ``robot_rl.envs`` entry-point group of an installed package
   (``[project.entry-points."robot_rl.envs"] myenv = "mypkg.envs:make"``);
4. ``module:factory`` (``module.sub:attr``): imported and called;
5. a plain gymnasium id (``Pendulum-v1``).

A factory is called as ``factory(num_envs=..., seed=..., device=..., **kwargs)`` and may
return a ``VecEnv`` or a gymnasium ``Env`` / ``VectorEnv`` (wrapped by the adapter). Unknown
keyword arguments are rejected with the factory's accepted names before it is called. The
result is checked once with :func:`sim.vec_env.check_vec_env`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Callable
from typing import Any

from sim.errors import EnvSpecError
from sim.importing import import_module_here
from sim.vec_env import VecEnv, check_vec_env

EnvFactory = Callable[..., Any]
ENTRY_POINT_GROUP = "robot_rl.envs"
_CALL_ARGS = ("num_envs", "seed", "device")


def _builtin_task(task: str) -> EnvFactory:
    def factory(num_envs: int = 1, seed: int | None = None, device: str = "cpu", **kw: Any):
        import sim

        return sim.make(task, num_envs=num_envs, seed=seed, device=device, **kw)

    # Expose the task's own keyword arguments for validation.
    def signature() -> inspect.Signature:
        import sim

        return inspect.signature(sim.TASKS[task].__init__)

    factory.__signature_fn__ = signature  # type: ignore[attr-defined]
    factory.__doc__ = f"Built-in MuJoCo task {task!r}."
    return factory


def _point(num_envs: int = 1, seed: int | None = None, device: str = "cpu", **kw: Any):
    from sim.toy import PointReachEnv

    return PointReachEnv(num_envs=num_envs, device=device, seed=seed, **kw)


_point.__signature_fn__ = lambda: inspect.signature(  # type: ignore[attr-defined]
    importlib.import_module("sim.toy").PointReachEnv.__init__
)


def _reacher(num_envs: int = 1, seed: int | None = None, device: str = "cpu", **kw: Any):
    from sim.adapters.gymnasium import GymnasiumVecEnv

    kw.setdefault("success_fn", "sim.adapters.gymnasium:reacher_success")
    return GymnasiumVecEnv("Reacher-v5", num_envs=num_envs, seed=seed, device=device, **kw)


_REGISTRY: dict[str, EnvFactory] = {
    **{t: _builtin_task(t) for t in ("reach", "push", "lift", "push_obstacle")},
    "point": _point,
    "reacher": _reacher,
}


def register_env(name: str, factory: EnvFactory, *, overwrite: bool = False) -> None:
    """Make ``name`` resolve to ``factory(num_envs=, seed=, device=, **kwargs)``."""
    if not callable(factory):
        raise EnvSpecError(f"register_env({name!r}): factory is not callable")
    if ":" in name:
        raise EnvSpecError(f"register_env({name!r}): names may not contain ':'")
    if name in _REGISTRY and not overwrite:
        raise EnvSpecError(f"env {name!r} is already registered; pass overwrite=True")
    _REGISTRY[name] = factory


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_envs() -> list[str]:
    """Registered names and entry-point names (gymnasium ids and ``module:factory`` also work)."""
    return sorted({*_REGISTRY, *_entry_points()})


def _import_factory(spec: str) -> EnvFactory:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = import_module_here(module_name)
    except ImportError as e:
        raise EnvSpecError(f"env spec {spec!r}: cannot import module {module_name!r} ({e})") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EnvSpecError(f"env spec {spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EnvSpecError(f"env spec {spec!r}: {attr!r} is not callable")
    return obj


def _is_gym_id(name: str) -> bool:
    import gymnasium as gym

    return name in gym.registry


def resolve_env(spec: str) -> EnvFactory:
    """The factory ``spec`` names (see the module docstring), or a one-line EnvSpecError."""
    for prefix in ("gym:", "gymnasium:"):
        if spec.startswith(prefix):
            env_id = spec[len(prefix) :]
            if not _is_gym_id(env_id):
                raise EnvSpecError(f"env spec {spec!r}: {env_id!r} is not a gymnasium id")
            return _gym_factory(env_id)
    for prefix, builder in (("isaaclab:", "make_isaaclab"), ("isaacgym:", "make_isaacgym")):
        if spec.startswith(prefix):
            return _isaac_factory(builder, spec[len(prefix) :])
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    eps = _entry_points()
    if spec in eps:
        try:
            return eps[spec].load()
        except Exception as e:  # noqa: BLE001 - a broken plugin is a user error, named
            raise EnvSpecError(
                f"env {spec!r} (entry point {eps[spec].value!r}) failed to load: {e}"
            ) from e
    if ":" in spec:
        return _import_factory(spec)
    if _is_gym_id(spec):
        return _gym_factory(spec)
    raise EnvSpecError(
        f"unknown env {spec!r}; available: {available_envs()}, "
        "or 'module:factory', or a gymnasium id ('gym:Pendulum-v1')"
    )


def _isaac_factory(builder: str, task: str) -> EnvFactory:
    def factory(num_envs: int = 1, seed: int | None = None, device: str = "cpu", **kw: Any):
        from sim.adapters import isaac

        return getattr(isaac, builder)(task, num_envs=num_envs, seed=seed, device=device, **kw)

    return factory


def _gym_factory(env_id: str) -> EnvFactory:
    def factory(num_envs: int = 1, seed: int | None = None, device: str = "cpu", **kw: Any):
        from sim.adapters.gymnasium import GymnasiumVecEnv

        return GymnasiumVecEnv(env_id, num_envs=num_envs, seed=seed, device=device, **kw)

    return factory


def _check_kwargs(spec: str, factory: EnvFactory, kwargs: dict[str, Any]) -> None:
    sig_fn = getattr(factory, "__signature_fn__", None)
    try:
        sig = sig_fn() if sig_fn is not None else inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params) and sig_fn is None:
        return
    names = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name != "self"
    ]
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        options = [n for n in names if n not in (*_CALL_ARGS, "backend")]
        raise EnvSpecError(
            f"env {spec!r} takes no option {', '.join(map(repr, unknown))}; "
            f"its options: {options or 'none'}"
        )


def make_env(
    spec: str,
    num_envs: int = 1,
    seed: int | None = None,
    device: str = "cpu",
    *,
    check: bool = True,
    **kwargs: Any,
) -> VecEnv:
    """Build the env ``spec`` names as a checked ``VecEnv`` (see the module docstring)."""
    import gymnasium as gym

    factory = resolve_env(spec)
    _check_kwargs(spec, factory, kwargs)
    env = factory(num_envs=num_envs, seed=seed, device=device, **kwargs)
    if isinstance(env, (gym.Env, gym.vector.VectorEnv)):
        from sim.adapters.gymnasium import GymnasiumVecEnv

        env = GymnasiumVecEnv(env, seed=seed, device=device)
    if getattr(env, "num_envs", num_envs) != num_envs:
        raise EnvSpecError(f"env {spec!r}: asked for {num_envs} envs, got {env.num_envs}")
    if check:
        check_vec_env(env)
    return env


__all__ = [
    "ENTRY_POINT_GROUP",
    "EnvFactory",
    "available_envs",
    "make_env",
    "register_env",
    "resolve_env",
]

"""Corrupt and edited policy directories, fed to every verb that loads one (eval, record,
finetune): one clean line each, nothing lost, before an env is stepped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from _battery import Fixtures, assert_clean_error
from safetensors.torch import load_file, save_file

Edit = Callable[[Path], None]


def _config(mutate: Callable[[dict], object]) -> Edit:
    def apply(policy: Path) -> None:
        path = policy / "config.json"
        path.write_text(json.dumps(mutate(json.loads(path.read_text()))))

    return apply


def _env_kwargs(**kwargs: object) -> Edit:
    def mutate(c: dict) -> dict:
        c["env"]["env_kwargs"] = {**c["env"]["env_kwargs"], **kwargs}
        return c

    return _config(mutate)


def _policy_field(name: str, value: object) -> Edit:
    def mutate(c: dict) -> dict:
        c["policy"][name] = value
        return c

    return _config(mutate)


def _weights(edit: Callable[[dict[str, torch.Tensor]], None]) -> Edit:
    def apply(policy: Path) -> None:
        tensors = load_file(policy / "model.safetensors")
        edit(tensors)
        save_file(tensors, policy / "model.safetensors")

    return apply


def _first_weight(value: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(t: dict[str, torch.Tensor]) -> None:
        key = next(k for k in sorted(t) if k.endswith("weight"))
        t[key] = t[key].clone()
        t[key].view(-1)[0] = value

    return edit


def _normalizer(value: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(t: dict[str, torch.Tensor]) -> None:
        key = next(k for k in sorted(t) if "normalizer" in k or k.startswith("norm"))
        t[key] = torch.full_like(t[key], value)

    return edit


def _drop_weight(t: dict[str, torch.Tensor]) -> None:
    del t[sorted(t)[0]]


def _reshape_weight(t: dict[str, torch.Tensor]) -> None:
    key = next(k for k in sorted(t) if k.endswith("weight"))
    t[key] = torch.zeros(3, 3)


def _bytes(name: str, content: Callable[[bytes], bytes]) -> Edit:
    def apply(policy: Path) -> None:
        path = policy / name
        path.write_bytes(content(path.read_bytes()))

    return apply


def _delete(name: str) -> Edit:
    return lambda policy: (policy / name).unlink()


def _env(mutate: Callable[[dict], None]) -> Edit:
    def m(c: dict) -> dict:
        mutate(c)
        return c

    return _config(m)


CORRUPTIONS: dict[str, Edit] = {
    "no config.json": _delete("config.json"),
    "no model.safetensors": _delete("model.safetensors"),
    "config.json empty": _bytes("config.json", lambda b: b""),
    "config.json not JSON": _bytes("config.json", lambda b: b[: len(b) // 2]),
    "config.json a list": _config(lambda c: [c]),
    "config.json a number": _config(lambda c: 3),
    "config.json binary": _bytes("config.json", lambda b: b"\xff\xfe\x00garbage"),
    "unknown policy_type": _config(lambda c: {**c, "policy_type": "transformer"}),
    "no policy_type": _config(lambda c: {k: v for k, v in c.items() if k != "policy_type"}),
    "no policy section": _config(lambda c: {k: v for k, v in c.items() if k != "policy"}),
    "policy section a list": _config(lambda c: {**c, "policy": [1, 2]}),
    "unknown policy field": _policy_field("depth", 9),
    "obs_dim wrong": _policy_field("obs_dim", 5),
    "action_dim wrong": _policy_field("action_dim", 2),
    "hidden_dims wrong": _policy_field("hidden_dims", [32]),
    "hidden_dims negative": _policy_field("hidden_dims", [-4]),
    "obs key the env lacks": _policy_field("obs_keys", ["goal", "camera"]),
    "obs_keys a string": _policy_field("obs_keys", "goal"),
    "format_version from the future": _config(lambda c: {**c, "format_version": 99}),
    "model truncated": _bytes("model.safetensors", lambda b: b[: len(b) // 2]),
    "model empty": _bytes("model.safetensors", lambda b: b""),
    "model random bytes": _bytes("model.safetensors", lambda b: bytes(reversed(b))),
    "model header garbage": _bytes("model.safetensors", lambda b: b"\x10" * 16 + b[16:]),
    "NaN weight": _weights(_first_weight(float("nan"))),
    "inf weight": _weights(_first_weight(float("inf"))),
    "NaN normalizer": _weights(_normalizer(float("nan"))),
    "missing weight": _weights(_drop_weight),
    "weight of the wrong shape": _weights(_reshape_weight),
    "extra weight": _weights(lambda t: t.__setitem__("extra.weight", torch.zeros(2))),
    "env unknown": _env(lambda c: c["env"].__setitem__("env_name", "no_such_env")),
    "env name missing": _env(lambda c: c["env"].pop("env_name")),
    "env name a number": _env(lambda c: c["env"].__setitem__("env_name", 7)),
    "env_kwargs unknown key": _env_kwargs(bogus=1),
    "env_kwargs negative horizon": _env_kwargs(horizon=-5),
    "env_kwargs zero horizon": _env_kwargs(horizon=0),
    "env_kwargs string horizon": _env_kwargs(horizon="long"),
    "env_kwargs bad controller": _env_kwargs(controller="telepathy"),
    "env_kwargs bad reward_type": _env_kwargs(reward_type="lottery"),
    "env_kwargs a list": _env(lambda c: c["env"].__setitem__("env_kwargs", [1])),
}


def _eval(w: Fixtures) -> list[str]:
    return ["eval", "--policy", str(w.policy), "--episodes", "1", "--num-envs", "1"]


def _record(w: Fixtures) -> list[str]:
    out = w.root / "rec.hdf5"
    return ["record", "--env", "reach", "--policy", str(w.policy), "--out", str(out)] + [
        "--episodes",
        "1",
        "--num-envs",
        "1",
    ]


def _finetune(w: Fixtures) -> list[str]:
    out = w.root / "run"
    return ["finetune", "--algo", "sac", "--task", "reach", "--out", str(out)] + [
        "--init",
        str(w.policy),
        "--env-steps",
        "4",
        "--num-envs",
        "1",
        "--eval-episodes",
        "1",
        "--batch-size",
        "4",
    ]


VERBS = {"eval": _eval, "record": _record, "finetune": _finetune}
# record builds its env from --env, not from the policy's env section: those edits are fine.
NOT_AN_ERROR = {("record", c) for c in CORRUPTIONS if c.startswith("env")}


@pytest.mark.parametrize("verb", list(VERBS))
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_policy_is_one_clean_line(
    corruption: str, verb: str, work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    if (verb, corruption) in NOT_AN_ERROR:
        pytest.skip("record acts in the env --env names; the policy's env section is not read")
    CORRUPTIONS[corruption](work.policy)
    assert_clean_error(VERBS[verb](work), [work.root], capsys)


@pytest.mark.parametrize("verb", list(VERBS))
def test_missing_policy_directory(
    verb: str, work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    args = VERBS[verb](work)
    args[args.index(str(work.policy))] = str(work.root / "nowhere")
    assert_clean_error(args, [work.root], capsys)


@pytest.mark.parametrize("verb", list(VERBS))
def test_policy_path_is_a_file(
    verb: str, work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    args = VERBS[verb](work)
    args[args.index(str(work.policy))] = str(work.dataset)
    assert_clean_error(args, [work.root], capsys)

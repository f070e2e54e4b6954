"""Diffusion-policy inference latency per action chunk, as ratios to one BC-policy forward.

Batch 1, 2 CPU threads. For the MLP-ResNet (256 wide with 2x blocks = the cpu preset, 4x =
IDQL/EXPO's) and the UNet denoisers, times ``policy.sample``
(one chunk: every denoising step through the EMA network) with DDPM-100, DDIM-10 and DDIM-5.
Baseline, measured in the same run: one ``GaussianPolicy.act`` (the BC policy's forward).
Calls are interleaved across configurations, so load from other processes on a shared
machine hits every configuration alike. Weights are random: latency does not depend on them.

    python bench/policy_latency.py [--calls 200] [--threads 2] [--unet-dims 64 128 256] [--mlps 256x2 256x4]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from robot_rl.data.normalizer import Normalizer
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, GaussianPolicy
from robot_rl.policies.gaussian import GaussianPolicyConfig

OBS_DIM, ACTION_DIM = 32, 4  # push's flat observation and ee_delta action sizes
SAMPLERS = [("DDPM-100", "ddpm", 100), ("DDIM-10", "ddim", 10), ("DDIM-5", "ddim", 5)]


def identity_normalizer() -> Normalizer:
    return Normalizer(
        {
            "obs.state": (torch.ones(OBS_DIM), torch.zeros(OBS_DIM)),
            "action": (torch.ones(ACTION_DIM), torch.zeros(ACTION_DIM)),
        }
    )


def make_configs(
    unet_dims: list[int], mlps: list[str], horizon: int
) -> dict[str, Callable[[], object]]:
    """Name -> a zero-argument call producing one action (BC) or one chunk (diffusion)."""
    obs = {"state": torch.randn(1, OBS_DIM)}
    common = {"obs_keys": ["state"], "obs_dim": OBS_DIM, "action_dim": ACTION_DIM}
    bc = GaussianPolicy(GaussianPolicyConfig(**common), identity_normalizer(), {}).eval()
    calls: dict[str, Callable[[], object]] = {"BC forward": lambda: bc.act(obs, True)}
    variants = []
    for spec in mlps:
        width, expansion = (int(v) for v in spec.split("x"))
        net = {"denoiser": "mlp", "hidden_dim": width, "mlp_expansion": expansion}
        variants.append((f"mlp{spec}", net))
    variants.append(("unet", {"denoiser": "unet", "down_dims": list(unet_dims)}))
    for name, net in variants:
        for label, sampler, steps in SAMPLERS:
            cfg = DiffusionPolicyConfig(
                **common,
                **net,
                horizon=horizon,
                n_action_steps=min(8, horizon - 1),
                inference_scheduler=sampler,
                num_inference_steps=steps,
            )
            policy = DiffusionPolicy(cfg, identity_normalizer(), {}).eval()
            calls[f"{name} {label}"] = lambda p=policy: p.sample(obs)
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per configuration")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--unet-dims", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument(
        "--mlps",
        nargs="+",
        default=["256x2", "256x4"],
        help="MLP-ResNet denoisers as WIDTHxEXPANSION (256x2: the cpu preset; 256x4: IDQL/EXPO)",
    )
    parser.add_argument("--horizon", type=int, default=16, help="predicted chunk length Tp")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    calls = make_configs(args.unet_dims, args.mlps, args.horizon)
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for fn in calls.values():  # warm-up
            for _ in range(5):
                fn()
        for _ in range(args.calls):
            for name, fn in calls.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    ms = {k: 1e3 * np.asarray(v) for k, v in times.items()}
    base = float(np.percentile(ms["BC forward"], 50))
    print(f"batch 1, {args.threads} threads, {args.calls} calls each, UNet dims {args.unet_dims}")
    print(f"baseline: BC forward p50 = {base:.3f} ms\n")
    print(f"{'configuration':<16}{'p50 ms':>11}{'p99 ms':>11}{'p50/BC':>9}{'p99/BC':>9}")
    for name, t in ms.items():
        p50, p99 = np.percentile(t, 50), np.percentile(t, 99)
        print(f"{name:<16}{p50:>11.3f}{p99:>11.3f}{p50 / base:>9.1f}{p99 / base:>9.1f}")
    print()
    for spec in args.mlps:
        p99 = float(np.percentile(ms[f"mlp{spec} DDIM-10"], 99))
        verdict = "meets" if p99 <= 3.0 else "misses"
        print(f"mlp{spec} DDIM-10 p99 = {p99:.2f} ms: {verdict} the 3 ms target")


if __name__ == "__main__":
    main()

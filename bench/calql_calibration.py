"""Is a pretrained critic calibrated? Q of policy actions vs the dataset's MC return-to-go.

For every transition of the dataset (or a random subset), compares the critic ensemble's
mean Q at the policy's sampled action with the Monte-Carlo return-to-go computed with the
run's own discount and reward scale/bias (Cal-QL's lower bound), and Q at dataset actions
with Q at uniform random (out-of-distribution) actions. Baseline: the MC return itself.

    python bench/calql_calibration.py POLICY_DIR DATASET [--max-transitions 8192]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from robot_rl.data import read_robomimic
from robot_rl.data.returns import mc_returns
from robot_rl.policies import load_policy
from robot_rl.policies.critic import load_critic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--max-transitions", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    policy = load_policy(args.policy)
    critic, _ = load_critic(args.policy)
    train = json.loads((args.policy / "config.json").read_text()).get("train", {})
    gamma = train.get("discount", 0.99)
    scale, bias = train.get("reward_scale", 1.0), train.get("reward_bias", 0.0)
    data = read_robomimic(args.dataset, obs_keys=policy.obs_keys)
    mc = mc_returns(data, gamma, reward_scale=scale, reward_bias=bias)
    quality = [a.get("quality", "?") for a in data.episode_attrs]
    idx = torch.randperm(data.num_transitions)[: args.max_transitions]

    with torch.no_grad():
        obs = {k: v[idx] for k, v in data.obs.items()}
        flat = policy.flat_obs(obs)
        pi_action, _ = policy.sample(obs)
        data_action = policy.normalizer.normalize_action(data.actions[idx]).clamp(-1, 1)
        rand_action = torch.rand_like(data_action) * 2 - 1
        q_pi = critic(flat, pi_action).mean(0)
        q_data = critic(flat, data_action).mean(0)
        q_rand = critic(flat, rand_action).mean(0)
    mc = mc[idx]
    ep_quality = [quality[int(e)] for e in data.episode_ids[idx]]

    print(
        f"{args.policy}: {len(idx)} transitions of {args.dataset.name}, gamma {gamma}, "
        f"r' = {scale} r + {bias}; Q = ensemble mean of {critic.num_critics}"
    )
    print(f"{'subset':<10}{'n':>6}{'MC':>10}{'Q(pi)':>10}{'Q(pi)-MC':>10}{'Q>=MC':>8}"
          f"{'Q(data)':>10}{'Q(rand)':>10}")  # fmt: skip
    groups = {"all": torch.ones(len(idx), dtype=torch.bool)}
    for name in sorted(set(ep_quality)):
        groups[name] = torch.tensor([q == name for q in ep_quality])
    for name, m in groups.items():
        print(
            f"{name:<10}{int(m.sum()):>6}{mc[m].mean():>10.2f}{q_pi[m].mean():>10.2f}"
            f"{(q_pi[m] - mc[m]).mean():>10.2f}{(q_pi[m] >= mc[m]).float().mean():>8.2f}"
            f"{q_data[m].mean():>10.2f}{q_rand[m].mean():>10.2f}"
        )
    print(f"mean Q(pi) - MC: {(q_pi - mc).mean():.2f} (>= 0: not below the MC lower bound)")
    print(
        f"mean Q(data) - Q(rand): {(q_data - q_rand).mean():.2f} "
        f"(> 0: random OOD actions valued lower; true for {(q_data > q_rand).float().mean():.0%})"
    )


if __name__ == "__main__":
    main()

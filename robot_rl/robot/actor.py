"""The actor half of an on-robot fine-tuning session: the policy node plus the link.

Every control step the policy node closes becomes one transition row (``obs.<key>``,
``next_obs.<key>``, ``action``, ``reward``, ``terminal``, ``intervention``, ``episode``,
``t``) pushed to the :class:`~robot_rl.robot.link.ActorLink` outbox (O(1), no network on the
control thread). Weights the link has verified are swapped in between episodes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.errors import RobotRLError
from robot_rl.robot.cli import PolicyNodeConfig


class TransitionStream:
    """The policy node's transition sink: flattens each step into a link row."""

    def __init__(self, push: Any, wait: Any = None) -> None:
        self.push = push
        self.wait = wait
        """Called with the transitions pushed so far at each episode end (or None)."""
        self.episode = 0
        self.pushed = 0

    def add(
        self,
        obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: float,
        next_obs: dict[str, np.ndarray],
        terminal: bool,
        intervention: bool,
        t: float,
    ) -> None:
        row = {f"obs.{k}": np.asarray(v, np.float32) for k, v in obs.items()}
        row.update({f"next_obs.{k}": np.asarray(v, np.float32) for k, v in next_obs.items()})
        row["action"] = np.asarray(action, np.float32)
        row["reward"] = np.float32(reward)
        row["terminal"] = np.float32(terminal)
        row["intervention"] = np.uint8(intervention)
        row["episode"] = np.int64(self.episode)
        row["t"] = np.float64(t)
        self.push({k: np.asarray(v) for k, v in row.items()})
        self.pushed += 1

    def end_episode(self) -> None:
        self.episode += 1
        if self.wait is not None:
            self.wait(self.pushed)


@dataclass
class ActorConfig(PolicyNodeConfig):
    """The policy node as the actor of a fine-tuning session (streams transitions to a
    `robot-rl learner`, runs the weights it sends)."""

    key_file: Path | None = None
    """Shared weights key file (default: $ROBOT_RL_LINK_KEY)."""
    name: str = "robot"
    """This actor's name (the learner keys transition ids by it)."""
    dead_after_s: float = 1.0
    """Report the learner dead after this long without a heartbeat."""
    outbox: int = 200_000
    """Transitions held for the learner until acknowledged (then the oldest are dropped)."""
    max_learner_lag: int | None = None
    """lockstep only (a sim robot): at each episode end, wait (up to 60 s) until the learner has
    run the updates for all but this many transitions, so a faster-than-real-time session
    follows the in-process `robot-rl finetune` schedule. A real robot never waits."""
    drain_s: float = 10.0
    """After the last episode, wait up to this long for the learner to take held transitions."""
    teleop_topic: str = "/teleop/action"
    """Float64MultiArray: a human's action (env units in [-1, 1])."""
    intervention_topic: str = "/teleop/intervention"
    """Bool: True while the human takes over."""
    success_topic: str = "/success"
    """Bool: success of the current step (the sim robot, a person's key press, a script)."""
    success_classifier: Path | None = None
    """A `robot-rl robot success` classifier directory: success from the state as well."""
    deterministic: bool = False
    """Act with the policy's mode. Default: sample from it, as `robot-rl finetune` collects
    (SAC/RLPD/WSRL explore through the policy's own noise)."""


@dataclass
class Actor:
    """The transport-agnostic actor: the policy-node core wired to the learner link. The DDS
    verb (:func:`run_actor`) and the rclpy actor node (``ros_ws``) both build it here."""

    core: Any
    """The :class:`~robot_rl.robot.policy_node.PolicyNodeCore` (transitions/weights hooked)."""
    link: Any
    """The :class:`~robot_rl.robot.link.ActorLink` to the learner (Cyclone DDS)."""
    stream: TransitionStream
    recorder: Any = None

    def drain(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for the learner to take held transitions; those left."""
        import time

        end = time.monotonic() + timeout_s
        while self.link.outbox.held and time.monotonic() < end:
            try:
                time.sleep(0.01)
            except KeyboardInterrupt:  # a second Ctrl+C: stop draining
                break
        held = self.link.outbox.held
        if held:
            print(f"[actor] {held} transitions not acknowledged by the learner "
                  f"(ids from {self.link.outbox.acked + 1})", flush=True)  # fmt: skip
        return held

    def close(self) -> None:
        self.core.rt.close()
        self.link.close()
        if self.recorder is not None:
            self.recorder.close()


def build_actor(cfg: ActorConfig, *, envelope: Any = None, joint_names: Any = None) -> Actor:
    """Check the key and options (one-line errors before loading anything), build the policy
    node core (as `robot-rl robot policy`), the learner link and the transition stream."""
    import time

    from robot_rl.robot.cli import build_policy_node
    from robot_rl.robot.link import ActorLink, Outbox, load_key, state_template

    key = load_key(cfg.key_file)  # bad key: one line, before loading anything
    if cfg.max_learner_lag is not None and (cfg.mode != "lockstep" or cfg.max_learner_lag < 0):
        raise RobotRLError("--max-learner-lag needs --mode lockstep and a value >= 0")
    classifier = None
    if cfg.success_classifier is not None:
        from robot_rl.robot.success import SuccessClassifier

        classifier = SuccessClassifier(cfg.success_classifier)
    core, recorder = build_policy_node(cfg, envelope=envelope, joint_names=joint_names)
    core.rt.deterministic = cfg.deterministic
    core.success_fn = classifier
    link = ActorLink(
        key,
        state_template(core.rt.policy.state_dict()),
        domain_id=cfg.domain_id,
        name=cfg.name,
        dead_after_s=cfg.dead_after_s,
        outbox=Outbox(capacity=cfg.outbox),
    )

    def wait_for_learner(pushed: int) -> None:
        end = time.monotonic() + 60.0
        while time.monotonic() < end:
            trained = link.learner.info.get("trained", -1) if link.learner.alive else -1
            if trained >= pushed - cfg.max_learner_lag:
                return
            time.sleep(0.005)
        print(f"[actor] learner has not caught up within 60 s ({link.learner.info}); "
              "continuing", flush=True)  # fmt: skip

    stream = TransitionStream(
        link.push, wait_for_learner if cfg.max_learner_lag is not None else None
    )
    core.transitions = stream
    core.weights = link.take_weights
    return Actor(core, link, stream, recorder)


def run_actor(cfg: ActorConfig) -> dict[str, Any]:
    from robot_rl.robot.policy_node import DdsPolicyNode, write_stats

    a = build_actor(cfg)
    core, actor, stream = a.core, a.link, a.stream
    node = DdsPolicyNode(
        core,
        cfg.domain_id,
        output=cfg.output,
        joint_state_topic=cfg.joint_state_topic,
        command_topic=cfg.command_topic,
        trajectory_topic=cfg.trajectory_topic,
        object_topic=cfg.object_topic,
        goal_topic=cfg.goal_topic,
        success_topic=cfg.success_topic,
        estop_topic=cfg.estop_topic,
        estop_reset_topic=cfg.estop_reset_topic,
        teleop_topic=cfg.teleop_topic,
        intervention_topic=cfg.intervention_topic,
    )
    import signal

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM (launch shutdown) drains like Ctrl+C

    signal.signal(signal.SIGTERM, on_term)
    try:
        if cfg.mode == "lockstep":
            stats = node.spin_lockstep(cfg.episodes, cfg.idle_timeout_s)
        else:
            stats = node.spin_realtime(cfg.episodes, cfg.max_ticks, cfg.idle_timeout_s)
    finally:
        # also on Ctrl+C / SIGTERM: give the learner what is still held (bounded wait); the
        # robot has stopped commanding by now
        a.drain(cfg.drain_s)
        a.close()
    summary = stats.summary()
    summary.update(actor.status())
    summary["transitions"] = stream.pushed
    summary["weight_swaps"] = len(core.swaps)
    summary["swap_load_ms_max"] = 1e3 * max((s for _, s in core.swaps), default=0.0)
    lat = actor.swap_latency_s
    arr = actor.arrival_latency_s
    summary["weights_arrival_ms_p50"] = 1e3 * float(np.median(arr)) if arr else float("nan")
    summary["weights_arrival_ms_max"] = 1e3 * float(np.max(arr)) if arr else float("nan")
    summary["swap_latency_s_p50"] = float(np.median(lat)) if lat else float("nan")
    summary["weights_rejected_reasons"] = actor.rejected[-5:]
    pe = np.abs(np.asarray(stats.period_error_s))
    if len(pe) and stats.swap_periods:
        sw = np.zeros(len(pe), bool)
        for i in stats.swap_periods:
            sw[max(0, i - 1) : i + 3] = True  # the swap period and the two after it
        summary["period_ms_p99_swap"] = float(1e3 * np.percentile(pe[sw], 99))
        summary["period_ms_p99_noswap"] = float(1e3 * np.percentile(pe[~sw], 99))
    if cfg.stats is not None:
        extra = {"runtime": summary, "swaps": core.swaps, "swap_latency_s": lat,
                 "learner_deaths_monotonic": actor.learner.deaths}  # fmt: skip
        write_stats(cfg.stats, stats, extra)
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in summary.items()), flush=True)  # fmt: skip
    return summary

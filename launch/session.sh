#!/usr/bin/env bash
# The DDS-only equivalent of session.launch.py (no ROS 2 needed): sim robot + learner + actor
# on one machine, cpu scale. Usage: ROBOT_RL_LINK_KEY=... launch/session.sh POLICY OUT [ALGO]
# On a real arm: drop the sim line; run the learner on the GPU machine (same --domain-id and
# key) and the actor next to the arm's ros2_control.
set -euo pipefail
POLICY=${1:?start policy directory}
OUT=${2:?learner run directory}
ALGO=${3:-wsrl}
DOM=${DOMAIN_ID:-0}
: "${ROBOT_RL_LINK_KEY:?export ROBOT_RL_LINK_KEY (>= 16 bytes) or edit to pass --key-file}"
RESUME=(); [ -d "$OUT" ] && RESUME=(--resume)
robot-rl --threads 1 robot sim --task lift --mode realtime --domain-id "$DOM" &
SIM=$!
robot-rl --threads 1 learner --algo "$ALGO" --init "$POLICY" --out "$OUT" --domain-id "$DOM" \
  --idle-exit-s 30 "${RESUME[@]}" &
LEARNER=$!
trap 'kill $SIM $LEARNER 2>/dev/null' EXIT
robot-rl --threads 1 robot actor --policy "$POLICY" --mode realtime --domain-id "$DOM" \
  --episodes "${EPISODES:-200}" --stats "$OUT/actor_stats.json"
wait $LEARNER

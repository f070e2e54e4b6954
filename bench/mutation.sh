#!/usr/bin/env bash
# Mutation testing of the learning core (issue #10), one module at a time.
# Configuration: [tool.mutmut] in pyproject.toml. Usage (from the repository root):
#   bench/mutation.sh                      # every module
#   bench/mutation.sh robot_rl.data.returns  # one module
# Results: `mutmut results` (survivors), `mutmut show NAME` (the diff of one mutant).
set -euo pipefail
MUTMUT=${MUTMUT:-mutmut}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  modules=(robot_rl.data.returns robot_rl.data.normalizer robot_rl.data.chunks
    robot_rl.data.replay robot_rl.data.dataset robot_rl.data.hdf5 robot_rl.policies.gaussian
    robot_rl.policies.critic robot_rl.policies.diffusion robot_rl.policies.denoisers
    robot_rl.algos.iql robot_rl.algos.calql
    robot_rl.algos.sac robot_rl.policies.expo robot_rl.algos.expo robot_rl.algos.agent
    robot_rl.algos.common robot_rl.algos.diffusion robot_rl.algos.rlpd robot_rl.algos.wsrl
    robot_rl.policies.base robot_rl.policies.modules robot_rl.train.collector)
fi
for m in "${modules[@]}"; do
  echo "== $m"
  "$MUTMUT" run --max-children "${MAX_CHILDREN:-2}" "$m.*" > "mutants/run-$m.log" 2>&1 || true
  "$MUTMUT" results --all true 2>/dev/null | grep -F " $m." | awk -v m="$m" '
    {n++; s=substr($0, index($0, ": ") + 2); c[s]++} END {printf "%s generated=%d", m, n; for (k in c) printf " %s=%d", k, c[k]; print ""}'
done

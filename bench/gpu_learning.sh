#!/usr/bin/env bash
# The learning benchmark's GPU form (issue 10): the same closed loop as bench/learning.py on the CPU, with the
# ~100M-parameter bootstrap the project builds (training/bootstrap.py preset ladder-100m, 97.5M) and the ladder
# recipe's stages trained on the GPU in bf16 (bench/learning.py --gpu). Made for the lent device machine:
#
#   bash bench/gpu_wheels.sh                    # here, once: Python 3.12 wheels of what the device lacks
#   run(command="bash bench/gpu_learning.sh", carry=["var/gpu-wheels"], timeout_s=600)
#
# Within BUDGET_S seconds (default 540: one device call) it installs the wheels, builds the model (cached in
# var/models for a second call on the same warm machine), then runs ROUNDS rounds (default 1; main arm only) and
# stops them at the budget; whatever rounds finished are assembled into learning.json (--report-only). The
# figures, logs and the model's training_info.json land in $OUT (the device's return folder) or var/bench/gpu.
# WHAT=reward instead asks whether scale lifts the learned reward model (issue 10's 0.9 on held-out test-decided
# ladder pairs; the 1.8M model stays at about 0.8 on the CPU): bench/reward_ladder.py on 8 seeds' pairs from the
# 100M model, then from the 1.8M one on the same pairs, each as far as the budget allows.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
BUDGET_S=${BUDGET_S:-540}
ROUNDS=${ROUNDS:-1}
PRESET=${PRESET:-ladder-100m}
RESULTS=${OUT:-var/bench/gpu}
RUN=var/bench/gpu-learning # the arms' folders hold models per round: kept off the return folder
MODEL=var/models/bootstrap-$PRESET
PY=${PYTHON:-python3}
WHEELS=${WHEELS-var/gpu-wheels} # empty: install nothing
EXTRA=${EXTRA:-} # more flags for what WHAT runs (bench/learning.py or bench/reward_ladder.py), e.g. "--heldout 48"
WHAT=${WHAT:-learning} # or reward: bench/reward_ladder.py from the 100M model against the 1.8M one, same pairs
SEEDS=${SEEDS:-100,101,102,103,104,105,106,107} # WHAT=reward: the training prompts' seeds (192 prompts each)
mkdir -p "$RESULTS" "$RUN"
left() { # seconds of the budget left, at least 1 (timeout refuses 0 and less)
  local n=$((BUDGET_S - ($(date +%s) - started)))
  echo $((n > 0 ? n : 1))
}

if [ -n "$WHEELS" ] && compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PY" -m pip install --quiet --no-index --no-deps --target /tmp/codepref-site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="/tmp/codepref-site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" - <<'EOF' | tee "$RESULTS/machine.txt"
import platform, torch, transformers, trl
from training.sandbox.probe import isolation_available
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
print(f"python {platform.python_version()}, torch {torch.__version__}, {gpu}, transformers {transformers.__version__},"
      f" trl {trl.__version__}, sandbox isolation {isolation_available()}")
EOF

"$PY" -m training.bootstrap --preset "$PRESET" --out "$MODEL" --threads 8 2>&1 | tee "$RESULTS/bootstrap.log"
cp "$MODEL/training_info.json" "$RESULTS/" 2>/dev/null

if [ "$WHAT" = reward ]; then
  # The reward model at scale: the same test-decided pairs (sampled by the 1.8M ladder model, cached), the reward
  # stage started from the 100M model, then from the 1.8M one as the control, held-out figures for each.
  on_gpu=$("$PY" -c "import torch; print('--set use_cpu=false --set bf16=true' if torch.cuda.is_available() else '')")
  common=(--out "$RUN-reward" --train-seeds "$SEEDS" --heldout 384 --set per_device_train_batch_size=64
    --set max_steps=150 --set lr_scheduler_type=cosine $on_gpu $EXTRA)
  timeout -s INT "$(left)" "$PY" bench/reward_ladder.py "${common[@]}" --name "$PRESET" --init "$MODEL" \
    --set learning_rate=1e-4 2>&1 | tee "$RESULTS/reward-$PRESET.out"
  timeout -s INT "$(left)" "$PY" bench/reward_ladder.py "${common[@]}" --name ladder --set learning_rate=1e-3 2>&1 |
    tee "$RESULTS/reward-ladder.out"
  for name in "$PRESET" ladder; do cp "$RUN-reward/$name/report.json" "$RESULTS/reward-$name.json" 2>/dev/null; done
  echo "wall $(($(date +%s) - started))s; results in $RESULTS"
  exit 0
fi

GPU=$("$PY" -c "import torch; print('--gpu' if torch.cuda.is_available() else '')")
args=(--preset "$PRESET" --model "$MODEL" --rounds "$ROUNDS" --controls none --out "$RUN" $GPU $EXTRA)
setsid "$PY" bench/learning.py "${args[@]}" >"$RESULTS/learning.out" 2>&1 &
loop=$!
while kill -0 "$loop" 2>/dev/null && [ "$(left)" -gt 20 ]; do sleep 5; done
if kill -0 "$loop" 2>/dev/null; then
  echo "budget of ${BUDGET_S}s reached: stopping the loop" | tee -a "$RESULTS/learning.out"
  kill -INT -- "-$loop" 2>/dev/null; sleep 5; kill -KILL -- "-$loop" 2>/dev/null
  # A cycle's pipeline runs in a session of its own (it outlives the process that started it, as on the
  # platform): its processes are the ones whose command line names this run's folder.
  pkill -f "$RUN/" 2>/dev/null; sleep 2; pkill -KILL -f "$RUN/" 2>/dev/null
  if [ -f "$RUN/main/arm.json" ]; then
    "$PY" bench/learning.py "${args[@]}" --report-only >>"$RESULTS/learning.out" 2>&1
  else
    echo "no round finished within the budget (arm.json is written after each)" | tee -a "$RESULTS/learning.out"
  fi
fi
wait "$loop" 2>/dev/null
cp "$RUN"/learning.json "$RUN"/learning.png "$RUN"/main.log "$RESULTS/" 2>/dev/null
cp "$RUN"/main/arm.json "$RESULTS/" 2>/dev/null
tail -20 "$RESULTS/learning.out"
echo "wall $(($(date +%s) - started))s; results in $RESULTS"

# Sourced by tools/setup_env.sh: run a long step with a heartbeat, so a set-up that takes minutes on a
# busy machine never sits silent. `run_step LABEL EXPECTED CMD...` prints the step and its expected
# duration, then a "still LABEL (N s)" line every $HEARTBEAT_S seconds (default 20) while CMD runs, and
# "LABEL: done in N s" (or the failure) at the end; it returns CMD's exit status. When $STEP_PROGRESS names
# a file, the heartbeat adds the last "[ NN%]" progress mark found in it (cmake's build log).

HEARTBEAT_S=${HEARTBEAT_S:-20}

_step_progress() {
  [ -n "${STEP_PROGRESS:-}" ] && [ -f "$STEP_PROGRESS" ] || return 0
  local pct
  pct=$(grep -o '^\[ *[0-9]*%\]' "$STEP_PROGRESS" 2>/dev/null | tail -1 | tr -d '[] ')
  [ -z "$pct" ] || printf ', build at %s' "$pct"
}

_heartbeat() {  # _heartbeat LABEL START_EPOCH: runs until killed
  local label=$1 t0=$2
  while :; do
    # sleep's stdout is not ours: a sleep outliving this loop must not hold a pipe open.
    sleep "$HEARTBEAT_S" >/dev/null 2>&1
    echo "[setup]   still $label ($(($(date +%s) - t0)) s$(_step_progress))"
  done
}

run_step() {
  local label=$1 expected=$2 t0 rc=0 hb
  shift 2
  t0=$(date +%s)
  echo "[setup] $label (expected: $expected)"
  _heartbeat "$label" "$t0" &
  hb=$!
  "$@" || rc=$?
  kill "$hb" 2>/dev/null || true
  wait "$hb" 2>/dev/null || true
  if [ "$rc" -eq 0 ]; then
    echo "[setup]   $label: done in $(($(date +%s) - t0)) s"
  else
    echo "[setup]   $label: FAILED (exit $rc) after $(($(date +%s) - t0)) s" >&2
  fi
  return "$rc"
}

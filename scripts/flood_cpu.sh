#!/usr/bin/env bash
# kongup's CPU while a step prints as fast as a fleet's Ansible run does, measured from
# outside: `kongup run` of a one-step plan in an 80x24 console in tmux, the step confirmed,
# its command printing RATE lines/s for SECONDS s (rate-limited, in 1 000-line writes, an
# Ansible-like line each); kongup's utime+stime from /proc/PID/stat over the wall time from
# the step's first logged line to its last.
#
#   scripts/flood_cpu.sh [RATE] [SECONDS]
#
# Defaults: 100 000 lines/s for 20 s. KONGUP names the binary (default
# target/release/kongup). Prints the CPU % of one core, how many of the lines reached the
# step log, and the load (uptime) before and after. Needs tmux and python3.
set -euo pipefail

rate=${1:-100000}
seconds=${2:-20}
lines=$((rate * seconds))
kongup=$(realpath "${KONGUP:-target/release/kongup}")
name=$(basename "$kongup" | cut -c1-15)
work=$(mktemp -d)
socket="kongup-flood-$$"

cleanup() {
    tmux -L "$socket" kill-server 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/flood.py" <<'PY'
import sys, time
rate, seconds = int(sys.argv[1]), int(sys.argv[2])
line = "PLAY [dp-x-%04d] ok: changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0 n=%d\n"
out, per, n = sys.stdout.buffer, 1000, 0
start = time.monotonic()
while n < rate * seconds:
    out.write("".join(line % (i % 2000, i + 1) for i in range(n, n + per)).encode())
    out.flush()
    n += per
    ahead = start + n / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
PY

cat >"$work/plan.yaml" <<YAML
name: flood-cpu
from: 3.4.0
to: 3.4.2
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - {name: x1, admin_url: "http://127.0.0.1:1"}
  y:
    nodes:
      - {name: y1, admin_url: "http://127.0.0.1:1"}
executors:
  local: {type: local}
command_timeout: 10m
steps:
  preflight:
    builtin: false
    commands:
      - run: [python3, "$work/flood.py", "$rate", "$seconds"]
YAML

log="$work/run/logs/cluster-preflight.log"
tmux -L "$socket" new-session -d -s flood -x 80 -y 24 \
    "$(printf '%q ' "$kongup" run "$work/plan.yaml" --journal "$work/run") 2>$work/err"
pid=""
for _ in $(seq 1 300); do
    pane=$(tmux -L "$socket" list-panes -t flood -F '#{pane_pid}' 2>/dev/null | head -n 1)
    [[ -n "$pane" ]] || break
    pid=$(pgrep -P "$pane" -x "$name" || true)
    [[ -n "$pid" ]] && break
    [[ "$(ps -o comm= -p "$pane" 2>/dev/null)" == "$name" ]] && { pid=$pane; break; }
    sleep 0.1
done
[[ -n "$pid" ]] || { echo "kongup did not start:" >&2; cat "$work/err" >&2; exit 1; }

screen() { tmux -L "$socket" capture-pane -p -t flood; }
wait_for() {
    for _ in $(seq 1 600); do
        screen | grep -q "$1" && return 0
        sleep 0.1
    done
    echo "the screen never showed '$1':" >&2
    screen >&2
    exit 1
}
wait_for Checklist
# Enter opens the confirm dialog of the selected ready step; Enter again confirms it.
tmux -L "$socket" send-keys -t flood Enter
wait_for 'run it'
tmux -L "$socket" send-keys -t flood Enter

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
before_load=$(uptime)
for _ in $(seq 1 600); do
    grep -q ' stdout| ' "$log" 2>/dev/null && break
    sleep 0.05
done
grep -q ' stdout| ' "$log" 2>/dev/null || { echo "the step printed nothing within 30 s:" >&2; screen >&2; exit 1; }
start_ticks=$(ticks "$pid")
start=$(date +%s%N)
last="n=$lines\$"
for _ in $(seq 1 $((seconds * 40 + 1200))); do
    tail -c 200 "$log" 2>/dev/null | grep -q "$last" && break
    sleep 0.05
done
end_ticks=$(ticks "$pid")
end=$(date +%s%N)
logged=$(grep -c ' stdout| ' "$log" || true)
awk -v d=$((end_ticks - start_ticks)) -v hz="$hz" -v ns=$((end - start)) -v logged="$logged" \
    -v lines="$lines" -v rate="$rate" 'BEGIN {
        printf "kongup: %.1f %% of one core over %.1f s of a step printing %d lines/s (console open at 80x24); the step log has %d of %d lines\n",
            100 * d / hz / (ns / 1e9), ns / 1e9, rate, logged, lines
    }'
echo "# load before: $before_load"
echo "# load after:  $(uptime)"
screen | tail -n 12 | sed 's/^/# screen: /'

#!/usr/bin/env bash
# kongup's memory and CPU at fleet size, measured from outside, idle at the first confirm
# of an 80x24 console in tmux, sampled with `ps -o rss,pcpu` every INTERVAL seconds for
# MINUTES minutes (pcpu is ps's average since start; the CPU column here is over the last
# interval, from /proc/PID/stat).
#
#   scripts/fleet_rss.sh run  [DATA_PLANES] [MINUTES] [INTERVAL]
#       `kongup lab --scenario hybrid --data-planes N` in the background, and `kongup run`
#       of a hybrid plan naming every one of the lab's nodes (manual traffic driver)
#   scripts/fleet_rss.sh demo [DATA_PLANES] [MINUTES] [INTERVAL]
#       `kongup demo --data-planes N`, the lab in the same process
#   scripts/fleet_rss.sh rehearse [DATA_PLANES] [MINUTES] [INTERVAL]
#       `kongup run PLAN --rehearse` of the plan `run` writes (the lab that gave its
#       addresses stopped first): kongup builds a lab of the plan's size in its process
#
# Also prints how long kongup took from its start to its first frame (polled every 50 ms
# in tmux, so up to 50 ms late).
# Defaults: 1000 data planes per cluster, 10 minutes, every 15 s. KONGUP names the binary
# (default target/release/kongup). Prints one line per sample: seconds, RSS in MB, CPU %
# of one core over the interval; then the peak and the last. Needs tmux and python3.
set -euo pipefail

mode=${1:?usage: scripts/fleet_rss.sh run|demo [DATA_PLANES] [MINUTES] [INTERVAL]}
data_planes=${2:-1000}
minutes=${3:-10}
interval=${4:-15}
kongup=${KONGUP:-target/release/kongup}
kongup=$(realpath "$kongup")
# What ps calls the process (at most 15 characters).
name=$(basename "$kongup" | cut -c1-15)
work=$(mktemp -d)
socket="kongup-rss-$$"
lab_pid=""

cleanup() {
    tmux -L "$socket" kill-server 2>/dev/null || true
    if [[ -n "$lab_pid" ]]; then kill "$lab_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

case "$mode" in
run | rehearse)
    "$kongup" lab --scenario hybrid --data-planes "$data_planes" --json >"$work/lab.json" 2>"$work/lab.err" &
    lab_pid=$!
    # A debug build on a loaded machine takes a minute or more to start 2 000 nodes.
    for _ in $(seq 1 1800); do
        [[ -s "$work/lab.json" ]] && break
        kill -0 "$lab_pid" 2>/dev/null || { cat "$work/lab.err" >&2; exit 1; }
        sleep 0.1
    done
    [[ -s "$work/lab.json" ]] || { echo "the lab printed no endpoints within 180 s" >&2; exit 1; }
    # The plan: every node of the lab by its endpoints; the upgrade path the lab's.
    python3 - "$work/lab.json" >"$work/plan.yaml" <<'PY'
import json, sys
with open(sys.argv[1]) as lab:
    nodes = json.loads(lab.readline())["nodes"]
version = {n["cluster"]: n["version"] for n in nodes}
x, y = version["x"], version["y"]
print(f"name: fleet-rss\nfrom: {x}\nto: {y}\nmode: hybrid")
print("database: postgres\nstrategy: in-place\nclusters:")
for side in ("x", "y"):
    print(f"  {side}:\n    nodes:")
    for n in (n for n in nodes if n["cluster"] == side):
        name, role = n["name"], n["role"]
        print(f"      - name: {name}\n        role: {role}")
        for key, url in (("admin_url", n["admin"]), ("status_url", n["status"]), ("proxy_url", n["proxy"])):
            if url:
                print(f"        {key}: {url}")
print("traffic:\n  driver: {type: manual}")
PY
    command=("$kongup" run "$work/plan.yaml" --journal "$work/run")
    if [[ "$mode" == rehearse ]]; then
        kill "$lab_pid"
        wait "$lab_pid" 2>/dev/null || true
        lab_pid=""
        command+=(--rehearse)
    fi
    ;;
demo)
    command=("$kongup" demo --data-planes "$data_planes" --journal "$work/run")
    ;;
*)
    echo "the mode is run, demo or rehearse, not '$mode'" >&2
    exit 2
    ;;
esac

launched=$(date +%s%N)
tmux -L "$socket" new-session -d -s rss -x 80 -y 24 "$(printf '%q ' "${command[@]}") 2>$work/err"
pid=""
for _ in $(seq 1 300); do
    pid=$(tmux -L "$socket" list-panes -t rss -F '#{pane_pid}' 2>/dev/null | head -n 1)
    # The pane runs a shell that runs kongup: sample kongup itself.
    [[ -n "$pid" ]] || break
    child=$(pgrep -P "$pid" -x "$name" || true)
    [[ -n "$child" ]] && { pid=$child; break; }
    [[ "$(ps -o comm= -p "$pid" 2>/dev/null)" == "$name" ]] && break
    sleep 0.1
done
[[ -n "$pid" ]] || { echo "kongup did not start, or ended at once:" >&2; cat "$work/err" >&2; exit 1; }

opened=""
for _ in $(seq 1 1200); do
    if tmux -L "$socket" capture-pane -p -t rss 2>/dev/null | grep -q Checklist; then
        opened=$((($(date +%s%N) - launched) / 1000000))
        break
    fi
    sleep 0.05
done
[[ -n "$opened" ]] || { echo "no frame within 60 s:" >&2; cat "$work/err" >&2; exit 1; }

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "# $mode, $data_planes data planes per cluster, $minutes min every $interval s; $(uptime)"
echo "# first frame ${opened} ms after the launch"
echo "# seconds rss_mb cpu_pct_over_interval"
started=$(date +%s)
last_ticks=$(ticks "$pid")
peak=0
end=$((started + minutes * 60))
while (($(date +%s) < end)); do
    sleep "$interval"
    kill -0 "$pid" 2>/dev/null || { echo "kongup ended early:" >&2; cat "$work/err" >&2; exit 1; }
    rss_kb=$(ps -o rss= -p "$pid" | tr -d ' ')
    now_ticks=$(ticks "$pid")
    cpu=$(awk -v d=$((now_ticks - last_ticks)) -v hz="$hz" -v s="$interval" 'BEGIN {printf "%.1f", 100 * d / hz / s}')
    last_ticks=$now_ticks
    ((rss_kb > peak)) && peak=$rss_kb
    echo "$(($(date +%s) - started)) $((rss_kb / 1024)) $cpu"
done
echo "# peak $((peak / 1024)) MB, last $((rss_kb / 1024)) MB; $(uptime)"
tmux -L "$socket" capture-pane -p -t rss | head -n 3 | sed 's/^/# screen: /'

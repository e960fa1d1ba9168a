#!/usr/bin/env bash
# Runs `examples/web.rs` under `hey` on loopback and prints what the limiter allowed against
# its bound, C + rate × t, with the 429s, the latencies of allowed requests and the server's
# resident memory before and after:
#
#   1. one client at 5× its limit, on the route that refuses at once (`/now`);
#   2. the same on the route that holds a request up to a second for its turn (`/held`);
#   3. 100 clients (told apart by `X-Forwarded-For`, loopback trusted as their proxy), each
#      at 5× its limit, on `/now`.
#
# With --peers it then loads the bench's `web_server` behind each of three limiters, per
# peer address: ours, actix-governor 0.10, and none, taking turns round by round:
#
#   4. one client at 5× its limit (refused at once): allowed against the bound, and p99;
#   5. a route whose limit is never reached, as fast as hey can ask (50 connections):
#      requests per second, medians over 3 rounds, and ours over governor's in each round.
#
# t is the span from the first allowed request sent to the last allowed one answered, from
# hey's per-request CSV: it holds every grant instant, so the bound is never too tight. Each
# client's bound is rounded down, as a count of whole requests can reach no more.
#
#   scripts/web-load.sh [--seconds N] [--check] [--peers]
#
# --seconds: how long each load runs (5 by default). --check: exit non-zero if an allowed
# count of ours exceeds its bound or falls below 99 % of it. Needs `hey` (Debian's package)
# and `cargo`; builds what it runs in release.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=5
check=false
peers=false
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --check) check=true; shift ;;
    --peers) peers=true; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet --example web --features web
if $peers; then
  cargo build --release --quiet -p actix-leaky-bucket-bench --bin web_server
fi
work="$(mktemp -d)"
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2> /dev/null; rm -rf "$work"' EXIT

# Starts a server (a binary and its options, which take --port 0); sets server_pid and url.
start_server() {
  "$@" --port 0 > "$work/server.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    url="$(sed -n 's/^listening on //p' "$work/server.out" | head -n 1)"
    [ -n "$url" ] && return 0
    sleep 0.05
  done
  echo "the example did not start:" >&2
  cat "$work/server.out" >&2
  exit 1
}

stop_server() {
  kill "$server_pid" 2> /dev/null || true
  wait "$server_pid" 2> /dev/null || true
  server_pid=""
}

rss_kib() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Summarises hey CSV files (one per client) for a bucket of `burst` at `rate` per second
# per client: allowed, bound, 429s, other answers, p50 and p99 of allowed requests in ms.
summarise() {
  local burst="$1" rate="$2"
  shift 2
  local allowed=0 bound=0 refused=0 other=0
  : > "$work/latencies"
  for csv in "$@"; do
    read -r a b r o < <(awk -F, -v burst="$burst" -v rate="$rate" -v lat="$work/latencies" '
      NR == 1 { next }
      {
        if ($7 == 200) {
          if (first == "" || $8 < first) first = $8
          allowed++
          if ($8 + $1 > last) last = $8 + $1
          print $1 * 1000 >> lat
        } else if ($7 == 429) refused++
        else other++
      }
      END {
        span = (allowed > 0) ? last - first : 0
        printf "%d %d %d %d\n", allowed, int(burst + rate * span + 1e-9), refused, other
      }' "$csv")
    allowed=$((allowed + a))
    bound=$((bound + b))
    refused=$((refused + r))
    other=$((other + o))
  done
  sort -n "$work/latencies" -o "$work/latencies"
  local p50 p99
  p50="$(awk '{ v[NR] = $1 } END { i = int(NR * 0.50); if (i < 1) i = 1; printf "%.1f", v[i] }' "$work/latencies")"
  p99="$(awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.1f", v[i] }' "$work/latencies")"
  echo "$allowed $bound $refused $other $p50 $p99"
}

failed=false
rows=()

# Records a scenario's row, and checks its bound (with --check, and for ours).
report() {
  local name="$1" allowed="$2" bound="$3" refused="$4" other="$5" p50="$6" p99="$7" before="$8" after="$9"
  local accuracy
  accuracy="$(awk -v a="$allowed" -v b="$bound" 'BEGIN { printf "%.1f", 100 * a / b }')"
  rows+=("| $name | $allowed | $bound | $accuracy % | $refused | $other | $p50 / $p99 ms | $before → $after KiB |")
  if awk -v a="$allowed" -v b="$bound" 'BEGIN { exit !(a > b || a < 0.99 * b) }'; then
    echo "$name: $allowed allowed against a bound of $bound" >&2
    failed=true
  fi
}

# One client at 5× its limit: 100 per second with a burst of 100, 500 per second offered.
start_server target/release/examples/web --rate 100 --burst 100
before="$(rss_kib "$server_pid")"
hey -z "${seconds}s" -c 10 -q 50 -o csv "$url/now" > "$work/now.csv"
after="$(rss_kib "$server_pid")"
report "one client, refused at once (/now)" $(summarise 100 100 "$work/now.csv") "$before" "$after"
# The held route queues up to a second's worth (100); 250 workers keep it full.
before="$after"
hey -z "${seconds}s" -c 250 -q 2 -o csv "$url/held" > "$work/held.csv"
after="$(rss_kib "$server_pid")"
report "one client, held up to 1 s (/held)" $(summarise 100 100 "$work/held.csv") "$before" "$after"
stop_server

# 100 clients, each at 5× its limit: 5 per second with a burst of 5, 25 per second offered.
start_server target/release/examples/web --rate 5 --burst 5 --behind-proxy
before="$(rss_kib "$server_pid")"
pids=()
for i in $(seq 1 100); do
  hey -z "${seconds}s" -c 1 -q 25 -o csv -H "X-Forwarded-For: 198.51.100.$i" "$url/now" \
    > "$work/key-$i.csv" &
  pids+=($!)
done
wait "${pids[@]}"
after="$(rss_kib "$server_pid")"
report "100 clients, refused at once (/now)" $(summarise 5 5 "$work"/key-*.csv) "$before" "$after"
stop_server

echo "| load (${seconds} s) | allowed | bound ⌊C + rate × t⌋ | allowed / bound | 429 | other | allowed p50 / p99 | server RSS before → after |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"

if $peers; then
  peer_rows=()
  for limiter in ours governor none; do
    start_server target/release/web_server --limiter "$limiter" --rate 100 --burst 100
    hey -z "${seconds}s" -c 10 -q 50 -o csv "$url/limited" > "$work/limited.csv"
    read -r allowed bound refused other p50 p99 < <(summarise 100 100 "$work/limited.csv")
    accuracy="$(awk -v a="$allowed" -v b="$bound" 'BEGIN { printf "%.1f", 100 * a / b }')"
    peer_rows+=("| $limiter | $allowed | $bound | $accuracy % | $refused | $p50 / $p99 ms |")
    stop_server
  done
  echo
  echo "| one client at 5× its limit (${seconds} s) | allowed | bound ⌊C + rate × t⌋ | allowed / bound | 429 | allowed p50 / p99 |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${peer_rows[@]}"

  declare -A rates
  ratios=()
  for round in 1 2 3; do
    for limiter in ours governor none; do
      start_server target/release/web_server --limiter "$limiter"
      rates[$limiter,$round]="$(hey -z "${seconds}s" -c 50 "$url/open" \
        | awk '/Requests\/sec:/ { printf "%.0f", $2 }')"
      stop_server
    done
    ratios+=("$(awk -v a="${rates[ours,$round]}" -v b="${rates[governor,$round]}" \
      'BEGIN { printf "%.3f", a / b }')")
  done
  median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
  echo
  echo "| a limit never reached (${seconds} s × 3 rounds, 50 connections) | requests/s, median | rounds |"
  echo "|---|---|---|"
  for limiter in ours governor none; do
    echo "| $limiter | $(median "${rates[$limiter,1]}" "${rates[$limiter,2]}" "${rates[$limiter,3]}") | ${rates[$limiter,1]}, ${rates[$limiter,2]}, ${rates[$limiter,3]} |"
  done
  echo "| ours / governor | $(median "${ratios[@]}") | ${ratios[*]} |"
fi

if $check && $failed; then
  exit 1
fi

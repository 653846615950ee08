#!/bin/bash
# The container image's size and its start-to-ready time: from `podman run` to the first 200
# from /api/v1/readyz (unprivileged as the image's user, read-only root filesystem, a fresh
# SQLite database in a tmpfs, so the service migrates it at start), against the same wait for
# the release binary started on the host (the container on the host network, as
# `cargo xtask image --check` runs it), interleaved three times (host, container, ...).
# Prints per run the seconds, then min/median/max and the container/host ratio.
#
#   cargo xtask image                       # builds sist-cabanas:local (or use one built)
#   cargo build --release -p backend --bin cabanas
#   ops/bench/image-start.sh
#
# Environment: IMAGE (default localhost/sist-cabanas:local), CABANAS (the host binary, default
# target/release/cabanas). Prints the image's GIT_COMMIT and whether it was built on the
# stand-in base images of .ci/base-images (then its size is not the production image's).
# Needs: podman, curl.
set -euo pipefail
WT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
source "$WT/ops/bench/lib.sh"
IMAGE=${IMAGE:-localhost/sist-cabanas:local}
BIN=${CABANAS:-$WT/target/release/cabanas}
[ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release -p backend --bin cabanas" >&2; exit 2; }
podman image exists "$IMAGE" || { echo "no image $IMAGE: build it with cargo xtask image" >&2; exit 2; }
B=$(mktemp -d /tmp/image-bench.XXXXXX)
SERVICE_LOG=$B/service.log
CONTAINER=
cleanup() {
  [ -n "$CONTAINER" ] && podman rm -f "$CONTAINER" > /dev/null 2>&1 || true
  stop_started
  rm -rf "$B"
}
trap cleanup EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
echo "image $IMAGE: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB)," \
  "$(podman image inspect "$IMAGE" --format '{{range .Config.Env}}{{println .}}{{end}}' | grep '^GIT_COMMIT=' || echo 'no GIT_COMMIT')," \
  "stand-in base: $(podman image inspect "$IMAGE" --format '{{index .Labels "org.sist-cabanas.stand-in"}}')"
ENV=(DATABASE_URL="sqlite:/tmp/cabanas.db?mode=rwc" JWT_SECRET=bench-secret-0123456789-abcdefghijklmnop
  ADMIN_ALLOWED_EMAILS=ops@example.com RUST_LOG=warn)
PODMAN_ENV=()
for e in "${ENV[@]}"; do PODMAN_ENV+=(-e "$e"); done

# Seconds since $1 (date +%s.%N) until $2/api/v1/readyz answers 200; at most 60 s.
until_ready() {
  local t0=$1 url=$2
  for _ in $(seq 1 6000); do
    if curl -fsS -o /dev/null "$url/api/v1/readyz" 2> /dev/null; then
      awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", b - a }'
      return 0
    fi
    sleep 0.01
  done
  echo "not ready within 60 s" >&2
  return 1
}

host=() container=() ratios=()
for run in 1 2 3; do
  port=$(free_port)
  t0=$(date +%s.%N)
  env "${ENV[@]}" DATABASE_URL="sqlite:$B/host-$run.db?mode=rwc" HOST=127.0.0.1 PORT="$port" \
    "$BIN" serve >> "$SERVICE_LOG" 2>&1 &
  BENCH_PIDS+=($!)
  h=$(until_ready "$t0" "http://127.0.0.1:$port")
  stop_started

  port=$(free_port)
  t0=$(date +%s.%N)
  CONTAINER=$(podman run -d --network host --read-only --tmpfs /tmp \
    "${PODMAN_ENV[@]}" -e HOST=127.0.0.1 -e PORT="$port" "$IMAGE")
  c=$(until_ready "$t0" "http://127.0.0.1:$port")
  podman rm -f "$CONTAINER" > /dev/null
  CONTAINER=
  host+=("$h") container+=("$c") ratios+=("$(ratio "$c" "$h" 1)")
  echo "run $run: host binary ready in $h s, container ready in $c s"
done
echo
echo "min/median/max of 3 interleaved runs, seconds from start to the first ready readyz:"
echo "  host binary: $(mmm "${host[@]}")"
echo "  container:   $(mmm "${container[@]}")"
echo "  container / host (same run): $(mmm "${ratios[@]}")"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Load test of a release build of idp on this machine, with wrk.
# Usage: scripts/load.sh [seconds per run, default 10] [connections, default 16]
# Prints requests/s for: the login page, SSO ticket issuance (302 with a
# ticket, as every ENT service click costs), a failed validation, and the
# server's peak memory. Results go in docs/performance.md by hand, with the
# machine and the date.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${1:-10}
CONNS=${2:-16}
command -v wrk >/dev/null || { echo "installing wrk"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p idp
BIN=$PWD/target/release/idp
WORK=$(mktemp -d)
PORT=18089
cat > "$WORK/idp.toml" <<CONF
bind = "127.0.0.1:$PORT"
data_dir = "$WORK/data"
[throttle]
per_address = 1000000
CONF
IDP="$BIN --config $WORK/idp.toml"
$IDP service add bench --name Bench --url-pattern 'https://bench\.example\.test/.*' \
    --attribute uid --attribute given_name --attribute family_name --attribute school 2>/dev/null
for i in $(seq 1 49); do
    $IDP service add "other-$i" --name "Other $i" --url-pattern "https://other$i\\.example\\.test/.*" 2>/dev/null
done
echo 'Bonjour-2026!' | $IDP account create c.martin --profile eleve --given-name Camille \
    --family-name Martin --school 0370001A --active --password-stdin 2>/dev/null
IDP_LOG=warn $IDP serve 2>"$WORK/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
BASE="http://127.0.0.1:$PORT"
JAR="$WORK/jar"
curl -s -c "$JAR" -b "$JAR" "$BASE/cas/login?profile=eleve-parent" -o "$WORK/page.html"
CSRF=$(grep -o 'name="csrf_token" value="[A-Za-z0-9]*"' "$WORK/page.html" | sed 's/.*value="//;s/"//')
curl -s -c "$JAR" -b "$JAR" -o /dev/null "$BASE/cas/login" \
    --data-urlencode "csrf_token=$CSRF" --data-urlencode username=c.martin --data-urlencode 'password=Bonjour-2026!'
TGC=$(awk '$6 == "TGC" {print $7}' "$JAR")
[ -n "$TGC" ] || { echo "login failed"; exit 1; }
SERVICE='https%3A%2F%2Fbench.example.test%2F'
run() { echo "== $1"; shift; wrk -t2 -c"$CONNS" -d"${DURATION}s" "$@" | grep -E "Requests/sec|Latency|Non-2xx"; }
run "login page (profile choice)" "$BASE/cas/login"
run "SSO ticket issuance (302 to the service with a ticket)" -H "Cookie: TGC=$TGC" "$BASE/cas/login?service=$SERVICE"
run "failed validation (unknown ticket, XML)" "$BASE/cas/p3/serviceValidate?service=$SERVICE&ticket=ST-unknown"
echo "== server memory: $(grep -E 'VmHWM|VmRSS' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')"

#!/usr/bin/env bash
# Run a command in a private network namespace of its own: loopback, and a
# veth pair whose two ends are both here -- a route that leads nowhere, so
# that the browser has a host address for ICE, and nothing ever leaves.
#   tests/e2e/netns.sh node tests/e2e/e2e.mjs
set -euo pipefail
if [ "${ALEATORIA_NETNS:-}" != inside ]; then
  exec unshare --net --fork env ALEATORIA_NETNS=inside "$0" "$@"
fi
ip link set lo up
ip link add e2e0 type veth peer name e2e1
ip addr add 10.213.0.1/24 dev e2e0
ip addr add 10.213.0.2/24 dev e2e1
ip link set e2e0 up
ip link set e2e1 up
exec "$@"

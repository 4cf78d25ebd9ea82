#!/usr/bin/env bash
# Provision a Docker engine for driftwatch's demo and tests. Idempotent.
#
#   scripts/engine.sh up      use an engine that answers, or install docker.io and start dockerd
#   scripts/engine.sh down    stop the dockerd this script started (never one it did not start)
#   scripts/engine.sh status  say which engine answers
#
# Environment:
#   DOCKER_HOST                 an engine to use; when it answers nothing is installed or started
#   DRIFTWATCH_ENGINE_SOCK      socket for the dockerd started here (default /var/run/docker.sock)
#   DRIFTWATCH_ENGINE_ROOT      its data root (default /var/lib/driftwatch-engine)
#   DRIFTWATCH_ENGINE_TIMEOUT   seconds to wait for it to answer (default 60)
set -euo pipefail

SOCK=${DRIFTWATCH_ENGINE_SOCK:-/var/run/docker.sock}
ROOT=${DRIFTWATCH_ENGINE_ROOT:-/var/lib/driftwatch-engine}
RUNDIR=/run/driftwatch-engine
PIDFILE=$RUNDIR/dockerd.pid
LOG=$RUNDIR/dockerd.log
TIMEOUT=${DRIFTWATCH_ENGINE_TIMEOUT:-60}

say() { echo "engine: $*" >&2; }

answers() {  # does an engine answer at $1 (a DOCKER_HOST value, or empty for the default)?
  if [[ -n ${1:-} ]]; then DOCKER_HOST=$1 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
  else docker version --format '{{.Server.Version}}' >/dev/null 2>&1; fi
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v dpkg-scanpackages >/dev/null 2>&1 || missing+=(dpkg-dev)
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { say "need root to install ${missing[*]}"; exit 1; }
    say "installing ${missing[*]} from the distro archive"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" iptables ca-certificates >/dev/null
  fi
}

start_dockerd() {
  mkdir -p "$RUNDIR" "$ROOT"
  if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "dockerd (pid $(cat "$PIDFILE")) is running but not answering yet"
  else
    [[ -S $SOCK ]] && ! answers "unix://$SOCK" && rm -f "$SOCK"
    say "starting dockerd on unix://$SOCK (data root $ROOT, log $LOG)"
    # setsid: the daemon outlives this script and the shell that ran it.
    setsid dockerd --host "unix://$SOCK" --data-root "$ROOT" --exec-root "$RUNDIR/exec" \
      --pidfile "$PIDFILE" --storage-driver overlay2 >"$LOG" 2>&1 < /dev/null &
  fi
  local waited=0
  until answers "unix://$SOCK"; do
    if ((waited >= TIMEOUT)); then
      say "dockerd did not answer within ${TIMEOUT}s; last lines of $LOG:"
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    sleep 1; waited=$((waited + 1))
  done
  say "dockerd answers on unix://$SOCK after ${waited}s"
}

case ${1:-up} in
  up)
    if [[ -n ${DOCKER_HOST:-} ]] && answers "$DOCKER_HOST"; then say "using DOCKER_HOST=$DOCKER_HOST"; install_packages; exit 0; fi
    if answers "unix://$SOCK"; then say "an engine answers on unix://$SOCK"; install_packages; exit 0; fi
    if [[ -n ${DOCKER_HOST:-} ]]; then say "DOCKER_HOST=$DOCKER_HOST does not answer; starting one on unix://$SOCK instead"; fi
    install_packages
    start_dockerd
    [[ $SOCK == /var/run/docker.sock ]] || say "point clients at it: export DOCKER_HOST=unix://$SOCK"
    ;;
  down)
    if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      kill "$(cat "$PIDFILE")"; say "stopped dockerd (pid $(cat "$PIDFILE"))"
    else say "no dockerd started by this script is running"; fi
    ;;
  status)
    if answers "${DOCKER_HOST:-}"; then say "an engine answers (${DOCKER_HOST:-default socket})"; else say "no engine answers"; exit 1; fi
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Build driftwatch's local base images from the distro archives when they are missing.
# No registry is needed: debootstrap fetches a minimal root from the archive, `docker import` makes
# it an image. The apt sources match the official images, so drift shows up as it would there.
#
#   scripts/base-images.sh            build what is missing (debian:12 and ubuntu:24.04)
#   scripts/base-images.sh debian     only driftwatch/debian:12
#   scripts/base-images.sh ubuntu     only driftwatch/ubuntu:24.04
#   FORCE=1 scripts/base-images.sh    rebuild even when present
set -euo pipefail

DEBIAN_IMAGE=driftwatch/debian:12
UBUNTU_IMAGE=driftwatch/ubuntu:24.04
DEBIAN_MIRROR=${DRIFTWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DRIFTWATCH_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
UBUNTU_MIRROR=${DRIFTWATCH_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
UBUNTU_SECURITY=${DRIFTWATCH_UBUNTU_SECURITY:-http://security.ubuntu.com/ubuntu}
# Ubuntu's archive key is not in Debian 12; its keyring package is fetched from the Ubuntu pool and
# checked against this pinned hash (noble's ubuntu-keyring 2023.11.28.1).
UBUNTU_KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb
UBUNTU_KEYRING_SHA256=36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8
CACHE=${DRIFTWATCH_CACHE:-/var/cache/driftwatch}

say() { echo "base-images: $*" >&2; }
have() { [[ -z ${FORCE:-} ]] && docker image inspect "$1" >/dev/null 2>&1; }

# Same apt settings as the official images: no binary caches kept, lists removed after build.
docker_clean() {
  local root=$1
  cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  mkdir -p "$root/var/lib/apt/lists/partial"
  rm -f "$root/etc/apt/sources.list"
}

import() {  # import ROOT as IMAGE
  local root=$1 image=$2
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
    --message "driftwatch base image, debootstrap $(date -u +%Y-%m-%dT%H:%M:%SZ)" - "$image" >/dev/null
  say "imported $image ($(docker image inspect --format '{{.Id}}' "$image" | cut -c1-19))"
}

build_debian() {
  if have "$DEBIAN_IMAGE"; then say "$DEBIAN_IMAGE present"; return; fi
  local root; root=$(mktemp -d /tmp/driftwatch-debian.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  say "debootstrap bookworm from $DEBIAN_MIRROR (about 30 s)"
  debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  docker_clean "$root"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $DEBIAN_MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  import "$root" "$DEBIAN_IMAGE"
}

ubuntu_keyring() {
  local deb=$CACHE/$(basename "$UBUNTU_KEYRING_DEB") dir=$CACHE/ubuntu-keyring
  mkdir -p "$CACHE"
  if ! echo "$UBUNTU_KEYRING_SHA256  $deb" | sha256sum -c --quiet >/dev/null 2>&1; then
    curl -fsS -m 120 -o "$deb" "$UBUNTU_MIRROR/$UBUNTU_KEYRING_DEB"
    echo "$UBUNTU_KEYRING_SHA256  $deb" | sha256sum -c --quiet >/dev/null 2>&1 \
      || { say "ubuntu-keyring hash mismatch"; rm -f "$deb"; exit 1; }
  fi
  rm -rf "$dir"; dpkg-deb -x "$deb" "$dir" >&2
  echo "$dir/usr/share/keyrings/ubuntu-archive-keyring.gpg"
}

build_ubuntu() {
  if have "$UBUNTU_IMAGE"; then say "$UBUNTU_IMAGE present"; return; fi
  local keyring root; keyring=$(ubuntu_keyring)
  root=$(mktemp -d /tmp/driftwatch-ubuntu.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  say "debootstrap noble from $UBUNTU_MIRROR (about 90 s)"
  # Debian 12's debootstrap has no noble script; the generic Ubuntu one (gutsy) works.
  debootstrap --variant=minbase --keyring="$keyring" noble "$root" "$UBUNTU_MIRROR" \
    /usr/share/debootstrap/scripts/gutsy >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  docker_clean "$root"
  cat > "$root/etc/apt/sources.list.d/ubuntu.sources" <<SRC
Types: deb
URIs: $UBUNTU_MIRROR
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: $UBUNTU_SECURITY
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
SRC
  import "$root" "$UBUNTU_IMAGE"
}

command -v debootstrap >/dev/null || { say "debootstrap missing: run scripts/engine.sh up first"; exit 1; }
case ${1:-all} in
  debian) build_debian ;;
  ubuntu) build_ubuntu ;;
  all) build_debian; build_ubuntu ;;
  *) echo "usage: $0 [all|debian|ubuntu]" >&2; exit 2 ;;
esac

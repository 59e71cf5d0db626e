#!/usr/bin/env bash
# Makes the local image `debian:12` that deploy/container/Dockerfile starts FROM, where no
# container registry is reachable but Debian's package mirror is: debootstrap a minimal
# bookworm and import it into podman. Elsewhere `podman build` pulls debian:12 as usual.
#   deploy/container/base-image.sh [MIRROR]     (as root; needs debootstrap and podman)
set -euo pipefail
mirror=${1:-http://deb.debian.org/debian}
if podman image exists debian:12; then
  echo "base-image.sh: debian:12 is already there"
  exit 0
fi
root=$(mktemp -d /var/tmp/kspan-debian12.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# The image's apt reads the same mirror, with security updates.
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - debian:12 >/dev/null
echo "base-image.sh: imported debian:12"

#!/usr/bin/env bash
# Build the one base image shared by the lab and the Molecule scenarios:
# Debian bookworm (debootstrap minbase) + systemd + python3, started as /sbin/init.
# No registry is needed. Reused when present; FORCE=1 rebuilds it.
set -euo pipefail

IMAGE="${LAB_IMAGE:-localhost/dbstack-lab-base:bookworm}"
SUITE="${LAB_SUITE:-bookworm}"
MIRROR="${LAB_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="systemd systemd-sysv dbus python3 sudo ca-certificates iproute2"

if [ "${FORCE:-0}" != 1 ] && podman image exists "$IMAGE"; then
    echo "base image $IMAGE present, reused (FORCE=1 rebuilds it)"
    exit 0
fi

start=$(date +%s)
work=$(mktemp -d /var/tmp/dbstack-rootfs.XXXXXX)
cleanup() {
    podman rm -f dbstack-image-build >/dev/null 2>&1 || true
    podman rmi -f "${IMAGE}-stage0" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "debootstrap $SUITE into $work/rootfs"
debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log"; exit 1; }
tar -C "$work/rootfs" -c . | podman import - "${IMAGE}-stage0" >/dev/null

# Same rootfs, now with what systemd containers and Ansible need.
podman run --name dbstack-image-build "${IMAGE}-stage0" /bin/sh -ec "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/*
    # Units that make no sense inside a container.
    systemctl mask systemd-remount-fs.service getty.target console-getty.service \
        systemd-logind.service sys-kernel-config.mount sys-kernel-debug.mount >/dev/null 2>&1 || true
    : > /etc/machine-id
"
podman commit --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
    dbstack-image-build "$IMAGE" >/dev/null
echo "base image $IMAGE built in $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Put Slurm 22.05 (Debian 12 packages) into a private root, without systemd and without touching
# /etc or /usr: `apt-get download` the packages and `dpkg -x` them. tests/test_slurm.py uses it.
#   .ci/install-slurm.sh [DEST]     DEST defaults to $VAEAS_SLURM_ROOT, else ~/.cache/vaeas/slurm
# Prints DEST on success. Idempotent: a complete root is left as it is. Needs package-registry
# access (apt); `apt-get update` runs only as root. Exit status is non-zero when it cannot install.
set -euo pipefail
DEST=${1:-${VAEAS_SLURM_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/vaeas/slurm}}
complete() { [[ -x $1/usr/sbin/slurmctld-wlm && -x $1/usr/sbin/slurmd-wlm && -x $1/usr/sbin/slurmstepd-wlm && -x $1/usr/bin/sbatch ]]; }
if complete "$DEST"; then
    echo "$DEST"; exit 0
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || { echo "install-slurm: needs apt-get and dpkg (Debian)" >&2; exit 2; }
PKGS=(slurmctld slurmd slurm-client slurm-wlm-basic-plugins)
NET=(-o Acquire::Retries=1 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30)
if [[ $(id -u) == 0 ]]; then
    apt-get "${NET[@]}" update -qq >&2 || echo "install-slurm: apt-get update failed; using the current package lists" >&2
fi
# The four, plus every library they need that this machine lacks (on a bare Debian 12: munge
# libmunge2 libhwloc15 liblua5.1-0); that list where apt cannot simulate.
mapfile -t NEED < <( { printf '%s\n' "${PKGS[@]}";
    apt-get install -s --no-install-recommends "${PKGS[@]}" 2>/dev/null | awk '/^Inst /{print $2}'; } | sort -u)
(( ${#NEED[@]} > ${#PKGS[@]} )) || NEED=("${PKGS[@]}" munge libmunge2 libhwloc15 liblua5.1-0)
mkdir -p "$(dirname "$DEST")"
WORK=$(mktemp -d "$DEST.tmp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"  # apt downloads as _apt where it can
(cd "$WORK" && apt-get "${NET[@]}" download -q "${NEED[@]}" >&2)
mkdir "$WORK/root"
for deb in "$WORK"/*.deb; do dpkg -x "$deb" "$WORK/root"; done
complete "$WORK/root" || { echo "install-slurm: Slurm binaries missing after extraction" >&2; exit 1; }
rm -rf "$DEST" && mv "$WORK/root" "$DEST"
echo "$DEST"

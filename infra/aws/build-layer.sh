#!/usr/bin/env bash
# Fill infra/aws/layer/ — the Lambda layer serverless.yml deploys, mounted at /opt:
#   python/  the runtime dependencies (requests, zstandard) for python3.11 on x86_64
#   bin/     RUN sandbox tools: a static busybox (the probe's test program) and proot
#   lib/     shared libraries a dynamic proot needs
# The function finds the tools through BUCKETBUILD_TOOLS_DIR=/opt (bin/ is searched too).
#
# proot: set PROOT=/path/to/a/static/proot to ship a static build (recommended: it then runs on
# any Lambda runtime). Without it the host's /usr/bin/proot and its libtalloc are copied, which
# works only where the host's glibc is not newer than the runtime's.
# Run on Debian/Ubuntu with busybox-static and proot installed; needs pip and network access.
# --publish also publishes the layer (`aws lambda publish-layer-version`, name from
# LAYER_NAME, default bucketbuild-runtime) and prints its version for serverless.yml's
# runtimeLayerVersion parameter.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
layer="$here/layer"
rm -rf "$layer/python" "$layer/bin" "$layer/lib"
mkdir -p "$layer/python" "$layer/bin" "$layer/lib"

python3 -m pip install --quiet --target "$layer/python" --only-binary=:all: \
  --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 \
  "requests>=2.31" "zstandard>=0.22"

busybox=${BUSYBOX:-/bin/busybox}
if ! file -L "$busybox" | grep -q "statically linked"; then
  echo "need a static busybox (apt-get install busybox-static, or set BUSYBOX=...)" >&2
  exit 1
fi
install -m 0755 "$busybox" "$layer/bin/busybox"

if [[ -n "${PROOT:-}" ]]; then
  install -m 0755 "$PROOT" "$layer/bin/proot"
elif command -v proot >/dev/null; then
  install -m 0755 "$(command -v proot)" "$layer/bin/proot"
  ldd "$(command -v proot)" | awk '/libtalloc/ {print $3}' | while read -r lib; do
    install -m 0644 "$lib" "$layer/lib/"
  done
  echo "warning: shipped a dynamic proot; prefer PROOT=<static proot>" >&2
else
  echo "warning: no proot: RUN steps will only work where another sandbox is usable" >&2
fi
du -sh "$layer"

if [[ "${1:-}" == "--publish" ]]; then
  zip_file=$(mktemp --suffix=.zip)
  rm -f "$zip_file"
  (cd "$layer" && zip -qr "$zip_file" python bin lib)
  aws lambda publish-layer-version --layer-name "${LAYER_NAME:-bucketbuild-runtime}" \
    --zip-file "fileb://$zip_file" --compatible-runtimes python3.11 \
    --compatible-architectures x86_64 --query Version --output text
  rm -f "$zip_file"
fi

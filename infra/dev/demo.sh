#!/usr/bin/env bash
# The main job on local stand-ins. Today: set up, then read the example Dockerfile through the
# front end (BuildKit parse tree). It grows into the full build-and-push flow with the engine.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/dev/setup.sh
.venv/bin/bucketbuild parse examples/hello/Dockerfile

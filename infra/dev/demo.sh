#!/usr/bin/env bash
# The main job on local stand-ins: set the machine up, then build examples/hello and push it to
# a registry started for the purpose (see infra/dev/demo.py for the steps).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/dev/setup.sh
exec .venv/bin/python infra/dev/demo.py

#!/usr/bin/env bash
# Install everything the tests need, then run the unit tests and benchopt's
# own benchmark tests. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements-dev.txt
python3 -m pytest -p no:benchmark -q tests
benchopt test . --skip-install -p no:benchmark -q

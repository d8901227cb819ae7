#!/usr/bin/env bash
# The old name of build-packages.sh, kept for the scripts that call it: it builds both formats.
exec bash "$(dirname "$0")/build-packages.sh" "$@"

#!/usr/bin/env bash
# Run the whole suite with the given python. pytest's "no tests ran" (exit 5) is a failure here:
# a green run that executed nothing would be a lie.
set -uo pipefail
py=${1:-python3}; shift || true
"$py" -m pytest "$@"
rc=$?
if [[ $rc == 5 ]]; then echo "run-tests: pytest collected no tests" >&2; exit 1; fi
exit $rc

#!/usr/bin/env bash
# The bounded fuzz run of CI (about a minute in all): `bash fuzz/run_smoke.sh`.
#
# 1. Replays every seed and regression input through its harness (what
#    tests/test_fuzz_regressions.py also does), so a broken harness fails fast.
# 2. Fuzzes each of the five harnesses for SMOKE_SECONDS (default 11) seconds
#    with fuzz/run.sh, in a temporary working directory; any crash fails the run
#    and its input is printed as hex, ready to be saved under fuzz/regressions/.
#
# Needs atheris in the Python used (PYTHON, default python3; the project's
# `fuzz` extra). Without it the script fails, unless MYO_FUZZ_ALLOW_NO_ATHERIS=1,
# in which case it only replays.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
SECS=${SMOKE_SECONDS:-11}

for h in open structured fsck decode helper; do
    case $h in decode|helper) c=$h ;; *) c=files ;; esac
    dirs=("fuzz/corpus/$c")
    # git keeps no empty folder: a harness may have no regression inputs yet
    [ -d "fuzz/regressions/$c" ] && dirs+=("fuzz/regressions/$c")
    "$PYTHON" "fuzz/fuzz_$h.py" --replay "${dirs[@]}"
done

if ! "$PYTHON" -c 'import atheris' 2>/dev/null; then
    if [ "${MYO_FUZZ_ALLOW_NO_ATHERIS:-0}" = 1 ]; then
        echo "atheris is not installed: replayed the corpora only" >&2
        exit 0
    fi
    echo "FAIL: atheris is not installed (pip install -e '.[fuzz]')" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! PYTHON=$PYTHON ASAN=0 bash fuzz/run.sh "$SECS" "$work"; then
    for f in "$work"/artifacts/*; do
        [ -f "$f" ] || continue
        echo "--- crash input $(basename "$f") (hex):"
        "$PYTHON" -c 'import sys; print(open(sys.argv[1], "rb").read().hex())' "$f"
    done
    echo "FAIL: the fuzzers found a crash (save the input under fuzz/regressions/)" >&2
    exit 1
fi
echo "fuzz smoke run passed"

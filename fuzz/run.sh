#!/usr/bin/env bash
# Fuzz every harness for a fixed time each (see fuzz/README.md).
#
#   bash fuzz/run.sh SECONDS_PER_HARNESS [WORKDIR]   # e.g. 300 for a long run
#   HARNESSES="open structured" bash fuzz/run.sh 60
#
# Each harness starts from its seed corpus (fuzz/corpus/) plus the regression
# inputs (fuzz/regressions/) and grows a working corpus in WORKDIR/<harness>
# (default /tmp/myo-fuzz), never in the repository. A crash writes the input to
# WORKDIR/artifacts/ and the harness is restarted until its time is used up, so
# one known crash does not end the run. fuzz_helper runs against the ASan/UBSan
# build of the C helper when fuzz/build_asan.sh has built it (ASAN=0 to skip).
# Exit status: 1 if any harness crashed, else 0. One process at a time: one core.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:?usage: run.sh SECONDS_PER_HARNESS [WORKDIR]}
WORK=${2:-/tmp/myo-fuzz}
PYTHON=${PYTHON:-python3}
HARNESSES=${HARNESSES:-"open structured fsck decode helper"}
mkdir -p "$WORK/artifacts"
declare -A CORPUS=([open]=files [structured]=files [fsck]=files [decode]=decode [helper]=helper)
declare -A MAXLEN=([open]=8192 [structured]=8192 [fsck]=8192 [decode]=4096 [helper]=4096)
crashed=0
for h in $HARNESSES; do
    c=${CORPUS[$h]}
    mkdir -p "$WORK/$h"
    env_prefix=()
    if [ "$h" = helper ] && [ "${ASAN:-1}" = 1 ] && [ -f fuzz/build/asan/_helper.so ]; then
        mapfile -t env_prefix < <(PYTHON=$PYTHON bash fuzz/build_asan.sh --env | sed 's/^export //')
        env_prefix[1]="${env_prefix[1]}:quarantine_size_mb=16"
        echo "== $h: C helper with ASan/UBSan (fuzz/build/asan/_helper.so)"
    fi
    deadline=$((SECONDS + SECS))
    runs=0
    while [ $SECONDS -lt $deadline ]; do
        left=$((deadline - SECONDS))
        log="$WORK/$h.log"
        seeds=("fuzz/corpus/$c")
        [ -d "fuzz/regressions/$c" ] && seeds+=("fuzz/regressions/$c")  # git keeps no empty dir
        env "${env_prefix[@]}" "$PYTHON" "fuzz/fuzz_$h.py" "$WORK/$h" "${seeds[@]}" \
            -dict=fuzz/dict/myosotis.dict -max_total_time="$left" \
            -max_len="${MAXLEN[$h]}" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$WORK/artifacts/$h-" >>"$log" 2>&1
        rc=$?
        n=$(grep -o '^stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
        runs=$((runs + ${n:-0}))
        if [ $rc -ne 0 ]; then
            crashed=1
            echo "!! $h crashed (rc=$rc); see $log and $WORK/artifacts/"
            grep -m1 -B2 -A12 'Traceback\|ERROR: AddressSanitizer\|ERROR: libFuzzer' "$log" | tail -20
            : >"$log.done"; cat "$log" >>"$log.done"; : >"$log"
        fi
    done
    echo "== $h: $runs executions in $SECS s; corpus $(ls "$WORK/$h" | wc -l) inputs"
done
exit $crashed

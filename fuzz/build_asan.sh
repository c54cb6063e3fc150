#!/usr/bin/env bash
# Build the C helper (csrc/) with clang, AddressSanitizer, UndefinedBehaviorSanitizer
# and libFuzzer coverage, for fuzzing with atheris (see fuzz/README.md).
#
#   bash fuzz/build_asan.sh            # -> fuzz/build/asan/_helper.so
#
# Then run a harness with atheris's matching ASan+libFuzzer runtime preloaded:
#
#   eval "$(bash fuzz/build_asan.sh --env)"
#   python fuzz/fuzz_helper.py fuzz/corpus/helper -dict=fuzz/dict/myosotis.dict
#
# Prerequisites: clang (Debian: `apt-get install -y clang`), and atheris in the
# Python used (PYTHON, default `python3`), whose wheel ships asan_with_fuzzer.so.
# UBSan runs in trap mode (-fsanitize-trap=undefined) so it needs no runtime of
# its own: undefined behaviour stops the process with SIGILL, which libFuzzer
# reports as a crash with the input that caused it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
CC=${CC:-clang}
OUT=fuzz/build/asan
SO=$OUT/_helper.so

if [ "${1:-}" = "--env" ]; then
    preload="$("$PYTHON" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))')"
    [ -f "$preload" ] || { echo "echo 'atheris has no asan_with_fuzzer.so' >&2; false"; exit 0; }
    echo "export LD_PRELOAD=$preload"
    echo "export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:abort_on_error=0"
    echo "export MYOSOTIS_FUZZ_HELPER=$PWD/$SO"
    exit 0
fi

command -v "$CC" >/dev/null || { echo "$CC not found: apt-get install -y clang" >&2; exit 1; }
mkdir -p "$OUT"
# The cffi glue of myosotis._helper, generated from the same builder as the real build.
"$PYTHON" - "$OUT/_helper_cffi.c" <<'PY'
import sys
sys.path.insert(0, "csrc")
from build_helper import ffibuilder
ffibuilder.emit_c_code(sys.argv[1])
PY
PYINC=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
FLAGS=(-O1 -g -fno-omit-frame-pointer -std=c11 -Wall -Wextra
       -fsanitize=fuzzer-no-link,address,undefined -fsanitize-trap=undefined
       -fno-sanitize-recover=all)
# The helper's own sources get the sanitizers; the generated glue too (it reads the buffers).
"$CC" "${FLAGS[@]}" -fPIC -shared -Icsrc -I"$PYINC" \
    "$OUT/_helper_cffi.c" csrc/myo_helper.c -o "$SO"
echo "built $SO"

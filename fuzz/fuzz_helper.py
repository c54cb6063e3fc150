"""Differential fuzz harness: the C helper against its pure-Python twin.

Property: ``crc32c`` and ``scan_frames`` of ``myosotis.format.helper`` (the C
helper, csrc/myo_helper.c, through cffi) give exactly the results of
``myosotis.format._helper_py`` for every input, garbage included: the same
CRC, the same status, frame offsets, kinds, end and next valid frame, and the
same ``ValueError`` for a bad start. Any disagreement is a crash. CRC32C is
also checked with the hardware path forced off (slicing-by-8 in C). With the
ASan/UBSan build of fuzz/build_asan.sh loaded, a bad read in C aborts the run
even when the answers happen to agree.

Input layout: byte 0 = flags (bit 0 verify_payload, bit 1 CRC instead of scan,
bit 2 portable CRC path, bit 3 use the raw start, bits 4-6 buffer misalignment),
bytes 1..4 = u32 start or CRC seed, the rest = the buffer.
"""

from __future__ import annotations

import struct

import fuzzlib

with fuzzlib.instrumented():
    from myosotis.format import _helper_py as pure
    from myosotis.format import helper

def _outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        r = fn(*args)
    except ValueError as e:
        return ("ValueError", str(e))
    if isinstance(r, int):
        return r
    return (r.status, list(r.offsets), bytes(r.kinds), r.end, r.next_valid)


def test_one_input(data: bytes) -> None:
    if len(data) < 5 or helper.IMPLEMENTATION != "c":
        return
    flags = data[0]
    (arg,) = struct.unpack_from("<I", data, 1)
    shift = (flags >> 4) & 7
    backing = bytearray(shift) + data[5:]
    buf = memoryview(backing)[shift:]  # starts at an address that is not 8-aligned
    if flags & 2:
        helper.crc32c_force_portable(bool(flags & 4))
        try:
            got = _outcome(helper.crc32c, buf, arg)
        finally:
            helper.crc32c_force_portable(False)
        want = _outcome(pure.crc32c, buf, arg)
        assert got == want, (got, want)
        return
    start = arg if flags & 8 else 8 * (arg % (len(buf) // 8 + 1))
    verify = bool(flags & 1)
    got = _outcome(helper.scan_frames, buf, start, verify)
    want = _outcome(pure.scan_frames, buf, start, verify)
    assert got == want, f"C {got} != Python {want}"


if __name__ == "__main__":
    if helper.IMPLEMENTATION != "c":
        raise SystemExit("the C helper is not built (or MYOSOTIS_PURE=1): nothing to compare")
    fuzzlib.main(test_one_input)

/*
 * myo_helper.h - the C helper of Myosotis: CRC32C and the frame scan.
 *
 * Layouts are defined by formatspec/FORMAT.md (§1 CRC32C, §3 frames, §10 the
 * walk, torn tails and corruption). Python reaches these functions only
 * through myosotis/format/helper.py (cffi); myosotis/format/_helper_py.py is
 * the pure-Python twin and must give the same result for every input.
 * myosotis/format/helper_contract.py states the contract both keep.
 *
 * Rules for this code: no allocation, no I/O, no Python API; every read is
 * bounds-checked against the length the caller passed; results are returned
 * through return codes and OUT parameters only.
 *
 * csrc/build_helper.py hands the block between the CDEF markers below to
 * ffibuilder.cdef() verbatim, so it must stay plain declarations (integer
 * #defines and prototypes, comments allowed) that cffi can parse.
 */
#ifndef MYO_HELPER_H
#define MYO_HELPER_H

#include <stddef.h>
#include <stdint.h>

/* --- BEGIN CDEF --- */

/*
 * Format constants. myosotis/format/constants.py is their single source:
 * myosotis/format/helper.py compares every MYO_* constant below with it (and
 * with myosotis/format/helper_contract.py) when it loads the compiled helper,
 * and refuses a build whose values differ.
 */

/* FORMAT.md §3: frame header size, frame alignment, payload length limit (R24). */
#define MYO_FRAME_HEADER_SIZE 16
#define MYO_FRAME_ALIGN 8
#define MYO_MAX_PAYLOAD 1073741824

/* FORMAT.md §3: byte offsets of the frame header's fields (payload_length at 0). */
#define MYO_FH_KIND 4
#define MYO_FH_FLAGS 5            /* then 2 reserved bytes */
#define MYO_FH_PAYLOAD_CRC 8
#define MYO_FH_HEADER_CRC 12      /* header_crc covers the bytes before it */

/* FORMAT.md §3 (version 2): bit 0 of a frame header's flags byte. */
#define MYO_FRAME_FLAG_UNSYNCED 1

/* FORMAT.md §4, R22: the record kinds of any version are MYO_KIND_MIN..MYO_KIND_MAX (4, ORIGIN,
 * is version 3 and later; 5, LAYER, version 4: a kind its file's version lacks is refused after
 * the scan, format/walk.py). */
#define MYO_KIND_MIN 1
#define MYO_KIND_MAX 5

/* FORMAT.md §10 step 3: the search's payload budget is this times (len - p). */
#define MYO_SCAN_BUDGET_FACTOR 2

/* Return codes of myo_scan (FORMAT.md §10); p is the offset of the first bad frame. */
#define MYO_SCAN_CLEAN 0          /* the frames end exactly at len */
#define MYO_SCAN_FULL 1           /* max_frames recorded, bytes remain: resume at *out_end */
#define MYO_SCAN_TORN 2           /* bad frame at p, a non-zero byte from p on, no frame after
                                     p that the search counts as valid (R28: the caller) */
#define MYO_SCAN_CORRUPT 3        /* bad frame at p, the search counts the frame at
                                     *out_next_valid as valid */
#define MYO_SCAN_FREE 4           /* bad frame at p, every byte from p on is zero */
#define MYO_SCAN_ERR_NULL -1      /* a required pointer is NULL */
#define MYO_SCAN_ERR_ALIGN -2     /* start is not a multiple of MYO_FRAME_ALIGN */
#define MYO_SCAN_ERR_RANGE -3     /* start > len, or len > SIZE_MAX */
#define MYO_SCAN_ERR_MAX_FRAMES -4 /* max_frames == 0 */

/*
 * CRC32C (FORMAT.md §1: reflected poly 0x82F63B78, init and final xor
 * 0xFFFFFFFF) of buf[0..len), continuing from crc, a previous result (0 to
 * start). Same convention as zlib's crc32(): myo_crc32c(0, a|b) ==
 * myo_crc32c(myo_crc32c(0, a), b). buf may be NULL when len is 0.
 */
uint32_t myo_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

/* 1 if myo_crc32c uses the SSE4.2 crc32 instruction right now, else 0. */
int myo_crc32c_hw(void);

/*
 * For tests: nonzero forces the portable (slicing-by-8) path even where
 * SSE4.2 is available; 0 restores the run-time choice. Not thread-safe
 * against concurrent myo_crc32c calls' choice of path (the result is the
 * same either way).
 */
void myo_crc32c_force_portable(int on);

/*
 * Walk the frames of buf[0..len) from start (FORMAT.md §3, §10 steps 2-4).
 *
 * Preconditions (checked; a violation returns a negative MYO_SCAN_ERR_*
 * code and writes nothing): buf != NULL unless len == 0, out pointers
 * non-NULL, start % MYO_FRAME_ALIGN == 0, start <= len, max_frames >= 1.
 *
 * Each frame of the walk must be valid (R20-R27) if verify_payload is
 * nonzero, else header-valid (R20-R25). R23: the flags byte (header byte 5)
 * may have the bits of allowed_flags set (0 for a version-1 file,
 * MYO_FRAME_FLAG_UNSYNCED for version 2; bits above 7 are ignored), bytes 6
 * and 7 must be zero. The offset and kind of each accepted frame are stored
 * in out_offsets[i], out_kinds[i] for i < *out_count <= max_frames. The walk
 * stops with:
 *   MYO_SCAN_CLEAN   the next frame would start at len; *out_end = len.
 *   MYO_SCAN_FULL    max_frames frames recorded and bytes remain;
 *                    *out_end = offset of the next unscanned frame.
 *   MYO_SCAN_FREE    the frame at p is not acceptable and every byte of
 *                    [p, len) is zero: free space a writer reserved (§3,
 *                    §10 step 3); *out_end = p.
 *   MYO_SCAN_TORN    the frame at p is not acceptable, some byte of [p, len)
 *                    is not zero, and the search below counts no frame after
 *                    p as valid; *out_end = p. The bytes from p on are a torn
 *                    tail only if a torn write can leave the frame at p
 *                    (R28): the caller decides that (myosotis/format/walk.py).
 *   MYO_SCAN_CORRUPT the frame at p is not acceptable and the search counts
 *                    the frame at *out_next_valid (8-aligned, > p) as valid;
 *                    *out_end = p. Corruption at p (§10 step 4), unless R29
 *                    makes it a torn tail: again the caller's decision.
 * *out_next_valid is 0 unless the result is MYO_SCAN_CORRUPT.
 *
 * The search (FORMAT.md §10 step 3), whatever verify_payload says: with a
 * budget B = MYO_SCAN_BUDGET_FACTOR * (len - p), for each q = p + 8, p + 16,
 * ... while q + 16 <= len, a candidate that is not header-valid is skipped;
 * one whose payload_length n > B counts as valid unread; else it counts as
 * valid if it is valid (R26, R27), and if not B -= n and the search goes on.
 *
 * Cost: linear in len - start for any input: each frame of the walk is
 * checked once; after it the zero test reads [p, len) once, the search reads
 * a 16-byte header at each 8-aligned offset, and the payloads it checks come
 * to at most B + (len - p) bytes (the failed ones at most B in all).
 */
int myo_scan(const uint8_t *buf, uint64_t len, uint64_t start, int verify_payload,
             uint32_t allowed_flags,
             uint64_t *out_offsets /* OUT: [max_frames] */,
             uint8_t *out_kinds /* OUT: [max_frames] */,
             uint32_t max_frames,
             uint32_t *out_count /* OUT */,
             uint64_t *out_end /* OUT */,
             uint64_t *out_next_valid /* OUT */);

/* --- END CDEF --- */

#endif /* MYO_HELPER_H */

/*
 * myo_helper.h - the C helper of Myosotis: CRC32C and the frame scan.
 *
 * Layouts are defined by formatspec/FORMAT.md (§1 CRC32C, §3 frames, §10 the
 * walk, torn tails and corruption). Python reaches these functions only
 * through myosotis/format/helper.py (cffi); myosotis/format/_helper_py.py is
 * the pure-Python twin and must give the same result for every input.
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

/* FORMAT.md §3: frame header size, frame alignment, payload length limit. */
#define MYO_FRAME_HEADER_SIZE 16
#define MYO_FRAME_ALIGN 8
#define MYO_MAX_PAYLOAD 1073741824

/* FORMAT.md §3 (version 2): bit 0 of a frame header's flags byte. */
#define MYO_FRAME_FLAG_UNSYNCED 1

/* Return codes of myo_scan (FORMAT.md §10). */
#define MYO_SCAN_CLEAN 0          /* walked exactly to len */
#define MYO_SCAN_FULL 1           /* max_frames recorded, bytes remain: resume at *out_end */
#define MYO_SCAN_TORN 2           /* bad frame at *out_end, no valid frame after it */
#define MYO_SCAN_CORRUPT 3        /* bad frame at *out_end, valid frame at *out_next_valid */
#define MYO_SCAN_FREE 4           /* bad frame at *out_end, every byte after it is zero */
#define MYO_SCAN_ERR_NULL -1      /* a required pointer is NULL */
#define MYO_SCAN_ERR_ALIGN -2     /* start is not a multiple of MYO_FRAME_ALIGN */
#define MYO_SCAN_ERR_RANGE -3     /* start > len */
#define MYO_SCAN_ERR_MAX_FRAMES -4 /* max_frames == 0 */

/*
 * CRC32C (Castagnoli, reflected poly 0x82F63B78, init and final xor
 * 0xFFFFFFFF) of buf[0..len), continuing from crc, a previous result (0 to
 * start). Same convention as zlib's crc32(): crc32c(a+b) ==
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
 * Walk the frames of buf[0..len) from start (FORMAT.md §3, §10).
 *
 * Preconditions (checked; a violation returns a negative MYO_SCAN_ERR_*
 * code and writes nothing): buf != NULL unless len == 0, out pointers
 * non-NULL, start % 8 == 0, start <= len, max_frames >= 1.
 *
 * Each frame must be valid (R20-R27) if verify_payload is nonzero, else
 * header-valid (R20-R25). R23: the frame header's byte 5 may have the bits of
 * allowed_flags set (0 for a version-1 file, MYO_FRAME_FLAG_UNSYNCED for
 * version 2), bytes 6 and 7 must be zero. The offset and kind of each accepted frame are
 * stored in out_offsets[i], out_kinds[i] for i < *out_count <= max_frames.
 * The walk stops with:
 *   MYO_SCAN_CLEAN   the next frame would start at len; *out_end = len.
 *   MYO_SCAN_FULL    max_frames frames recorded and bytes remain;
 *                    *out_end = offset of the next unscanned frame.
 *   MYO_SCAN_FREE    the frame at p is not acceptable and every byte of
 *                    [p, len) is zero: free space a writer reserved (§3);
 *                    *out_end = p.
 *   MYO_SCAN_TORN    the frame at p is not acceptable, some byte after p is
 *                    not zero, and the search of FORMAT.md §10 step 3 finds
 *                    no valid frame (R20-R27, regardless of verify_payload)
 *                    at an 8-aligned q in (p, len); *out_end = p. (Whether
 *                    the damage can be a torn write, R28, is the caller's
 *                    question: myosotis/format/walk.py.)
 *   MYO_SCAN_CORRUPT the frame at p is not acceptable and a valid frame
 *                    starts at an 8-aligned q > p; *out_end = p and
 *                    *out_next_valid = the first such q.
 * *out_next_valid is 0 unless the result is MYO_SCAN_CORRUPT.
 *
 * Cost: linear in the bytes walked, plus the search after a bad frame,
 * which checks a header CRC at every 8-aligned offset and the payload CRC of
 * header-valid candidates within a budget of 2 * (len - p) payload bytes
 * (past it a header-valid candidate counts as valid): linear for any input.
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

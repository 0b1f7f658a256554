/* tfrecord: streaming reader and writer of TFRecord files (TensorFlow's record container, used by
 * YouTube-8M and AudioSet).
 *
 * A file is a sequence of records, each
 *
 *     uint64 length | uint32 masked_crc32c(length, 8 bytes) | data[length] | uint32 masked_crc32c(data)
 *
 * little-endian, no file header. A zero-length file is a valid empty file. The reader checks BOTH CRCs
 * of every record. It reads in large blocks (1 MiB) and hands out pointers into its own buffer, so
 * memory stays bounded: the buffer is max(1 MiB, largest record + 16 bytes) whatever the file size.
 * Lengths above LP_TFRECORD_MAX_RECORD are rejected as corrupt.
 *
 * GZIP-compressed TFRecord files (TensorFlow's compression_type="GZIP") are recognised by the gzip
 * magic bytes (1f 8b) and decompressed on the fly with zlib; byte offsets then count bytes of the
 * *uncompressed* stream, and error messages say so.
 *
 * Errors name the file, the 1-based record number and the byte offset where the record starts, e.g.
 *   "x.tfrecord: record 2 at byte offset 5930: data CRC mismatch (stored 0x1234abcd, computed 0x...)"
 * Records before a bad one are delivered normally. A data CRC mismatch under a valid length CRC is a
 * bad record, not a broken file: the record's extent is known, so it is passed over and the next call
 * returns the record after it (lp_tfrecord_failed() stays 0). After any other framing error (bad length
 * CRC, truncation, absurd length, I/O error) the reader is finished: further calls return the same
 * status again.
 *
 * The buffer grown for one large record is given back when the records after it are small again, so
 * one huge record does not keep its peak for the rest of the run.
 *
 *     lp_tfrecord_reader *r;
 *     if (lp_tfrecord_open(&r, path) != LP_OK) ... lp_last_error() ...
 *     const uint8_t *rec; size_t len; lp_status s;
 *     while ((s = lp_tfrecord_next(r, &rec, &len)) == LP_OK) use(rec, len);
 *     if (s != LP_ERR_EOF) ... error ...
 *     lp_tfrecord_close(r);
 */
#ifndef LP_TFRECORD_H
#define LP_TFRECORD_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Records longer than this (1 GiB) are treated as corruption, not allocated. */
#define LP_TFRECORD_MAX_RECORD ((uint64_t)1 << 30)
/* Size of a record's framing: 8 (length) + 4 (length CRC) + 4 (data CRC). */
#define LP_TFRECORD_OVERHEAD 16

/* ---- reader ---- */

typedef struct lp_tfrecord_reader lp_tfrecord_reader;

/* Open `path` for reading (plain or gzip, detected from the first bytes). On failure *out is NULL and
 * the status is LP_ERR_IO (cannot open/read) or LP_ERR_NOMEM. The path is copied. */
lp_status lp_tfrecord_open(lp_tfrecord_reader **out, const char *path);
/* The same with a lower record limit: a record longer than max_record bytes (<= LP_TFRECORD_MAX_RECORD)
 * ends the file with LP_ERR_FORMAT naming the limit, before anything is buffered for it. The limit stays
 * across reopen. */
lp_status lp_tfrecord_open_max(lp_tfrecord_reader **out, const char *path, uint64_t max_record);

/* Re-point an open reader at another file, keeping its buffers (for iterating over many shards).
 * On failure the reader stays valid but finished (next() returns the error). */
lp_status lp_tfrecord_reopen(lp_tfrecord_reader *r, const char *path);

/* The next record: *data points into the reader's buffer and stays valid until the next call of
 * next/reopen/close on this reader. Returns LP_OK, LP_ERR_EOF at the clean end of the file,
 * LP_ERR_FORMAT for a corrupt or truncated record, LP_ERR_IO for a read error, LP_ERR_NOMEM. */
lp_status lp_tfrecord_next(lp_tfrecord_reader *r, const uint8_t **data, size_t *len);

/* About the record most recently returned by next() (or the failing one after an error):
 * its 1-based number in the file and the byte offset where its framing starts. 0 before the first. */
uint64_t lp_tfrecord_record_number(const lp_tfrecord_reader *r);
uint64_t lp_tfrecord_record_offset(const lp_tfrecord_reader *r);

/* Bytes of the (uncompressed) record stream consumed so far. */
uint64_t lp_tfrecord_bytes_read(const lp_tfrecord_reader *r);

/* The path given to open/reopen. */
const char *lp_tfrecord_path(const lp_tfrecord_reader *r);

/* Non-zero when the current file is gzip-compressed. */
int lp_tfrecord_is_gzip(const lp_tfrecord_reader *r);

/* Non-zero after a framing/I/O error: the file cannot be read any further. */
int lp_tfrecord_failed(const lp_tfrecord_reader *r);

/* Close the file and free the reader. NULL is fine. */
void lp_tfrecord_close(lp_tfrecord_reader *r);

/* ---- writer ---- */

typedef struct lp_tfrecord_writer lp_tfrecord_writer;

/* Create/truncate `path` for writing (uncompressed TFRecord). */
lp_status lp_tfrecord_writer_open(lp_tfrecord_writer **out, const char *path);

/* Append one record (framing and both masked CRCs added). */
lp_status lp_tfrecord_write(lp_tfrecord_writer *w, const void *data, size_t len);

/* Bytes written so far (framing included). */
uint64_t lp_tfrecord_writer_bytes(const lp_tfrecord_writer *w);

/* Flush and close; reports a failed flush/close as LP_ERR_IO (the file may then be incomplete).
 * Always frees the writer. NULL is fine (returns LP_OK). */
lp_status lp_tfrecord_writer_close(lp_tfrecord_writer *w);

/* ---- framing helpers (for in-memory use and tests) ---- */

/* The 12-byte header of a record of `len` bytes: length (LE) + masked CRC of the length. */
void lp_tfrecord_header(uint64_t len, uint8_t out[12]);
/* The 4-byte footer: masked CRC of the data (LE). */
void lp_tfrecord_footer(const void *data, size_t len, uint8_t out[4]);

#endif

/* tfrecord: buffered TFRecord reader (plain and gzip) with CRC checks, and the writer.
 *
 * The reader keeps the bytes of the (uncompressed) stream in one buffer [pos, end) and hands out
 * records as pointers into it. A record that does not fit in what is left of the buffer is moved to the
 * front first; a record larger than the whole buffer grows it to that record's size, so memory is
 * bounded by the largest record, not the file. For gzip files a second buffer holds compressed input
 * and zlib inflates straight into the record buffer. */
#include "data/tfrecord.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/crc32c.h"

#define READ_BLOCK ((size_t)1 << 20) /* bytes per read(): large reads keep syscalls off the profile */
/* A buffer grown past this for one large record goes back to READ_BLOCK once the bytes it still holds
 * fit in READ_BLOCK: real records are far smaller, and one huge record must not keep its peak. */
#define KEEP_CAP ((size_t)4 << 20)

struct lp_tfrecord_reader {
    char *path;
    int fd;
    int gzip;
    uint64_t file_size; /* plain regular files: size from fstat, to reject lengths past the end early */
    uint64_t max_record; /* longest record accepted, <= LP_TFRECORD_MAX_RECORD */
    int eof;            /* the (uncompressed) stream has no more bytes beyond buf[end] */
    uint8_t *buf;       /* uncompressed stream bytes; valid data in [pos, end) */
    size_t cap, pos, end;
    uint64_t consumed;  /* stream offset of buf[pos] */
    uint64_t rec_no;    /* 1-based number of the current record */
    uint64_t rec_off;   /* its stream offset */
    /* gzip */
    z_stream zs;
    int zs_ready;
    uint8_t *zin;       /* compressed input, zs.next_in points into it */
    size_t zin_cap;
    int zin_eof;        /* the file itself is exhausted */
    /* sticky failure */
    lp_status failed;
    char *failmsg;
};

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void store_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void lp_tfrecord_header(uint64_t len, uint8_t out[12]) {
    store_le64(out, len);
    store_le32(out + 8, lp_crc32c_mask(lp_crc32c(out, 8)));
}

void lp_tfrecord_footer(const void *data, size_t len, uint8_t out[4]) {
    store_le32(out, lp_crc32c_mask(lp_crc32c(data, len)));
}

/* ---- reader ---- */

/* read() that retries on EINTR; returns bytes read, 0 at end of file, -1 on error. */
static ssize_t read_some(int fd, void *p, size_t n) {
    for (;;) {
        ssize_t k = read(fd, p, n);
        if (k >= 0 || errno != EINTR) return k;
    }
}

/* Record a failure that ends the file: the message is kept and re-raised by later calls. */
static lp_status fail(lp_tfrecord_reader *r, lp_status code) {
    r->failed = code;
    lp_free(r->failmsg);
    r->failmsg = lp_strdup(lp_last_error());
    return code;
}

static const char *offset_note(const lp_tfrecord_reader *r) {
    return r->gzip ? " (offsets count uncompressed bytes of the gzip stream)" : "";
}

/* Failure located at the current record: "PATH: record N at byte offset O: <what><gzip note>"
 * (just "PATH: <what>" before the first record). */
static lp_status fail_record(lp_tfrecord_reader *r, lp_status code, const char *what) {
    if (r->rec_no)
        lp_errorf(code, "%s: record %llu at byte offset %llu: %s%s", r->path, (unsigned long long)r->rec_no,
                  (unsigned long long)r->rec_off, what, offset_note(r));
    else
        lp_errorf(code, "%s: %s", r->path, what);
    return fail(r, code);
}

/* Move more uncompressed bytes into buf[end..cap). Sets r->eof at the end of the stream. */
static lp_status refill(lp_tfrecord_reader *r) {
    if (!r->gzip) {
        ssize_t k = read_some(r->fd, r->buf + r->end, r->cap - r->end);
        if (k < 0) {
            char what[160];
            snprintf(what, sizeof what, "read error at byte %llu: %s",
                     (unsigned long long)(r->consumed + (r->end - r->pos)), strerror(errno));
            return fail_record(r, LP_ERR_IO, what);
        }
        if (k == 0) r->eof = 1;
        r->end += (size_t)k;
        return LP_OK;
    }
    z_stream *zs = &r->zs;
    zs->next_out = r->buf + r->end;
    zs->avail_out = (uInt)(r->cap - r->end > UINT32_MAX ? UINT32_MAX : r->cap - r->end);
    uInt avail_before = zs->avail_out;
    while (zs->avail_out == avail_before) {  // until at least one byte comes out, or the end
        if (zs->avail_in == 0 && !r->zin_eof) {
            ssize_t k = read_some(r->fd, r->zin, r->zin_cap);
            if (k < 0) {
                char what[160];
                snprintf(what, sizeof what, "read error in the compressed file: %s", strerror(errno));
                return fail_record(r, LP_ERR_IO, what);
            }
            if (k == 0) r->zin_eof = 1;
            zs->next_in = r->zin;
            zs->avail_in = (uInt)k;
        }
        if (zs->avail_in == 0 && r->zin_eof) {
            if (r->zs_ready == 2) {  // last member finished exactly at the end of the file
                r->eof = 1;
                break;
            }
            char what[160];
            snprintf(what, sizeof what, "truncated: the gzip stream ends early, after %llu uncompressed bytes",
                     (unsigned long long)(r->consumed + (r->end - r->pos)));
            return fail_record(r, LP_ERR_FORMAT, what);
        }
        if (r->zs_ready == 2) {  // more input after a finished member: a concatenated gzip member
            inflateReset(zs);
            r->zs_ready = 1;
        }
        int z = inflate(zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END) {
            r->zs_ready = 2;
        } else if (z != Z_OK && z != Z_BUF_ERROR) {
            char what[200];
            snprintf(what, sizeof what, "gzip data corrupt after %llu uncompressed bytes: %s",
                     (unsigned long long)(r->consumed + (r->end - r->pos) + (avail_before - zs->avail_out)),
                     zs->msg ? zs->msg : zError(z));
            return fail_record(r, LP_ERR_FORMAT, what);
        }
    }
    r->end += avail_before - zs->avail_out;
    return LP_OK;
}

/* Make buf[pos..pos+need) available if the stream has that many bytes; fewer only at the end. */
static lp_status want(lp_tfrecord_reader *r, size_t need) {
    if (r->end - r->pos >= need) return LP_OK;
    if (r->cap - r->pos < need) {
        // Not enough room behind pos: slide the partial record to the front, growing if it cannot fit.
        size_t have = r->end - r->pos;
        if (need > r->cap) {
            size_t ncap = need + (need >> 3);  // some slack: the next large record is often similar
            uint8_t *nb = lp_malloc(ncap, 1);
            if (!nb) return fail(r, LP_ERR_NOMEM);
            memcpy(nb, r->buf + r->pos, have);
            lp_free(r->buf);
            r->buf = nb;
            r->cap = ncap;
        } else {
            memmove(r->buf, r->buf + r->pos, have);
        }
        r->pos = 0;
        r->end = have;
    }
    while (r->end - r->pos < need && !r->eof) LP_TRY(refill(r));
    return LP_OK;
}

/* Give back a buffer grown for an earlier large record (see KEEP_CAP). Failure to get the smaller
 * buffer is harmless: the large one is kept. */
static void maybe_shrink(lp_tfrecord_reader *r) {
    size_t have = r->end - r->pos;
    if (r->cap <= KEEP_CAP || have > READ_BLOCK) return;
    uint8_t *nb = lp_malloc(READ_BLOCK, 1);
    if (!nb) return;
    memcpy(nb, r->buf + r->pos, have);
    lp_free(r->buf);
    r->buf = nb;
    r->cap = READ_BLOCK;
    r->pos = 0;
    r->end = have;
}

/* Start reading r->fd from its beginning: detect gzip from the first block. */
static lp_status start(lp_tfrecord_reader *r) {
    r->pos = r->end = 0;
    r->eof = 0;
    r->consumed = 0;
    r->rec_no = r->rec_off = 0;
    r->gzip = 0;
    r->zin_eof = 0;
    r->file_size = 0;
    struct stat st;
    if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode)) r->file_size = (uint64_t)st.st_size;
    r->failed = LP_OK;
    lp_free(r->failmsg);
    r->failmsg = NULL;
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    // First block as plain bytes; read until at least 12 bytes or the end (short reads on pipes).
    while (r->end < 12 && !r->eof) LP_TRY(refill(r));
    const uint8_t *p = r->buf;
    int magic = r->end >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8;
    // A plain file whose first length happens to begin 1f 8b 08 still has a valid length CRC.
    int plain_ok = r->end >= 12 && lp_crc32c_mask(lp_crc32c(p, 8)) == load_le32(p + 8);
    if (!magic || plain_ok) return LP_OK;

    r->gzip = 1;
    if (!r->zin) {
        r->zin_cap = READ_BLOCK;
        r->zin = lp_malloc(r->zin_cap, 1);
        if (!r->zin) return fail(r, LP_ERR_NOMEM);
    }
    memcpy(r->zin, r->buf, r->end);  // the raw bytes read so far become compressed input
    if (!r->zs_ready) {
        memset(&r->zs, 0, sizeof r->zs);
        if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK) {  // 16+: gzip wrapper only
            lp_errorf(LP_ERR_NOMEM, "%s: zlib inflateInit2 failed", r->path);
            return fail(r, LP_ERR_NOMEM);
        }
    } else {
        inflateReset(&r->zs);
    }
    r->zs_ready = 1;
    r->zs.next_in = r->zin;
    r->zs.avail_in = (uInt)r->end;
    r->end = 0;
    r->eof = 0;
    return LP_OK;
}

static lp_status open_fd(lp_tfrecord_reader *r, const char *path) {
    char *p = lp_strdup(path);
    if (!p) return LP_ERR_NOMEM;
    lp_free(r->path);
    r->path = p;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        lp_status s = lp_errorf(LP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return fail(r, s);
    }
    struct stat st; /* open() takes a directory; only the first read would fail, with EISDIR */
    if (fstat(r->fd, &st) == 0 && S_ISDIR(st.st_mode))
        return fail(r, lp_errorf(LP_ERR_IO, "%s: is a directory, not a file", path));
    return start(r);
}

lp_status lp_tfrecord_open(lp_tfrecord_reader **out, const char *path) {
    return lp_tfrecord_open_max(out, path, LP_TFRECORD_MAX_RECORD);
}

lp_status lp_tfrecord_open_max(lp_tfrecord_reader **out, const char *path, uint64_t max_record) {
    *out = NULL;
    lp_tfrecord_reader *r = lp_calloc(1, sizeof *r);
    if (!r) return LP_ERR_NOMEM;
    r->max_record = max_record < LP_TFRECORD_MAX_RECORD ? max_record : LP_TFRECORD_MAX_RECORD;
    r->fd = -1;
    r->cap = READ_BLOCK;
    r->buf = lp_malloc(r->cap, 1);
    if (!r->buf) {
        lp_free(r);
        return LP_ERR_NOMEM;
    }
    lp_status s = open_fd(r, path);
    if (s != LP_OK) {
        lp_tfrecord_close(r);
        return s;
    }
    *out = r;
    return LP_OK;
}

lp_status lp_tfrecord_reopen(lp_tfrecord_reader *r, const char *path) {
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    return open_fd(r, path);
}

lp_status lp_tfrecord_next(lp_tfrecord_reader *r, const uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    if (r->failed != LP_OK) return lp_errorf(r->failed, "%s", r->failmsg ? r->failmsg : "reader failed");
    // The record that starts here (errors while fetching it name it); undone at the clean end.
    r->rec_no++;
    r->rec_off = r->consumed;
    maybe_shrink(r);
    LP_TRY(want(r, 12));
    size_t avail = r->end - r->pos;
    if (avail == 0) {  // clean end: the previous record ended exactly here
        r->rec_no--;
        return LP_ERR_EOF;
    }
    char what[192];
    if (avail < 12) {
        snprintf(what, sizeof what, "truncated: the file ends at byte %llu, inside the 12-byte record header",
                 (unsigned long long)(r->consumed + avail));
        return fail_record(r, LP_ERR_FORMAT, what);
    }
    const uint8_t *p = r->buf + r->pos;
    uint64_t n = load_le64(p);
    uint32_t stored = load_le32(p + 8), computed = lp_crc32c_mask(lp_crc32c(p, 8));
    if (stored != computed) {
        snprintf(what, sizeof what, "length CRC mismatch (stored 0x%08x, computed 0x%08x)", stored, computed);
        return fail_record(r, LP_ERR_FORMAT, what);
    }
    if (n > r->max_record) {
        snprintf(what, sizeof what, "record length %llu exceeds the limit of %llu bytes%s", (unsigned long long)n,
                 (unsigned long long)r->max_record,
                 r->max_record < LP_TFRECORD_MAX_RECORD ? " (--max-record-mb or data.max_record_mb raises it)" : "");
        return fail_record(r, LP_ERR_FORMAT, what);
    }
    size_t total = (size_t)n + LP_TFRECORD_OVERHEAD;
    // A plain file that ends before this record does: say so without buffering up to 1 GiB first.
    int past_end = !r->gzip && r->file_size && r->consumed + total > r->file_size;
    if (!past_end) LP_TRY(want(r, total));
    avail = r->end - r->pos;
    if (past_end || avail < total) {
        if (past_end) avail = (size_t)(r->file_size - r->consumed);
        snprintf(what, sizeof what,
                 "truncated: the file ends at byte %llu, inside the record (%llu data bytes, record ends at "
                 "byte %llu)",
                 (unsigned long long)(r->consumed + avail), (unsigned long long)n,
                 (unsigned long long)(r->consumed + total));
        return fail_record(r, LP_ERR_FORMAT, what);
    }
    p = r->buf + r->pos;  // want() may have moved the buffer
    stored = load_le32(p + 12 + n);
    computed = lp_crc32c_mask(lp_crc32c(p + 12, (size_t)n));
    if (stored != computed) {
        // The length CRC held, so the record's extent is trustworthy: step over it and let the caller
        // decide whether to go on (inspect --skip-bad does); the reader is not failed.
        r->pos += total;
        r->consumed += total;
        lp_errorf(LP_ERR_FORMAT, "%s: record %llu at byte offset %llu: data CRC mismatch (stored 0x%08x, computed "
                  "0x%08x)%s", r->path, (unsigned long long)r->rec_no, (unsigned long long)r->rec_off, stored,
                  computed, offset_note(r));
        return LP_ERR_FORMAT;
    }
    *data = p + 12;
    *len = (size_t)n;
    r->pos += total;
    r->consumed += total;
    return LP_OK;
}

uint64_t lp_tfrecord_record_number(const lp_tfrecord_reader *r) {
    return r->rec_no;
}

uint64_t lp_tfrecord_record_offset(const lp_tfrecord_reader *r) {
    return r->rec_off;
}

uint64_t lp_tfrecord_bytes_read(const lp_tfrecord_reader *r) {
    return r->consumed;
}

const char *lp_tfrecord_path(const lp_tfrecord_reader *r) {
    return r->path ? r->path : "";
}

int lp_tfrecord_is_gzip(const lp_tfrecord_reader *r) {
    return r->gzip;
}

int lp_tfrecord_failed(const lp_tfrecord_reader *r) {
    return r->failed != LP_OK;
}

void lp_tfrecord_close(lp_tfrecord_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    if (r->zs_ready) inflateEnd(&r->zs);
    lp_free(r->zin);
    lp_free(r->buf);
    lp_free(r->path);
    lp_free(r->failmsg);
    lp_free(r);
}

/* ---- writer ---- */

struct lp_tfrecord_writer {
    FILE *f;
    char *path;
    uint64_t bytes;
    lp_status failed;
};

lp_status lp_tfrecord_writer_open(lp_tfrecord_writer **out, const char *path) {
    *out = NULL;
    lp_tfrecord_writer *w = lp_calloc(1, sizeof *w);
    if (!w) return LP_ERR_NOMEM;
    w->path = lp_strdup(path);
    if (!w->path) {
        lp_free(w);
        return LP_ERR_NOMEM;
    }
    w->f = fopen(path, "wb");
    if (!w->f) {
        lp_status s = lp_errorf(LP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        lp_free(w->path);
        lp_free(w);
        return s;
    }
    setvbuf(w->f, NULL, _IOFBF, READ_BLOCK);
    *out = w;
    return LP_OK;
}

lp_status lp_tfrecord_write(lp_tfrecord_writer *w, const void *data, size_t len) {
    if (w->failed != LP_OK) return lp_errorf(w->failed, "%s: an earlier write failed", w->path);
    if ((uint64_t)len > LP_TFRECORD_MAX_RECORD)
        return lp_errorf(LP_ERR_ARG, "%s: record of %zu bytes exceeds the limit of %llu bytes", w->path, len,
                         (unsigned long long)LP_TFRECORD_MAX_RECORD);
    uint8_t head[12], foot[4];
    lp_tfrecord_header(len, head);
    lp_tfrecord_footer(data, len, foot);
    if (fwrite(head, 1, 12, w->f) != 12 || (len && fwrite(data, 1, len, w->f) != len) ||
        fwrite(foot, 1, 4, w->f) != 4) {
        w->failed = LP_ERR_IO;
        return lp_errorf(LP_ERR_IO, "%s: write error at byte %llu: %s", w->path, (unsigned long long)w->bytes,
                         strerror(errno));
    }
    w->bytes += len + LP_TFRECORD_OVERHEAD;
    return LP_OK;
}

uint64_t lp_tfrecord_writer_bytes(const lp_tfrecord_writer *w) {
    return w->bytes;
}

lp_status lp_tfrecord_writer_close(lp_tfrecord_writer *w) {
    if (!w) return LP_OK;
    lp_status s = LP_OK;
    int bad = fflush(w->f) != 0 || ferror(w->f);
    int e = errno;
    if (fclose(w->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad || w->failed != LP_OK)
        s = lp_errorf(LP_ERR_IO, "%s: write failed, the file is incomplete: %s", w->path, strerror(e));
    lp_free(w->path);
    lp_free(w);
    return s;
}

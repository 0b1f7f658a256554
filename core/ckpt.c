/* ckpt: checkpoint writer and verifying reader (see ckpt.h and docs/FORMATS.md). */
#include "core/ckpt.h"

#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "core/fileio.h"

static const unsigned char MAGIC[8] = {'L', 'S', 'T', 'M', 'P', 'R', 'N', 0x1a};
#define ENDIAN_TAG 0x01020304u
#define HEADER_BYTES 32
#define DTYPE_F32 1

void lp_ckpt_init(lp_ckpt *c) {
    memset(c, 0, sizeof *c);
    lp_kv_init(&c->meta);
}

void lp_ckpt_free(lp_ckpt *c) {
    lp_kv_free(&c->meta);
    lp_free(c->t);
    lp_free(c->block);
    memset(c, 0, sizeof *c);
}

lp_status lp_ckpt_add(lp_ckpt *c, const char *name, int ndim, const int *dims, const float *data) {
    if (strlen(name) >= LP_CKPT_NAME_MAX) return lp_errorf(LP_ERR_ARG, "tensor name '%s' too long", name);
    if (ndim < 0 || ndim > LP_MAX_DIMS) return lp_errorf(LP_ERR_ARG, "tensor '%s': bad rank %d", name, ndim);
    if (lp_ckpt_find(c, name)) return lp_errorf(LP_ERR_ARG, "tensor '%s' added twice", name);
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        lp_ckpt_tensor *t = lp_realloc(c->t, (size_t)cap, sizeof *t);
        if (!t) return LP_ERR_NOMEM;
        c->t = t;
        c->cap = cap;
    }
    lp_ckpt_tensor *t = &c->t[c->n++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = dims[i];
        t->numel *= (size_t)dims[i];
    }
    t->data = data;
    return LP_OK;
}

lp_status lp_ckpt_add_tensor(lp_ckpt *c, const char *name, const lp_tensor *t) {
    return lp_ckpt_add(c, name, t->ndim, t->dims, t->data);
}

const lp_ckpt_tensor *lp_ckpt_find(const lp_ckpt *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    return NULL;
}

/* ---- little-endian serialisation into a growable buffer ---- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf_t;

static void put(buf_t *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->n < n) cap *= 2;
        unsigned char *p = lp_realloc(b->p, cap, 1);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u8(buf_t *b, unsigned v) { unsigned char x = (unsigned char)v; put(b, &x, 1); }
static void put_u16(buf_t *b, unsigned v) { unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)}; put(b, x, 2); }
static void put_u32(buf_t *b, uint32_t v) {
    unsigned char x[4];
    for (int i = 0; i < 4; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 4);
}
static void put_u64(buf_t *b, uint64_t v) {
    unsigned char x[8];
    for (int i = 0; i < 8; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 8);
}
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static int host_is_little_endian(void) {
    const uint32_t x = 1;
    unsigned char c;
    memcpy(&c, &x, 1);
    return c == 1;
}

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Build header + meta + table in memory; data offsets are known once the table size is known. */
static lp_status build_prefix(const lp_ckpt *c, buf_t *b, size_t *data_start) {
    size_t meta_len;
    char *meta = lp_kv_format(&c->meta, &meta_len);
    if (!meta) return LP_ERR_NOMEM;
    size_t table_len = 4; /* trailing table CRC */
    for (int i = 0; i < c->n; i++) table_len += 2 + strlen(c->t[i].name) + 2 + 4u * (size_t)c->t[i].ndim + 8 + 8 + 4;
    size_t off = align64(HEADER_BYTES + meta_len + 4 + table_len);
    *data_start = off;

    put(b, MAGIC, 8);
    put_u32(b, LP_CKPT_VERSION);
    put_u32(b, ENDIAN_TAG);
    put_u64(b, meta_len);
    put_u32(b, (uint32_t)c->n);
    put_u32(b, lp_crc32c(b->p, 28));
    put(b, meta, meta_len);
    put_u32(b, lp_crc32c(meta, meta_len));
    lp_free(meta);
    size_t table_start = b->n;
    for (int i = 0; i < c->n; i++) {
        const lp_ckpt_tensor *t = &c->t[i];
        size_t nb = t->numel * sizeof(float);
        put_u16(b, (unsigned)strlen(t->name));
        put(b, t->name, strlen(t->name));
        put_u8(b, DTYPE_F32);
        put_u8(b, (unsigned)t->ndim);
        for (int d = 0; d < t->ndim; d++) put_u32(b, (uint32_t)t->dims[d]);
        put_u64(b, off);
        put_u64(b, nb);
        put_u32(b, lp_crc32c(t->data, nb));
        off = align64(off + nb);
    }
    if (!b->oom) put_u32(b, lp_crc32c(b->p + table_start, b->n - table_start));
    return b->oom ? LP_ERR_NOMEM : LP_OK;
}

lp_status lp_ckpt_save(const lp_ckpt *c, const char *path) {
    if (!host_is_little_endian()) return lp_errorf(LP_ERR_ARG, "checkpoints are little-endian; big-endian hosts are not supported");
    buf_t b = {0};
    size_t data_start;
    lp_status s = build_prefix(c, &b, &data_start);
    if (s != LP_OK) {
        lp_free(b.p);
        return s;
    }
    lp_atomic_file af;
    s = lp_atomic_open(&af, path);
    if (s != LP_OK) {
        lp_free(b.p);
        return s;
    }
    static const unsigned char zeros[64] = {0};
    size_t pos = 0;
    int ok = fwrite(b.p, 1, b.n, af.f) == b.n;
    pos = b.n;
    lp_free(b.p);
    ok = ok && fwrite(zeros, 1, data_start - pos, af.f) == data_start - pos;
    pos = data_start;
    for (int i = 0; ok && i < c->n; i++) {
        size_t nb = c->t[i].numel * sizeof(float);
        ok = fwrite(c->t[i].data, 1, nb, af.f) == nb;
        pos += nb;
        size_t pad = align64(pos) - pos;
        if (i + 1 < c->n) {
            ok = ok && fwrite(zeros, 1, pad, af.f) == pad;
            pos += pad;
        }
    }
    if (!ok) {
        s = lp_errorf(LP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        lp_atomic_abort(&af);
        return s;
    }
    return lp_atomic_commit(&af);
}

/* ---- loading ---- */

static lp_status bad(const char *path, const char *what) {
    return lp_errorf(LP_ERR_FORMAT, "%s: not a valid lstmprune checkpoint: %s", path, what);
}

static lp_status parse(lp_ckpt *c, const unsigned char *p, size_t len, const char *path) {
    if (len < HEADER_BYTES) return bad(path, "file too short for the header (truncated?)");
    if (memcmp(p, MAGIC, 8) != 0) return bad(path, "wrong magic bytes");
    /* The version comes before the header CRC: a newer layout may place the CRC elsewhere. */
    uint32_t version = get_u32(p + 8);
    if (version != LP_CKPT_VERSION)
        return lp_errorf(LP_ERR_FORMAT, "%s: checkpoint format version %u is not supported (this program reads version %d)",
                         path, version, LP_CKPT_VERSION);
    if (get_u32(p + 12) != ENDIAN_TAG) return bad(path, "unknown endianness tag");
    if (get_u32(p + 28) != lp_crc32c(p, 28)) return bad(path, "header CRC mismatch (corrupted)");
    uint64_t meta_len = get_u64(p + 16);
    uint32_t n = get_u32(p + 24);
    if (meta_len > len - HEADER_BYTES || len - HEADER_BYTES - meta_len < 4) return bad(path, "file ends inside the config block (truncated)");
    const unsigned char *meta = p + HEADER_BYTES;
    if (get_u32(meta + meta_len) != lp_crc32c(meta, meta_len)) return bad(path, "config block CRC mismatch (corrupted)");
    LP_TRY(lp_kv_parse(&c->meta, (const char *)meta, meta_len, path));
    size_t pos = HEADER_BYTES + meta_len + 4, table_start = pos;
    if (n > (len - pos) / 26) return bad(path, "tensor count exceeds the file size (truncated or corrupted)");
    for (uint32_t i = 0; i < n; i++) {
        if (len - pos < 4) return bad(path, "file ends inside the tensor table (truncated)");
        unsigned nl = (unsigned)p[pos] | (unsigned)p[pos + 1] << 8;
        if (nl == 0 || nl >= LP_CKPT_NAME_MAX || len - pos < 2 + (size_t)nl + 2) return bad(path, "bad tensor name in the table");
        char name[LP_CKPT_NAME_MAX];
        memcpy(name, p + pos + 2, nl);
        name[nl] = '\0';
        pos += 2 + nl;
        unsigned dtype = p[pos], ndim = p[pos + 1];
        pos += 2;
        if (dtype != DTYPE_F32) return lp_errorf(LP_ERR_FORMAT, "%s: tensor '%s' has unknown dtype %u", path, name, dtype);
        if (ndim > LP_MAX_DIMS) return lp_errorf(LP_ERR_FORMAT, "%s: tensor '%s' has rank %u", path, name, ndim);
        if (len - pos < 4u * ndim + 20) return bad(path, "file ends inside the tensor table (truncated)");
        int dims[LP_MAX_DIMS];
        size_t numel = 1;
        for (unsigned d = 0; d < ndim; d++) {
            uint32_t v = get_u32(p + pos + 4 * d);
            if (v > (1u << 30)) return lp_errorf(LP_ERR_FORMAT, "%s: tensor '%s' has an absurd dimension %u", path, name, v);
            dims[d] = (int)v;
            numel *= v;
        }
        pos += 4u * ndim;
        uint64_t off = get_u64(p + pos), nb = get_u64(p + pos + 8);
        uint32_t crc = get_u32(p + pos + 16);
        pos += 20;
        if (nb != numel * sizeof(float)) return lp_errorf(LP_ERR_FORMAT, "%s: tensor '%s': byte count does not match its shape", path, name);
        if (off % 64 || off > len || nb > len - off)
            return lp_errorf(LP_ERR_FORMAT, "%s: tensor '%s' lies beyond the end of the file (%zu bytes; truncated?)", path, name, len);
        if (lp_crc32c(p + off, nb) != crc) return lp_errorf(LP_ERR_FORMAT, "%s: tensor '%s' fails its CRC32C check (corrupted)", path, name);
        LP_TRY(lp_ckpt_add(c, name, (int)ndim, dims, (const float *)(const void *)(p + off)));
    }
    if (len - pos < 4) return bad(path, "file ends inside the tensor table (truncated)");
    if (get_u32(p + pos) != lp_crc32c(p + table_start, pos - table_start)) return bad(path, "tensor table CRC mismatch (corrupted)");
    return LP_OK;
}

/* Check the magic bytes before reading the whole file: a checkpoint is read into memory whole, and a
 * device or FIFO (/dev/zero) has no size to check, so without this it would be read until memory ran out.
 * A short or unreadable head is left to the full read and parse, which say what is wrong. */
static lp_status check_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return LP_OK;
    unsigned char head[8];
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got == sizeof head && memcmp(head, MAGIC, 8) != 0) return bad(path, "wrong magic bytes");
    return LP_OK;
}

lp_status lp_ckpt_load(lp_ckpt *c, const char *path) {
    lp_ckpt_init(c);
    if (!host_is_little_endian()) return lp_errorf(LP_ERR_ARG, "checkpoints are little-endian; big-endian hosts are not supported");
    LP_TRY(check_magic(path));
    char *raw;
    size_t len;
    LP_TRY(lp_file_read_all(path, &raw, &len));
    /* Tensor data must be float-aligned: copy into a 64-byte aligned block (offsets are 64-aligned). */
    c->block = lp_aligned(len ? len : 1, 1);
    if (!c->block) {
        lp_free(raw);
        return LP_ERR_NOMEM;
    }
    memcpy(c->block, raw, len);
    lp_free(raw);
    c->file_bytes = len;
    lp_status s = parse(c, c->block, len, path);
    if (s != LP_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lp_last_error());
        lp_ckpt_free(c);
        lp_ckpt_init(c);
        return lp_errorf(s, "%s", msg);
    }
    return LP_OK;
}

lp_status lp_ckpt_check_params(const lp_ckpt *c, const lp_params *ps, const char *path) {
    for (int i = 0; i < ps->count; i++) {
        const lp_param *p = &ps->items[i];
        const lp_ckpt_tensor *t = lp_ckpt_find(c, p->name);
        if (!t) return lp_errorf(LP_ERR_FORMAT, "%s: checkpoint has no tensor '%s'", path, p->name);
        int same = t->ndim == p->t.ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->dims[d] == p->t.dims[d];
        if (same) continue;
        char a[64], b[64];
        lp_tensor tmp = {0};
        tmp.ndim = t->ndim;
        memcpy(tmp.dims, t->dims, sizeof tmp.dims);
        return lp_errorf(LP_ERR_SHAPE,
                         "%s: the model config in the checkpoint's meta needs tensor '%s' of shape %s, but its tensor "
                         "table has %s (corrupt or crafted checkpoint; nothing was allocated)",
                         path, p->name, lp_tensor_shape_str(&p->t, b, sizeof b), lp_tensor_shape_str(&tmp, a, sizeof a));
    }
    return LP_OK;
}

static lp_status shape_error(const char *path, const char *name, const lp_ckpt_tensor *t, const lp_tensor *dst) {
    char a[64], b[64];
    lp_tensor tmp = {0};
    tmp.ndim = t->ndim;
    memcpy(tmp.dims, t->dims, sizeof tmp.dims);
    return lp_errorf(LP_ERR_SHAPE, "%s: tensor '%s' has shape %s in the checkpoint but the model config needs %s", path,
                     name, lp_tensor_shape_str(&tmp, a, sizeof a), lp_tensor_shape_str(dst, b, sizeof b));
}

lp_status lp_ckpt_copy_to(const lp_ckpt *c, const char *name, lp_tensor *dst, const char *path) {
    const lp_ckpt_tensor *t = lp_ckpt_find(c, name);
    if (!t) return lp_errorf(LP_ERR_FORMAT, "%s: checkpoint has no tensor '%s'", path, name);
    int same = t->ndim == dst->ndim;
    for (int i = 0; same && i < t->ndim; i++) same = t->dims[i] == dst->dims[i];
    if (!same) return shape_error(path, name, t, dst);
    memcpy(dst->data, t->data, t->numel * sizeof(float));
    return LP_OK;
}

lp_status lp_ckpt_copy_flat(const lp_ckpt *c, const char *name, float *dst, size_t n, const char *path) {
    const lp_ckpt_tensor *t = lp_ckpt_find(c, name);
    if (!t) return lp_errorf(LP_ERR_FORMAT, "%s: checkpoint has no tensor '%s'", path, name);
    if (t->numel != n)
        return lp_errorf(LP_ERR_SHAPE, "%s: tensor '%s' has %zu values in the checkpoint, expected %zu", path, name, t->numel, n);
    memcpy(dst, t->data, n * sizeof(float));
    return LP_OK;
}

/* fuzz_ckpt: libFuzzer target for the checkpoint loader (core/ckpt.h) and for building a model from what
 * it read: the video classifiers (model/model.h lp_model_from_ckpt) and the language model (lm/lm.h
 * lp_lm_from_ckpt). Bit 0 of the first byte: 0 = the rest is the file as is; 1 = the harness first
 * rewrites every CRC the loader checks (following the layout of docs/FORMATS.md as far as it can), so
 * mutations get past the CRCs to the meta parser, the tensor table and model construction.
 *
 * A bug: a crash, leak or sanitizer report, or an out-of-memory (libFuzzer's -malloc_limit_mb /
 * -rss_limit_mb, set by `make fuzz`) from a size that the loader should have checked against the file.
 * Refusals (LP_ERR_FORMAT, LP_ERR_SHAPE, ...) are fine. Run with `make fuzz`; seeds in tests/fuzz/ckpt/
 * (small models written by tests/fuzz/seeds.c; docs/FUZZING.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ckpt.h"
#include "core/crc32c.h"
#include "lm/lm.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put_crc(uint8_t *p, const uint8_t *from, size_t n) {
    uint32_t c = lp_crc32c(from, n);
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(c >> 8 * i);
}

/* The walk of core/ckpt.c's parse(): header CRC, meta CRC, each tensor's data CRC, the table CRC. */
static void fix_crcs(uint8_t *p, size_t len) {
    if (len < 32) return;
    put_crc(p + 28, p, 28);
    uint64_t ml = get_le(p + 16, 8);
    if (ml > len - 32 || len - 32 - ml < 4) return;
    put_crc(p + 32 + ml, p + 32, ml);
    size_t pos = 32 + ml + 4, start = pos;
    for (uint64_t i = 0, n = get_le(p + 24, 4); i < n; i++) {
        if (len - pos < 4) return;
        size_t nl = (size_t)get_le(p + pos, 2);
        if (len - pos < 2 + nl + 2) return;
        pos += 2 + nl;
        size_t ndim = p[pos + 1];
        pos += 2;
        if (ndim > LP_MAX_DIMS || len - pos < 4 * ndim + 20) return;
        pos += 4 * ndim;
        uint64_t off = get_le(p + pos, 8), nb = get_le(p + pos + 8, 8);
        if (off <= len && nb <= len - off) put_crc(p + pos + 16, p + off, nb);
        pos += 20;
    }
    if (len - pos >= 4) put_crc(p + pos, p + start, pos - start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_ckpt_%d.ckpt", (int)getpid());
    if (size < 1) return 0;
    uint8_t *buf = malloc(size);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    if (data[0] & 1) fix_crcs(buf, size - 1);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, size - 1, f);
        fclose(f);
    }
    free(buf);
    if (!f) return 0;
    lp_ckpt c;
    if (lp_ckpt_load(&c, path) == LP_OK) {
        lp_model m;
        if (lp_model_from_ckpt(&m, &c, path) == LP_OK) {
            volatile double sink = (double)lp_model_numel(&m) + lp_model_flops_per_frame(&m) + lp_model_flops_head(&m);
            (void)sink;
            lp_model_free(&m);
        }
        lp_lm lm;
        if (lp_lm_from_ckpt(&lm, &c, path) == LP_OK) {
            volatile size_t sink = lp_lm_numel(&lm);
            (void)sink;
            lp_lm_free(&lm);
        }
    }
    lp_ckpt_free(&c);
    unlink(path);
    return 0;
}

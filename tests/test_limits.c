/* test_limits: what an input can make the program allocate is bounded. Each bomb input (a record of
 * millions of empty Feature entries, plain and gzip; /dev/zero as a config or checkpoint; a checkpoint
 * whose meta claims a huge model over a small tensor table, with valid CRCs; --classes 1e9) runs under a
 * memory ceiling — `ulimit -v` for the binary, RLIMIT_AS in a forked child for the library — and must
 * end with a clear error naming the limit: not a crash, not a kill, not "out of memory". Also: inspect
 * --skip-bad passes over a record whose data CRC is wrong (its length CRC right) and reads the rest.
 * The bombs are generated here (a few MB, gzip shrinks them to tens of KB), never committed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "core/ckpt.h"
#include "data/tfrecord.h"
#include "lm/lm.h"
#include "lm/ptb.h"
#include "model/model.h"
#include "tests/common/scratch.h"

/* The ceiling: the binary needs ~100 MB of address space for a usage error (shared libraries, OpenBLAS
 * with one thread); 100 MB above that is what the issue allows one bad input. Unfixed code asks for
 * gigabytes and fails (or would be killed) well before finishing. */
#define CEILING_KB 220000

/* AddressSanitizer reserves terabytes of address space for its shadow memory, so an address-space
 * ceiling cannot run under it (`make asan`): there the binary runs with single allocations capped
 * instead (ASan's max_allocation_size_mb, allocations over it fail and the library reports them), and
 * the library's checks in a child run without a ceiling. The messages are asserted either way. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static char out_buf[1 << 16];

/* Run "$LP_BIN args" under the ceiling, stdout+stderr into out_buf. The exit code, or -1 for a signal. */
static int run_capped(const char *fmt, ...) {
    char args[2048], prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (UNDER_ASAN)
        snprintf(prefix, sizeof prefix,
                 "ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=%d OPENBLAS_NUM_THREADS=1 exec",
                 CEILING_KB / 1024);
    else
        snprintf(prefix, sizeof prefix, "ulimit -v %d && OPENBLAS_NUM_THREADS=1 exec", CEILING_KB);
    int rc = lp_test_run(out_buf, sizeof out_buf, prefix, "%s", args);
    fprintf(stderr, "  $ %s\n  %s", args, out_buf);
    return rc;
}

/* ---- protobuf bytes by hand (wire type 2 = length-delimited) ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void varint(buf *b, uint64_t v) {
    uint8_t t[10];
    size_t k = 0;
    do {
        t[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) t[k] |= 0x80;
        k++;
    } while (v);
    put(b, t, k);
}

static void field(buf *b, int num, const void *d, size_t n) {
    varint(b, (uint64_t)num << 3 | 2);
    varint(b, n);
    put(b, d, n);
}

/* A SequenceExample: context {id: "bomb"}, feature lists rgb and audio, each of n empty Features
 * (2 bytes each on the wire; protobuf-c allocates a message and a pointer for every one). */
static buf bomb_record(size_t n) {
    buf list = {0}, e = {0}, lists = {0}, id = {0}, tmp = {0}, ctx = {0}, se = {0};
    for (size_t i = 0; i < n; i++) field(&list, 1, "", 0);
    const char *names[2] = {"rgb", "audio"};
    for (int k = 0; k < 2; k++) {
        e.n = 0;
        field(&e, 1, names[k], strlen(names[k]));
        field(&e, 2, list.p, list.n);
        field(&lists, 1, e.p, e.n);
    }
    field(&tmp, 1, "bomb", 4);       // BytesList.value
    field(&id, 1, tmp.p, tmp.n);     // Feature.bytes_list
    tmp.n = 0;
    field(&tmp, 1, "id", 2);         // FeatureEntry.key
    field(&tmp, 2, id.p, id.n);      // FeatureEntry.value
    field(&ctx, 1, tmp.p, tmp.n);    // Features.feature
    field(&se, 1, ctx.p, ctx.n);     // SequenceExample.context
    field(&se, 2, lists.p, lists.n); // SequenceExample.feature_lists
    free(list.p), free(e.p), free(lists.p), free(id.p), free(tmp.p), free(ctx.p);
    return se;
}

/* The record as a one-record TFRecord file, plain or gzip. */
static void write_bomb(const char *path, size_t n, int gzip) {
    buf r = bomb_record(n);
    uint8_t head[12], foot[4];
    lp_tfrecord_header(r.n, head);
    lp_tfrecord_footer(r.p, r.n, foot);
    if (gzip) {
        gzFile g = gzopen(path, "wb9");
        assert_non_null(g);
        assert_true(gzwrite(g, head, 12) == 12 && gzwrite(g, r.p, (unsigned)r.n) == (int)r.n && gzwrite(g, foot, 4) == 4);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_true(fwrite(head, 1, 12, f) == 12 && fwrite(r.p, 1, r.n, f) == r.n && fwrite(foot, 1, 4, f) == 4);
        assert_int_equal(fclose(f), 0);
    }
    free(r.p);
}

static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("limits") != 0) return -1;
    return run_capped("synth --out data --videos 40 --classes 5 --frames-min 4 --frames-max 8 --seed 3 --quiet") == 0
               ? 0
               : -1;
}

/* 10M empty entries in each list (a 40 MB record, ~80 KB gzip): train refuses the record by its length
 * (16 MiB by default) and names the flag; unfixed, train reached 2.5 GB. */
static void test_gzip_bomb_train(void **state) {
    (void)state;
    write_bomb(lp_test_scratch_path("bomb.tfrecord.gz"), 10000000, 1);
    int rc = run_capped("train --train bomb.tfrecord.gz --valid 'data/validate*.tfrecord' --classes 5 --hidden 4 "
                        "--batch 4 --epochs 1 --out run_bomb --quiet");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out_buf, "exceeds the limit of 16777216 bytes"));
    assert_non_null(strstr(out_buf, "--max-record-mb"));
}

/* 2.5M empty entries per list (a 10 MB record, under the record limit): the decode budget stops
 * protobuf-c; unfixed, inspect asked for 32 GiB. Plain and gzip. */
static void test_entries_bomb_inspect(void **state) {
    (void)state;
    write_bomb(lp_test_scratch_path("bomb5m.tfrecord"), 2500000, 0);
    write_bomb(lp_test_scratch_path("bomb5m.tfrecord.gz"), 2500000, 1);
    const char *files[2] = {"bomb5m.tfrecord", "bomb5m.tfrecord.gz"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run_capped("inspect %s", files[i]), 1);
        assert_non_null(strstr(out_buf, "record 1 at byte offset 0"));
        assert_non_null(strstr(out_buf, "the decode budget"));
    }
}

/* Fewer empty entries (within the decode budget): the frames fail their size check before a buffer of
 * frames x 1152 floats is sized by the count the record claims. */
static void test_empty_frames_checked_first(void **state) {
    (void)state;
    write_bomb(lp_test_scratch_path("frames.tfrecord"), 200000, 0);
    assert_int_equal(run_capped("inspect frames.tfrecord"), 1);
    assert_non_null(strstr(out_buf, "feature list 'rgb' frame 1"));
}

/* /dev/zero as a config file or a checkpoint: a limit or the magic check ends the read. */
static void test_dev_zero(void **state) {
    (void)state;
    assert_int_equal(run_capped("info /dev/zero"), 1);
    assert_non_null(strstr(out_buf, "wrong magic bytes"));
    assert_int_equal(run_capped("sweep /dev/zero --out sw"), 1);
    assert_non_null(strstr(out_buf, "LP_KV_MAX_FILE_BYTES"));
    int rc = run_capped("lm-train --config /dev/zero --out lmrun");
    assert_true(rc == 1 || rc == 2);
    assert_non_null(strstr(out_buf, "LP_KV_MAX_FILE_BYTES"));
}

/* --classes 1e9: refused by the class limit, not by running out of memory (unfixed: all 23.5 GB). */
static void test_classes_limit(void **state) {
    (void)state;
    int rc = run_capped("train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 1000000000 "
                        "--hidden 4 --batch 4 --epochs 1 --out run_classes --quiet");
    assert_true(rc == 1 || rc == 2);
    assert_non_null(strstr(out_buf, "limit of 100000 classes"));
}

/* ---- crafted checkpoints, loaded by the library in a child under RLIMIT_AS ---- */

/* Address space in use now (from /proc/self/statm), in bytes. */
static size_t vm_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

typedef lp_status (*load_fn)(const char *path);

/* Run load(path) in a child limited to 100 MB above the present address space: 0 when it failed
 * cleanly (LP_ERR_FORMAT or LP_ERR_SHAPE, not out of memory) with `want` in its message, 1 for another
 * status or message, -1 for a signal. */
static int load_capped(load_fn load, const char *path, const char *want) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = vm_now() + ((size_t)100 << 20);
        if (!UNDER_ASAN) setrlimit(RLIMIT_AS, &rl);
        lp_status s = load(path);
        fprintf(stderr, "  child: status %d: %s\n", (int)s, lp_last_error());
        _exit((s == LP_ERR_FORMAT || s == LP_ERR_SHAPE) && strstr(lp_last_error(), want) ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static lp_status load_lm(const char *path) {
    lp_lm m;
    lp_status s = lp_lm_load(&m, path, NULL);
    if (s == LP_OK) lp_lm_free(&m);
    return s;
}

static lp_status load_video(const char *path) {
    lp_model m;
    lp_status s = lp_model_load(&m, path, NULL);
    if (s == LP_OK) lp_model_free(&m);
    return s;
}

/* Save a checkpoint of `c` after overriding two meta keys (the CRCs are computed on save: valid). */
static void save_crafted(lp_ckpt *c, const char *k1, const char *v1, const char *k2, const char *v2, const char *path) {
    assert_int_equal(lp_kv_set(&c->meta, k1, v1), LP_OK);
    assert_int_equal(lp_kv_set(&c->meta, k2, v2), LP_OK);
    assert_int_equal(lp_ckpt_save(c, path), LP_OK);
}

/* model.vocab = 999999, embed = 999 over a 10-word model: 2 x 1e9 floats unfixed (3.9 GB initialised). */
static void test_crafted_lm_checkpoint(void **state) {
    (void)state;
    lp_lm_config cfg;
    lp_lm_config_default(&cfg, 10, 1, 8);
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &cfg, 1), LP_OK);
    lp_ckpt c;
    lp_ckpt_init(&c);
    assert_int_equal(lp_lm_add_to_ckpt(&m, &c), LP_OK);
    const char *path = lp_test_scratch_path("crafted_lm.ckpt");
    save_crafted(&c, "model.vocab", "999999", "model.embed", "999", path);
    lp_ckpt_free(&c);
    lp_lm_free(&m);
    assert_int_equal(load_capped(load_lm, path, "tensor 'embed.w' of shape [999999, 999]"), 0);
}

/* The video classifier: classes and units blown up in the meta of a real (tiny) checkpoint. */
static void test_crafted_video_checkpoint(void **state) {
    (void)state;
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_model_default_kv(&kv, LP_MODEL_PAPER, 6, 4, 1, 3, 1, 0.0f), LP_OK);
    lp_model m;
    assert_int_equal(lp_model_init_kv(&m, &kv, 1), LP_OK);
    lp_ckpt c;
    lp_ckpt_init(&c);
    assert_int_equal(lp_model_to_kv(&m, &c.meta), LP_OK);
    for (int i = 0; i < m.params->count; i++)
        assert_int_equal(lp_ckpt_add_tensor(&c, m.params->items[i].name, &m.params->items[i].t), LP_OK);
    const char *path = lp_test_scratch_path("crafted_video.ckpt");
    save_crafted(&c, "model.classes", "90000", "model.units", "2000,2000,9000", path);
    lp_ckpt_free(&c);
    lp_model_free(&m);
    lp_kv_free(&kv);
    assert_int_equal(load_capped(load_video, path, "the model config in the checkpoint's meta needs tensor"), 0);
}

static lp_status load_ptb(const char *path) {
    lp_ptb_vocab v;
    lp_status s = lp_ptb_vocab_build(&v, path, 0);
    lp_ptb_vocab_free(&v);
    return s;
}

/* /dev/zero as PTB text: the file limit ends the read (unfixed: until memory ran out). */
static void test_ptb_text_limit(void **state) {
    (void)state;
    assert_int_equal(load_capped(load_ptb, "/dev/zero", "LP_PTB_MAX_FILE_BYTES"), 0);
}

/* ---- inspect --skip-bad after a data CRC error ---- */

static void test_skip_bad_data_crc(void **state) {
    (void)state;
    // Copy the first synthetic shard with one byte of record 2's data flipped (its CRCs untouched).
    assert_int_equal(run_capped("inspect --quiet data/validate0000.tfrecord"), 0);
    long records = 0;
    const char *total = strstr(out_buf, "total: 1 files, ");
    assert_non_null(total);
    assert_int_equal(sscanf(total, "total: 1 files, %ld records", &records), 1);
    FILE *f = fopen(lp_test_scratch_path("data/validate0000.tfrecord"), "rb");
    assert_non_null(f);
    static uint8_t raw[1 << 22];
    size_t n = fread(raw, 1, sizeof raw, f);
    fclose(f);
    uint64_t len1 = 0;
    for (int i = 7; i >= 0; i--) len1 = len1 << 8 | raw[i];
    size_t rec2 = (size_t)len1 + LP_TFRECORD_OVERHEAD;
    assert_true(rec2 + 20 < n);
    raw[rec2 + 12 + 5] ^= 0x40;
    f = fopen(lp_test_scratch_path("crc.tfrecord"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(raw, 1, n, f), n);
    assert_int_equal(fclose(f), 0);

    assert_int_equal(run_capped("inspect --skip-bad crc.tfrecord"), 1);
    assert_non_null(strstr(out_buf, "record 2 at byte offset"));
    assert_non_null(strstr(out_buf, "data CRC mismatch"));
    assert_null(strstr(out_buf, "the rest of the file cannot be read"));
    char want[64];
    snprintf(want, sizeof want, "record %ld ", records);  // the last record is still listed
    assert_non_null(strstr(out_buf, want));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_bomb_train),         cmocka_unit_test(test_entries_bomb_inspect),
        cmocka_unit_test(test_empty_frames_checked_first), cmocka_unit_test(test_dev_zero),
        cmocka_unit_test(test_classes_limit),           cmocka_unit_test(test_crafted_lm_checkpoint),
        cmocka_unit_test(test_crafted_video_checkpoint), cmocka_unit_test(test_ptb_text_limit),
        cmocka_unit_test(test_skip_bad_data_crc),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

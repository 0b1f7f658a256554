/* test_ckpt: key-value config, atomic files (also through links, to devices and FIFOs) and checkpoints:
 * round trip, and every corruption case gives its clear error instead of a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/kv.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lp_test_ckpt_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void test_kv_roundtrip_and_errors(void **state) {
    (void)state;
    lp_kv kv, back;
    lp_kv_init(&kv);
    assert_int_equal(lp_kv_set(&kv, "model.kind", "paper"), LP_OK);
    assert_int_equal(lp_kv_set_int(&kv, "model.hidden", 1024), LP_OK);
    assert_int_equal(lp_kv_set_double(&kv, "train.lr", 0.1 + 0.2), LP_OK);
    assert_int_equal(lp_kv_set(&kv, "model.hidden", "512"), LP_OK); /* replace keeps order */
    assert_int_equal(lp_kv_set(&kv, "bad key", "x"), LP_ERR_ARG);
    assert_int_equal(lp_kv_set(&kv, "k", "two\nlines"), LP_ERR_ARG);
    assert_int_equal(lp_kv_write_file(&kv, tmp("cfg.txt")), LP_OK);
    lp_kv_init(&back);
    assert_int_equal(lp_kv_read_file(&back, tmp("cfg.txt")), LP_OK);
    assert_int_equal(back.count, 3);
    assert_string_equal(back.keys[1], "model.hidden");
    long long h = 0;
    double lr = 0;
    assert_int_equal(lp_kv_get_int(&back, "model.hidden", &h), LP_OK);
    assert_int_equal(h, 512);
    assert_int_equal(lp_kv_get_double(&back, "train.lr", &lr), LP_OK);
    assert_true(lr == 0.1 + 0.2); /* %.17g round-trips doubles exactly */
    assert_int_equal(lp_kv_get_int(&back, "model.kind", &h), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "model.kind"));
    assert_int_equal(lp_kv_get_int(&back, "absent", &h), LP_ERR_FORMAT);
    assert_int_equal(lp_kv_get_int_or(&back, "absent", 7), 7);
    lp_kv_free(&back);
    lp_kv_init(&back);
    assert_int_equal(lp_kv_parse(&back, "# c\na = 1\nnonsense\n", 18, "x.txt"), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "x.txt line 3"));
    lp_kv_free(&back);
    lp_kv_free(&kv);
}

static void test_kv_merge(void **state) {
    (void)state;
    lp_kv a, b;
    lp_kv_init(&a);
    lp_kv_init(&b);
    lp_kv_set(&a, "x", "1");
    lp_kv_set(&a, "y", "2");
    lp_kv_set(&b, "y", "20");
    lp_kv_set(&b, "z", "30");
    assert_int_equal(lp_kv_merge(&a, &b), LP_OK);
    assert_int_equal(a.count, 3);
    assert_string_equal(lp_kv_get(&a, "x"), "1");
    assert_string_equal(lp_kv_get(&a, "y"), "20"); /* src wins */
    assert_string_equal(lp_kv_get(&a, "z"), "30");
    assert_int_equal(b.count, 2); /* src untouched */
    assert_int_equal(lp_kv_merge(&a, NULL), LP_OK);
    assert_int_equal(a.count, 3);
    lp_kv_free(&a);
    lp_kv_free(&b);
}

static void test_kv_int_in(void **state) {
    (void)state;
    lp_kv kv;
    lp_kv_init(&kv);
    int v = -1;
    lp_kv_set(&kv, "n", "1024");
    assert_int_equal(lp_kv_get_int_in(&kv, "n", 1, 4096, &v), LP_OK);
    assert_int_equal(v, 1024);
    assert_int_equal(lp_kv_get_int_in(&kv, "n", 1024, 1024, &v), LP_OK); /* both bounds inclusive */
    v = -1;
    assert_int_equal(lp_kv_get_int_in(&kv, "n", 1, 1000, &v), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "n = 1024 is outside [1, 1000]"));
    assert_int_equal(v, -1); /* untouched on error */
    assert_int_equal(lp_kv_get_int_in(&kv, "n", 2000, 4096, &v), LP_ERR_FORMAT);
    lp_kv_set(&kv, "n", "4294967424"); /* 2^32 + 128: would wrap to 128 as an int */
    assert_int_equal(lp_kv_get_int_in(&kv, "n", 1, 2147483647, &v), LP_ERR_FORMAT);
    assert_int_equal(v, -1);
    lp_kv_set(&kv, "n", "12x");
    assert_int_equal(lp_kv_get_int_in(&kv, "n", 1, 4096, &v), LP_ERR_FORMAT);
    assert_int_equal(lp_kv_get_int_in(&kv, "absent", 1, 4096, &v), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "absent"));
    lp_kv_free(&kv);
}

static void test_kv_int_lists(void **state) {
    (void)state;
    lp_kv kv;
    lp_kv_init(&kv);
    int v[3] = {512, 300, 1024}, back[3] = {0};
    assert_int_equal(lp_kv_set_int_list(&kv, "model.units", 3, v), LP_OK);
    assert_string_equal(lp_kv_get(&kv, "model.units"), "512,300,1024");
    assert_int_equal(lp_kv_get_int_list(&kv, "model.units", 3, 1, 4096, back), LP_OK);
    assert_memory_equal(back, v, sizeof v);
    /* wrong count (both ways), out of range, junk: each names the key */
    assert_int_equal(lp_kv_get_int_list(&kv, "model.units", 2, 1, 4096, back), LP_ERR_FORMAT);
    assert_int_equal(lp_kv_get_int_list(&kv, "model.units", 4, 1, 4096, back), LP_ERR_FORMAT);
    assert_int_equal(lp_kv_get_int_list(&kv, "model.units", 3, 1, 1000, back), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "model.units"));
    lp_kv_set(&kv, "x", "1,,2");
    assert_int_equal(lp_kv_get_int_list(&kv, "x", 3, 0, 9, back), LP_ERR_FORMAT);
    lp_kv_set(&kv, "x", "1,2,3x");
    assert_int_equal(lp_kv_get_int_list(&kv, "x", 3, 0, 9, back), LP_ERR_FORMAT);
    assert_int_equal(lp_kv_get_int_list(&kv, "absent", 1, 0, 9, back), LP_ERR_FORMAT);
    lp_kv_free(&kv);
}

/* The file at path holds exactly the n bytes of want. */
static void assert_file_is(const char *path, const char *want, size_t n) {
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    assert_int_equal(len, n);
    assert_memory_equal(buf, want, n);
    free(buf);
}

static void test_atomic_abort_leaves_old_file(void **state) {
    (void)state;
    assert_int_equal(lp_file_write_all(tmp("a.bin"), "old", 3), LP_OK);
    lp_atomic_file af;
    assert_int_equal(lp_atomic_open(&af, tmp("a.bin")), LP_OK);
    fputs("new but interrupted", af.f);
    lp_atomic_abort(&af); /* as if the process died before commit */
    assert_file_is(tmp("a.bin"), "old", 3);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(tmp("missing.bin"), &buf, &len), LP_ERR_IO);
    assert_non_null(strstr(lp_last_error(), "missing.bin"));
}

/* 1 if dir holds a file whose name contains ".tmp." (a leftover temporary file). */
static int has_tmp_file(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -q '\\.tmp\\.'", dir);
    return system(cmd) == 0;
}

/* Writing through a symbolic link replaces the file it names and leaves the link a link. */
static void test_atomic_follows_symlink(void **state) {
    (void)state;
    assert_int_equal(lp_file_write_all(tmp("real.txt"), "old", 3), LP_OK);
    assert_int_equal(symlink("real.txt", tmp("link.txt")), 0);
    assert_int_equal(lp_file_write_all(tmp("link.txt"), "new!", 4), LP_OK);
    struct stat st;
    assert_int_equal(lstat(tmp("link.txt"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_file_is(tmp("real.txt"), "new!", 4);
    assert_false(has_tmp_file(tmpdir));
}

/* A device (here /dev/null, through a link in the scratch directory, so that a regression replaces
 * only the link) is written in place: `--out /dev/stdout` used to rename a file over /dev/stdout. */
static void test_atomic_device_written_in_place(void **state) {
    (void)state;
    assert_int_equal(symlink("/dev/null", tmp("null")), 0);
    assert_int_equal(lp_file_write_all(tmp("null"), "gone", 4), LP_OK);
    struct stat st;
    assert_int_equal(lstat(tmp("null"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_false(has_tmp_file(tmpdir));
    assert_false(has_tmp_file("/dev"));
}

/* A FIFO is written in place, whole: a child process reads what comes through it. */
static void test_atomic_fifo_written_in_place(void **state) {
    (void)state;
    assert_int_equal(mkfifo(tmp("fifo"), 0600), 0);
    char fifo[512], copy[512];
    snprintf(fifo, sizeof fifo, "%s", tmp("fifo"));
    snprintf(copy, sizeof copy, "%s", tmp("copy.txt"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the reader: the FIFO's bytes into copy.txt (gives up after 20 s without a writer) */
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "timeout 20 cat %s > %s", fifo, copy);
        _exit(system(cmd) == 0 ? 0 : 1);
    }
    assert_int_equal(lp_file_write_all(fifo, "through the pipe", 16), LP_OK);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stat st;
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_file_is(copy, "through the pipe", 16);
    assert_false(has_tmp_file(tmpdir));
}

/* A small checkpoint: two tensors and some meta. */
static void make_ckpt(const char *path, float *w, float *b) {
    lp_ckpt c;
    lp_ckpt_init(&c);
    for (int i = 0; i < 12; i++) w[i] = (float)i * 0.5f - 2.0f;
    for (int i = 0; i < 3; i++) b[i] = (float)i + 0.25f;
    int dw[2] = {4, 3}, db[1] = {3};
    assert_int_equal(lp_kv_set(&c.meta, "model.kind", "paper"), LP_OK);
    assert_int_equal(lp_ckpt_add(&c, "w", 2, dw, w), LP_OK);
    assert_int_equal(lp_ckpt_add(&c, "b", 1, db, b), LP_OK);
    assert_int_equal(lp_ckpt_add(&c, "b", 1, db, b), LP_ERR_ARG);
    assert_int_equal(lp_ckpt_save(&c, path), LP_OK);
    lp_ckpt_free(&c);
}

static void test_ckpt_roundtrip(void **state) {
    (void)state;
    float w[12], b[3];
    make_ckpt(tmp("m.ckpt"), w, b);
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, tmp("m.ckpt")), LP_OK);
    assert_string_equal(lp_kv_get(&c.meta, "model.kind"), "paper");
    const lp_ckpt_tensor *t = lp_ckpt_find(&c, "w");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->dims[0], 4);
    assert_memory_equal(t->data, w, sizeof w);
    float out[3];
    lp_tensor dst = {.data = out, .ndim = 1, .dims = {3}};
    assert_int_equal(lp_ckpt_copy_to(&c, "b", &dst, "m.ckpt"), LP_OK);
    assert_memory_equal(out, b, sizeof b);
    lp_tensor wrong = {.data = out, .ndim = 1, .dims = {2}};
    assert_int_equal(lp_ckpt_copy_to(&c, "b", &wrong, "m.ckpt"), LP_ERR_SHAPE);
    assert_non_null(strstr(lp_last_error(), "[3]"));
    assert_non_null(strstr(lp_last_error(), "[2]"));
    assert_int_equal(lp_ckpt_copy_to(&c, "nope", &dst, "m.ckpt"), LP_ERR_FORMAT);
    lp_ckpt_free(&c);
}

/* Load a damaged copy and check the error mentions `needle`. */
static void expect_load_error(const char *src, const char *name, long at, int flip, long truncate_to, const char *needle) {
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(src, &buf, &len), LP_OK);
    if (flip) buf[at] ^= (char)flip;
    if (truncate_to >= 0) len = (size_t)truncate_to;
    assert_int_equal(lp_file_write_all(tmp(name), buf, len), LP_OK);
    free(buf);
    lp_ckpt c;
    lp_status s = lp_ckpt_load(&c, tmp(name));
    if (s == LP_OK || !strstr(lp_last_error(), needle))
        fprintf(stderr, "case %s: status %s, message '%s' (wanted '%s')\n", name, lp_status_str(s), lp_last_error(), needle);
    assert_int_not_equal(s, LP_OK);
    assert_non_null(strstr(lp_last_error(), needle));
    assert_non_null(strstr(lp_last_error(), name));
    lp_ckpt_free(&c);
}

static void test_ckpt_corruption_cases(void **state) {
    (void)state;
    float w[12], b[3];
    char src[512];
    snprintf(src, sizeof src, "%s", tmp("good.ckpt")); /* tmp() reuses its buffer */
    make_ckpt(src, w, b);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(src, &buf, &len), LP_OK);
    free(buf);
    expect_load_error(src, "magic.ckpt", 0, 0x20, -1, "wrong magic");
    expect_load_error(src, "version.ckpt", 8, 0x06, -1, "format version 7 is not supported");
    expect_load_error(src, "header.ckpt", 17, 0x01, -1, "header CRC");
    expect_load_error(src, "meta.ckpt", 33, 0x01, -1, "config block CRC");
    expect_load_error(src, "data.ckpt", (long)len - 5, 0x10, -1, "tensor 'b' fails its CRC32C");
    expect_load_error(src, "trunc.ckpt", 0, 0, (long)len - 4, "beyond the end of the file");
    expect_load_error(src, "short.ckpt", 0, 0, 20, "too short");
    expect_load_error(src, "empty.ckpt", 0, 0, 0, "too short");
    /* Table corruption: flip a byte of the first tensor's dims (just after meta + its CRC). */
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, src), LP_OK);
    size_t meta_len = strlen("model.kind = paper\n");
    lp_ckpt_free(&c);
    expect_load_error(src, "table.ckpt", (long)(32 + meta_len + 4 + 2 + 1 + 2), 0x01, -1, "tensor 'w'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_roundtrip_and_errors),
        cmocka_unit_test(test_kv_merge),
        cmocka_unit_test(test_kv_int_in),
        cmocka_unit_test(test_kv_int_lists),
        cmocka_unit_test(test_atomic_abort_leaves_old_file),
        cmocka_unit_test(test_atomic_follows_symlink),
        cmocka_unit_test(test_atomic_device_written_in_place),
        cmocka_unit_test(test_atomic_fifo_written_in_place),
        cmocka_unit_test(test_ckpt_roundtrip),
        cmocka_unit_test(test_ckpt_corruption_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

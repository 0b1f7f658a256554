/* test_tfrecord: the TFRecord reader and writer.
 *
 * The three corrupt reference files must fail at the record and byte offset tfrecord_expected.json
 * documents, after the good first record is delivered. Writer → reader round trips cover records that
 * straddle the 1 MiB read buffer and records larger than it; gzip copies (made here with zlib) must read
 * identically, including concatenated members, and a truncated gzip file must fail after the records
 * that are complete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "core/crc32c.h"
#include "core/rng.h"
#include "data/tfrecord.h"
#include "tests/common/refdata.h"
#include "tests/common/scratch.h"

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* gzip-compress bytes into path as `members` concatenated gzip members (split evenly). */
static void spit_gzip(const char *path, const uint8_t *p, size_t n, int members) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    for (int m = 0; m < members; m++) {
        size_t a = n * (size_t)m / (size_t)members, b = n * (size_t)(m + 1) / (size_t)members;
        gzFile g = gzopen(path, "ab6");
        assert_non_null(g);
        if (b > a) assert_int_equal(gzwrite(g, p + a, (unsigned)(b - a)), (int)(b - a));
        assert_int_equal(gzclose(g), Z_OK);
    }
}

/* Numbers in the "expect" sentence of `file` in tfrecord_expected.json, in order of appearance. */
static int expected_numbers(const char *file, long *out, int max) {
    size_t n;
    char *json = (char *)slurp(lp_ref_path("reference/tfrecord_expected.json"), &n);
    json[n] = 0;
    char key[128];
    snprintf(key, sizeof key, "\"%s\"", file);
    char *p = strstr(json, key);
    assert_non_null(p);
    p = strstr(p, "\"expect\"");
    assert_non_null(p);
    p = strchr(p + 8, '"');  // opening quote of the value
    assert_non_null(p);
    char *end = strchr(p + 1, '"');
    assert_non_null(end);
    int k = 0;
    for (char *q = p + 1; q < end && k < max;) {
        if (*q >= '0' && *q <= '9') out[k++] = strtol(q, &q, 10);
        else q++;
    }
    free(json);
    return k;
}

/* Reads every record of path; returns the count and the status that ended it. */
static lp_status read_all(const char *path, uint64_t *count, uint8_t **concat, size_t *concat_len) {
    lp_tfrecord_reader *r;
    lp_status s = lp_tfrecord_open(&r, path);
    if (s != LP_OK) return s;
    const uint8_t *d;
    size_t len;
    *count = 0;
    if (concat) {
        *concat = NULL;
        *concat_len = 0;
    }
    while ((s = lp_tfrecord_next(r, &d, &len)) == LP_OK) {
        (*count)++;
        if (concat) {
            *concat = realloc(*concat, *concat_len + len + 1);
            memcpy(*concat + *concat_len, d, len);
            *concat_len += len;
        }
    }
    lp_tfrecord_close(r);
    return s;
}

/* One corrupt reference case: record 1 delivered, record 2 fails with `what` at the documented place. */
static void check_corrupt(const char *file, const char *what, int gzip_copy) {
    long num[8];
    int k = expected_numbers(file, num, 8);
    assert_true(k >= 3);
    long good = num[0], bad = num[1], place = num[k - 1];  // "record 1 reads; record 2 fails ... N"
    assert_int_equal(good, 1);
    assert_int_equal(bad, 2);

    char src[512];
    snprintf(src, sizeof src, "%s", lp_ref_path("reference/"));
    strncat(src, file, sizeof src - strlen(src) - 1);
    const char *path = src;
    if (gzip_copy) {
        size_t n;
        uint8_t *raw = slurp(src, &n);
        path = lp_test_scratch_path("corrupt.tfrecord.gz");
        spit_gzip(path, raw, n, 1);
        free(raw);
    }
    lp_tfrecord_reader *r;
    assert_int_equal(lp_tfrecord_open(&r, path), LP_OK);
    assert_int_equal(lp_tfrecord_is_gzip(r), gzip_copy);
    const uint8_t *d;
    size_t len;
    assert_int_equal(lp_tfrecord_next(r, &d, &len), LP_OK);
    assert_int_equal(lp_tfrecord_record_number(r), 1);
    assert_int_equal(lp_tfrecord_record_offset(r), 0);
    assert_true(len > 0);
    uint64_t off2 = len + LP_TFRECORD_OVERHEAD;  // record 2 starts right after record 1
    assert_int_equal(lp_tfrecord_next(r, &d, &len), LP_ERR_FORMAT);
    assert_null(d);
    // A data CRC error under a valid length CRC is a bad record, not a broken file (the reader goes on).
    int data_crc = strstr(what, "data CRC") != NULL;
    assert_int_equal(lp_tfrecord_failed(r), !data_crc);
    assert_int_equal(lp_tfrecord_record_number(r), bad);
    assert_int_equal(lp_tfrecord_record_offset(r), off2);
    char want[640];
    snprintf(want, sizeof want, "%s: record %ld at byte offset %llu: %s", path, bad, (unsigned long long)off2, what);
    const char *msg = lp_last_error();
    fprintf(stderr, "  %s\n", msg);
    assert_non_null(strstr(msg, want));
    if (strstr(what, "truncated")) {
        char at[64];
        snprintf(at, sizeof at, "ends at byte %ld", place);  // "file ends inside it, at byte N"
        assert_non_null(strstr(msg, at));
    } else {
        assert_int_equal(off2, place);  // "byte offset (of record 2 =) N"
        assert_non_null(strstr(msg, "stored 0x"));
        assert_non_null(strstr(msg, "computed 0x"));
    }
    if (gzip_copy) assert_non_null(strstr(msg, "uncompressed"));
    if (data_crc) {  // record 3 follows, intact
        assert_int_equal(lp_tfrecord_next(r, &d, &len), LP_OK);
        assert_int_equal(lp_tfrecord_record_number(r), bad + 1);
        lp_tfrecord_close(r);
        return;
    }
    /* Sticky: the file cannot be read further, the same error comes back. */
    char first[640];
    snprintf(first, sizeof first, "%s", msg);
    assert_int_equal(lp_tfrecord_next(r, &d, &len), LP_ERR_FORMAT);
    assert_string_equal(lp_last_error(), first);
    lp_tfrecord_close(r);
}

static void test_corrupt_data_crc(void **state) {
    (void)state;
    check_corrupt("corrupt_data_crc.tfrecord", "data CRC mismatch", 0);
    check_corrupt("corrupt_data_crc.tfrecord", "data CRC mismatch", 1);
}

static void test_corrupt_length_crc(void **state) {
    (void)state;
    check_corrupt("corrupt_length_crc.tfrecord", "length CRC mismatch", 0);
    check_corrupt("corrupt_length_crc.tfrecord", "length CRC mismatch", 1);
}

static void test_truncated(void **state) {
    (void)state;
    size_t n;
    free(slurp(lp_ref_path("reference/truncated.tfrecord"), &n));
    long num[8];
    int k = expected_numbers("truncated.tfrecord", num, 8);
    assert_int_equal((long)n, num[k - 1]);  // the file really ends where the JSON says
    check_corrupt("truncated.tfrecord", "truncated", 0);
    check_corrupt("truncated.tfrecord", "truncated", 1);
}

static void test_empty_and_short_files(void **state) {
    (void)state;
    uint64_t count;
    spit(lp_test_scratch_path("empty.tfrecord"), "", 0);
    assert_int_equal(read_all(lp_test_scratch_path("empty.tfrecord"), &count, NULL, NULL), LP_ERR_EOF);
    assert_int_equal(count, 0);
    /* 5 bytes: a record header cut short. */
    spit(lp_test_scratch_path("short.tfrecord"), "\x05\x00\x00\x00\x00", 5);
    assert_int_equal(read_all(lp_test_scratch_path("short.tfrecord"), &count, NULL, NULL), LP_ERR_FORMAT);
    assert_int_equal(count, 0);
    assert_non_null(strstr(lp_last_error(), "record 1 at byte offset 0: truncated"));
    /* A missing file is an I/O error naming it. */
    lp_tfrecord_reader *r;
    assert_int_equal(lp_tfrecord_open(&r, lp_test_scratch_path("nope.tfrecord")), LP_ERR_IO);
    assert_null(r);
    assert_non_null(strstr(lp_last_error(), "nope.tfrecord"));
}

static void test_absurd_length_rejected(void **state) {
    (void)state;
    /* A header with a valid length CRC claiming 4 GiB: rejected without allocating it. */
    uint8_t h[12];
    lp_tfrecord_header((uint64_t)1 << 32, h);
    spit(lp_test_scratch_path("huge.tfrecord"), h, 12);
    uint64_t count;
    assert_int_equal(read_all(lp_test_scratch_path("huge.tfrecord"), &count, NULL, NULL), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "exceeds the limit"));
    /* 500 MB claimed (valid CRC) in a 12-byte file: truncated, found from the file size. */
    lp_tfrecord_header(500u << 20, h);
    spit(lp_test_scratch_path("big.tfrecord"), h, 12);
    assert_int_equal(read_all(lp_test_scratch_path("big.tfrecord"), &count, NULL, NULL), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "record 1 at byte offset 0: truncated: the file ends at byte 12"));
}

/* Writes `n` random records with the given sizes, reads them back, checks bytes/numbers/offsets. */
static void round_trip(const size_t *sizes, int n, uint64_t seed, int gzip_members) {
    lp_rng rng;
    lp_rng_init(&rng, seed, LP_RNG_STREAM_TEST);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    uint8_t *all = malloc(total + 1);
    for (size_t i = 0; i < total; i++) all[i] = (uint8_t)lp_rng_u32(&rng);
    const char *path = lp_test_scratch_path("rt.tfrecord");
    lp_tfrecord_writer *w;
    assert_int_equal(lp_tfrecord_writer_open(&w, path), LP_OK);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(lp_tfrecord_write(w, all + at, sizes[i]), LP_OK);
        at += sizes[i];
    }
    assert_int_equal(lp_tfrecord_writer_bytes(w), total + (size_t)n * LP_TFRECORD_OVERHEAD);
    assert_int_equal(lp_tfrecord_writer_close(w), LP_OK);
    if (gzip_members) {
        size_t fn;
        uint8_t *raw = slurp(path, &fn);
        path = lp_test_scratch_path("rt.tfrecord.gz");
        spit_gzip(path, raw, fn, gzip_members);
        free(raw);
    }
    lp_tfrecord_reader *r;
    assert_int_equal(lp_tfrecord_open(&r, path), LP_OK);
    assert_int_equal(lp_tfrecord_is_gzip(r), gzip_members > 0);
    at = 0;
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *d;
        size_t len;
        assert_int_equal(lp_tfrecord_next(r, &d, &len), LP_OK);
        assert_int_equal(len, sizes[i]);
        if (len) assert_memory_equal(d, all + at, len);
        assert_int_equal(lp_tfrecord_record_number(r), (uint64_t)i + 1);
        assert_int_equal(lp_tfrecord_record_offset(r), off);
        at += len;
        off += len + LP_TFRECORD_OVERHEAD;
    }
    const uint8_t *d;
    size_t len;
    assert_int_equal(lp_tfrecord_next(r, &d, &len), LP_ERR_EOF);
    assert_int_equal(lp_tfrecord_next(r, &d, &len), LP_ERR_EOF);  // stays at the end
    assert_int_equal(lp_tfrecord_bytes_read(r), off);
    lp_tfrecord_close(r);
    free(all);
}

static void test_round_trip(void **state) {
    (void)state;
    /* Small records (many cross the 1 MiB buffer boundary), an empty one, one larger than the buffer. */
    size_t sizes[400];
    lp_rng rng;
    lp_rng_init(&rng, 11, LP_RNG_STREAM_TEST);
    for (int i = 0; i < 400; i++) sizes[i] = lp_rng_below(&rng, 20000);
    sizes[3] = 0;
    sizes[200] = (3u << 20) + 17;  // 3 MiB: the buffer must grow
    sizes[201] = 1;
    round_trip(sizes, 400, 1, 0);
    round_trip(sizes, 400, 2, 1);
    round_trip(sizes, 400, 3, 3);  // three concatenated gzip members, cut mid-record
}

static void test_plain_file_starting_like_gzip(void **state) {
    (void)state;
    /* A plain file whose first length is 0x00088b1f starts with the gzip magic 1f 8b 08; the valid
     * length CRC tells it apart. */
    size_t sizes[2] = {0x00088b1f, 10};
    round_trip(sizes, 2, 5, 0);
}

static void test_gzip_truncated(void **state) {
    (void)state;
    lp_rng rng;
    lp_rng_init(&rng, 12, LP_RNG_STREAM_TEST);
    uint8_t *all = malloc(50 * 3000);
    for (size_t i = 0; i < 50 * 3000; i++) all[i] = (uint8_t)(lp_rng_below(&rng, 4));  // compressible
    lp_tfrecord_writer *w;
    assert_int_equal(lp_tfrecord_writer_open(&w, lp_test_scratch_path("gt.tfrecord")), LP_OK);
    for (int i = 0; i < 50; i++) assert_int_equal(lp_tfrecord_write(w, all + i * 3000, 3000), LP_OK);
    assert_int_equal(lp_tfrecord_writer_close(w), LP_OK);
    size_t fn, gn;
    uint8_t *raw = slurp(lp_test_scratch_path("gt.tfrecord"), &fn);
    spit_gzip(lp_test_scratch_path("gt.tfrecord.gz"), raw, fn, 1);
    uint8_t *gz = slurp(lp_test_scratch_path("gt.tfrecord.gz"), &gn);
    spit(lp_test_scratch_path("gt_cut.tfrecord.gz"), gz, gn / 2);
    uint64_t count = 0;
    assert_int_equal(read_all(lp_test_scratch_path("gt_cut.tfrecord.gz"), &count, NULL, NULL), LP_ERR_FORMAT);
    assert_true(count > 0 && count < 50);  // the complete records before the cut are delivered
    fprintf(stderr, "  %s (after %llu records)\n", lp_last_error(), (unsigned long long)count);
    char want[128];  // the record after the last complete one, at its uncompressed offset
    snprintf(want, sizeof want, "gt_cut.tfrecord.gz: record %llu at byte offset %llu: truncated",
             (unsigned long long)count + 1, (unsigned long long)count * (3000 + LP_TFRECORD_OVERHEAD));
    assert_non_null(strstr(lp_last_error(), want));
    /* Flip a byte inside the deflate data: corrupt gzip data or a CRC error, never silent success. */
    gz[gn / 2] ^= 0x55;
    spit(lp_test_scratch_path("gt_bad.tfrecord.gz"), gz, gn);
    assert_int_equal(read_all(lp_test_scratch_path("gt_bad.tfrecord.gz"), &count, NULL, NULL), LP_ERR_FORMAT);
    assert_true(count < 50);
    free(raw);
    free(gz);
    free(all);
}

static void test_gzip_reference_same_records(void **state) {
    (void)state;
    const char *names[] = {"reference/yt8m_frame.tfrecord", "reference/yt8m_video.tfrecord"};
    for (int i = 0; i < 2; i++) {
        char src[512];
        snprintf(src, sizeof src, "%s", lp_ref_path(names[i]));
        size_t n;
        uint8_t *raw = slurp(src, &n);
        spit_gzip(lp_test_scratch_path("ref.tfrecord.gz"), raw, n, 1);
        free(raw);
        uint64_t c1, c2;
        uint8_t *a, *b;
        size_t na, nb;
        assert_int_equal(read_all(src, &c1, &a, &na), LP_ERR_EOF);
        assert_int_equal(read_all(lp_test_scratch_path("ref.tfrecord.gz"), &c2, &b, &nb), LP_ERR_EOF);
        assert_true(c1 >= 3);
        assert_int_equal(c1, c2);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        free(a);
        free(b);
    }
}

static void test_reopen_keeps_working(void **state) {
    (void)state;
    lp_tfrecord_reader *r;
    char frame[512], video[512];
    snprintf(frame, sizeof frame, "%s", lp_ref_path("reference/yt8m_frame.tfrecord"));
    snprintf(video, sizeof video, "%s", lp_ref_path("reference/yt8m_video.tfrecord"));
    uint64_t nf, nv;
    assert_int_equal(read_all(frame, &nf, NULL, NULL), LP_ERR_EOF);
    assert_int_equal(read_all(video, &nv, NULL, NULL), LP_ERR_EOF);
    assert_int_equal(lp_tfrecord_open(&r, frame), LP_OK);
    const uint8_t *d;
    size_t len;
    uint64_t k = 0;
    while (lp_tfrecord_next(r, &d, &len) == LP_OK) k++;
    assert_int_equal(k, nf);
    /* A failed file, then a good one: reopen clears the failure. */
    assert_int_equal(lp_tfrecord_reopen(r, lp_ref_path("reference/corrupt_length_crc.tfrecord")), LP_OK);
    while (lp_tfrecord_next(r, &d, &len) == LP_OK) {}
    assert_true(lp_tfrecord_failed(r));
    assert_int_equal(lp_tfrecord_reopen(r, video), LP_OK);
    assert_false(lp_tfrecord_failed(r));
    k = 0;
    while (lp_tfrecord_next(r, &d, &len) == LP_OK) k++;
    assert_int_equal(k, nv);
    assert_string_equal(lp_tfrecord_path(r), video);
    lp_tfrecord_close(r);
}

static void test_writer_errors(void **state) {
    (void)state;
    lp_tfrecord_writer *w;
    assert_int_equal(lp_tfrecord_writer_open(&w, lp_test_scratch_path("no/such/dir.tfrecord")), LP_ERR_IO);
    assert_null(w);
    assert_non_null(strstr(lp_last_error(), "dir.tfrecord"));
    /* The header/footer helpers frame like the writer does. */
    uint8_t h[12], f[4];
    lp_tfrecord_header(3, h);
    lp_tfrecord_footer("abc", 3, f);
    assert_int_equal(h[0], 3);
    assert_int_equal(h[7], 0);
    uint32_t lc = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    assert_int_equal(lp_crc32c_unmask(lc), lp_crc32c(h, 8));
    uint32_t dc = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
    assert_int_equal(lp_crc32c_unmask(dc), lp_crc32c("abc", 3));
}

static int setup(void **state) {
    (void)state;
    return lp_test_scratch_make("tfrecord");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_data_crc),
        cmocka_unit_test(test_corrupt_length_crc),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_empty_and_short_files),
        cmocka_unit_test(test_absurd_length_rejected),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_plain_file_starting_like_gzip),
        cmocka_unit_test(test_gzip_truncated),
        cmocka_unit_test(test_gzip_reference_same_records),
        cmocka_unit_test(test_reopen_keeps_working),
        cmocka_unit_test(test_writer_errors),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

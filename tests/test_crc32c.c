/* test_crc32c: CRC-32C check values, hardware vs table vs a bitwise reference on random buffers of odd
 * lengths and alignments, chaining, and TensorFlow's masking (checked against a real TFRecord header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/crc32c.h"
#include "core/rng.h"
#include "tests/common/refdata.h"

/* Bit-at-a-time CRC-32C straight from the definition: independent of both implementations. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void test_check_values(void **state) {
    (void)state;
    /* The standard CRC-32C check value (CRC catalogue / RFC 3720 family). */
    const char *s = "123456789";
    assert_int_equal(crc_bitwise(0, (const uint8_t *)s, 9), 0xE3069283u);
    assert_int_equal(lp_crc32c_update_table(0, s, 9), 0xE3069283u);
    assert_int_equal(lp_crc32c(s, 9), 0xE3069283u);
    if (lp_crc32c_have_hw()) assert_int_equal(lp_crc32c_update_hw(0, s, 9), 0xE3069283u);
    else fprintf(stderr, "note: no SSE4.2 on this CPU, hardware path not tested\n");
    /* RFC 3720 B.4 vectors: 32 zero bytes, 32 0xff bytes, bytes 0..31. */
    uint8_t z[32], ff[32], inc[32];
    memset(z, 0, 32);
    memset(ff, 0xff, 32);
    for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
    assert_int_equal(lp_crc32c(z, 32), 0x8A9136AAu);
    assert_int_equal(lp_crc32c(ff, 32), 0x62A8AB43u);
    assert_int_equal(lp_crc32c(inc, 32), 0x46DD794Eu);
    assert_int_equal(lp_crc32c_update_table(0, inc, 32), 0x46DD794Eu);
    /* Empty input leaves the value unchanged. */
    assert_int_equal(lp_crc32c(s, 0), 0);
    assert_int_equal(lp_crc32c_update(0x12345678u, s, 0), 0x12345678u);
}

static void test_random_buffers_agree(void **state) {
    (void)state;
    lp_rng rng;
    lp_rng_init(&rng, 7, LP_RNG_STREAM_TEST);
    static uint8_t buf[4096 + 16];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)lp_rng_u32(&rng);
    int hw = lp_crc32c_have_hw();
    for (int trial = 0; trial < 400; trial++) {
        size_t align = lp_rng_below(&rng, 16);
        size_t len = trial < 64 ? (size_t)trial : lp_rng_below(&rng, 4096);  // every tiny length, then random
        uint32_t seed = trial % 3 ? lp_rng_u32(&rng) : 0;
        const uint8_t *p = buf + align;
        uint32_t want = crc_bitwise(seed, p, len);
        assert_int_equal(lp_crc32c_update_table(seed, p, len), want);
        assert_int_equal(lp_crc32c_update(seed, p, len), want);
        if (hw) assert_int_equal(lp_crc32c_update_hw(seed, p, len), want);
    }
}

static void test_chaining(void **state) {
    (void)state;
    lp_rng rng;
    lp_rng_init(&rng, 8, LP_RNG_STREAM_TEST);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)lp_rng_u32(&rng);
    uint32_t whole = lp_crc32c(buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 37) {
        uint32_t c = lp_crc32c_update(0, buf, cut);
        assert_int_equal(lp_crc32c_update(c, buf + cut, sizeof buf - cut), whole);
        c = lp_crc32c_update_table(0, buf, cut);
        assert_int_equal(lp_crc32c_update_table(c, buf + cut, sizeof buf - cut), whole);
    }
}

static void test_mask(void **state) {
    (void)state;
    lp_rng rng;
    lp_rng_init(&rng, 9, LP_RNG_STREAM_TEST);
    for (int i = 0; i < 1000; i++) {
        uint32_t c = lp_rng_u32(&rng);
        assert_int_equal(lp_crc32c_unmask(lp_crc32c_mask(c)), c);
        assert_int_equal(lp_crc32c_mask(lp_crc32c_unmask(c)), c);
    }
    /* The formula itself: rotate right by 15, add the constant. */
    assert_int_equal(lp_crc32c_mask(0), 0xa282ead8u);
    assert_int_equal(lp_crc32c_mask(1u << 15), 0xa282ead8u + 1u);
    assert_int_equal(lp_crc32c_mask(1), 0xa282ead8u + (1u << 17));
    /* A TFRecord written by TensorFlow: the stored length CRC is mask(crc32c(8 length bytes)). */
    FILE *f = fopen(lp_ref_path("data/yt8m_video_2018/validate0000.tfrecord"), "rb");
    assert_non_null(f);
    uint8_t h[12];
    assert_int_equal(fread(h, 1, 12, f), 12);
    fclose(f);
    uint32_t stored = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    assert_int_equal(lp_crc32c_mask(lp_crc32c(h, 8)), stored);
    assert_true(lp_crc32c(h, 8) != stored);  // i.e. the mask matters
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_random_buffers_agree),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

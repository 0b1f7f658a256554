/* test_core: status messages, rng streams, arena, params. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/arena.h"
#include "core/par.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/status.h"

static void test_status_message(void **state) {
    (void)state;
    lp_status s = lp_errorf(LP_ERR_ARG, "--tau must be in (0,1], got %g", 2.0);
    assert_int_equal(s, LP_ERR_ARG);
    assert_string_equal(lp_last_error(), "--tau must be in (0,1], got 2");
    lp_error_wrap(LP_ERR_ARG, "prune");
    assert_string_equal(lp_last_error(), "prune: --tau must be in (0,1], got 2");
    assert_string_equal(lp_status_str(LP_ERR_FORMAT), "LP_ERR_FORMAT");
}

/* lp_par_run: every part runs exactly once with its own argument, also beyond LP_PAR_MAX parts (those
 * run in the caller). */
typedef struct {
    int runs;
} par_arg;

static void *par_mark(void *arg) {
    par_arg *a = arg;
    a->runs++;
    return NULL;
}

static void test_par_runs_every_part_once(void **state) {
    (void)state;
    const int counts[] = {1, 2, 5, LP_PAR_MAX, LP_PAR_MAX + 4};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        par_arg a[LP_PAR_MAX + 4];
        memset(a, 0, sizeof a);
        lp_par_run(par_mark, a, sizeof a[0], counts[c]);
        for (int i = 0; i < LP_PAR_MAX + 4; i++) assert_int_equal(a[i].runs, i < counts[c] ? 1 : 0);
    }
}

static void test_rng_streams_and_determinism(void **state) {
    (void)state;
    lp_rng a, b, c;
    lp_rng_init(&a, 42, LP_RNG_STREAM_INIT);
    lp_rng_init(&b, 42, LP_RNG_STREAM_INIT);
    lp_rng_init(&c, 42, LP_RNG_STREAM_SHUFFLE);
    int same_stream = 1, diff_stream = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t x = lp_rng_u32(&a), y = lp_rng_u32(&b), z = lp_rng_u32(&c);
        same_stream &= x == y;
        diff_stream += x != z;
    }
    assert_true(same_stream);
    assert_true(diff_stream > 95);
    /* Uniform mean and normal moments over many draws (loose statistical bounds, 5+ sigma). */
    double s = 0, s2 = 0, m = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        m += lp_rng_uniform(&a);
        double g = lp_rng_normal(&a);
        s += g;
        s2 += g * g;
    }
    assert_true(m / n > 0.49 && m / n < 0.51);
    assert_true(s / n > -0.02 && s / n < 0.02);
    assert_true(s2 / n > 0.98 && s2 / n < 1.02);
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[lp_rng_below(&a, 7)]++;
    for (int i = 0; i < 7; i++) assert_true(counts[i] > 9500 && counts[i] < 10500);
}

static void test_arena_alignment_reset_and_growth(void **state) {
    (void)state;
    lp_arena a;
    lp_arena_init(&a, 1024);
    char *p = lp_arena_alloc(&a, 10, 1);
    char *q = lp_arena_alloc(&a, 3000, 1); /* larger than a block: a second block */
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_int_equal((uintptr_t)q % 64, 0);
    memset(q, 7, 3000);
    size_t hw = a.high_water;
    assert_true(hw >= 3010);
    lp_arena_reset(&a);
    assert_int_equal(a.used, 0);
    /* After reset one block holds the whole previous step. */
    char *r = lp_arena_alloc(&a, 10, 1);
    char *s = lp_arena_alloc(&a, 3000, 1);
    assert_non_null(r);
    assert_non_null(s);
    assert_int_equal(lp_arena_blocks(&a), 1);
    float *z = lp_arena_zalloc(&a, 4, sizeof(float));
    assert_true(z[0] == 0 && z[3] == 0);
    assert_null(lp_arena_alloc(&a, SIZE_MAX / 2, 4)); /* overflow is an error, not a crash */
    assert_int_equal(a.used % 64, 0);
    lp_arena_free(&a);
}

static void test_params_contiguous(void **state) {
    (void)state;
    lp_params ps;
    lp_params_init(&ps);
    int d1[2] = {4, 3}, d2[1] = {5};
    assert_int_equal(lp_params_declare(&ps, "w", 2, d1), 0);
    assert_int_equal(lp_params_declare(&ps, "b", 1, d2), 1);
    assert_int_equal(lp_params_declare(&ps, "w", 1, d2), -1); /* duplicate */
    assert_int_equal(lp_params_finalize(&ps), LP_OK);
    assert_int_equal(ps.numel, 17);
    lp_tensor *b = lp_params_find(&ps, "b");
    assert_ptr_equal(b->data, ps.data + 12);
    assert_ptr_equal(b->grad, ps.grad + 12);
    assert_null(lp_params_find(&ps, "nope"));
    lp_params_free(&ps);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_message),
        cmocka_unit_test(test_par_runs_every_part_once),
        cmocka_unit_test(test_rng_streams_and_determinism),
        cmocka_unit_test(test_arena_alignment_reset_and_growth),
        cmocka_unit_test(test_params_contiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

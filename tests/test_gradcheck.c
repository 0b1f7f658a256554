/* test_gradcheck: `lstmprune gradcheck` as a student meets it, and the library checker's per-tensor
 * report on a gradient that is wrong in one tensor only.
 *
 * The checker itself (check/gradcheck.c) is tested by tests/test_ops.c: every op's case passes, and six
 * deliberately broken backward functions and an op missing from the registry fail. Here: the command
 * passes every check at the defaults and at chosen sizes, honours them, fails (exit 1) when the
 * tolerances are below float32 rounding, refuses bad flags (exit 2), and the per-tensor table blames the
 * tensor whose gradient is wrong and no other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "check/gradcheck.h"
#include "core/ops.h"
#include "tests/common/scratch.h"

static char out_buf[1 << 17];

static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "OPENBLAS_NUM_THREADS=1", fmt, ap);
    va_end(ap);
    return rc;
}

/* The report line of tensor `name` ("  w_hh   180  ...  PASS"), copied into line[cap]; 0 when absent. */
static int tensor_line(const char *name, char *line, size_t cap) {
    char key[48];
    snprintf(key, sizeof key, "\n  %s ", name);
    const char *p = strstr(out_buf, key);
    if (!p) return 0;
    p += 1 + strspn(p + 1, " ");
    size_t n = strcspn(p, "\n");
    snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return 1;
}

static void test_all_checks_pass(void **state) {
    (void)state;
    assert_int_equal(run("gradcheck"), 0);
    int expect = lp_gc_n_checks; /* the layer checks, then every op whose name is not a layer check's */
    for (int i = 0; i < lp_gc_n_cases; i++) expect += lp_gc_check_find(lp_gc_cases[i].op) == NULL;
    char want[64];
    snprintf(want, sizeof want, "gradcheck: %d of %d checks passed", expect, expect);
    assert_non_null(strstr(out_buf, want));
    for (int i = 0; i < lp_gc_n_checks; i++) {
        snprintf(want, sizeof want, "\n%s: PASS\n", lp_gc_checks[i].name);
        assert_non_null(strstr(out_buf, want));
    }
    for (int i = 0; i < lp_gc_n_cases; i++) {
        snprintf(want, sizeof want, "\n%s: PASS\n", lp_gc_cases[i].op);
        assert_non_null(strstr(out_buf, want));
    }
    assert_null(strstr(out_buf, "FAIL"));
}

/* The sizes given are the sizes checked: dense at B=2, T=3, F=4, N=5 checks x [2,3,4] and w [5,4] in
 * each of its two configurations (with and without bias), and b [5] once. */
static void test_sizes_are_honoured(void **state) {
    (void)state;
    assert_int_equal(run("gradcheck --op dense --batch 2 --time 3 --features 4 --hidden 5 --seed 9"), 0);
    assert_non_null(strstr(out_buf, "sizes batch 2 time 3 features 4 hidden 5"));
    char line[256];
    size_t n = 0;
    assert_true(tensor_line("x", line, sizeof line));
    assert_int_equal(sscanf(line, "x %zu", &n), 1);
    assert_int_equal(n, 2 * 2 * 3 * 4);
    assert_true(tensor_line("w", line, sizeof line));
    assert_int_equal(sscanf(line, "w %zu", &n), 1);
    assert_int_equal(n, 2 * 5 * 4);
    assert_true(tensor_line("b", line, sizeof line));
    assert_int_equal(sscanf(line, "b %zu", &n), 1);
    assert_int_equal(n, 5);
    /* a sampled check: at most N elements per tensor and configuration */
    assert_int_equal(run("gradcheck --op lstm --hidden 12 --time 9 --max-per-tensor 7"), 0);
    assert_true(tensor_line("w_hh", line, sizeof line));
    assert_int_equal(sscanf(line, "w_hh %zu", &n), 1);
    assert_int_equal(n, 5 * 7);
}

/* Tolerances below float32 rounding fail, exit 1, and name the tensor: the check can fail. */
static void test_tight_tolerance_fails(void **state) {
    (void)state;
    assert_int_equal(run("gradcheck --op lstm --rtol 1e-7 --atol 0"), 1);
    assert_non_null(strstr(out_buf, "\nlstm: FAIL\n"));
    assert_non_null(strstr(out_buf, "gradcheck: 0 of 1 check passed"));
    char line[256];
    assert_true(tensor_line("w_ih", line, sizeof line));
    assert_non_null(strstr(line, "FAIL"));
}

/* The worst ratio |num - ana| / (atol + rtol·max) of tensor `name` in the last report. */
static double worst_ratio(const char *name) {
    char line[256], tname[32];
    size_t n;
    double maxg, rel, ratio;
    assert_true(tensor_line(name, line, sizeof line));
    assert_int_equal(sscanf(line, "%31s %zu %lf %lf %lf", tname, &n, &maxg, &rel, &ratio), 5);
    return ratio;
}

/* --eps, --loss and --atol change what is computed: a larger step has a larger truncation error (too large
 * a step fails the check), a sum
 * in float loses digits to the cancellation in L(x+eps) - L(x-eps), and the threshold stated moves. */
static void test_step_and_loss_flags(void **state) {
    (void)state;
    assert_int_equal(run("gradcheck --op lstm"), 0);
    const double base = worst_ratio("w_hh");
    assert_non_null(strstr(out_buf, "eps 0.01, rtol 0.01, atol 0.001; L summed in double"));
    /* truncation error grows as eps^2: at eps 0.1 some gradients (the biases) fall outside rtol 1e-2 */
    assert_int_equal(run("gradcheck --op lstm --eps 0.1"), 1);
    assert_true(worst_ratio("w_hh") > 2 * base);
    assert_int_equal(run("gradcheck --op lstm --loss float"), 0);
    assert_non_null(strstr(out_buf, "L summed in float"));
    assert_true(worst_ratio("w_hh") > base); /* float sums lose digits */
    assert_int_equal(run("gradcheck --op lstm --atol 0.5 --rtol 0.5"), 0);
    assert_non_null(strstr(out_buf, "rtol 0.5, atol 0.5"));
}

static void test_bad_flags(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"gradcheck --op nope", "--op"},       {"gradcheck --batch 0", "--batch"},
        {"gradcheck --hidden 100000", "--hidden"}, {"gradcheck --loss half", "--loss"},
        {"gradcheck --eps 5", "--eps"},        {"gradcheck --eps 0", "--eps"},
        {"gradcheck --rtol -1", "--rtol"},     {"gradcheck --frobnicate", "--frobnicate"},
        {"gradcheck --op matmul --batch 3", "--batch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run("%s", cases[i][0]);
        if (rc != 2 || !strstr(out_buf, cases[i][1])) fprintf(stderr, "%s -> %d: %s\n", cases[i][0], rc, out_buf);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out_buf, cases[i][1]));
    }
}

/* ---- the per-tensor report on a gradient wrong in one tensor ---------------------------------------- */

/* matmul's backward with dB off by 5%: a·b^T, da right, db 1.05x. */
static void bw_matmul_db_off(lp_node *n) {
    lp_tensor *a = n->in[0], *b = n->in[1], *y = n->out[0];
    const int M = a->dims[0], K = a->dims[1], N = b->dims[0];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float g = y->grad[i * N + j];
            for (int k = 0; k < K; k++) {
                a->grad[i * K + k] += g * b->data[j * K + k];
                b->grad[j * K + k] += 1.05f * g * a->data[i * K + k];
            }
        }
}

static int fwd_matmul_db_off(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    (void)n_in;
    static const lp_op_desc wrong = {"matmul", bw_matmul_db_off}; /* a registry name: only numbers fail it */
    out[0] = lp_op_matmul(tp, in[0], in[1], 0, 1);
    if (out[0] && tp->grad_enabled && tp->n_nodes > 0) tp->nodes[tp->n_nodes - 1].op = &wrong;
    return out[0] ? 1 : 0;
}

static void test_report_blames_the_wrong_tensor(void **state) {
    (void)state;
    float a[12], b[20];
    lp_gc_input in[2] = {lp_gc_input_uniform("a", a, 2, (const int[]){3, 4}, -1, 1, 501),
                         lp_gc_input_uniform("b", b, 2, (const int[]){5, 4}, -1, 1, 502)};
    lp_gc_result r;
    assert_int_equal(lp_gradcheck(fwd_matmul_db_off, NULL, in, 2, NULL, &r), LP_OK);
    assert_false(r.ok);
    assert_int_equal(r.n_tensors, 2);
    assert_string_equal(r.tensor[0].name, "a");
    assert_string_equal(r.tensor[1].name, "b");
    assert_true(r.tensor[0].worst_ratio <= 1.0); /* a's gradient is right */
    assert_true(r.tensor[1].worst_ratio > 1.0);  /* b's is 5% off: above rtol = 1% */
    assert_true(r.tensor[1].worst_rel > 0.04 && r.tensor[1].worst_rel < 0.06);
    assert_int_equal(r.tensor[0].n_checked, 12);
    assert_int_equal(r.tensor[1].n_checked, 20);
    /* the printed report says so, line by line */
    FILE *f = tmpfile();
    assert_non_null(f);
    lp_gc_result_report(f, "matmul-db-off", &r);
    rewind(f);
    size_t len = fread(out_buf, 1, sizeof out_buf - 1, f);
    out_buf[len] = '\0';
    fclose(f);
    char line[256];
    assert_true(tensor_line("a", line, sizeof line));
    assert_non_null(strstr(line, "PASS"));
    assert_true(tensor_line("b", line, sizeof line));
    assert_non_null(strstr(line, "FAIL"));
    assert_non_null(strstr(out_buf, "\nmatmul-db-off: FAIL\n"));
}

/* Merging configurations keeps one row per tensor name, with the worst of each. */
static void test_merge_by_name(void **state) {
    (void)state;
    lp_gc_result r;
    assert_int_equal(lp_gc_check_bilstm(NULL, NULL, &r), LP_OK);
    assert_true(r.ok);
    assert_int_equal(r.n_tensors, 7); /* x and both directions' w_ih, w_hh, b: biases in one config only */
    size_t total = 0;
    for (int k = 0; k < r.n_tensors; k++) total += r.tensor[k].n_checked;
    assert_int_equal(total, r.n_checked);
}

static int setup(void **state) {
    (void)state;
    return lp_test_scratch_make("gradcheck");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_checks_pass),
        cmocka_unit_test(test_sizes_are_honoured),
        cmocka_unit_test(test_tight_tolerance_fails),
        cmocka_unit_test(test_step_and_loss_flags),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_report_blames_the_wrong_tensor),
        cmocka_unit_test(test_merge_by_name),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

/* test_examples: the teaching programs of examples/ and the tutorial that quotes them.
 *
 *   lstm_step      every printed number of the forward pass and of BPTT equals an independent numpy
 *                  computation from the printed weights (tests/examples_check.py, float64, |diff| < 1e-5
 *                  against %.6f printing), and the library's gradients match the hand computation
 *   char_lstm      the loss starts near ln V (a uniform guess) and ends below 0.8 times the first, and
 *                  the sampled line is mostly words of the text
 *   prune_by_hand  eigenvalues, keep count, scores, removed units and the shrunk weights recomputed with
 *                  numpy from the printed numbers; removal exact; the fine-tuned small model learns
 *   TUTORIAL.md    every block between "<!-- output: examples/NAME -->" and "<!-- end output -->" is a
 *                  run of whole lines of that example's actual output, and every number with three or
 *                  more decimals in the prose is one of those blocks' numbers
 *
 * The examples are $LP_EXAMPLES/<name> (the Makefile sets it; default build/examples), run from the
 * repository root (char_lstm reads examples/data/gettysburg.txt from there) with one OpenBLAS thread.
 * OpenBLAS picks its GEMM kernels for the CPU and different kernels round differently (training
 * amplifies it), so the examples run with OPENBLAS_CORETYPE=Haswell where the CPU has AVX2 and FMA, as
 * tests/test_golden.c and scripts/demo.sh do; the tutorial's blocks were printed that way. Without
 * those instructions only lstm_step's blocks (double-precision hand arithmetic) are compared verbatim. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/common/scratch.h"

enum { EX_LSTM_STEP, EX_CHAR_LSTM, EX_PRUNE, N_EX };
static const char *const ex_name[N_EX] = {"lstm_step", "char_lstm", "prune_by_hand"};
#define OUT_CAP (1 << 17)
static char ex_out[N_EX][OUT_CAP];
static int ex_rc[N_EX];
static int pinned; /* the examples ran on OpenBLAS's Haswell kernels (the tutorial's) */



static const char *python(void) {
    const char *p = getenv("PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/* Run every example once; the tests read ex_out. */
static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("examples") != 0) return -1;
    FILE *f = fopen("examples/data/gettysburg.txt", "r");
    if (!f) {
        fprintf(stderr, "test_examples: run from the repository root (examples/data/gettysburg.txt not found)\n");
        return -1;
    }
    fclose(f);
    const char *dir = getenv("LP_EXAMPLES");
    if (!dir || !*dir) dir = "build/examples";
    pinned = lp_test_cpu_has("avx2") && lp_test_cpu_has("fma");
    for (int e = 0; e < N_EX; e++) {
        ex_rc[e] = lp_test_sh(ex_out[e], OUT_CAP, NULL, "%s OPENBLAS_NUM_THREADS=1 '%s/%s'",
                           pinned ? "OPENBLAS_CORETYPE=Haswell" : "", dir, ex_name[e]);
        FILE *o = fopen(lp_test_scratch_path(ex_name[e]), "w");
        if (!o) return -1;
        fputs(ex_out[e], o);
        fclose(o);
    }
    return 0;
}

/* The number after the first occurrence of `key` in s (strtod); NAN when absent. */
static double number_after(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

/* tests/examples_check.py on an example's output: exit 0 and at least `min_numbers` compared. */
static void numpy_check(int e, int min_numbers) {
    static char out[1 << 16];
    int rc = lp_test_sh(out, sizeof out, NULL, "'%s' tests/examples_check.py %s '%s'", python(), ex_name[e],
                        lp_test_scratch_path(ex_name[e]));
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    const double n = number_after(out, "compared ");
    fprintf(stderr, "%s: numpy %s", ex_name[e], strstr(out, "compared "));
    assert_true(n >= min_numbers);
}

static void test_lstm_step(void **state) {
    (void)state;
    if (ex_rc[EX_LSTM_STEP] != 0) fprintf(stderr, "%s\n", ex_out[EX_LSTM_STEP]);
    assert_int_equal(ex_rc[EX_LSTM_STEP], 0);
    // 3 steps x (4 pre-activations + 4 gates + c, tanh c, h) x 3 units forward, BPTT's 13 lines per step,
    // the summed weight gradients, L, and the 3 central differences shown with their BPTT values: 294
    numpy_check(EX_LSTM_STEP, 294);
    // the library (float32) against the hand computation (double): float rounding only, ~1e-7 here
    const double d = number_after(ex_out[EX_LSTM_STEP], "library matches the hand computation: max |difference| ");
    assert_true(d < 1e-5);
}

static void test_char_lstm(void **state) {
    (void)state;
    const char *out = ex_out[EX_CHAR_LSTM];
    if (ex_rc[EX_CHAR_LSTM] != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(ex_rc[EX_CHAR_LSTM], 0);
    const double ln_v = number_after(out, "(ln V = ");
    const double first = number_after(out, "step    1  loss ");
    const char *last_line = strstr(out, "step  300  loss ");
    assert_non_null(last_line);
    const double last = number_after(last_line, "loss ");
    fprintf(stderr, "char_lstm: ln V %.4f, first loss %.4f, last %.4f\n", ln_v, first, last);
    // an untrained model's softmax is near uniform: its loss is within 0.2 of ln V (36 characters: 3.58)
    assert_true(fabs(first - ln_v) < 0.2);
    assert_true(last < 0.8 * first);
    // the sample: one line of 100 characters after the prime, most of its words taken from the text
    const char *s = strstr(out, "sample (");
    assert_non_null(s);
    s = strstr(s, "): ");
    assert_non_null(s);
    s += 3;
    const size_t len = strcspn(s, "\n");
    assert_true(len >= 100);
    FILE *f = fopen("examples/data/gettysburg.txt", "r");
    assert_non_null(f);
    static char text[1 << 14];
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    int words = 0, known = 0;
    char word[64];
    for (size_t k = 0; k < len;) {
        size_t n = 0;
        while (k < len && s[k] != ' ' && s[k] != ',' && s[k] != '.') {
            if (n < sizeof word - 1) word[n++] = s[k];
            k++;
        }
        word[n] = '\0';
        while (k < len && (s[k] == ' ' || s[k] == ',' || s[k] == '.')) k++;
        if (n < 3) continue;
        words++;
        known += strstr(text, word) != NULL;
    }
    fprintf(stderr, "char_lstm: %d of %d sampled words of 3+ letters occur in the text\n", known, words);
    assert_true(words >= 8 && 2 * known >= words); // random characters would make almost none
}

static void test_prune_by_hand(void **state) {
    (void)state;
    const char *out = ex_out[EX_PRUNE];
    if (ex_rc[EX_PRUNE] != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(ex_rc[EX_PRUNE], 0);
    numpy_check(EX_PRUNE, 150);
    // fine-tuned with the kept units alone, the small model answers the held-out questions (two sums:
    // the spectrum's two large eigenvalues) as well as the unpruned one, within 5 points
    const char *ft = strstr(out, "== 5. fine-tuning");
    assert_non_null(ft);
    const char *trained = strstr(out, "held-out 256 sequences:");
    assert_non_null(trained);
    const double big = number_after(trained, "accuracy "), small = number_after(ft, "accuracy ");
    fprintf(stderr, "prune_by_hand: held-out accuracy %.4f unpruned, %.4f pruned and fine-tuned\n", big, small);
    assert_true(big > 0.85 && small > big - 0.05);
}

/* ---- the tutorial ---- */

typedef struct {
    int example;   /* index into ex_name */
    char *text;    /* the block's lines, each ending in '\n' */
} block;

static char *tutorial;
static block blocks[64];
static int n_blocks;
static char prose[1 << 17]; /* the tutorial without its output blocks */

/* Split docs/TUTORIAL.md into output blocks and prose (once). */
static void read_tutorial(void) {
    if (tutorial) return;
    FILE *f = fopen("docs/TUTORIAL.md", "r");
    assert_non_null(f);
    static char buf[1 << 18];
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    tutorial = buf;
    const char *open_tag = "<!-- output: examples/", *end_tag = "<!-- end output -->";
    size_t np = 0;
    const char *p = buf;
    for (;;) {
        const char *o = strstr(p, open_tag);
        const size_t keep = o ? (size_t)(o - p) : strlen(p);
        assert_true(np + keep < sizeof prose);
        memcpy(prose + np, p, keep);
        np += keep;
        if (!o) break;
        const char *name = o + strlen(open_tag);
        int e = -1;
        for (int k = 0; k < N_EX; k++)
            if (strncmp(name, ex_name[k], strlen(ex_name[k])) == 0 && strncmp(name + strlen(ex_name[k]), " -->", 4) == 0)
                e = k;
        if (e < 0) fail_msg("TUTORIAL.md: an output block names no example: %.40s", o);
        const char *fence = strchr(name, '\n');
        assert_non_null(fence);
        fence++;
        if (strncmp(fence, "```", 3) != 0) fail_msg("TUTORIAL.md: block of %s does not open with ```", ex_name[e]);
        const char *body = strchr(fence, '\n') + 1, *close = strstr(body, "\n```\n");
        assert_non_null(close);
        const char *after = close + 5;
        if (strncmp(after, end_tag, strlen(end_tag)) != 0)
            fail_msg("TUTORIAL.md: block of %s not followed by %s", ex_name[e], end_tag);
        assert_true(n_blocks < (int)(sizeof blocks / sizeof blocks[0]));
        const size_t n = (size_t)(close - body) + 1; /* with the last line's '\n' */
        blocks[n_blocks].example = e;
        blocks[n_blocks].text = malloc(n + 1);
        assert_non_null(blocks[n_blocks].text);
        memcpy(blocks[n_blocks].text, body, n);
        blocks[n_blocks].text[n] = '\0';
        n_blocks++;
        p = after + strlen(end_tag);
    }
    prose[np] = '\0';
}

/* 1 if `needle` occurs in `hay` starting at a line start (it ends with '\n', so at a line end too). */
static int has_lines(const char *hay, const char *needle) {
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        if (p == hay || p[-1] == '\n') return 1;
    return 0;
}

static void test_tutorial_blocks(void **state) {
    (void)state;
    read_tutorial();
    int per[N_EX] = {0}, compared = 0, failures = 0;
    for (int b = 0; b < n_blocks; b++) {
        const int e = blocks[b].example;
        per[e]++;
        if (!pinned && e != EX_LSTM_STEP) continue;
        compared++;
        if (!has_lines(ex_out[e], blocks[b].text)) {
            failures++;
            fprintf(stderr, "TUTORIAL.md block %d (examples/%s) is not in its output:\n%s", b + 1, ex_name[e],
                    blocks[b].text);
        }
    }
    fprintf(stderr, "tutorial: %d output blocks (%d lstm_step, %d char_lstm, %d prune_by_hand), %d compared\n",
            n_blocks, per[0], per[1], per[2], compared);
    if (!pinned) fprintf(stderr, "tutorial: char_lstm and prune_by_hand blocks skipped (no AVX2+FMA)\n");
    for (int e = 0; e < N_EX; e++) assert_true(per[e] >= 1);
    assert_int_equal(failures, 0);
}

/* Every number with 3+ decimals in the prose is a number of some output block (bounded by non-digits). */
static void test_tutorial_numbers(void **state) {
    (void)state;
    read_tutorial();
    int numbers = 0, missing = 0;
    for (const char *p = prose; *p; p++) {
        if (!(*p >= '0' && *p <= '9') || (p > prose && ((p[-1] >= '0' && p[-1] <= '9') || p[-1] == '.')))
            continue;
        const char *q = p;
        while (*q >= '0' && *q <= '9') q++;
        if (*q != '.') continue;
        const char *d = q + 1;
        while (*d >= '0' && *d <= '9') d++;
        if (d - q - 1 < 3) continue;
        char tok[64];
        const size_t n = (size_t)(d - p) < sizeof tok - 1 ? (size_t)(d - p) : sizeof tok - 1;
        memcpy(tok, p, n);
        tok[n] = '\0';
        numbers++;
        int found = 0;
        for (int b = 0; b < n_blocks && !found; b++)
            for (const char *s = strstr(blocks[b].text, tok); s && !found; s = strstr(s + 1, tok)) {
                const char *t = s + n;
                found = (s == blocks[b].text || !(s[-1] >= '0' && s[-1] <= '9')) && !(*t >= '0' && *t <= '9');
            }
        if (!found) {
            missing++;
            fprintf(stderr, "TUTORIAL.md: the number %s in the prose is in no output block\n", tok);
        }
        p = d - 1;
    }
    fprintf(stderr, "tutorial: %d numbers with 3+ decimals in the prose\n", numbers);
    assert_true(numbers >= 10);
    assert_int_equal(missing, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lstm_step),
        cmocka_unit_test(test_char_lstm),
        cmocka_unit_test(test_prune_by_hand),
        cmocka_unit_test(test_tutorial_blocks),
        cmocka_unit_test(test_tutorial_numbers),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

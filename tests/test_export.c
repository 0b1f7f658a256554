/* test_export: `lstmprune export` verified by independent consumers — Debian's python3-onnx checker
 * (check_model with full_check) accepts every exported model, and ONNX Runtime (the npm package
 * onnxruntime-node, scripts/ort/run.js) runs it on the same inputs as `lstmprune predict` and `lm-eval`:
 *
 *   - video models (the paper model, its pruned versions — both directions of the BiLSTM the same size,
 *     one bidirectional LSTM node, and different sizes, two nodes — a model with 2 unidirectional layers
 *     and the LSTM + mixture-of-experts model): ONNX Runtime's probabilities within 1e-5 of predict's
 *     (its CSV has 6 decimals) and of the model's own forward pass for every class, and the same top-20
 *     classes (24 classes, so the top 20 is a real choice);
 *   - language models (untied, tied, pruned to different layer sizes): run window after window with the
 *     carried state fed back, as lm-eval runs them; probabilities within 1e-5 of the model's own forward
 *     pass, the same top-20 words, and the validation NLL lm-eval prints.
 *
 * ONNX Runtime comes from `make deps` (scripts/ort/node_modules); python3-onnx is Debian's ($PYTHON,
 * default /usr/bin/python3). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/tape.h"
#include "data/batcher.h"
#include "lm/lm.h"
#include "lm/ptb.h"
#include "model/model.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

enum { CLASSES = 24, TOP = 20 };

static char out_buf[1 << 16];
static char repo[4096]; /* the repository root (tests run from it): scripts/ort/run.js */

static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "OPENBLAS_NUM_THREADS=1", fmt, ap);
    va_end(ap);
    if (rc != 0) fprintf(stderr, "%s\n", out_buf);
    return rc;
}

/* The exit code of a shell command run in the scratch directory (lp_test_sh), its output printed when it
 * failed. */
static int shown(int rc) {
    if (rc != 0) fprintf(stderr, "-> %d: %s\n", rc, out_buf);
    return rc;
}
#define SH(...) shown(lp_test_sh(out_buf, sizeof out_buf, lp_test_scratch_dir(), __VA_ARGS__))

static int setup(void **state) {
    (void)state;
    if (!getcwd(repo, sizeof repo)) return -1;
    if (access("scripts/ort/node_modules/onnxruntime-node", F_OK) != 0) {
        fprintf(stderr, "test_export: ONNX Runtime is not installed in scripts/ort (run: make deps)\n");
        return -1;
    }
    if (lp_test_scratch_make("export") != 0) return -1;
    if (run("synth --out data --videos 240 --classes %d --frames-min 3 --frames-max 12 --seed 5 --quiet", CLASSES))
        return -1;
    if (run("train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes %d --hidden 8 "
            "--batch 16 --epochs 2 --out paper --quiet", CLASSES))
        return -1;
    if (lp_mkdirs(lp_test_scratch_path("ptb")) != LP_OK) return -1;
    lp_test_markov_write_ptb(lp_test_scratch_path("ptb"), 300, 11);
    return 0;
}

/* Export CKPT to NAME.onnx and have python3-onnx's full checker accept it. */
/* Debian's python3, which has python3-onnx ($PYTHON, as the Makefile sets it). */
static const char *python(void) {
    const char *p = getenv("PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static void export_and_check(const char *ckpt, const char *name) {
    assert_int_equal(run("export --checkpoint %s --out %s.onnx", ckpt, name), 0);
    assert_int_equal(SH("%s -c 'import onnx, sys; m = onnx.load(sys.argv[1]); "
                        "onnx.checker.check_model(m, full_check=True); print(\"checked\", m.opset_import[0].version)' "
                        "%s.onnx",
                        python(), name),
                     0);
    assert_non_null(strstr(out_buf, "checked 17"));
}

/* Run NAME.onnx in ONNX Runtime on DIR/inputs.txt (extra: run.js options). */
static void ort_run(const char *name, const char *dir, const char *extra) {
    assert_int_equal(SH("node '%s/scripts/ort/run.js' %s.onnx %s %s", repo, name, dir, extra), 0);
}

static float *read_floats(const char *path, size_t n) {
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(path), &buf, &len), LP_OK);
    assert_int_equal(len, n * sizeof(float));
    return (float *)buf;
}

static void write_input(FILE *list, const char *dir, const char *name, const char *type, const char *dims,
                        const void *data, size_t bytes) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.in", dir, name);
    assert_int_equal(lp_file_write_all(lp_test_scratch_path(path), data, bytes), LP_OK);
    fprintf(list, "%s %s %s %s.in\n", name, type, dims, name);
}

/* The top-k indices of p[n] (largest first), as a bitmask over at most 64 entries or in idx. */
static void top_k(const float *p, int n, int k, int *idx) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int q = 0; q < j; q++) taken |= idx[q] == i;
            if (!taken && (best < 0 || p[i] > p[best])) best = i;
        }
        idx[j] = best;
    }
}

static int same_set(const int *a, const int *b, int k) {
    for (int i = 0; i < k; i++) {
        int found = 0;
        for (int j = 0; j < k; j++) found |= a[i] == b[j];
        if (!found) return 0;
    }
    return 1;
}

/* ---- video models ------------------------------------------------------------------------------------ */

/* The validation videos as ONNX Runtime takes them (dequantised, not normalised: the graph does it), and
 * as the model's forward takes them (normalised by the batcher), in one batch, in file order. */
typedef struct {
    int B, T, F;
    float *raw, *norm;
    int *lengths;
    char ids[256][32];
} video_set;

static void read_videos(video_set *v, int l2) {
    lp_batcher_config c;
    lp_batcher_config_default(&c);
    const char *pats[] = {lp_test_scratch_path("data/validate*.tfrecord")};
    c.patterns = pats, c.n_patterns = 1;
    c.yt8m.classes = CLASSES;
    c.batch_size = 256, c.shuffle = 0, c.prefetch = 0, c.l2_normalize = l2;
    lp_batcher *b;
    assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
    const lp_batch *batch;
    assert_int_equal(lp_batcher_next(b, &batch), LP_OK);
    size_t n = (size_t)batch->B * batch->T * batch->D;
    float *x = lp_malloc(n, sizeof *x);
    memcpy(x, batch->x, n * sizeof *x);
    if (l2) {
        v->norm = x;
    } else {
        v->raw = x;
        v->B = batch->B, v->T = batch->T, v->F = batch->D;
        v->lengths = lp_malloc((size_t)v->B, sizeof(int));
        memcpy(v->lengths, batch->lengths, (size_t)v->B * sizeof(int));
        for (int i = 0; i < v->B; i++) snprintf(v->ids[i], sizeof v->ids[i], "%s", batch->ids[i]);
    }
    assert_int_equal(lp_batcher_next(b, &batch), LP_ERR_EOF); /* one batch held them all */
    lp_batcher_free(b);
}

static void write_video_inputs(const video_set *v) {
    assert_int_equal(lp_mkdirs(lp_test_scratch_path("vin")), LP_OK);
    FILE *list = fopen(lp_test_scratch_path("vin/inputs.txt"), "w");
    assert_non_null(list);
    char dims[64];
    snprintf(dims, sizeof dims, "%d,%d,%d", v->B, v->T, v->F);
    write_input(list, "vin", "frames", "float32", dims, v->raw, (size_t)v->B * v->T * v->F * sizeof(float));
    snprintf(dims, sizeof dims, "%d", v->B);
    write_input(list, "vin", "lengths", "int32", dims, v->lengths, (size_t)v->B * sizeof(int));
    fclose(list);
}

/* The model's own probabilities [B, C] on the normalised frames. */
static float *own_probs(const char *ckpt, const video_set *v) {
    lp_model m;
    assert_int_equal(lp_model_load(&m, lp_test_scratch_path(ckpt), NULL), LP_OK);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 24), LP_OK);
    lp_tape_set_grad(&tp, 0);
    lp_tensor *x = lp_tape_view(&tp, v->norm, NULL, 3, (const int[]){v->B, v->T, v->F});
    lp_model_out o;
    assert_int_equal(lp_model_forward(&m, &tp, x, v->lengths, NULL, NULL, &o), LP_OK);
    float *p = lp_malloc((size_t)v->B * CLASSES, sizeof *p);
    lp_model_probs(&o, p);
    lp_tape_free(&tp);
    lp_model_free(&m);
    return p;
}

/* ONNX Runtime against predict's CSV and the model's forward: every class within 1e-5, same top 20. */
static void compare_video(const char *what, const char *ckpt, const char *name, const video_set *v) {
    ort_run(name, "vin", "");
    float *ort = read_floats("vin/probabilities.bin", (size_t)v->B * CLASSES);
    float *own = own_probs(ckpt, v);
    double worst_own = 0, worst_csv = 0;
    for (size_t i = 0; i < (size_t)v->B * CLASSES; i++) worst_own = fmax(worst_own, fabs(ort[i] - own[i]));
    assert_int_equal(run("predict --checkpoint %s --data 'data/validate*.tfrecord' --out %s.csv --quiet", ckpt, name), 0);
    char csv[64];
    snprintf(csv, sizeof csv, "%s.csv", name);
    char *text;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(csv), &text, &len), LP_OK);
    int rows = 0;
    for (char *line = strtok(strchr(text, '\n') + 1, "\n"); line; line = strtok(NULL, "\n"), rows++) {
        char *comma = strchr(line, ',');
        assert_non_null(comma);
        *comma = '\0';
        int b = 0;
        while (b < v->B && strcmp(v->ids[b], line) != 0) b++;
        assert_true(b < v->B); /* predict saw the same videos */
        int labels[TOP], k = 0, off;
        float score;
        const char *s = comma + 1;
        while (k < TOP && sscanf(s, "%d %f%n", &labels[k], &score, &off) == 2) {
            worst_csv = fmax(worst_csv, fabs(ort[(size_t)b * CLASSES + labels[k]] - score));
            s += off, k++;
        }
        assert_int_equal(k, TOP);
        int mine[TOP];
        top_k(ort + (size_t)b * CLASSES, CLASSES, TOP, mine);
        assert_true(same_set(mine, labels, TOP));
    }
    assert_int_equal(rows, v->B);
    fprintf(stderr, "%-26s %d videos: max |ORT - forward| %.2e, max |ORT - predict CSV| %.2e\n", what, v->B,
            worst_own, worst_csv);
    assert_true(worst_own <= 1e-5);
    assert_true(worst_csv <= 1e-5 + 5e-7); /* the CSV rounds to 6 decimals */
    lp_free(text);
    lp_free(ort);
    lp_free(own);
}

static void test_video_models(void **state) {
    (void)state;
    /* a pruned model with equal directions (uniform rates: one bidirectional node) and one with different
     * sizes (two nodes), a deeper model and the LSTM + mixture of experts */
    assert_int_equal(run("prune --checkpoint paper/best.ckpt --rate-rule uniform --target-rate 0.5 --out uni --quiet"), 0);
    assert_int_equal(run("prune --checkpoint paper/best.ckpt --units 3,1,5 --out given --quiet"), 0);
    assert_int_equal(run("train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes %d "
                         "--hidden 8 --layers 2 --batch 16 --epochs 1 --out deep --quiet", CLASSES), 0);
    assert_int_equal(run("train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes %d "
                         "--model lstm --hidden 8 --layers 2 --experts 2 --batch 16 --epochs 1 --out moe --quiet",
                         CLASSES), 0);
    static const char *const cases[][3] = {
        {"paper (4+4, 8)", "paper/best.ckpt", "paper"},
        {"pruned uniform (2+2, 4)", "uni/pruned.ckpt", "uni"},
        {"pruned given (3+1, 5)", "given/pruned.ckpt", "given"},
        {"2 layers", "deep/best.ckpt", "deep"},
        {"lstm + moe", "moe/best.ckpt", "moe"},
    };
    video_set v;
    memset(&v, 0, sizeof v);
    read_videos(&v, 0);
    read_videos(&v, 1);
    write_video_inputs(&v);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        export_and_check(cases[k][1], cases[k][2]);
        compare_video(cases[k][0], cases[k][1], cases[k][2], &v);
    }
    /* the two BiLSTM layouts really were taken: one LSTM node for 2+2, two for 3+1 */
    assert_int_equal(SH("%s -c 'import onnx, sys; print(*[sum(n.op_type == \"LSTM\" for n in "
                        "onnx.load(f).graph.node) for f in sys.argv[1:]])' uni.onnx given.onnx deep.onnx", python()),
                     0);
    assert_non_null(strstr(out_buf, "2 3 3"));
    lp_free(v.raw);
    lp_free(v.norm);
    lp_free(v.lengths);
}

/* ---- language models --------------------------------------------------------------------------------- */

enum { LM_B = 4, LM_BPTT = 10 };

/* The validation text as lm-eval reads it (LM_B streams, windows of LM_BPTT): inputs [B, total] for ONNX
 * Runtime (zero initial state per layer), the targets, and the window lengths. */
typedef struct {
    int64_t *x;
    int32_t *x32, *y;
    int total, windows, len[256];
    size_t targets;
} lm_set;

static void lm_inputs(lm_set *s, const lp_lm *m) {
    lp_ptb_corpus c;
    assert_int_equal(lp_ptb_corpus_load(&c, lp_test_scratch_path("ptb"), 0), LP_OK);
    lp_ptb_batcher bt;
    assert_int_equal(lp_ptb_batcher_init(&bt, c.ids[LP_PTB_VALID], c.n[LP_PTB_VALID], LM_B, LM_BPTT, 0), LP_OK);
    assert_true(bt.windows <= 256);
    int32_t xw[LM_B * LM_BPTT], yw[LM_B * LM_BPTT];
    s->windows = bt.windows, s->total = 0;
    for (int w = 0; w < bt.windows; w++) s->total += (s->len[w] = lp_ptb_batcher_window(&bt, w, xw, yw));
    s->x = lp_malloc((size_t)LM_B * s->total, sizeof *s->x);
    s->x32 = lp_malloc((size_t)LM_B * s->total, sizeof *s->x32);
    s->y = lp_malloc((size_t)LM_B * s->total, sizeof *s->y);
    for (int w = 0, t0 = 0; w < bt.windows; t0 += s->len[w++]) {
        lp_ptb_batcher_window(&bt, w, xw, yw);
        for (int b = 0; b < LM_B; b++)
            for (int t = 0; t < s->len[w]; t++) {
                size_t at = (size_t)b * s->total + t0 + t;
                s->x32[at] = xw[b * s->len[w] + t], s->x[at] = s->x32[at], s->y[at] = yw[b * s->len[w] + t];
            }
    }
    s->targets = (size_t)LM_B * s->total;
    assert_int_equal(lp_mkdirs(lp_test_scratch_path("lmin")), LP_OK);
    FILE *list = fopen(lp_test_scratch_path("lmin/inputs.txt"), "w");
    assert_non_null(list);
    char dims[64], name[32];
    snprintf(dims, sizeof dims, "%d,%d", LM_B, s->total);
    write_input(list, "lmin", "ids", "int64", dims, s->x, (size_t)LM_B * s->total * sizeof *s->x);
    for (int l = 0; l < m->cfg.layers; l++) {
        size_t n = (size_t)LM_B * m->cfg.hidden[l];
        float *zero = lp_calloc(n, sizeof *zero);
        snprintf(dims, sizeof dims, "1,%d,%d", LM_B, m->cfg.hidden[l]);
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s0_%d", k ? "c" : "h", l + 1);
            write_input(list, "lmin", name, "float32", dims, zero, n * sizeof *zero);
        }
        lp_free(zero);
    }
    fclose(list);
    lp_ptb_corpus_free(&c);
}

/* The model's own probabilities [B, total, V], window after window with the state carried. */
static float *lm_own_probs(lp_lm *m, const lm_set *s) {
    const int V = m->cfg.vocab;
    float *p = lp_malloc((size_t)LM_B * s->total * V, sizeof *p);
    lp_lm_state st;
    assert_int_equal(lp_lm_state_init(&st, m, LM_B), LP_OK);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 22), LP_OK);
    lp_tape_set_grad(&tp, 0);
    int32_t xw[LM_B * LM_BPTT];
    for (int w = 0, t0 = 0; w < s->windows; t0 += s->len[w++]) {
        const int T = s->len[w];
        for (int b = 0; b < LM_B; b++) memcpy(xw + b * T, s->x32 + (size_t)b * s->total + t0, (size_t)T * sizeof *xw);
        lp_tape_reset(&tp);
        lp_lm_out o;
        assert_int_equal(lp_lm_forward(m, &tp, xw, NULL, LM_B, T, &st, NULL, &o), LP_OK);
        for (int b = 0; b < LM_B; b++)
            for (int t = 0; t < T; t++) { /* softmax in double */
                const float *z = o.logits->data + ((size_t)b * T + t) * V;
                float *q = p + ((size_t)b * s->total + t0 + t) * V;
                double mx = z[0], sum = 0;
                for (int v = 1; v < V; v++) mx = fmax(mx, z[v]);
                for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
                for (int v = 0; v < V; v++) q[v] = (float)(exp(z[v] - mx) / sum);
            }
    }
    lp_tape_free(&tp);
    lp_lm_state_free(&st);
    return p;
}

static void compare_lm(const char *what, const char *ckpt, const char *name) {
    export_and_check(ckpt, name);
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, lp_test_scratch_path(ckpt), NULL), LP_OK);
    lm_set s;
    lm_inputs(&s, &m);
    char opts[1024];
    int n = snprintf(opts, sizeof opts, "--windows ");
    for (int w = 0; w < s.windows; w++) n += snprintf(opts + n, sizeof opts - n, "%s%d", w ? "," : "", s.len[w]);
    for (int l = 1; l <= m.cfg.layers; l++) n += snprintf(opts + n, sizeof opts - n, " --feed h_%d=h0_%d --feed c_%d=c0_%d", l, l, l, l);
    ort_run(name, "lmin", opts);
    const int V = m.cfg.vocab;
    const size_t N = (size_t)LM_B * s.total;
    float *ort = read_floats("lmin/probabilities.bin", N * V);
    float *own = lm_own_probs(&m, &s);
    double worst = 0, nll = 0;
    int topset_ok = 1;
    for (size_t r = 0; r < N; r++) {
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs(ort[r * V + v] - own[r * V + v]));
        nll -= log(ort[r * V + s.y[r]]);
        int a[TOP], b[TOP];
        top_k(ort + r * V, V, TOP, a);
        top_k(own + r * V, V, TOP, b);
        topset_ok &= same_set(a, b, TOP);
    }
    nll /= (double)s.targets;
    assert_int_equal(run("lm-eval --checkpoint %s --data ptb --split valid --batch %d --bptt %d", ckpt, LM_B, LM_BPTT), 0);
    const char *at = strstr(out_buf, "(nll ");
    assert_non_null(at);
    double printed = atof(at + 5);
    fprintf(stderr, "%-26s %zu words, V %d: max |ORT - forward| %.2e, NLL %.6f (lm-eval %.5f)\n", what, N, V,
            worst, nll, printed);
    assert_true(worst <= 1e-5);
    assert_true(topset_ok);
    assert_true(fabs(nll - printed) <= 1e-5 + 5e-6); /* lm-eval prints 5 decimals */
    lp_free(ort);
    lp_free(own);
    lp_free(s.x);
    lp_free(s.x32);
    lp_free(s.y);
    lp_lm_free(&m);
}

static void test_language_models(void **state) {
    (void)state;
    assert_int_equal(run("lm-train --data ptb --units 16 --epochs 1 --out lm --quiet"), 0);
    assert_int_equal(run("lm-train --data ptb --units 16 --tied --epochs 1 --out lmtied --quiet"), 0);
    assert_int_equal(run("lm-prune --checkpoint lm/best.ckpt --units 11,7 --finetune-epochs 0 --out lmp --quiet"), 0);
    compare_lm("lm (16, 16)", "lm/best.ckpt", "lm");
    compare_lm("lm tied (16, 16)", "lmtied/best.ckpt", "lmtied");
    compare_lm("lm pruned (11, 7)", "lmp/pruned.ckpt", "lmp");
}

/* ---- errors ------------------------------------------------------------------------------------------- */

static void test_errors(void **state) {
    (void)state;
    assert_int_equal(run("export --out x.onnx"), 2);
    assert_non_null(strstr(out_buf, "--checkpoint"));
    assert_int_equal(run("export --checkpoint paper/best.ckpt"), 2);
    assert_non_null(strstr(out_buf, "--out"));
    assert_int_equal(SH("printf 'not a checkpoint' > bad.ckpt"), 0);
    /* a bad checkpoint: exit 1 naming it, and no model written */
    int rc = lp_test_run(out_buf, sizeof out_buf, "", "export --checkpoint bad.ckpt --out bad.onnx");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out_buf, "bad.ckpt"));
    assert_int_equal(access(lp_test_scratch_path("bad.onnx"), F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_models),
        cmocka_unit_test(test_language_models),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

/* test_trace: `lstmprune trace` ($LP_BIN) on tiny trained models — the paper model (BiLSTM → LSTM →
 * dense), the LSTM + mixture-of-experts model and a word-level LM, each made by the binary in the setup.
 *
 * What a wrong trace would get wrong, and what catches it:
 *   - padded or missing steps: gates.csv has exactly steps × units rows per group, steps = the video's
 *     frames (mask padding), max_frames (repeat padding) or the sentence's words + <eos>;
 *   - the cell: every row satisfies i, f, o ∈ (0,1), g, h ∈ [-1,1], h = o·tanh(c) and the recurrence
 *     c_t = f·c_prev + i·g with c_prev the previous step in the group's reading order (t+1 for the BiLSTM's
 *     backward direction): a backward direction traced forwards, or gates in another order, fails it;
 *   - what the layers read (normalisation, the BiLSTM halves side by side, the embedding): the last
 *     layer's traced h at the last step, through the dense head of the checkpoint, gives the
 *     probabilities `predict` prints; the LM's traced h equal lp_lm_forward's on the same words, and the
 *     next-word probabilities its softmax;
 *   - the plan: the pruned flags are exactly the units `lstmprune prune` with the same flags removes (its
 *     report.json), and the criterion's order puts the pruned units first;
 *   - heatmaps: one PNG per group, with the PNG signature, where gnuplot is installed;
 *   - bad flags, a video id or sentence that is not there: exit 2 with a message naming it, nothing written. */
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
#include "lm/lm.h"
#include "lm/ptb.h"
#include "model/model.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

static char out_buf[1 << 16];

/* Run "$LP_BIN args" in the scratch directory (one OpenBLAS thread), output in out_buf; the exit code. */
static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "OPENBLAS_NUM_THREADS=1", fmt, ap);
    va_end(ap);
    return rc;
}

static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("trace") != 0) return -1;
    char ptb[700];
    snprintf(ptb, sizeof ptb, "%s/ptb", lp_test_scratch_dir());
    if (lp_mkdirs(ptb) != LP_OK) return -1;
    lp_test_markov_write_ptb(ptb, 500, 11);
    const char *cmds[] = {
        "synth --out data --videos 120 --classes 5 --frames-min 4 --frames-max 10 --seed 2 --quiet",
        "train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 5 --hidden 8 --batch 16 "
        "--epochs 1 --out run --quiet",
        "train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 5 --model lstm --hidden 8 "
        "--layers 2 --batch 16 --epochs 1 --out moe --quiet",
        "lm-train --data ptb --units 8 --epochs 1 --batch 4 --bptt 10 --out lmrun --quiet",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (run("%s", cmds[i]) != 0) {
            fprintf(stderr, "setup: %s\n%s\n", cmds[i], out_buf);
            return -1;
        }
    return 0;
}

/* ---- a CSV file of the scratch directory, as rows of fields (no quoted fields in these files) ---- */

#define MAX_FIELDS 12
typedef struct {
    char *text;
    int n;                       /* data rows (the header not counted) */
    char *(*row)[MAX_FIELDS];    /* [n] fields; row i's field j */
    int nf;                      /* fields of the header */
} csv;

static csv csv_read(const char *name) {
    csv c = {0};
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(name), &c.text, &len), LP_OK);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += c.text[i] == '\n';
    c.row = lp_calloc((size_t)lines + 1, sizeof *c.row);
    assert_non_null(c.row);
    char *p = c.text;
    for (int l = 0; *p; l++) {
        char *end = strchr(p, '\n');
        assert_non_null(end); /* every line ends */
        *end = '\0';
        char *fields[MAX_FIELDS] = {0};
        int nf = 0;
        for (char *f = p;; nf++) {
            assert_true(nf < MAX_FIELDS);
            fields[nf] = f;
            char *comma = strchr(f, ',');
            if (!comma) break;
            *comma = '\0';
            f = comma + 1;
        }
        nf++;
        if (l == 0) c.nf = nf;
        else {
            assert_int_equal(nf, c.nf); /* every row has the header's fields */
            memcpy(c.row[c.n++], fields, sizeof fields);
        }
        p = end + 1;
    }
    return c;
}

static void csv_free(csv *c) {
    lp_free(c->text);
    lp_free(c->row);
}

/* ---- gates.csv ---- */

/* The rows of `group` in gates.csv: exactly T·H of them, step by step, unit by unit, each a valid cell
 * state (see the top of the file). h_out [T·H] (may be NULL) receives h. */
static void check_gates(const csv *g, const char *group, int T, int H, int reverse, double *h_out) {
    double *c = lp_calloc((size_t)T * H, sizeof *c);
    assert_non_null(c);
    int r0 = -1, n = 0;
    for (int r = 0; r < g->n; r++)
        if (!strcmp(g->row[r][0], group)) {
            if (r0 < 0) r0 = r;
            assert_int_equal(r, r0 + n); /* one block per group */
            n++;
        }
    if (n != T * H) fprintf(stderr, "%s: %d rows, want %d steps x %d units\n", group, n, T, H);
    assert_int_equal(n, T * H);
    for (int k = 0; k < n; k++) {
        char **f = g->row[r0 + k];
        assert_int_equal(atoi(f[1]), k / H);
        assert_int_equal(atoi(f[2]), k % H);
        const double i = atof(f[3]), fg = atof(f[4]), gg = atof(f[5]), o = atof(f[6]), cc = atof(f[7]), h = atof(f[8]);
        assert_true(i > 0 && i < 1);
        assert_true(fg > 0 && fg < 1);
        assert_true(o > 0 && o < 1);
        assert_true(gg >= -1 && gg <= 1);
        assert_true(h >= -1 && h <= 1);
        /* the layer's tanh is within 4e-7 of tanh (layers/lstm.h), times o <= 1, plus float rounding */
        assert_true(fabs(h - o * tanh(cc)) <= 1e-6);
        c[k] = cc;
        if (h_out) h_out[k] = h;
    }
    /* the recurrence, in the group's reading order; the values are the floats themselves (%.9g), so the
     * only difference is float32 rounding of f·c and i·g and their sum: a few 6e-8 relative */
    for (int k = 0; k < n; k++) {
        char **f = g->row[r0 + k];
        const int t = k / H, j = k % H, tp = reverse ? t + 1 : t - 1;
        const double prev = tp >= 0 && tp < T ? c[tp * H + j] : 0;
        const double want = atof(f[4]) * prev + atof(f[3]) * atof(f[5]);
        if (fabs(c[k] - want) > 1e-6 * (1 + fabs(want)))
            fprintf(stderr, "%s t %d unit %d: c %.9g, f*c_prev + i*g %.9g\n", group, t, j, c[k], want);
        assert_true(fabs(c[k] - want) <= 1e-6 * (1 + fabs(want)));
    }
    lp_free(c);
}

/* ---- the plan against prune's report.json ---- */

/* The kept list of `group` in report.json (text) into kept (returns how many). */
static int report_kept(const char *json, const char *group, int *kept, int cap) {
    char key[64];
    snprintf(key, sizeof key, "\"name\": \"%s\"", group);
    const char *p = strstr(json, key);
    assert_non_null(p);
    p = strstr(p, "\"kept\": [");
    assert_non_null(p);
    p += strlen("\"kept\": [");
    int n = 0;
    while (*p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        assert_true(end != p && n < cap);
        kept[n++] = (int)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return n;
}

/* units.csv and groups.csv against the plan of `prune` in directory pdir: the same units pruned in every
 * group, the criterion's order putting them first; returns the units pruned over all groups. */
static int check_plan(const char *pdir, const char *const *groups, int n_groups) {
    char path[256], *json;
    size_t len;
    snprintf(path, sizeof path, "%s/report.json", pdir);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(path), &json, &len), LP_OK);
    csv u = csv_read("tr/units.csv"), gr = csv_read("tr/groups.csv");
    assert_string_equal(u.row[0][0], groups[0]);
    int total = 0;
    for (int g = 0; g < n_groups; g++) {
        int kept[256], k = report_kept(json, groups[g], kept, 256);
        int H = 0, pruned = 0;
        assert_string_equal(gr.row[g][0], groups[g]);
        for (int r = 0; r < u.n; r++) {
            if (strcmp(u.row[r][0], groups[g]) != 0) continue;
            const int j = atoi(u.row[r][1]), p = atoi(u.row[r][6]);
            int in = 0;
            for (int i = 0; i < k; i++) in |= kept[i] == j;
            assert_int_equal(p, !in);
            pruned += p;
            H++;
        }
        assert_int_equal(atoi(gr.row[g][1]), H);
        assert_int_equal(atoi(gr.row[g][3]), k);
        assert_int_equal(pruned, H - k);
        for (int r = 0; r < u.n; r++) /* the criterion prunes the smallest scores: orders 1 .. H-k */
            if (!strcmp(u.row[r][0], groups[g])) {
                assert_int_equal(atoi(u.row[r][6]), atoi(u.row[r][5]) <= H - k);
                assert_true(atof(u.row[r][3]) >= 0); /* std */
                assert_true(isfinite(atof(u.row[r][2])));
            }
        total += pruned;
    }
    csv_free(&u);
    csv_free(&gr);
    free(json);
    return total;
}

/* ---- heatmaps ---- */

/* have: whether gnuplot was on the PATH of the run that wrote tr/. */
static void check_pngs_as(const char *const *groups, int n_groups, int have) {
    assert_int_equal(access(lp_test_scratch_path("tr/trace.gp"), F_OK), 0); /* the script, always */
    for (int g = 0; g < n_groups; g++) {
        char name[128];
        snprintf(name, sizeof name, "tr/%s.png", groups[g]);
        FILE *f = fopen(lp_test_scratch_path(name), "rb");
        if (!have) {
            assert_null(f);
            continue;
        }
        assert_non_null(f);
        unsigned char sig[8];
        assert_int_equal(fread(sig, 1, 8, f), 8);
        fclose(f);
        assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    }
    if (!have) assert_non_null(strstr(out_buf, "gnuplot is not installed"));
}

static void check_pngs(const char *const *groups, int n_groups) {
    check_pngs_as(groups, n_groups, system("command -v gnuplot >/dev/null 2>&1") == 0);
}

/* ---- videos ---- */

/* Record `rec` (1-based) of data/validate0000.tfrecord: its id and frames, from `inspect`. */
static void video_of(int rec, char *id, size_t n, int *frames) {
    assert_int_equal(run("inspect data/validate0000.tfrecord"), 0);
    char key[32];
    snprintf(key, sizeof key, "record %d @", rec);
    const char *p = strstr(out_buf, key);
    assert_non_null(p);
    char buf[64];
    assert_int_equal(sscanf(strstr(p, " id ") + 4, "%63s", buf), 1);
    snprintf(id, n, "%s", buf);
    assert_int_equal(sscanf(strstr(p, " frames ") + 8, "%d", frames), 1);
}

/* The probabilities `predict` wrote for video id (label -> probability, -1 where not listed). */
static void predicted(const char *file, const char *id, double *p, int classes) {
    char *text;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(file), &text, &len), LP_OK);
    for (int c = 0; c < classes; c++) p[c] = -1;
    char key[80];
    snprintf(key, sizeof key, "\n%s,", id);
    const char *q = strstr(text, key);
    assert_non_null(q);
    q += strlen(key);
    int label, used;
    double v;
    while (sscanf(q, "%d %lf%n", &label, &v, &used) == 2) {
        assert_true(label >= 0 && label < classes);
        p[label] = v;
        q += used;
    }
    free(text);
}

/* output.csv against predict's probabilities (all 5 classes listed): predict prints 6 decimals (5e-7)
 * from a batch of other videos (its GEMMs round differently from one video's: ~1e-7). */
static void check_output(const char *id, const char *pred) {
    double p[5];
    predicted(pred, id, p, 5);
    csv o = csv_read("tr/output.csv");
    assert_int_equal(o.n, 5);
    for (int r = 0; r < o.n; r++) {
        const int c = atoi(o.row[r][1]);
        assert_int_equal(atoi(o.row[r][0]), r + 1);
        assert_true(p[c] >= 0);
        assert_true(fabs(atof(o.row[r][2]) - p[c]) <= 2e-6);
    }
    csv_free(&o);
}

/* The dense head of checkpoint `ckpt` on the traced last state h_last [H]: sigmoid(out.w·h + out.b),
 * against predict's probabilities (tolerance as check_output, plus the %.9g of h: nothing). */
static void check_head(const char *ckpt, const double *h_last, int H, const char *id, const char *pred) {
    lp_model m;
    assert_int_equal(lp_model_load(&m, lp_test_scratch_path(ckpt), NULL), LP_OK);
    assert_int_equal(m.kind, LP_MODEL_PAPER);
    assert_int_equal(m.paper.out_w->dims[1], H);
    double p[5];
    predicted(pred, id, p, 5);
    for (int c = 0; c < m.classes; c++) {
        double z = m.paper.out_b->data[c];
        for (int j = 0; j < H; j++) z += (double)m.paper.out_w->data[(size_t)c * H + j] * h_last[j];
        const double prob = 1 / (1 + exp(-z));
        if (fabs(prob - p[c]) > 2e-6) fprintf(stderr, "class %d: head of the traced h %.7f, predict %.6f\n", c, prob, p[c]);
        assert_true(fabs(prob - p[c]) <= 2e-6);
    }
    lp_model_free(&m);
}

/* The largest |h - forward h| the command printed. */
static double printed_dh(void) {
    const char *p = strstr(out_buf, "largest |h - the model's forward h| ");
    assert_non_null(p);
    return atof(p + strlen("largest |h - the model's forward h| "));
}

static void test_paper_video(void **state) {
    (void)state;
    char id[64];
    int frames;
    video_of(2, id, sizeof id, &frames);
    assert_int_equal(run("predict --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --out pred.csv --quiet"), 0);
    if (run("trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video %s --target-rate 0.5 --out tr",
            id) != 0)
        fprintf(stderr, "%s\n", out_buf);
    assert_non_null(strstr(out_buf, id));
    assert_true(printed_dh() <= 1e-6);
    /* hidden 8: BiLSTM 4 + 4, LSTM 8; mask padding: exactly the video's frames */
    csv g = csv_read("tr/gates.csv");
    assert_int_equal(g.nf, 9);
    assert_int_equal(g.n, frames * (4 + 4 + 8));
    double *h = lp_malloc((size_t)frames * 8, sizeof *h);
    assert_non_null(h);
    check_gates(&g, "bilstm.fw", frames, 4, 0, NULL);
    check_gates(&g, "bilstm.bw", frames, 4, 1, NULL);
    check_gates(&g, "lstm2", frames, 8, 0, h);
    check_head("run/best.ckpt", h + (size_t)(frames - 1) * 8, 8, id, "pred.csv");
    check_output(id, "pred.csv");
    lp_free(h);
    csv_free(&g);

    static const char *const groups[] = {"bilstm.fw", "bilstm.bw", "lstm2"};
    assert_int_equal(run("prune --checkpoint run/best.ckpt --target-rate 0.5 --out p --quiet"), 0);
    assert_true(check_plan("p", groups, 3) > 0);
    assert_int_equal(run("trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video %s --target-rate 0.5 --out tr --force", id), 0);
    check_pngs(groups, 3);
    /* without gnuplot: the CSV files and the script, no PNG, and not an error */
    assert_int_equal(lp_test_run(out_buf, sizeof out_buf, "PATH=/nonexistent OPENBLAS_NUM_THREADS=1",
                                 "trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video %s --out tr --force", id), 0);
    check_pngs_as(groups, 3, 0);
    assert_int_equal(access(lp_test_scratch_path("tr/gates.csv"), F_OK), 0);
}

/* Repeat padding: the model reads all max_frames steps (the last frame repeated), so the trace has them,
 * and predict with the same flags agrees. Another plan too: the uniform rule with the l2 criterion. */
static void test_paper_repeat_padding(void **state) {
    (void)state;
    char id[64];
    int frames;
    video_of(3, id, sizeof id, &frames);
    assert_true(frames < 12);
    const char *data = "--data 'data/validate*.tfrecord' --padding repeat --max-frames 12";
    assert_int_equal(run("predict --checkpoint run/best.ckpt %s --out pred12.csv --quiet", data), 0);
    assert_int_equal(run("trace --checkpoint run/best.ckpt %s --video %s --rate-rule uniform --target-rate 0.25 "
                         "--criterion l2 --out tr --force", data, id), 0);
    csv g = csv_read("tr/gates.csv");
    assert_int_equal(g.n, 12 * (4 + 4 + 8));
    double *h = lp_malloc(12 * 8, sizeof *h);
    assert_non_null(h);
    check_gates(&g, "bilstm.fw", 12, 4, 0, NULL);
    check_gates(&g, "bilstm.bw", 12, 4, 1, NULL);
    check_gates(&g, "lstm2", 12, 8, 0, h);
    check_head("run/best.ckpt", h + 11 * 8, 8, id, "pred12.csv");
    lp_free(h);
    csv_free(&g);
    static const char *const groups[] = {"bilstm.fw", "bilstm.bw", "lstm2"};
    assert_int_equal(run("prune --checkpoint run/best.ckpt --padding repeat --max-frames 12 --rate-rule uniform "
                         "--target-rate 0.25 --criterion l2 --out p12 --quiet"), 0);
    assert_int_equal(check_plan("p12", groups, 3), 1 + 1 + 2); /* uniform: round(0.25 H) per group */
}

/* The LSTM + mixture-of-experts model: two stacked layers, per-group rates given by name. */
static void test_lstm_moe_video(void **state) {
    (void)state;
    char id[64];
    int frames;
    video_of(1, id, sizeof id, &frames);
    assert_int_equal(run("predict --checkpoint moe/best.ckpt --data 'data/validate*.tfrecord' --out predm.csv --quiet"), 0);
    assert_int_equal(run("trace --checkpoint moe/best.ckpt --data 'data/validate*.tfrecord' --video %s --rates lstm1=0.5 "
                         "--out tr --force", id), 0);
    assert_true(printed_dh() <= 1e-6);
    csv g = csv_read("tr/gates.csv");
    assert_int_equal(g.n, frames * 16);
    check_gates(&g, "lstm1", frames, 8, 0, NULL);
    check_gates(&g, "lstm2", frames, 8, 0, NULL);
    csv_free(&g);
    check_output(id, "predm.csv");
    static const char *const groups[] = {"lstm1", "lstm2"};
    assert_int_equal(run("prune --checkpoint moe/best.ckpt --rates lstm1=0.5 --out pm --quiet"), 0);
    assert_int_equal(check_plan("pm", groups, 2), 4); /* half of lstm1, none of lstm2 */
    check_pngs(groups, 2);
}

/* ---- the language model ---- */

/* Line `n` (1-based) of the scratch file `name` into line[4096], split into words. */
static int line_words(const char *name, int n, char *line, char **words, int cap) {
    FILE *f = fopen(lp_test_scratch_path(name), "r");
    assert_non_null(f);
    for (int i = 0; i < n; i++) assert_non_null(fgets(line, 4096, f));
    fclose(f);
    int k = 0;
    for (char *w = strtok(line, " \n"); w; w = strtok(NULL, " \n")) {
        assert_true(k < cap);
        words[k++] = w;
    }
    return k;
}

static void test_lm_sentence(void **state) {
    (void)state;
    if (run("trace --checkpoint lmrun/best.ckpt --sentence 3 --split valid --target-rate 0.3 --out tr --force") != 0)
        fprintf(stderr, "%s\n", out_buf);
    assert_non_null(strstr(out_buf, "sentence 3 of the valid text"));
    assert_true(printed_dh() <= 1e-6);
    char line3[4096], line4[4096], *words[64], *next[64];
    const int nw = line_words("ptb/ptb.valid.txt", 3, line3, words, 64), T = nw + 1;
    /* steps.csv: the sentence's words and its <eos>, each followed by the next word of the text */
    csv st = csv_read("tr/steps.csv");
    assert_int_equal(st.n, T);
    for (int t = 0; t < nw; t++) assert_string_equal(st.row[t][1], words[t]);
    assert_string_equal(st.row[nw][1], "<eos>");
    for (int t = 0; t + 1 < nw; t++) assert_string_equal(st.row[t][2], words[t + 1]);
    assert_string_equal(st.row[nw - 1][2], "<eos>");
    line_words("ptb/ptb.valid.txt", 4, line4, next, 64);
    assert_string_equal(st.row[nw][2], next[0]);

    csv g = csv_read("tr/gates.csv");
    assert_int_equal(g.n, T * (8 + 8));
    double *h[2];
    for (int l = 0; l < 2; l++) {
        h[l] = lp_malloc((size_t)T * 8, sizeof *h[l]);
        assert_non_null(h[l]);
        check_gates(&g, l ? "lstm2" : "lstm1", T, 8, 0, h[l]);
    }
    csv_free(&g);

    /* the model's own forward pass on the same words from a zero state */
    lp_ptb_vocab v;
    assert_int_equal(lp_ptb_vocab_build(&v, lp_test_scratch_path("ptb/ptb.train.txt"), 0), LP_OK);
    int32_t ids[65];
    for (int t = 0; t < nw; t++) ids[t] = lp_ptb_vocab_id(&v, words[t]);
    ids[nw] = v.eos;
    const int after = lp_ptb_vocab_id(&v, next[0]);
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, lp_test_scratch_path("lmrun/best.ckpt"), NULL), LP_OK);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tape_set_grad(&tp, 0);
    lp_lm_out out;
    assert_int_equal(lp_lm_forward(&m, &tp, ids, NULL, 1, T, NULL, NULL, &out), LP_OK);
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < T * 8; i++) assert_true(fabs(out.group_h[l]->data[i] - h[l][i]) <= 1e-6);
    const int V = m.cfg.vocab;
    /* the next-word probabilities against a plain softmax of those logits in double: the trace takes the
     * loss's kernel, whose exp is within 2e-7 relative (lm/lm_ops.h), so 1e-6 relative */
    for (int t = 0; t < T; t++) {
        const float *z = out.logits->data + (size_t)t * V;
        double zmax = z[0], sum = 0;
        for (int k = 1; k < V; k++) zmax = z[k] > zmax ? z[k] : zmax;
        for (int k = 0; k < V; k++) sum += exp(z[k] - zmax);
        const int nx = t + 1 < T ? ids[t + 1] : after;
        const double p = exp(z[nx] - zmax) / sum;
        assert_true(fabs(atof(st.row[t][3]) - p) <= 1e-6 * p + 1e-9);
    }
    csv_free(&st);
    lp_tape_free(&tp);
    lp_lm_free(&m);
    lp_ptb_vocab_free(&v);
    for (int l = 0; l < 2; l++) lp_free(h[l]);

    static const char *const groups[] = {"lstm1", "lstm2"};
    assert_int_equal(run("prune --checkpoint lmrun/best.ckpt --target-rate 0.3 --out lp --quiet"), 0);
    assert_true(check_plan("lp", groups, 2) > 0);
    assert_int_equal(run("trace --checkpoint lmrun/best.ckpt --sentence 3 --target-rate 0.3 --out tr --force"), 0);
    check_pngs(groups, 2);
}

/* ---- usage errors ---- */

static void test_bad_flags(void **state) {
    (void)state;
    char id[64];
    int frames;
    video_of(1, id, sizeof id, &frames);
    static const char *const cases[][2] = {
        {"trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video NO_SUCH_ID --out bad",
         "video 'NO_SUCH_ID' is not in data/validate*.tfrecord"},
        {"trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --out bad", "needs --video ID and --data GLOB"},
        {"trace --checkpoint run/best.ckpt --video X --out bad", "needs --video ID and --data GLOB"},
        {"trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --sentence 2 --out bad", "is a video model"},
        {"trace --checkpoint lmrun/best.ckpt --video X --out bad", "is a language model"},
        {"trace --checkpoint lmrun/best.ckpt --out bad", "needs --sentence N"},
        {"trace --checkpoint lmrun/best.ckpt --sentence 100000 --out bad", "sentence 100000: the valid text has 60 sentences"},
        {"trace --checkpoint lmrun/best.ckpt --sentence 0 --out bad", "--sentence: '0'"},
        {"trace --checkpoint lmrun/best.ckpt --sentence 2 --split dev --out bad", "--split: 'dev'"},
        {"trace --checkpoint lmrun/best.ckpt --sentence 2 --padding repeat --out bad", "--padding"},
        {"trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video X --criterion median --out bad", "median"},
        {"trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video X --rates nosuch=0.5 --out bad", "nosuch"},
        {"trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video X --max-frames 0 --out bad", "--max-frames"},
        {"trace --checkpoint run/best.ckpt --data 'data/validate*.tfrecord' --video X --compensate mean --out bad", "--compensate"},
        {"trace --checkpoint run/best.ckpt --video X --out bad --bogus 1", "--bogus"},
        {"trace --checkpoint run/best.ckpt --video X", "--out DIR are required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run("%s", cases[i][0]);
        if (rc != 2 || !strstr(out_buf, cases[i][1]))
            fprintf(stderr, "case %zu: %s\n  exit %d, output: %s\n", i, cases[i][0], rc, out_buf);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out_buf, cases[i][1]));
        assert_int_not_equal(access(lp_test_scratch_path("bad"), F_OK), 0); /* nothing written */
    }
    /* --help prints every flag, exit 0 */
    assert_int_equal(run("trace --help"), 0);
    assert_non_null(strstr(out_buf, "--sentence N"));
    assert_non_null(strstr(out_buf, "--target-rate R"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paper_video),
        cmocka_unit_test(test_paper_repeat_padding),
        cmocka_unit_test(test_lstm_moe_video),
        cmocka_unit_test(test_lm_sentence),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

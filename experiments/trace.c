/* trace: one sequence through a trained model, step by step and unit by unit (contract in trace.h). */
#include "experiments/trace.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/ops.h"
#include "core/rundir.h"
#include "core/tape.h"
#include "data/batcher.h"
#include "experiments/writer.h"
#include "layers/lstm.h"
#include "lm/lm.h"
#include "lm/lm_ops.h"
#include "model/runcfg.h"
#include "prune/criteria.h"
#include "tasks/lm_task.h"
#include "tasks/video_task.h"

void lp_trace_input_free(lp_trace_input *in) {
    lp_free(in->x);
    lp_free(in->labels);
    lp_free(in->ids);
    lp_free(in->next);
    memset(in, 0, sizeof *in);
}

/* ---- the input ----------------------------------------------------------------------------------- */

/* The batch's one video as the model reads it: lp_batch_model_lengths says how many steps (its length
 * under mask padding, every step of the fixed max_frames under repeat padding). */
static lp_status take_video(const lp_batch *bt, const char *id, lp_trace_input *in) {
    const int *len = lp_batch_model_lengths(bt);
    in->T = len ? len[0] : bt->T;
    in->F = bt->D;
    in->frames = bt->lengths[0];
    in->classes = bt->classes;
    in->x = lp_malloc((size_t)in->T * (size_t)in->F, sizeof(float));
    in->labels = lp_malloc((size_t)in->classes, sizeof(float));
    if (!in->x || !in->labels) return LP_ERR_NOMEM;
    memcpy(in->x, bt->x, (size_t)in->T * (size_t)in->F * sizeof(float)); /* B = 1: row 0 is the batch */
    memcpy(in->labels, bt->labels, (size_t)in->classes * sizeof(float));
    snprintf(in->what, sizeof in->what, "video %.300s", id);
    return LP_OK;
}

lp_status lp_trace_video_input(lp_task *t, char **pats, int n, const char *id, lp_trace_input *in) {
    memset(in, 0, sizeof *in);
    if (!lp_task_is_video(t)) return lp_errorf(LP_ERR_ARG, "trace: a video needs a video model");
    if (n < 1) return lp_errorf(LP_ERR_ARG, "trace: no data to find video '%s' in", id);
    lp_batcher_config bc;
    LP_TRY(lp_runcfg_batcher(lp_video_task_cfg(t), pats, n, 0, &bc));
    bc.batch_size = 1; /* one video per batch: T is its own length (or max_frames under repeat padding) */
    bc.epochs = 1;
    lp_batcher *b = NULL;
    LP_TRY(lp_batcher_new(&b, &bc));
    const lp_batch *bt;
    long long seen = 0;
    lp_status s;
    while ((s = lp_batcher_next(b, &bt)) == LP_OK) {
        seen++;
        if (strcmp(bt->ids[0], id) != 0) continue;
        s = take_video(bt, id, in);
        break;
    }
    if (s == LP_ERR_EOF)
        s = lp_errorf(LP_ERR_ARG, "video '%s' is not in %s%s (%lld videos read)", id, pats[0], n > 1 ? " ..." : "", seen);
    lp_batcher_free(b);
    if (s != LP_OK) lp_trace_input_free(in);
    return s;
}

lp_status lp_trace_lm_input(lp_task *t, int split, long sentence, lp_trace_input *in) {
    memset(in, 0, sizeof *in);
    if (lp_task_is_video(t)) return lp_errorf(LP_ERR_ARG, "trace: a sentence needs a language model");
    if (split < 0 || split >= LP_PTB_SPLITS) return lp_errorf(LP_ERR_ARG, "trace: no text split %d", split);
    const lp_lm_task *l = lp_lm_task_of(t);
    const int32_t *ids = l->corpus->ids[split];
    const size_t n = l->corpus->n[split];
    const int eos = l->corpus->vocab.eos;
    /* sentence N is the tokens after the (N-1)-th <eos>, up to and including the N-th */
    size_t start = 0, end = 0;
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != eos) continue;
        if (++count == sentence) {
            end = i + 1;
            break;
        }
        start = i + 1;
    }
    if (sentence < 1 || end == 0)
        return lp_errorf(LP_ERR_ARG, "sentence %ld: the %s text has %ld sentences (lines), numbered from 1", sentence,
                         lp_ptb_split_name(split), count);
    const lp_lm *m = &l->lm;
    const int E = m->cfg.embed;
    in->T = (int)(end - start);
    in->F = E;
    in->x = lp_malloc((size_t)in->T * (size_t)E, sizeof(float));
    in->ids = lp_malloc((size_t)in->T, sizeof(int32_t));
    in->next = lp_malloc((size_t)in->T, sizeof(int32_t));
    if (!in->x || !in->ids || !in->next) {
        lp_trace_input_free(in);
        return LP_ERR_NOMEM;
    }
    for (int s = 0; s < in->T; s++) {
        const size_t i = start + (size_t)s;
        in->ids[s] = ids[i];
        in->next[s] = i + 1 < n ? ids[i + 1] : -1;
        memcpy(in->x + (size_t)s * E, m->embed_w->data + (size_t)ids[i] * E, (size_t)E * sizeof(float)); /* the embedding op */
    }
    snprintf(in->what, sizeof in->what, "sentence %ld of the %s text", sentence, lp_ptb_split_name(split));
    return LP_OK;
}

/* ---- the trace ------------------------------------------------------------------------------------ */

void lp_trace_free(lp_trace *tr) {
    for (int g = 0; g < tr->n_groups; g++) {
        lp_free(tr->g[g].gates);
        lp_free(tr->g[g].c);
        lp_free(tr->g[g].h);
    }
    lp_free(tr->out);
    memset(tr, 0, sizeof *tr);
}

/* Group g's input [T, F_g]: the first layer's input, or its producers' outputs side by side (each at its
 * consumer columns). *x is in->x or a new buffer (*own = 1). */
static lp_status group_input(const lp_task *t, const lp_trace *tr, const lp_trace_input *in, int g, float **x, int *own) {
    const lp_unit_group *gr = &t->groups[g];
    char reader[LP_PARAM_NAME_MAX + 8];
    snprintf(reader, sizeof reader, "%s.w_ih", gr->name);
    const int T = in->T, F = gr->input_dim;
    int cols = 0, n_prod = 0;
    for (int p = 0; p < t->n_groups; p++)
        if (!strcmp(t->groups[p].consumer_name, reader)) {
            if (p >= g) return lp_errorf(LP_ERR_ARG, "trace: group %s reads group %s, which comes after it", gr->name, t->groups[p].name);
            cols += t->groups[p].units;
            n_prod++;
        }
    *own = 0;
    if (n_prod == 0) { /* the first layer */
        if (F != in->F) return lp_errorf(LP_ERR_ARG, "trace: group %s reads %d features, the input has %d", gr->name, F, in->F);
        *x = in->x;
        return LP_OK;
    }
    if (cols != F) return lp_errorf(LP_ERR_ARG, "trace: group %s reads %d columns, its producers give %d", gr->name, F, cols);
    float *buf = lp_malloc((size_t)T * (size_t)F, sizeof *buf);
    if (!buf) return LP_ERR_NOMEM;
    for (int p = 0; p < g; p++) {
        const lp_unit_group *pr = &t->groups[p];
        if (strcmp(pr->consumer_name, reader) != 0) continue;
        if (pr->consumer_col0 < 0 || pr->consumer_col0 + pr->units > F) {
            lp_free(buf);
            return lp_errorf(LP_ERR_ARG, "trace: group %s feeds columns outside %s", pr->name, reader);
        }
        for (int s = 0; s < T; s++)
            memcpy(buf + (size_t)s * F + pr->consumer_col0, tr->g[p].h + (size_t)s * pr->units, (size_t)pr->units * sizeof *buf);
    }
    *x = buf;
    *own = 1;
    return LP_OK;
}

/* One group over the sequence with the layer's own kernels (one sequence: B = 1, every step valid). */
static lp_status trace_group(const lp_task *t, lp_trace *tr, const lp_trace_input *in, int g) {
    const lp_unit_group *gr = &t->groups[g];
    lp_trace_group *tg = &tr->g[g];
    const int T = in->T, H = gr->units, F = gr->input_dim;
    snprintf(tg->name, sizeof tg->name, "%s", gr->name);
    tg->units = H;
    tg->reverse = gr->reverse;
    tg->gates = lp_malloc((size_t)T * 4 * (size_t)H, sizeof(float));
    tg->c = lp_malloc((size_t)T * (size_t)H, sizeof(float));
    tg->h = lp_malloc((size_t)T * (size_t)H, sizeof(float));
    float *state = lp_calloc(2 * (size_t)H, sizeof(float)); /* h and c, from zero */
    lp_status s = tg->gates && tg->c && tg->h && state ? LP_OK : LP_ERR_NOMEM;
    float *x = NULL;
    int own = 0;
    if (s == LP_OK) s = group_input(t, tr, in, g, &x, &own);
    if (s == LP_OK)
        lp_lstm_forward_seq(tg->h, state, state + H, tg->gates, tg->c, x, gr->w_ih->data, gr->w_hh->data,
                            gr->b ? gr->b->data : NULL, NULL, gr->reverse, 1, T, F, H);
    if (own) lp_free(x);
    lp_free(state);
    return s;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* a NaN counts */
    }
    return m;
}

/* The model's own forward pass on the same sequence: its hidden states against the traced ones, and its
 * output. */
static lp_status model_forward(lp_task *t, const lp_trace_input *in, lp_trace *tr) {
    lp_tape tp;
    LP_TRY(lp_tape_init(&tp, (size_t)16 << 20));
    lp_tape_set_grad(&tp, 0);
    const lp_tensor *gh[LP_MAX_GROUPS] = {0};
    lp_status s;
    if (lp_task_is_video(t)) {
        lp_model *m = lp_video_task_model(t);
        lp_tensor *x = lp_tape_view(&tp, in->x, NULL, 3, (int[]){1, in->T, in->F});
        lp_model_out out;
        s = x ? lp_model_forward(m, &tp, x, NULL, NULL, NULL, &out) : LP_ERR_NOMEM;
        if (s == LP_OK) {
            for (int g = 0; g < t->n_groups; g++) gh[g] = out.group_h[g];
            tr->n_out = m->classes;
            tr->out = lp_malloc((size_t)m->classes, sizeof(float));
            if (tr->out) lp_model_probs(&out, tr->out);
            else s = LP_ERR_NOMEM;
        }
    } else {
        lp_lm *m = &lp_lm_task_of(t)->lm;
        lp_lm_out out;
        s = lp_lm_forward(m, &tp, in->ids, NULL, 1, in->T, NULL, NULL, &out);
        if (s == LP_OK) {
            for (int g = 0; g < t->n_groups; g++) gh[g] = out.group_h[g];
            tr->n_out = in->T;
            tr->out = lp_malloc((size_t)in->T, sizeof(float));
            if (!tr->out) s = LP_ERR_NOMEM;
        }
        /* p(next word) = exp(−nll) of the loss's own per-row kernel; only the text's last word has no next */
        const size_t rows = in->next[in->T - 1] < 0 ? (size_t)in->T - 1 : (size_t)in->T;
        double *nll = s == LP_OK ? lp_malloc((size_t)in->T, sizeof *nll) : NULL;
        if (s == LP_OK && !nll) s = LP_ERR_NOMEM;
        if (s == LP_OK) {
            lp_op_softmax_xent_rows(out.logits->data, in->next, rows, m->cfg.vocab, nll);
            for (int st = 0; st < in->T; st++) tr->out[st] = (size_t)st < rows ? (float)exp(-nll[st]) : NAN;
        }
        lp_free(nll);
    }
    for (int g = 0; s == LP_OK && g < t->n_groups; g++) {
        double d = max_abs_diff(tr->g[g].h, gh[g]->data, (size_t)in->T * (size_t)tr->g[g].units);
        if (!(d <= tr->max_dh)) tr->max_dh = d;
    }
    lp_tape_free(&tp);
    return s;
}

lp_status lp_trace_run(lp_task *t, const lp_trace_input *in, lp_trace *tr) {
    memset(tr, 0, sizeof *tr);
    if (in->T < 1) return lp_errorf(LP_ERR_ARG, "trace: %s has no step", in->what);
    tr->T = in->T;
    lp_status s = LP_OK;
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) {
        tr->n_groups = g + 1;
        s = trace_group(t, tr, in, g);
    }
    if (s == LP_OK) s = model_forward(t, in, tr);
    if (s != LP_OK) lp_trace_free(tr);
    return s;
}

/* ---- the files -------------------------------------------------------------------------------------- */

static lp_status write_gates(const char *dir, const lp_trace *tr) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "gates.csv", LP_WRITER_CSV));
    lp_writer_cells(&w, "group\tt\tunit\ti\tf\tg\to\tc\th");
    lp_writer_row(&w);
    for (int g = 0; g < tr->n_groups; g++) {
        const lp_trace_group *tg = &tr->g[g];
        const int H = tg->units;
        for (int s = 0; s < tr->T; s++) {
            const float *a = tg->gates + (size_t)s * 4 * H, *c = tg->c + (size_t)s * H, *h = tg->h + (size_t)s * H;
            for (int j = 0; j < H; j++) { /* %.9g: every float exactly */
                lp_writer_cellsf(&w, "%s\t%d\t%d\t%.9g\t%.9g\t%.9g\t%.9g\t%.9g\t%.9g", tg->name, s, j, (double)a[j],
                                 (double)a[H + j], (double)a[2 * H + j], (double)a[3 * H + j], (double)c[j], (double)h[j]);
                lp_writer_row(&w);
            }
        }
    }
    return lp_writer_commit(&w);
}

/* pruned[j] = 1 for every unit of group g that the plan removes. */
static void pruned_units(const lp_prune_plan *plan, int g, int H, char *pruned) {
    memset(pruned, 0, (size_t)H);
    if (!plan) return;
    memset(pruned, 1, (size_t)H);
    for (int i = 0; i < plan->g[g].k; i++) pruned[plan->g[g].kept[i]] = 0;
}

static lp_status write_units(const char *dir, const lp_trace *tr, const lp_prune_plan *plan) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "units.csv", LP_WRITER_CSV));
    lp_writer_cells(&w, "group\tunit\tmean\tstd\tscore\torder\tpruned");
    lp_writer_row(&w);
    lp_status s = LP_OK;
    for (int g = 0; g < tr->n_groups && s == LP_OK; g++) {
        const int H = tr->g[g].units;
        const lp_prune_group_plan *gp = plan ? &plan->g[g] : NULL;
        char *pruned = lp_malloc((size_t)H, 1);
        int *order = lp_malloc((size_t)H, sizeof(int)), *rank = lp_malloc((size_t)H, sizeof(int));
        s = pruned && order && rank ? LP_OK : LP_ERR_NOMEM;
        if (s == LP_OK && gp && gp->score) s = lp_criteria_order(gp->score, H, order);
        for (int i = 0; s == LP_OK && gp && gp->score && i < H; i++) rank[order[i]] = i + 1;
        if (s == LP_OK) pruned_units(plan, g, H, pruned);
        for (int j = 0; s == LP_OK && j < H; j++) {
            lp_writer_cellsf(&w, "%s\t%d", tr->g[g].name, j);
            if (gp && gp->mean && gp->var) lp_writer_cellsf(&w, "%.9g\t%.9g", gp->mean[j], sqrt(gp->var[j] > 0 ? gp->var[j] : 0));
            else lp_writer_cells(&w, "\t");
            if (gp && gp->score) lp_writer_cellsf(&w, "%.9g\t%d", gp->score[j], rank[j]);
            else lp_writer_cells(&w, "\t");
            lp_writer_cellsf(&w, "%d", pruned[j]);
            lp_writer_row(&w);
        }
        lp_free(pruned);
        lp_free(order);
        lp_free(rank);
    }
    if (s != LP_OK) {
        lp_writer_abort(&w);
        return s;
    }
    return lp_writer_commit(&w);
}

static lp_status write_groups(const char *dir, const lp_trace *tr, const lp_prune_plan *plan) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "groups.csv", LP_WRITER_CSV));
    lp_writer_cells(&w, "group\tunits\treverse\tkept\trate\ttau\tenergy_kept\tresponses\tcriterion");
    lp_writer_row(&w);
    for (int g = 0; g < tr->n_groups; g++) {
        lp_writer_cellsf(&w, "%s\t%d\t%d", tr->g[g].name, tr->g[g].units, tr->g[g].reverse);
        if (plan) {
            const lp_prune_group_plan *gp = &plan->g[g];
            lp_writer_cellsf(&w, "%d\t%.6f", gp->k, gp->rate);
            if (isfinite(gp->tau)) lp_writer_cellsf(&w, "%.9g", gp->tau);
            else lp_writer_cell(&w, "");
            if (isfinite(gp->energy_kept)) lp_writer_cellsf(&w, "%.9g", gp->energy_kept);
            else lp_writer_cell(&w, "");
            lp_writer_cellsf(&w, "%lld\t%s", (long long)gp->n_responses, lp_criterion_name(plan->opts.criterion));
        } else {
            lp_writer_cells(&w, "\t\t\t\t\t");
        }
        lp_writer_row(&w);
    }
    return lp_writer_commit(&w);
}

/* output.csv: the video's classes by the model's probability, with its labels. */
static lp_status write_output(const char *dir, const lp_trace_input *in, const lp_trace *tr) {
    int *order = lp_malloc((size_t)tr->n_out, sizeof(int));
    double *neg = lp_malloc((size_t)tr->n_out, sizeof(double));
    lp_status s = order && neg ? LP_OK : LP_ERR_NOMEM;
    for (int c = 0; s == LP_OK && c < tr->n_out; c++) neg[c] = -(double)tr->out[c];
    if (s == LP_OK) s = lp_criteria_order(neg, tr->n_out, order); /* by descending probability, ties by class */
    lp_writer w;
    if (s == LP_OK) s = lp_writer_open(&w, dir, "output.csv", LP_WRITER_CSV);
    if (s == LP_OK) {
        lp_writer_cells(&w, "rank\tclass\tprobability\tlabel");
        lp_writer_row(&w);
        for (int r = 0; r < tr->n_out; r++) {
            const int c = order[r];
            lp_writer_cellsf(&w, "%d\t%d\t%.9g\t%d", r + 1, c, (double)tr->out[c],
                             c < in->classes && in->labels[c] > 0.5f);
            lp_writer_row(&w);
        }
        s = lp_writer_commit(&w);
    }
    lp_free(order);
    lp_free(neg);
    return s;
}

/* steps.csv: the LM's words, each with the word that follows and the model's probability of it. */
static lp_status write_steps(const char *dir, const lp_task *t, const lp_trace_input *in, const lp_trace *tr) {
    const lp_ptb_vocab *v = &lp_lm_task_of((lp_task *)t)->corpus->vocab;
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "steps.csv", LP_WRITER_CSV));
    lp_writer_cells(&w, "t\tword\tnext\tp_next");
    lp_writer_row(&w);
    for (int s = 0; s < in->T; s++) {
        lp_writer_cellsf(&w, "%d", s);
        lp_writer_cell(&w, lp_ptb_vocab_word(v, in->ids[s]));
        lp_writer_cell(&w, in->next[s] >= 0 ? lp_ptb_vocab_word(v, in->next[s]) : "");
        if (in->next[s] >= 0) lp_writer_cellsf(&w, "%.9g", (double)tr->out[s]);
        else lp_writer_cell(&w, "");
        lp_writer_row(&w);
    }
    return lp_writer_commit(&w);
}

/* A gnuplot string: double quotes, with '\' and '"' escaped. */
static void gp_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* A round distance between axis tics (1, 2, 5, 10, 20, ...) that gives at most about 10 of them over n. */
static int tic_step(int n) {
    static const int steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000};
    size_t k = 0;
    while (k + 1 < sizeof steps / sizeof steps[0] && n / steps[k] > 10) k++;
    return steps[k];
}

/* trace.gp: one PNG per group, six heatmaps (units × steps) read from gates.csv, the group's rows found by
 * their line numbers (the file lists the groups one after the other, step by step, unit by unit); a red
 * cross left of the steps marks each unit the plan removes (from units.csv). */
static lp_status write_script(const char *dir, const lp_task *t, const lp_trace_input *in, const lp_trace *tr,
                              const lp_prune_plan *plan) {
    static const char *const image[6] = {"2:3:4", "2:3:5", "2:3:6", "2:3:7", "2:3:8", "2:3:9"};
    static const char *const boxes[6] = {"2:3:(0.5):(0.5):4", "2:3:(0.5):(0.5):5", "2:3:(0.5):(0.5):6",
                                         "2:3:(0.5):(0.5):7", "2:3:(0.5):(0.5):8", "2:3:(0.5):(0.5):9"};
    static const char *const panels[6] = {"i (input gate)", "f (forget gate)", "g (cell input)",
                                          "o (output gate)", "c (cell state)", "h (output)"};
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "trace.gp", LP_WRITER_TEXT));
    FILE *f = w.f;
    const int T = tr->T, lm = in->ids != NULL;
    fprintf(f, "# lstmprune trace heatmaps: `cd DIR && gnuplot trace.gp` (data from gates.csv and units.csv)\n"
               "set terminal pngcairo size 1400,1000 noenhanced\nset datafile separator ','\n"
               "set ylabel 'unit'\nset xlabel '%s'\n", lm ? "word (input at step t)" : "step t (frame)");
    if (lm && T <= 80) { /* the words themselves along the time axis */
        fprintf(f, "set xtics rotate by 90 right (");
        const lp_ptb_vocab *v = &lp_lm_task_of((lp_task *)t)->corpus->vocab;
        for (int s = 0; s < T; s++) {
            fprintf(f, "%s", s ? ", " : "");
            gp_str(f, lp_ptb_vocab_word(v, in->ids[s]));
            fprintf(f, " %d", s);
        }
        fprintf(f, ")\n");
    }
    if (!(lm && T <= 80)) fprintf(f, "set xtics 0,%d\n", tic_step(T)); /* from 0: the markers' column has no step */
    const double left = T / 25.0 > 2 ? T / 25.0 : 2; /* room for the markers of pruned units */
    long long row = 0, urow = 0; /* data lines before the group's in gates.csv and units.csv */
    for (int g = 0; g < tr->n_groups; g++) {
        const lp_trace_group *tg = &tr->g[g];
        const int H = tg->units;
        double cmax = 0;
        for (size_t i = 0; i < (size_t)T * H; i++) cmax = fabs(tg->c[i]) > cmax ? fabs(tg->c[i]) : cmax;
        if (!(cmax > 0)) cmax = 1;
        fprintf(f, "\nset output '%s.png'\nset multiplot layout 3,2 title ", tg->name);
        char title[640];
        snprintf(title, sizeof title, "%s%s on %s: units x steps; red x = pruned by the plan (%d of %d units kept)",
                 tg->name, tg->reverse ? " (reverse: reads t = T-1 down to 0)" : "", in->what,
                 plan ? plan->g[g].k : H, H);
        gp_str(f, title);
        fprintf(f, "\nset xrange [%g:%g]\nset yrange [-0.5:%g]\nset ytics 0,%d\n", -0.5 - left, T - 0.5, H - 0.5,
                tic_step(H));
        for (int p = 0; p < 6; p++) {
            if (p == 4) fprintf(f, "set cbrange [%.6g:%.6g]\nset palette defined (0 'blue', 1 'white', 2 'red')\n", -cmax, cmax);
            else if (p == 2 || p == 5) fprintf(f, "set cbrange [-1:1]\nset palette defined (0 'blue', 1 'white', 2 'red')\n");
            else fprintf(f, "set cbrange [0:1]\nset palette defined (0 'white', 1 'blue')\n");
            /* gnuplot's image needs a grid of at least 2 x 2; one step or one unit is drawn as boxes */
            fprintf(f, "set title '%s'\nplot 'gates.csv' skip %lld every ::0::%lld using %s notitle", panels[p], 1 + row,
                    (long long)T * H - 1, T >= 2 && H >= 2 ? image[p] : boxes[p]);
            if (T >= 2 && H >= 2) fprintf(f, " with image");
            else fprintf(f, " with boxxyerror fillstyle solid noborder linecolor palette");
            if (plan)
                fprintf(f, ", 'units.csv' skip %lld every ::0::%d using (%g):($7 == 1 ? $2 : 1/0) with points pt 2 lc rgb 'red' notitle",
                        1 + urow, H - 1, -0.5 - left / 2);
            fputc('\n', f);
        }
        fprintf(f, "unset multiplot\n");
        row += (long long)T * H;
        urow += H;
    }
    return lp_writer_commit(&w);
}

/* Run trace.gp where gnuplot is installed. */
static void draw(const char *dir, const lp_trace *tr, lp_trace_files *files) {
    char names[LP_MAX_GROUPS][40];
    const char *png[LP_MAX_GROUPS];
    int have[LP_MAX_GROUPS];
    for (int g = 0; g < tr->n_groups; g++) {
        snprintf(names[g], sizeof names[g], "%s.png", tr->g[g].name);
        png[g] = names[g];
        have[g] = 1;
    }
    lp_writer_plot p = {.dir = dir, .script = "trace.gp", .log = "trace.log", .png = png, .n = tr->n_groups};
    files->gnuplot_failed = lp_writer_gnuplot(&p, have);
    for (int g = 0; g < tr->n_groups; g++) files->n_png += have[g];
}

static lp_status record(const char *dir, const lp_kv *cfg, const char *command) {
    char path[4096];
    if (cfg) LP_TRY(lp_kv_write_file(cfg, lp_rundir_path(dir, "config.txt", path, sizeof path)));
    return lp_rundir_write_command(dir, command);
}

lp_status lp_trace_write(const char *dir, const lp_task *t, const lp_trace_input *in, const lp_trace *tr,
                         const lp_prune_plan *plan, const lp_kv *cfg, const char *command, lp_trace_files *files) {
    lp_trace_files none;
    if (!files) files = &none;
    memset(files, 0, sizeof *files);
    if (tr->n_groups != t->n_groups || tr->T != in->T)
        return lp_errorf(LP_ERR_ARG, "trace: the trace is not of this model and input");
    for (int g = 0; plan && g < tr->n_groups; g++)
        if (plan->n_groups != tr->n_groups || plan->g[g].h != tr->g[g].units || !plan->g[g].kept)
            return lp_errorf(LP_ERR_ARG, "trace: the plan is not of this model (group %s)", tr->g[g].name);
    LP_TRY(lp_mkdirs(dir));
    LP_TRY(record(dir, cfg, command));
    LP_TRY(write_gates(dir, tr));
    LP_TRY(write_units(dir, tr, plan));
    LP_TRY(write_groups(dir, tr, plan));
    LP_TRY(in->ids ? write_steps(dir, t, in, tr) : write_output(dir, in, tr));
    LP_TRY(write_script(dir, t, in, tr, plan));
    draw(dir, tr, files);
    return LP_OK;
}

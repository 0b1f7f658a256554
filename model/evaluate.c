/* evaluate: see evaluate.h. */
#include "model/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/dist.h"
#include "core/gemm.h"

/* The probabilities probs [n, classes] of the batch's videos [first, first + n) (no gradients); the
 * model's loss over them, times n, into *loss. */
static lp_status forward_rows(lp_model *m, lp_tape *tp, const lp_batch *bt, int first, int n, float *probs,
                              double *loss) {
    *loss = 0;
    if (n == 0) return LP_OK;
    lp_tape_reset(tp);
    int dx[3] = {n, bt->T, bt->D}, dl[2] = {n, bt->classes};
    lp_tensor *x = lp_tape_view(tp, bt->x + (size_t)first * bt->T * bt->D, NULL, 3, dx);
    lp_tensor *y = lp_tape_view(tp, bt->labels + (size_t)first * bt->classes, NULL, 2, dl);
    if (!x || !y) return LP_ERR_NOMEM;
    const int *lengths = lp_batch_model_lengths(bt);
    lp_model_out out;
    LP_TRY(lp_model_forward(m, tp, x, lengths ? lengths + first : NULL, y, NULL, &out));
    lp_model_probs(&out, probs);
    *loss = (double)out.loss->data[0] * n;
    return LP_OK;
}

/* One batch: forward without gradients, metrics, callback. Under mpirun every rank reads the batch and
 * computes its block of videos, [B·r/N, B·(r+1)/N); the probabilities are then shared (core/dist.h), so
 * every rank scores the whole batch exactly as one process, and rank 0 alone calls fn. */
static lp_status eval_batch(lp_model *m, lp_tape *tp, const lp_batch *bt, lp_metrics *met, float *probs,
                            lp_eval_video_fn fn, void *user, double *loss_sum, int64_t *labelled) {
    const int ranks = lp_dist_size(), r = lp_dist_rank();
    const int first = (int)((int64_t)bt->B * r / ranks), n = (int)((int64_t)bt->B * (r + 1) / ranks) - first;
    double loss;
    LP_TRY(forward_rows(m, tp, bt, first, n, probs + (size_t)first * bt->classes, &loss));
    LP_TRY(lp_dist_share_rows(probs, bt->B, (size_t)bt->classes, ranks));
    LP_TRY(lp_dist_sum_double(&loss, 1));
    *loss_sum += loss;
    LP_TRY(lp_metrics_add(met, probs, bt->labels, bt->B));
    for (size_t b = 0; b < (size_t)bt->B; b++) {
        const float *row = bt->labels + b * (size_t)bt->classes;
        int any = 0;
        for (int c = 0; c < bt->classes && !any; c++) any = row[c] != 0;
        *labelled += any;
    }
    if (fn && r == 0)
        for (int b = 0; b < bt->B; b++) LP_TRY(fn(user, bt->ids[b], probs + (size_t)b * bt->classes, bt->classes));
    return LP_OK;
}

lp_status lp_evaluate(lp_model *m, const lp_batcher_config *bc, int top_k, lp_eval_video_fn fn, void *user,
                      lp_eval_result *out) {
    memset(out, 0, sizeof *out);
    if (bc->yt8m.classes != m->classes)
        return lp_errorf(LP_ERR_ARG, "the data has %d classes (data.classes) but the model predicts %d",
                         bc->yt8m.classes, m->classes);
    double t0 = lp_now_s();
    lp_batcher *b = NULL;
    LP_TRY(lp_batcher_new(&b, bc));
    lp_tape tp;
    lp_metrics met;
    float *probs = lp_malloc((size_t)bc->batch_size * (size_t)m->classes, sizeof(float));
    lp_status s = lp_tape_init(&tp, (size_t)64 << 20);
    if (s == LP_OK) s = lp_metrics_init(&met, m->classes, top_k);
    else memset(&met, 0, sizeof met);
    if (!probs) s = LP_ERR_NOMEM;
    lp_tape_set_grad(&tp, 0);
    double loss_sum = 0;
    const lp_batch *bt;
    lp_gemm_hold(m->params->data, m->params->numel); /* bf16: the weights converted once for the pass */
    while (s == LP_OK && (s = lp_batcher_next(b, &bt)) == LP_OK) s = eval_batch(m, &tp, bt, &met, probs, fn, user, &loss_sum, &out->labelled);
    lp_gemm_release(m->params->data);
    if (s == LP_ERR_EOF) s = LP_OK;
    if (s == LP_OK) s = lp_metrics_finish(&met, &out->m);
    if (s == LP_OK) {
        out->videos = out->m.n_videos;
        out->loss = out->videos ? loss_sum / (double)out->videos : 0;
        out->skipped = lp_batcher_get_stats(b).skipped;
        if (out->videos == 0) s = lp_errorf(LP_ERR_ARG, "the evaluation data holds no videos");
        else if (!fn && out->labelled == 0)
            s = lp_errorf(LP_ERR_FORMAT, "the evaluation data has no labels (%lld videos, none labelled: test shards?): "
                                         "no labels; use predict", (long long)out->videos);
    }
    out->seconds = lp_now_s() - t0;
    lp_free(probs);
    lp_metrics_free(&met);
    lp_tape_free(&tp);
    lp_batcher_free(b);
    return s;
}

typedef struct {
    lp_model *m;
    lp_tape *tp;
    float *x;
    int *len;
    int dims[3];
} fwd_ctx;

/* One no-gradient forward pass over the prepared batch. */
static lp_status forward_once(void *user) {
    fwd_ctx *c = user;
    lp_tape_reset(c->tp);
    lp_tensor *xt = lp_tape_view(c->tp, c->x, NULL, 3, c->dims);
    lp_model_out out;
    return xt ? lp_model_forward(c->m, c->tp, xt, c->len, NULL, NULL, &out) : LP_ERR_NOMEM;
}

lp_status lp_model_latency(lp_model *m, int batch, int frames, int reps, double *ms) {
    if (batch < 1 || frames < 1 || reps < 1) return lp_errorf(LP_ERR_ARG, "latency: batch, frames and reps must be >= 1");
    size_t n = (size_t)batch * (size_t)frames * (size_t)m->input_dim;
    float *x = lp_malloc(n, sizeof(float));
    int *len = lp_malloc((size_t)batch, sizeof(int));
    lp_tape tp;
    lp_status s = x && len ? lp_tape_init(&tp, (size_t)16 << 20) : LP_ERR_NOMEM;
    if (s != LP_OK) {
        lp_free(x);
        lp_free(len);
        return s;
    }
    lp_tape_set_grad(&tp, 0);
    lp_rng rng;
    lp_rng_init(&rng, 12345, LP_RNG_STREAM_TEST);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lp_rng_uniform(&rng) * 0.2 - 0.1);
    for (int b = 0; b < batch; b++) len[b] = frames;
    fwd_ctx c = {m, &tp, x, len, {batch, frames, m->input_dim}};
    lp_gemm_hold(m->params->data, m->params->numel); /* bf16: converted once, as lp_evaluate does */
    s = lp_time_median_ms(forward_once, &c, 2, reps, ms); /* two warm-ups: evaluate.h says why */
    lp_gemm_release(m->params->data);
    lp_tape_free(&tp);
    lp_free(x);
    lp_free(len);
    return s;
}

lp_status lp_evaluate_prior(const lp_batcher_config *train_bc, int max_batches, const lp_batcher_config *eval_bc,
                            int top_k, lp_eval_result *out) {
    memset(out, 0, sizeof *out);
    double t0 = lp_now_s();
    int C = train_bc->yt8m.classes;
    if (eval_bc->yt8m.classes != C) return lp_errorf(LP_ERR_ARG, "prior: training and evaluation class counts differ");
    double *count = lp_calloc((size_t)C, sizeof(double));
    float *prior = lp_malloc((size_t)C, sizeof(float)), *probs = NULL;
    if (!count || !prior) {
        lp_free(count);
        lp_free(prior);
        return LP_ERR_NOMEM;
    }
    lp_batcher_config tc = *train_bc;
    tc.epochs = 1;
    lp_batcher *b = NULL;
    lp_status s = lp_batcher_new(&b, &tc);
    const lp_batch *bt;
    int64_t videos = 0;
    for (int k = 0; s == LP_OK && (max_batches <= 0 || k < max_batches) && (s = lp_batcher_next(b, &bt)) == LP_OK; k++) {
        for (size_t i = 0; i < (size_t)bt->B * (size_t)C; i++) count[i % (size_t)C] += bt->labels[i];
        videos += bt->B;
    }
    lp_batcher_free(b);
    b = NULL;
    if (s == LP_ERR_EOF) s = LP_OK;
    if (s == LP_OK && videos == 0) s = lp_errorf(LP_ERR_ARG, "prior: the training data holds no videos");
    /* Frequencies, with a tiny index-dependent tie-break so the ranking is defined. */
    for (int c = 0; s == LP_OK && c < C; c++) prior[c] = (float)(count[c] / (double)videos) + 1e-7f / (float)(c + 1);
    lp_metrics met;
    memset(&met, 0, sizeof met);
    if (s == LP_OK) s = lp_metrics_init(&met, C, top_k);
    if (s == LP_OK) s = lp_batcher_new(&b, eval_bc);
    if (s == LP_OK) {
        probs = lp_malloc((size_t)eval_bc->batch_size * (size_t)C, sizeof(float));
        if (!probs) s = LP_ERR_NOMEM;
    }
    while (s == LP_OK && (s = lp_batcher_next(b, &bt)) == LP_OK) {
        for (int i = 0; i < bt->B; i++) memcpy(probs + (size_t)i * C, prior, (size_t)C * sizeof(float));
        s = lp_metrics_add(&met, probs, bt->labels, bt->B);
    }
    if (s == LP_ERR_EOF) s = LP_OK;
    if (s == LP_OK) s = lp_metrics_finish(&met, &out->m);
    out->videos = out->m.n_videos;
    out->seconds = lp_now_s() - t0;
    out->loss = NAN;
    lp_batcher_free(b);
    lp_metrics_free(&met);
    lp_free(probs);
    lp_free(count);
    lp_free(prior);
    return s;
}

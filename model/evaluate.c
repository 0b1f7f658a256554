/* evaluate: see evaluate.h. */
#include "model/evaluate.h"

#include <string.h>
#include <time.h>

#include "core/alloc.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One batch: forward without gradients, metrics, callback. */
static lp_status eval_batch(lp_model *m, lp_tape *tp, const lp_batch *bt, lp_metrics *met, float *probs,
                            lp_eval_video_fn fn, void *user, double *loss_sum) {
    lp_tape_reset(tp);
    int dx[3] = {bt->B, bt->T, bt->D}, dl[2] = {bt->B, bt->classes};
    lp_tensor *x = lp_tape_view(tp, bt->x, NULL, 3, dx);
    lp_tensor *y = lp_tape_view(tp, bt->labels, NULL, 2, dl);
    if (!x || !y) return LP_ERR_NOMEM;
    lp_model_out out;
    LP_TRY(lp_model_forward(m, tp, x, bt->lengths, y, NULL, &out));
    lp_model_probs(&out, probs);
    *loss_sum += (double)out.loss->data[0] * bt->B;
    LP_TRY(lp_metrics_add(met, probs, bt->labels, bt->B));
    if (fn)
        for (int b = 0; b < bt->B; b++) LP_TRY(fn(user, bt->ids[b], probs + (size_t)b * bt->classes, bt->classes));
    return LP_OK;
}

lp_status lp_evaluate(lp_model *m, const lp_batcher_config *bc, int top_k, lp_eval_video_fn fn, void *user,
                      lp_eval_result *out) {
    memset(out, 0, sizeof *out);
    if (bc->yt8m.classes != m->classes)
        return lp_errorf(LP_ERR_ARG, "the data has %d classes (data.classes) but the model predicts %d",
                         bc->yt8m.classes, m->classes);
    double t0 = now_s();
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
    while (s == LP_OK && (s = lp_batcher_next(b, &bt)) == LP_OK) s = eval_batch(m, &tp, bt, &met, probs, fn, user, &loss_sum);
    if (s == LP_ERR_EOF) s = LP_OK;
    if (s == LP_OK) s = lp_metrics_finish(&met, &out->m);
    if (s == LP_OK) {
        out->videos = out->m.n_videos;
        out->loss = out->videos ? loss_sum / (double)out->videos : 0;
        out->skipped = lp_batcher_get_stats(b).skipped;
        if (out->videos == 0) s = lp_errorf(LP_ERR_ARG, "the evaluation data holds no videos");
    }
    out->seconds = now_s() - t0;
    lp_free(probs);
    lp_metrics_free(&met);
    lp_tape_free(&tp);
    lp_batcher_free(b);
    return s;
}

/* metrics: the YouTube-8M evaluation metrics — GAP@k (the primary one), mAP, Hit@1 and PERR — as an
 * accumulator fed batch by batch over a whole evaluation set.
 *
 * Definitions (those of Google's starter code, eval_util.py / average_precision_calculator.py; the
 * reference case is the metrics.txt file of the reference data tests/common/refdata.h reads). For each video, take its top_k classes by score:
 *
 *   GAP@k  Pool the (score, is_positive) pairs of every video's top k. Sort the pool by score, descending,
 *          and compute   GAP = (1/N) · Σ_{i : item i positive} (positives among items 1..i) / i
 *          where N is the number of ALL positive labels in the set (including positives that did not
 *          reach their video's top k — these count as never retrieved).
 *   mAP    For each class c: the pairs of class c in the same top-k pool, sorted by score, AP_c as above
 *          with N_c = all positives of class c; classes with N_c = 0 are skipped; mAP is the mean of AP_c.
 *   Hit@1  Fraction of videos whose highest-scoring class is a positive.
 *   PERR   Per video with n labels: precision of its top n classes, where a class only counts as a hit if
 *          it is positive AND its score is > 0; averaged over videos.
 *
 * Edge cases follow the starter code: a video without labels counts as a video (Hit@1 0, PERR 0) and its
 * top-k pairs enter the pool as negatives; GAP is 0 when the set has no positives at all. top_k larger than
 * the class count is clamped to it.
 *
 * Ties (the reference case has none; real models do produce them, e.g. sigmoid outputs saturating to
 * exactly 1.0f):
 *   - Selecting a video's top-k / top-n classes and its top-1 class: higher score first, then lower class
 *     index (numpy.argmax's rule for Hit@1).
 *   - Inside a sorted pool (GAP, each class of mAP): items with equal scores are scored by the EXPECTED AP
 *     over all orderings of the tied items. The starter code shuffles before its stable sort, so its value
 *     under ties is random; ours is that random value's mean. It also makes GAP and mAP independent of the
 *     order in which videos are added.
 *
 * Memory: the exact GAP needs the whole pool: 8 bytes per pair, i.e. n_videos · top_k · 8 bytes (160 MB for
 * a million videos at k = 20), plus O(classes) — never classes², and nothing per video besides the pool.
 * lp_metrics_finish sorts the pool in place: O(P log P) for P = n_videos · top_k.
 *
 * Typical use:
 *     lp_metrics m;  lp_metrics_init(&m, classes, 20);
 *     for each batch: lp_metrics_add(&m, probs, multi_hot, B);        // or lp_metrics_add_video per video
 *     lp_metrics_result r;  lp_metrics_finish(&m, &r);  lp_metrics_free(&m);
 */
#ifndef LP_METRICS_H
#define LP_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define LP_METRICS_DEFAULT_TOP_K 20

/* One pooled pair: the score and (class << 1 | is_positive). */
typedef struct {
    float score;
    uint32_t cls_pos;
} lp_metrics_pair;

typedef struct {
    int classes, top_k;             /* top_k already clamped to classes */
    int64_t n_videos;
    double hit1_sum, perr_sum;
    int64_t *class_positives;       /* [classes]: all positive labels per class */
    lp_metrics_pair *pool;          /* [pool_n], capacity pool_cap */
    size_t pool_n, pool_cap;
    /* Per-video scratch, O(classes): */
    uint8_t *is_pos;                /* [classes] 0/1 of the current video (kept all-zero between videos) */
    int32_t *order;                 /* [classes] class indices of the current video's top list */
    lp_metrics_pair *sortbuf;       /* [classes] used when a video has more labels than a short list */
} lp_metrics;

typedef struct {
    double gap;          /* GAP@top_k */
    double map;          /* mean over classes with positives of AP@top_k */
    double hit1;
    double perr;
    int64_t n_videos;
    int64_t n_positives; /* all positive labels seen */
    int map_classes;     /* classes averaged by mAP (those with at least one positive) */
} lp_metrics_result;

/* classes >= 1; top_k >= 1 (clamped to classes). LP_ERR_ARG / LP_ERR_NOMEM; lp_metrics_free is safe
 * after a failed init. */
lp_status lp_metrics_init(lp_metrics *m, int classes, int top_k);

/* A batch with multi-hot labels. predictions and labels are [batch, classes], row-major; a label > 0 is a
 * positive (labels are expected to be 0/1). LP_ERR_NUMERIC when a prediction is NaN (naming the video and
 * class; the batch is checked first, so nothing of it is added), LP_ERR_ARG for batch < 0, LP_ERR_NOMEM
 * when the pool cannot grow (the videos before that point are added). Infinite scores are allowed. */
lp_status lp_metrics_add(lp_metrics *m, const float *predictions, const float *labels, int batch);

/* One video with its label list (as decoded from a record: int32 class indices, duplicates count once).
 * predictions is [classes]. LP_ERR_ARG for a label outside [0, classes), LP_ERR_NUMERIC for a NaN
 * prediction; the video is not added then. */
lp_status lp_metrics_add_video(lp_metrics *m, const float *predictions, const int32_t *labels, int n_labels);

/* Compute all metrics over everything added so far. May be called again after more adds (it sorts the
 * pool in place, which does not change later results). */
lp_status lp_metrics_finish(lp_metrics *m, lp_metrics_result *out);

/* Forget every video, keep the buffers (e.g. one evaluation per epoch). */
void lp_metrics_reset(lp_metrics *m);
void lp_metrics_free(lp_metrics *m);

/* Average precision of n (score, is_positive) items, with `total_positives` as the denominator (>= the
 * positives among the items; 0 gives 0), ties by expectation as above. Sorts `items` in place by score
 * descending. Exposed for tests and for per-class reports. */
double lp_metrics_ap(lp_metrics_pair *items, size_t n, int64_t total_positives);

#endif

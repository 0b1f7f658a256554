/* metrics: YouTube-8M GAP@k, mAP, Hit@1 and PERR as an exact, batch-by-batch accumulator.
 * See metrics.h for the definitions, the tie rule and the memory bound. */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* Lists up to this length are kept by insertion while scanning the classes (O(C) for the usual k = 20);
 * longer ones (a video with many labels, for PERR) sort all classes once. */
#define SHORT_LIST 64

lp_status lp_metrics_init(lp_metrics *m, int classes, int top_k) {
    memset(m, 0, sizeof *m);
    if (classes < 1) return lp_errorf(LP_ERR_ARG, "metrics: classes must be >= 1, got %d", classes);
    if (top_k < 1) return lp_errorf(LP_ERR_ARG, "metrics: top_k must be >= 1, got %d", top_k);
    m->classes = classes;
    m->top_k = top_k < classes ? top_k : classes;
    m->class_positives = lp_calloc((size_t)classes, sizeof *m->class_positives);
    m->is_pos = lp_calloc((size_t)classes, sizeof *m->is_pos);
    m->order = lp_malloc((size_t)classes, sizeof *m->order);
    m->sortbuf = lp_malloc((size_t)classes, sizeof *m->sortbuf);
    if (!m->class_positives || !m->is_pos || !m->order || !m->sortbuf) {
        lp_metrics_free(m);
        return LP_ERR_NOMEM;
    }
    return LP_OK;
}

void lp_metrics_reset(lp_metrics *m) {
    m->n_videos = 0;
    m->hit1_sum = m->perr_sum = 0;
    m->pool_n = 0;
    if (m->class_positives) memset(m->class_positives, 0, (size_t)m->classes * sizeof *m->class_positives);
}

void lp_metrics_free(lp_metrics *m) {
    lp_free(m->class_positives);
    lp_free(m->pool);
    lp_free(m->is_pos);
    lp_free(m->order);
    lp_free(m->sortbuf);
    memset(m, 0, sizeof *m);
}

/* Score descending; equal scores compare equal (the AP treats tie groups as a whole). */
static int cmp_score_desc(const void *pa, const void *pb) {
    const lp_metrics_pair *a = pa, *b = pb;
    return (a->score < b->score) - (a->score > b->score);
}

/* Score descending, then class ascending: the selection order of one video's classes. */
static int cmp_score_desc_class_asc(const void *pa, const void *pb) {
    const lp_metrics_pair *a = pa, *b = pb;
    int c = cmp_score_desc(pa, pb);
    if (c) return c;
    return (a->cls_pos > b->cls_pos) - (a->cls_pos < b->cls_pos);
}

/* Class ascending, then score descending: groups the pool per class for mAP. */
static int cmp_class_asc_score_desc(const void *pa, const void *pb) {
    const lp_metrics_pair *a = pa, *b = pb;
    uint32_t ca = a->cls_pos >> 1, cb = b->cls_pos >> 1;
    if (ca != cb) return (ca > cb) - (ca < cb);
    return cmp_score_desc(pa, pb);
}

/* AP of items already sorted by score descending. A tie group occupying ranks a+1..a+g with p positives,
 * P positives ranked before it, contributes the expectation over the group's orderings:
 *   Σ_{j=1..g} Pr[rank a+j positive] · E[positives in ranks 1..a+j | it is] / (a+j)
 *   = Σ_j (p/g) · (P + 1 + (j−1)(p−1)/(g−1)) / (a+j)
 * (given position j holds a positive, the other p−1 are spread uniformly over the other g−1 positions).
 * With g = 1 this is the usual (P+1)/(a+1) per positive. */
static double ap_sorted(const lp_metrics_pair *it, size_t n, int64_t total_positives) {
    if (total_positives <= 0) return 0.0;
    double sum = 0.0;
    int64_t before = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int64_t p = 0;
        while (j < n && it[j].score == it[i].score) p += it[j++].cls_pos & 1u;
        size_t g = j - i;
        if (p > 0) {
            if (g == 1) {
                sum += (double)(before + 1) / (double)(i + 1);
            } else {
                double frac = (double)p / (double)g, spread = (double)(p - 1) / (double)(g - 1);
                for (size_t k = 1; k <= g; k++)
                    sum += frac * ((double)before + 1.0 + (double)(k - 1) * spread) / (double)(i + k);
            }
        }
        before += p;
        i = j;
    }
    return sum / (double)total_positives;
}

double lp_metrics_ap(lp_metrics_pair *items, size_t n, int64_t total_positives) {
    if (n > 1) qsort(items, n, sizeof *items, cmp_score_desc);
    return ap_sorted(items, n, total_positives);
}

/* Fill m->order[0..K) with the K best classes of `pred` (score descending, class ascending on ties). */
static void select_top(lp_metrics *m, const float *pred, int K) {
    const int C = m->classes;
    int32_t *order = m->order;
    if (K <= SHORT_LIST) {
        int cnt = 0;
        for (int c = 0; c < C; c++) {
            float s = pred[c];
            /* Classes arrive in ascending order, so on equal scores the one already kept wins. */
            if (cnt == K && !(s > pred[order[cnt - 1]])) continue;
            int pos = cnt < K ? cnt++ : K - 1;
            while (pos > 0 && s > pred[order[pos - 1]]) {
                order[pos] = order[pos - 1];
                pos--;
            }
            order[pos] = c;
        }
    } else {
        for (int c = 0; c < C; c++) {
            m->sortbuf[c].score = pred[c];
            m->sortbuf[c].cls_pos = (uint32_t)c;
        }
        qsort(m->sortbuf, (size_t)C, sizeof *m->sortbuf, cmp_score_desc_class_asc);
        for (int k = 0; k < K; k++) order[k] = (int32_t)m->sortbuf[k].cls_pos;
    }
}

static lp_status reserve_pool(lp_metrics *m) {
    size_t need = m->pool_n + (size_t)m->top_k;
    if (need <= m->pool_cap) return LP_OK;
    size_t cap = m->pool_cap ? m->pool_cap : 1024;
    while (cap < need) cap *= 2;
    lp_metrics_pair *p = lp_realloc(m->pool, cap, sizeof *p);
    if (!p) return lp_error_wrap(LP_ERR_NOMEM, "metrics pool of %zu pairs", cap);
    m->pool = p;
    m->pool_cap = cap;
    return LP_OK;
}

/* One video whose positives are flagged in m->is_pos (n_labels of them). The pool has room already. */
static void add_one(lp_metrics *m, const float *pred, int n_labels) {
    const int k = m->top_k;
    const int K = n_labels > k ? n_labels : k;
    select_top(m, pred, K);
    const int32_t *order = m->order;

    m->hit1_sum += m->is_pos[order[0]];
    if (n_labels > 0) {
        int hits = 0;
        for (int j = 0; j < n_labels; j++) hits += m->is_pos[order[j]] && pred[order[j]] > 0.0f;
        m->perr_sum += (double)hits / (double)n_labels;
    }
    for (int j = 0; j < k; j++) {
        lp_metrics_pair *q = &m->pool[m->pool_n++];
        q->score = pred[order[j]];
        q->cls_pos = ((uint32_t)order[j] << 1) | m->is_pos[order[j]];
    }
    m->n_videos++;
}

static lp_status check_finite_scores(const lp_metrics *m, const float *pred, int64_t video) {
    for (int c = 0; c < m->classes; c++)
        if (isnan(pred[c]))
            return lp_errorf(LP_ERR_NUMERIC, "metrics: prediction for video %lld class %d is NaN",
                             (long long)video, c);
    return LP_OK;
}

lp_status lp_metrics_add(lp_metrics *m, const float *predictions, const float *labels, int batch) {
    if (batch < 0) return lp_errorf(LP_ERR_ARG, "metrics: batch must be >= 0, got %d", batch);
    const size_t C = (size_t)m->classes;
    /* Validate the whole batch first so a bad batch adds nothing. */
    for (int b = 0; b < batch; b++) LP_TRY(check_finite_scores(m, predictions + (size_t)b * C, m->n_videos + b));
    for (int b = 0; b < batch; b++) {
        LP_TRY(reserve_pool(m));
        const float *pred = predictions + (size_t)b * C, *lab = labels + (size_t)b * C;
        int n_labels = 0;
        for (size_t c = 0; c < C; c++) {
            uint8_t pos = lab[c] > 0.0f;
            m->is_pos[c] = pos;
            n_labels += pos;
            m->class_positives[c] += pos;
        }
        add_one(m, pred, n_labels);
        memset(m->is_pos, 0, C);
    }
    return LP_OK;
}

lp_status lp_metrics_add_video(lp_metrics *m, const float *predictions, const int32_t *labels, int n_labels) {
    if (n_labels < 0) return lp_errorf(LP_ERR_ARG, "metrics: n_labels must be >= 0, got %d", n_labels);
    for (int j = 0; j < n_labels; j++)
        if (labels[j] < 0 || labels[j] >= m->classes)
            return lp_errorf(LP_ERR_ARG, "metrics: video %lld label %d is %d, outside [0, %d)",
                             (long long)m->n_videos, j, (int)labels[j], m->classes);
    LP_TRY(check_finite_scores(m, predictions, m->n_videos));
    LP_TRY(reserve_pool(m));
    int distinct = 0;
    for (int j = 0; j < n_labels; j++) {
        if (m->is_pos[labels[j]]) continue; /* a repeated label counts once, as in a multi-hot row */
        m->is_pos[labels[j]] = 1;
        m->class_positives[labels[j]]++;
        distinct++;
    }
    add_one(m, predictions, distinct);
    for (int j = 0; j < n_labels; j++) m->is_pos[labels[j]] = 0;
    return LP_OK;
}

lp_status lp_metrics_finish(lp_metrics *m, lp_metrics_result *out) {
    memset(out, 0, sizeof *out);
    out->n_videos = m->n_videos;
    int64_t total = 0;
    for (int c = 0; c < m->classes; c++) total += m->class_positives[c];
    out->n_positives = total;
    if (m->n_videos == 0) return LP_OK;
    out->hit1 = m->hit1_sum / (double)m->n_videos;
    out->perr = m->perr_sum / (double)m->n_videos;

    out->gap = lp_metrics_ap(m->pool, m->pool_n, total);

    /* mAP: per-class segments of the pool, each sorted by score. Classes that never reached a top-k list
     * but have positives still count (AP 0). */
    qsort(m->pool, m->pool_n, sizeof *m->pool, cmp_class_asc_score_desc);
    double sum = 0.0;
    int counted = 0;
    size_t i = 0;
    for (int c = 0; c < m->classes; c++) {
        size_t j = i;
        while (j < m->pool_n && (int)(m->pool[j].cls_pos >> 1) == c) j++;
        if (m->class_positives[c] > 0) {
            sum += ap_sorted(m->pool + i, j - i, m->class_positives[c]);
            counted++;
        }
        i = j;
    }
    out->map_classes = counted;
    out->map = counted ? sum / counted : 0.0;
    return LP_OK;
}

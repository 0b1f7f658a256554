/* stats: exact mean and covariance of response vectors, accumulated chunk by chunk in double precision.
 *
 * Why not the one-pass formula. cov = (Σ x xᵀ − N·mean·meanᵀ)/N subtracts two large numbers when a unit's
 * mean is large next to its spread: a saturated LSTM unit (|h| near 1, std 1e-3) loses about
 * log10(mean²/var) = 6 of double's 16 digits, and the accumulated Σ x xᵀ over 1e7 responses loses a few
 * more. The eigen rate rule looks at the tail of the spectrum (τ close to 1), which is exactly where
 * those lost digits live. So we use the pairwise update of Chan, Golub & LeVeque (1979): for each chunk
 * b of n_b rows with chunk mean m_b, its centred scatter M2_b = Σ (x − m_b)(x − m_b)ᵀ is added to the
 * running M2 (one cblas_dsyrk on the centred chunk, accumulating with beta = 1), and the shift between
 * the running mean m_a and m_b is added as a rank-1 term:
 *     δ = m_b − m_a,   M2 ← M2 + M2_b + (n_a n_b / (n_a + n_b)) δ δᵀ,   m_a ← m_a + δ n_b / (n_a + n_b).
 * Every accumulated quantity is centred, so the error depends on the spread of the data, not on its
 * mean. The extra cost is one O(H²) dsyr per chunk next to the O(n_b H²) dsyrk. The same formula merges
 * two accumulators (threads). Only the upper triangle of M2 is maintained; finish mirrors it.
 */
#include "prune/stats.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"

lp_status lp_stats_steps_parse(const char *s, lp_stats_steps *out) {
    if (s && strcmp(s, "all") == 0) { *out = LP_STATS_STEPS_ALL; return LP_OK; }
    if (s && strcmp(s, "last") == 0) { *out = LP_STATS_STEPS_LAST; return LP_OK; }
    if (s && strcmp(s, "first") == 0) { *out = LP_STATS_STEPS_FIRST; return LP_OK; }
    return lp_errorf(LP_ERR_ARG, "--stats-steps must be all, last or first, got '%s'", s ? s : "(null)");
}

const char *lp_stats_steps_name(lp_stats_steps s) {
    switch (s) {
    case LP_STATS_STEPS_ALL: return "all";
    case LP_STATS_STEPS_LAST: return "last";
    case LP_STATS_STEPS_FIRST: return "first";
    }
    return "?";
}

lp_status lp_stats_init(lp_stats *s, int h, int chunk_rows) {
    memset(s, 0, sizeof *s);
    if (h < 1) return lp_errorf(LP_ERR_ARG, "stats: response dimension must be >= 1, got %d", h);
    if (chunk_rows <= 0) {
        /* ~8 MB of doubles: big enough that dsyrk runs at GEMM speed, small enough to never matter. */
        int64_t r = ((int64_t)1 << 20) / h;
        chunk_rows = (int)(r < 64 ? 64 : r > 16384 ? 16384 : r);
    }
    s->h = h;
    s->chunk_rows = chunk_rows;
    s->mean = lp_calloc((size_t)h, sizeof(double));
    s->m2 = lp_calloc((size_t)h * (size_t)h, sizeof(double));
    s->buf = lp_malloc((size_t)chunk_rows * (size_t)h, sizeof(double));
    s->work = lp_malloc((size_t)h, sizeof(double));
    if (!s->mean || !s->m2 || !s->buf || !s->work) {
        lp_stats_free(s);
        return lp_error_wrap(LP_ERR_NOMEM, "stats: H=%d, chunk of %d rows", h, chunk_rows);
    }
    return LP_OK;
}

void lp_stats_free(lp_stats *s) {
    lp_free(s->mean);
    lp_free(s->m2);
    lp_free(s->buf);
    lp_free(s->work);
    memset(s, 0, sizeof *s);
}

void lp_stats_reset(lp_stats *s) {
    s->n = 0;
    s->pending = 0;
    memset(s->mean, 0, (size_t)s->h * sizeof(double));
    memset(s->m2, 0, (size_t)s->h * (size_t)s->h * sizeof(double));
}

int64_t lp_stats_count(const lp_stats *s) { return s->n + s->pending; }

/* Fold the pending chunk into (n, mean, m2) with Chan's update (see the file comment). */
static void stats_fold(lp_stats *s) {
    const int h = s->h, nb = s->pending;
    if (nb == 0) return;
    double *mb = s->work;
    // buf is [nb,H]; chunk mean over its rows.
    memset(mb, 0, (size_t)h * sizeof(double));
    for (int r = 0; r < nb; r++) {
        const double *x = s->buf + (size_t)r * h;
        for (int j = 0; j < h; j++) mb[j] += x[j];
    }
    for (int j = 0; j < h; j++) mb[j] /= nb;
    for (int r = 0; r < nb; r++) {
        double *x = s->buf + (size_t)r * h;
        for (int j = 0; j < h; j++) x[j] -= mb[j];
    }
    // m2 (upper) += bufᵀ buf: [H,nb]·[nb,H], the centred scatter of the chunk.
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, h, nb, 1.0, s->buf, h, 1.0, s->m2, h);
    const double na = (double)s->n, nn = na + nb;
    // work becomes δ = m_b − m_a, then the shift term and the mean update.
    for (int j = 0; j < h; j++) mb[j] -= s->mean[j];
    if (s->n > 0) cblas_dsyr(CblasRowMajor, CblasUpper, h, na * nb / nn, mb, 1, s->m2, h);
    for (int j = 0; j < h; j++) s->mean[j] += mb[j] * (nb / nn);
    s->n += nb;
    s->pending = 0;
}

lp_status lp_stats_add(lp_stats *s, const float *x, int64_t n, int64_t ld) {
    const int h = s->h;
    if (n < 0 || ld < h)
        return lp_errorf(LP_ERR_ARG, "stats: add needs n >= 0 and row stride >= H=%d, got n=%lld ld=%lld", h,
                         (long long)n, (long long)ld);
    for (int64_t r = 0; r < n; r++) {
        const float *row = x + r * ld;
        double *dst = s->buf + (size_t)s->pending * h;
        for (int j = 0; j < h; j++) {
            if (!isfinite(row[j]))
                return lp_errorf(LP_ERR_NUMERIC, "stats: non-finite response %g at row %lld, unit %d", (double)row[j],
                                 (long long)r, j);
            dst[j] = row[j];
        }
        if (++s->pending == s->chunk_rows) stats_fold(s);
    }
    return LP_OK;
}

lp_status lp_stats_add_seq(lp_stats *s, const float *h_seq, int b, int t, int64_t ld, const int *lengths,
                           lp_stats_steps steps) {
    if (b < 0 || t < 0 || ld < s->h)
        return lp_errorf(LP_ERR_ARG, "stats: bad sequence batch B=%d T=%d ld=%lld (H=%d)", b, t, (long long)ld, s->h);
    /* Validate every length before adding anything, so an error leaves the accumulator as it was. */
    if (lengths)
        for (int i = 0; i < b; i++)
            if (lengths[i] < 0 || lengths[i] > t)
                return lp_errorf(LP_ERR_ARG, "stats: length %d of sequence %d outside [0,%d]", lengths[i], i, t);
    for (int i = 0; i < b; i++) {
        const int len = lengths ? lengths[i] : t;
        if (len == 0) continue;
        // Row (i, step) starts at h_seq + (i*T + step)*ld.
        const float *seq = h_seq + (int64_t)i * t * ld;
        lp_status st = LP_OK;
        switch (steps) {
        case LP_STATS_STEPS_ALL: st = lp_stats_add(s, seq, len, ld); break;
        case LP_STATS_STEPS_LAST: st = lp_stats_add(s, seq + (int64_t)(len - 1) * ld, 1, ld); break;
        case LP_STATS_STEPS_FIRST: st = lp_stats_add(s, seq, 1, ld); break;
        default: return lp_errorf(LP_ERR_ARG, "stats: unknown step selection %d", (int)steps);
        }
        if (st != LP_OK) return lp_error_wrap(st, "sequence %d", i);
    }
    return LP_OK;
}

lp_status lp_stats_merge(lp_stats *dst, lp_stats *src) {
    const int h = dst->h;
    if (src->h != h) return lp_errorf(LP_ERR_SHAPE, "stats: cannot merge H=%d into H=%d", src->h, h);
    stats_fold(dst);
    stats_fold(src);
    if (src->n == 0) return LP_OK;
    const double na = (double)dst->n, nb = (double)src->n, nn = na + nb;
    for (size_t i = 0; i < (size_t)h * h; i++) dst->m2[i] += src->m2[i];
    double *d = dst->work;
    for (int j = 0; j < h; j++) d[j] = src->mean[j] - dst->mean[j];
    if (dst->n > 0) cblas_dsyr(CblasRowMajor, CblasUpper, h, na * nb / nn, d, 1, dst->m2, h);
    for (int j = 0; j < h; j++) dst->mean[j] += d[j] * (nb / nn);
    dst->n += src->n;
    return LP_OK;
}

size_t lp_stats_packed_size(int h) { return 1 + (size_t)h + (size_t)h * (size_t)h; }

void lp_stats_pack(lp_stats *s, double *out) {
    stats_fold(s);
    const size_t h = (size_t)s->h;
    out[0] = (double)s->n; /* exact up to 2^53 responses */
    memcpy(out + 1, s->mean, h * sizeof(double));
    memcpy(out + 1 + h, s->m2, h * h * sizeof(double));
}

lp_status lp_stats_merge_packed(lp_stats *dst, const double *in) {
    const size_t h = (size_t)dst->h;
    lp_stats src = *dst; /* a view of the packed numbers, with dst's scratch (merge folds nothing of it) */
    src.n = (int64_t)in[0];
    src.pending = 0;
    src.mean = (double *)(in + 1);
    src.m2 = (double *)(in + 1 + h);
    return lp_stats_merge(dst, &src);
}

lp_status lp_stats_finish(lp_stats *s, double *mean, double *cov) {
    stats_fold(s);
    const int h = s->h;
    if (s->n == 0) return lp_errorf(LP_ERR_ARG, "stats: no responses were accumulated (H=%d)", h);
    if (mean) memcpy(mean, s->mean, (size_t)h * sizeof(double));
    if (cov) {
        const double inv = 1.0 / (double)s->n;
        for (int i = 0; i < h; i++)
            for (int j = i; j < h; j++) {
                const double v = s->m2[(size_t)i * h + j] * inv;
                cov[(size_t)i * h + j] = v;
                cov[(size_t)j * h + i] = v;
            }
    }
    return LP_OK;
}

/* init: the Keras initialisers (see init.h). */
#include "model/init.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"

lp_status lp_weight_init_parse(const char *s, lp_weight_init *out) {
    if (s && !strcmp(s, "pytorch")) *out = LP_WEIGHT_INIT_PYTORCH;
    else if (s && !strcmp(s, "keras")) *out = LP_WEIGHT_INIT_KERAS;
    else return lp_errorf(LP_ERR_ARG, "train.weight_init = '%s' is neither pytorch nor keras", s ? s : "(null)");
    return LP_OK;
}

void lp_init_glorot_rows(lp_tensor *w, int r0, int r1, int fan_in, int fan_out, lp_rng *r) {
    const double limit = sqrt(6.0 / ((double)fan_in + (double)fan_out));
    const size_t cols = (size_t)lp_tensor_cols(w);
    for (size_t i = (size_t)r0 * cols; i < (size_t)r1 * cols; i++)
        w->data[i] = (float)((2.0 * lp_rng_uniform(r) - 1.0) * limit);
}

lp_status lp_init_orthogonal(lp_tensor *w, lp_rng *r) {
    LP_CHECK(w->ndim == 2);
    const int R = w->dims[0], C = w->dims[1];
    const int m = R >= C ? R : C, n = R >= C ? C : R; /* the tall shape that is factorised */
    double *a = lp_malloc((size_t)m * (size_t)n, sizeof(double));
    double *tau = lp_malloc((size_t)n, sizeof(double));
    double *sign = lp_malloc((size_t)n, sizeof(double));
    lp_status s = a && tau && sign ? LP_OK : LP_ERR_NOMEM;
    // a [m,n] ~ N(0,1), row-major; a = QR, and the sign of diag(R) makes Q unique (Keras: q *= sign(d))
    for (size_t i = 0; s == LP_OK && i < (size_t)m * (size_t)n; i++) a[i] = lp_rng_normal(r);
    lapack_int info = 0;
    if (s == LP_OK) info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, m, n, a, n, tau);
    for (int j = 0; s == LP_OK && info == 0 && j < n; j++) sign[j] = a[(size_t)j * n + j] < 0 ? -1.0 : 1.0;
    if (s == LP_OK && info == 0) info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, m, n, n, a, n, tau);
    if (s == LP_OK && info != 0)
        s = lp_errorf(LP_ERR_NUMERIC, "orthogonal init: LAPACK failed (info=%d) on a %dx%d matrix", (int)info, m, n);
    // w = Q·diag(sign) [m,n] when R >= C, else its transpose [n,m]
    for (int i = 0; s == LP_OK && i < m; i++)
        for (int j = 0; j < n; j++) {
            const float q = (float)(a[(size_t)i * n + j] * sign[j]);
            if (R >= C) w->data[(size_t)i * C + j] = q;
            else w->data[(size_t)j * C + i] = q;
        }
    lp_free(a);
    lp_free(tau);
    lp_free(sign);
    return s;
}

/* One LSTM group: w_ih [4H,F] Glorot, w_hh [4H,H] orthogonal, b [4H] zero with forget-gate bias 1. */
static lp_status init_lstm(lp_unit_group *g, lp_rng *r) {
    const int H = g->units, F = g->input_dim;
    lp_init_glorot_rows(g->w_ih, 0, 4 * H, F, 4 * H, r);
    LP_TRY(lp_init_orthogonal(g->w_hh, r));
    memset(g->b->data, 0, 4 * (size_t)H * sizeof(float));
    for (int j = H; j < 2 * H; j++) g->b->data[j] = 1.0f; /* gate order i, f, g, o */
    return LP_OK;
}

lp_status lp_model_init_keras(lp_model *m, uint64_t seed) {
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_INIT);
    for (int g = 0; g < m->n_groups; g++) LP_TRY(init_lstm(&m->groups[g], &r));
    const int H = m->groups[m->n_groups - 1].units, C = m->classes;
    lp_tensor *w, *b;
    if (m->kind == LP_MODEL_PAPER) { /* out.w [C,H]: one Dense layer */
        w = m->paper.out_w, b = m->paper.out_b;
        lp_init_glorot_rows(w, 0, C, H, C, &r);
    } else { /* moe.w [C(2E+1),H]: the gate rows, then the expert rows, each its own layer */
        const int E = m->lstm.cfg.experts, gates = C * (E + 1);
        w = m->lstm.moe_w, b = m->lstm.moe_b;
        lp_init_glorot_rows(w, 0, gates, H, gates, &r);
        lp_init_glorot_rows(w, gates, gates + C * E, H, C * E, &r);
    }
    memset(b->data, 0, lp_tensor_numel(b) * sizeof(float));
    return LP_OK;
}

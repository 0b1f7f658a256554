/* optim: Adam, SGD with momentum, coupled L2 weight decay, global-norm clipping and exponential lr decay
 * on flat parameter/gradient blocks. See optim.h for the contract and docs/METHOD.md for the equations. */
#include "optim/optim.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/par.h"

lp_optim_config lp_optim_defaults(lp_optim_kind kind) {
    lp_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.momentum = 0.0f;
    c.weight_decay = 0.0f;
    return c;
}

static int in_unit(float x) { return isfinite(x) && x >= 0.0f && x < 1.0f; }

lp_status lp_optim_check(const lp_optim_config *cfg) {
    if (cfg->kind != LP_OPTIM_ADAM && cfg->kind != LP_OPTIM_SGD)
        return lp_errorf(LP_ERR_ARG, "optimizer kind %d is neither adam nor sgd", (int)cfg->kind);
    if (!isfinite(cfg->weight_decay) || cfg->weight_decay < 0.0f)
        return lp_errorf(LP_ERR_ARG, "weight decay must be finite and >= 0, got %g", (double)cfg->weight_decay);
    if (cfg->kind == LP_OPTIM_ADAM) {
        if (!in_unit(cfg->beta1)) return lp_errorf(LP_ERR_ARG, "adam beta1 must be in [0,1), got %g", (double)cfg->beta1);
        if (!in_unit(cfg->beta2)) return lp_errorf(LP_ERR_ARG, "adam beta2 must be in [0,1), got %g", (double)cfg->beta2);
        if (!isfinite(cfg->eps) || cfg->eps <= 0.0f)
            return lp_errorf(LP_ERR_ARG, "adam eps must be finite and > 0, got %g", (double)cfg->eps);
    } else if (!in_unit(cfg->momentum)) {
        return lp_errorf(LP_ERR_ARG, "sgd momentum must be in [0,1), got %g", (double)cfg->momentum);
    }
    return LP_OK;
}

lp_status lp_optim_init(lp_optim *o, size_t numel, const lp_optim_config *cfg) {
    memset(o, 0, sizeof *o);
    LP_TRY(lp_optim_check(cfg));
    o->cfg = *cfg;
    o->numel = numel;
    int need_m = cfg->kind == LP_OPTIM_ADAM || cfg->momentum > 0.0f;
    int need_v = cfg->kind == LP_OPTIM_ADAM;
    /* 64-byte aligned and zeroed, like the parameter blocks, so the step loop vectorises. */
    if (need_m && !(o->m = lp_aligned(numel, sizeof(float)))) return LP_ERR_NOMEM;
    if (need_v && !(o->v = lp_aligned(numel, sizeof(float)))) {
        lp_optim_free(o);
        return LP_ERR_NOMEM;
    }
    return LP_OK;
}

size_t lp_optim_m_numel(const lp_optim *o) { return o->m ? o->numel : 0; }
size_t lp_optim_v_numel(const lp_optim *o) { return o->v ? o->numel : 0; }

void lp_optim_reset(lp_optim *o) {
    if (o->m) memset(o->m, 0, o->numel * sizeof(float));
    if (o->v) memset(o->v, 0, o->numel * sizeof(float));
    o->t = 0;
}

void lp_optim_free(lp_optim *o) {
    lp_free(o->m);
    lp_free(o->v);
    o->m = o->v = NULL;
    o->numel = 0;
    o->t = 0;
}

/* PyTorch's single-tensor Adam: scalars are formed in double and used as float32 in the element loop,
 * the denominator is sqrt(v)/sqrt(bc2) + eps (not sqrt(v/bc2)), and the step is lr/bc1 · m / denom. */
typedef struct {
    float *p, *m, *v;
    const float *g, *scale; /* scale: per-parameter lr multipliers or NULL */
    size_t i0, i1;
    float b1, b2, a1, a2, eps, wd, step_size, bc2_sqrt;
} adam_part;

static void *adam_range(void *arg) {
    const adam_part *a = arg;
    float *restrict p = a->p, *restrict m = a->m, *restrict v = a->v;
    const float *restrict g = a->g, *restrict scale = a->scale;
    for (size_t i = a->i0; i < a->i1; i++) {
        float gi = g[i] + a->wd * p[i];
        m[i] = a->b1 * m[i] + a->a1 * gi;
        v[i] = a->b2 * v[i] + a->a2 * gi * gi;
        float denom = sqrtf(v[i]) / a->bc2_sqrt + a->eps;
        float step = scale ? a->step_size * scale[i] : a->step_size; /* lr·scale[i] with multipliers */
        p[i] -= step * (m[i] / denom);
    }
    return NULL;
}

/* Threads: the element loop is memory-bound (7 floats moved per parameter) and every element's update
 * is independent, so above ADAM_SPLIT_MIN elements it is cut into OpenBLAS's thread count of contiguous
 * ranges (the project's one knob for the cores used; OpenBLAS is idle meanwhile), the same arithmetic
 * per element whatever the split (the gain: docs/BENCHMARKS.md, "Constants chosen by measurement"). */
#define ADAM_SPLIT_MIN ((size_t)1 << 18)
#define ADAM_MAX_THREADS LP_PAR_MAX

static void adam_step(lp_optim *o, float *restrict p, const float *restrict g, float lr) {
    const lp_optim_config *c = &o->cfg;
    o->t++;
    const double bc1 = 1.0 - pow((double)c->beta1, (double)o->t);
    const double bc2 = 1.0 - pow((double)c->beta2, (double)o->t);
    adam_part proto = {.p = p, .m = o->m, .v = o->v, .g = g, .scale = o->lr_scale, .i0 = 0, .i1 = o->numel,
                       .b1 = c->beta1, .b2 = c->beta2,
                       .a1 = (float)(1.0 - (double)c->beta1), .a2 = (float)(1.0 - (double)c->beta2),
                       .eps = c->eps, .wd = c->weight_decay, .step_size = (float)((double)lr / bc1),
                       .bc2_sqrt = (float)sqrt(bc2)};
    int n = o->numel >= ADAM_SPLIT_MIN ? openblas_get_num_threads() : 1;
    n = n < ADAM_MAX_THREADS ? n : ADAM_MAX_THREADS;
    if (n <= 1) {
        adam_range(&proto);
        return;
    }
    adam_part parts[ADAM_MAX_THREADS];
    for (int i = 0; i < n; i++) {
        parts[i] = proto;
        parts[i].i0 = o->numel * (size_t)i / (size_t)n;
        parts[i].i1 = o->numel * (size_t)(i + 1) / (size_t)n;
    }
    lp_par_run(adam_range, parts, sizeof parts[0], n);
}

/* lr for parameter i: lr·scale[i] with per-parameter multipliers, else lr */
#define SGD_LR(i) (scale ? lr * scale[i] : lr)

static void sgd_step(lp_optim *o, float *restrict p, const float *restrict g, float lr) {
    const float mu = o->cfg.momentum, wd = o->cfg.weight_decay;
    const float *restrict scale = o->lr_scale;
    const size_t n = o->numel;
    float *restrict buf = o->m;
    if (!buf) {
        for (size_t i = 0; i < n; i++) p[i] -= SGD_LR(i) * (g[i] + wd * p[i]);
    } else if (o->t == 0) {
        /* PyTorch initialises the buffer with the first (decayed) gradient, not μ·0 + g — the same value,
         * but written out so the first step does not depend on the buffer having been zeroed. */
        for (size_t i = 0; i < n; i++) {
            buf[i] = g[i] + wd * p[i];
            p[i] -= SGD_LR(i) * buf[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            buf[i] = mu * buf[i] + (g[i] + wd * p[i]);
            p[i] -= SGD_LR(i) * buf[i];
        }
    }
    o->t++;
}
#undef SGD_LR

void lp_optim_set_lr_scale(lp_optim *o, const float *scale) { o->lr_scale = scale; }

lp_status lp_optim_save_state(const lp_optim *o, lp_ckpt *c) {
    LP_TRY(lp_kv_set_int(&c->meta, "state.opt_t", o->t));
    int dm[1] = {(int)lp_optim_m_numel(o)}, dv[1] = {(int)lp_optim_v_numel(o)};
    if (o->m) LP_TRY(lp_ckpt_add(c, "opt.m", 1, dm, o->m));
    if (o->v) LP_TRY(lp_ckpt_add(c, "opt.v", 1, dv, o->v));
    return LP_OK;
}

lp_status lp_optim_load_state(lp_optim *o, const lp_ckpt *c, const char *path) {
    long long t;
    const lp_status s = lp_kv_get_int(&c->meta, "state.opt_t", &t);
    if (s != LP_OK) return lp_error_wrap(s, "%s", path);
    o->t = t;
    if (o->m) LP_TRY(lp_ckpt_copy_flat(c, "opt.m", o->m, lp_optim_m_numel(o), path));
    if (o->v) LP_TRY(lp_ckpt_copy_flat(c, "opt.v", o->v, lp_optim_v_numel(o), path));
    return LP_OK;
}

lp_status lp_optim_step(lp_optim *o, float *params, const float *grad, float lr) {
    if (!isfinite(lr) || lr < 0.0f) return lp_errorf(LP_ERR_ARG, "learning rate must be finite and >= 0, got %g", (double)lr);
    if (o->cfg.kind == LP_OPTIM_ADAM) {
        LP_CHECK(o->m && o->v);
        adam_step(o, params, grad, lr);
    } else {
        sgd_step(o, params, grad, lr);
    }
    return LP_OK;
}

lp_status lp_optim_grad_norm(const float *grad, size_t n, double *norm) {
    /* Four partial sums let the compiler keep several double accumulators in flight. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)grad[i] * grad[i];
        s1 += (double)grad[i + 1] * grad[i + 1];
        s2 += (double)grad[i + 2] * grad[i + 2];
        s3 += (double)grad[i + 3] * grad[i + 3];
    }
    for (; i < n; i++) s0 += (double)grad[i] * grad[i];
    double nrm = sqrt((s0 + s1) + (s2 + s3));
    *norm = nrm;
    if (!isfinite(nrm)) {
        size_t bad = 0;
        while (bad < n && isfinite(grad[bad])) bad++;
        if (bad < n)
            return lp_errorf(LP_ERR_NUMERIC, "gradient norm is %g: gradient %zu of %zu is %g", nrm, bad, n,
                             (double)grad[bad]);
        return lp_errorf(LP_ERR_NUMERIC, "gradient norm overflows (%g) over %zu finite gradients", nrm, n);
    }
    return LP_OK;
}

lp_status lp_optim_clip_grad_norm(float *grad, size_t n, float max_norm, double *norm) {
    double nrm;
    LP_TRY(lp_optim_grad_norm(grad, n, &nrm));
    *norm = nrm;
    if (max_norm > 0.0f && nrm > (double)max_norm) {
        const float scale = (float)((double)max_norm / (nrm + 1e-6));
        for (size_t i = 0; i < n; i++) grad[i] *= scale;
    }
    return LP_OK;
}

/* ---- gradient spike watch ---- */

void lp_grad_watch_init(lp_grad_watch *w, double factor) {
    memset(w, 0, sizeof *w);
    w->factor = factor;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *x, int n) {
    double tmp[LP_GRAD_WATCH_WINDOW];
    memcpy(tmp, x, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

double lp_grad_watch_add(lp_grad_watch *w, double norm) {
    double ratio = 0;
    if (w->n >= LP_GRAD_WATCH_MIN) {
        double med = median_of(w->hist, w->n);
        if (med > 0 && norm > w->factor * med) ratio = norm / med;
    }
    w->hist[w->pos] = norm;
    w->pos = (w->pos + 1) % LP_GRAD_WATCH_WINDOW;
    if (w->n < LP_GRAD_WATCH_WINDOW) w->n++;
    return ratio;
}

lp_status lp_lr_schedule_check(const lp_lr_schedule *s) {
    if (!isfinite(s->base_lr) || s->base_lr <= 0)
        return lp_errorf(LP_ERR_ARG, "learning rate must be finite and > 0, got %g", s->base_lr);
    if (!isfinite(s->decay_rate) || s->decay_rate <= 0 || s->decay_rate > 1)
        return lp_errorf(LP_ERR_ARG, "lr decay rate must be in (0,1], got %g", s->decay_rate);
    if (s->per_epoch && s->decay_after < 0)
        return lp_errorf(LP_ERR_ARG, "lr decay: epochs before the decay must be >= 0, got %d", s->decay_after);
    return LP_OK;
}

float lp_lr_schedule_at(const lp_lr_schedule *s, int64_t step, int64_t epoch) {
    if (s->per_epoch) {
        const int64_t k = epoch + 1 - s->decay_after;
        return (float)(k > 0 ? s->base_lr * pow(s->decay_rate, (double)k) : s->base_lr);
    }
    if (s->decay_steps <= 0 || s->decay_rate == 1 || step <= 0) return (float)s->base_lr;
    double e = s->staircase ? (double)(step / s->decay_steps) : (double)step / (double)s->decay_steps;
    return (float)(s->base_lr * pow(s->decay_rate, e));
}

/* gradcheck: central differences against the tape's backward pass, see gradcheck.h. */
#include "check/gradcheck.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"

/* Why eps = 1e-2, rtol = 1e-2, atol = 1e-3 (inputs and gradients of order 1):
 *  - rounding: the two float32 forward passes differ only in the outputs that depend on the perturbed
 *    element; each of those carries a relative rounding error of ~1e-7 per op, so for k affected
 *    outputs the difference quotient is off by about sqrt(k) * few * 6e-8 / eps, i.e. ~1e-4 for
 *    k ~ 100 at eps = 1e-2 (the double accumulation of L adds nothing comparable);
 *  - truncation: the central difference is exact for (bi)linear ops (matmul, add, mul, concat, ...)
 *    and off by eps^2/6 * |f'''| <= ~2e-5 for sigmoid, tanh and softplus;
 *  - both are far below rtol = 1e-2; the absolute floor atol = 1e-3 only matters where the gradient
 *    itself is near 0, where a relative error means nothing.
 * A wrong backward is far outside: a sign flip gives |num-ana| = 2|g| (ratio ~200 for |g| ~ 1), a
 * missing 1/B or 1/T with B, T >= 2 a relative error >= 0.5, a swapped transpose an unrelated value. */
void lp_gc_opts_default(lp_gc_opts *o) {
    o->eps = 1e-2;
    o->rtol = 1e-2;
    o->atol = 1e-3;
    o->max_per_input = 0;
    o->seed = 1234;
    o->verbose = 0;
    o->loss_float = 0;
}

lp_gc_opts lp_gc_opts_or_default(const lp_gc_opts *o) {
    lp_gc_opts d;
    if (o) return *o;
    lp_gc_opts_default(&d);
    return d;
}

lp_gc_size lp_gc_size_or(const lp_gc_size *size, lp_gc_size d) {
    if (!size) return d;
    if (size->batch > 0) d.batch = size->batch;
    if (size->time > 0) d.time = size->time;
    if (size->features > 0) d.features = size->features;
    if (size->hidden > 0) d.hidden = size->hidden;
    if (size->classes > 0) d.classes = size->classes;
    if (size->experts > 0) d.experts = size->experts;
    if (size->seed) d.seed = size->seed;
    return d;
}

uint64_t lp_gc_data_seed(const lp_gc_size *size, uint64_t dflt, int k) {
    return (size && size->seed ? size->seed * 1000 : dflt) + (uint64_t)k;
}

/* Add `count` nodes of `op`: a new entry the first time the descriptor is seen. */
static void ops_add(lp_gc_ops *ops, const lp_op_desc *op, int count) {
    int k = 0;
    while (k < ops->n && ops->op[k] != op) k++;
    if (k == ops->n) {
        LP_CHECK(ops->n < LP_GC_MAX_OPS);
        ops->op[ops->n++] = op;
    }
    ops->count[k] += count;
}

void lp_gc_ops_add_tape(lp_gc_ops *ops, const lp_tape *tp) {
    for (int j = 0; j < tp->n_nodes; j++) ops_add(ops, tp->nodes[j].op, 1);
}

int lp_gc_ops_count(const lp_gc_ops *ops, const char *name) {
    int n = 0;
    for (int k = 0; k < ops->n; k++)
        if (strcmp(ops->op[k]->name, name) == 0) n += ops->count[k];
    return n;
}

void lp_gc_result_init(lp_gc_result *r) {
    memset(r, 0, sizeof *r);
    r->ok = 1;
    r->accumulate_ok = 1;
    r->nograd_ok = 1;
    r->worst_input = -1;
}

/* The entry of tensor `name` in r's table, added when new; NULL when the table is full. */
static lp_gc_tensor_result *tensor_entry(lp_gc_result *r, const char *name) {
    for (int k = 0; k < r->n_tensors; k++)
        if (strcmp(r->tensor[k].name, name) == 0) return &r->tensor[k];
    if (r->n_tensors == LP_GC_MAX_TENSORS) return NULL;
    lp_gc_tensor_result *t = &r->tensor[r->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static void tensor_merge(lp_gc_tensor_result *acc, const lp_gc_tensor_result *t) {
    if (!acc) return;
    acc->n_checked += t->n_checked;
    acc->worst_ratio = fmax(acc->worst_ratio, t->worst_ratio);
    acc->worst_rel = fmax(acc->worst_rel, t->worst_rel);
    acc->max_abs_grad = fmax(acc->max_abs_grad, t->max_abs_grad);
}

void lp_gc_result_merge(lp_gc_result *acc, const lp_gc_result *r) {
    for (int k = 0; k < r->n_tensors; k++) tensor_merge(tensor_entry(acc, r->tensor[k].name), &r->tensor[k]);
    if (r->worst_ratio > acc->worst_ratio) {
        acc->worst_ratio = r->worst_ratio;
        acc->worst_input = r->worst_input;
        acc->worst_index = r->worst_index;
        acc->worst_num = r->worst_num;
        acc->worst_ana = r->worst_ana;
    }
    if (r->worst_rel > acc->worst_rel) acc->worst_rel = r->worst_rel;
    if (r->max_abs_grad > acc->max_abs_grad) acc->max_abs_grad = r->max_abs_grad;
    acc->n_checked += r->n_checked;
    acc->ok = acc->ok && r->ok;
    acc->accumulate_ok = acc->accumulate_ok && r->accumulate_ok;
    acc->nograd_ok = acc->nograd_ok && r->nograd_ok;
    for (int k = 0; k < r->ops.n; k++) ops_add(&acc->ops, r->ops.op[k], r->ops.count[k]);
    if (!acc->msg[0] && r->msg[0]) memcpy(acc->msg, r->msg, sizeof acc->msg);
}

void lp_gc_result_print(FILE *f, const char *what, const lp_gc_result *r) {
    fprintf(f, "%-12s %s worst ratio %.3g rel %.3g", what, r->ok ? "ok  " : "FAIL", r->worst_ratio,
            r->worst_rel);
    if (r->worst_input >= 0)
        fprintf(f, " (input %d elem %zu: num %.6g ana %.6g)", r->worst_input, r->worst_index, r->worst_num,
                r->worst_ana);
    fprintf(f, " n=%zu max|g|=%.3g ops:", r->n_checked, r->max_abs_grad);
    for (int k = 0; k < r->ops.n; k++) fprintf(f, " %s*%d", r->ops.op[k]->name, r->ops.count[k]);
    if (r->msg[0]) fprintf(f, " [%s]", r->msg);
    fputc('\n', f);
}

static const char *pass_fail(int ok) { return ok ? "PASS" : "FAIL"; }

void lp_gc_result_report(FILE *f, const char *name, const lp_gc_result *r) {
    const lp_gc_size *z = &r->size;
    if (z->batch || z->features || z->classes) {
        fprintf(f, "  sizes");
        const int v[6] = {z->batch, z->time, z->features, z->hidden, z->classes, z->experts};
        static const char *const key[6] = {"batch", "time", "features", "hidden", "classes", "experts"};
        for (int k = 0; k < 6; k++)
            if (v[k]) fprintf(f, " %s %d", key[k], v[k]);
        fputc('\n', f);
    }
    fprintf(f, "  %-10s %8s %11s %14s %12s\n", "tensor", "checked", "max|grad|", "worst rel err", "worst ratio");
    for (int k = 0; k < r->n_tensors; k++) {
        const lp_gc_tensor_result *t = &r->tensor[k];
        fprintf(f, "  %-10s %8zu %11.4g %14.3g %12.3g  %s\n", t->name, t->n_checked, t->max_abs_grad, t->worst_rel,
                t->worst_ratio, pass_fail(t->worst_ratio <= 1.0));
    }
    fprintf(f, "  accumulation (a second backward adds the same gradient again): %s\n", pass_fail(r->accumulate_ok));
    fprintf(f, "  no-grad mode (nothing recorded): %s\n", pass_fail(r->nograd_ok));
    fprintf(f, "  ops recorded:");
    for (int k = 0; k < r->ops.n; k++) fprintf(f, " %s*%d", r->ops.op[k]->name, r->ops.count[k]);
    fputc('\n', f);
    if (r->msg[0]) fprintf(f, "  first problem: %s\n", r->msg);
    fprintf(f, "%s: %s\n", name, pass_fail(r->ok));
}

void lp_gc_fill_uniform(float *x, size_t n, double lo, double hi, uint64_t seed) {
    lp_rng rng;
    lp_rng_init(&rng, seed, LP_RNG_STREAM_TEST);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * lp_rng_uniform(&rng));
}

lp_gc_input lp_gc_input_uniform(const char *name, float *buf, int ndim, const int *dims, double lo, double hi,
                                uint64_t seed) {
    lp_gc_input in;
    memset(&in, 0, sizeof in);
    in.name = name;
    in.data = buf;
    in.ndim = ndim;
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        in.dims[d] = dims[d];
        n *= (size_t)dims[d];
    }
    lp_gc_fill_uniform(buf, n, lo, hi, seed);
    return in;
}

typedef struct {
    lp_gc_forward_fn fwd;
    void *user;
    lp_gc_input *in;
    int n_in;
    float *grad[LP_GC_MAX_INPUTS]; /* leaf grad buffers (NULL for no_grad inputs) */
    size_t numel[LP_GC_MAX_INPUTS];
    lp_tape tp;
    int n_out;
    int loss_float; /* opts->loss_float */
    float *r[LP_GC_MAX_OUTPUTS];
    size_t rn[LP_GC_MAX_OUTPUTS];
} gc_ctx;

static size_t input_numel(const lp_gc_input *in) {
    size_t n = 1;
    for (int d = 0; d < in->ndim; d++) n *= (size_t)in->dims[d];
    return n;
}

/* Set res->msg (first problem only) and record it as the thread's error. */
static lp_status gc_fail(lp_gc_result *res, lp_status code, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!res->msg[0]) snprintf(res->msg, sizeof res->msg, "%s", buf);
    res->ok = 0;
    return code == LP_OK ? LP_OK : lp_errorf(code, "gradcheck: %s", buf);
}

/* Fresh tape, one leaf per input, the caller's graph. Returns the number of outputs (0 on failure). */
static int gc_forward(gc_ctx *c, lp_tensor **out) {
    lp_tape_reset(&c->tp);
    lp_tensor *leaves[LP_GC_MAX_INPUTS];
    for (int i = 0; i < c->n_in; i++) {
        leaves[i] = lp_tape_view(&c->tp, c->in[i].data, c->grad[i], c->in[i].ndim, c->in[i].dims);
        if (!leaves[i]) return 0;
    }
    for (int k = 0; k < LP_GC_MAX_OUTPUTS; k++) out[k] = NULL;
    int n = c->fwd(c->user, &c->tp, leaves, c->n_in, out);
    if (n < 1 || n > LP_GC_MAX_OUTPUTS) return 0;
    for (int k = 0; k < n; k++)
        if (!out[k]) return 0;
    return n;
}

/* L = sum_k <out_k, r_k> in double. Returns NAN when the forward failed or changed its output shapes. */
static double gc_loss(gc_ctx *c) {
    lp_tensor *out[LP_GC_MAX_OUTPUTS];
    int n = gc_forward(c, out);
    if (n != c->n_out) return NAN;
    double L = 0;
    for (int k = 0; k < n; k++) {
        if (lp_tensor_numel(out[k]) != c->rn[k]) return NAN;
        const float *y = out[k]->data, *r = c->r[k];
        if (c->loss_float) {
            float Lf = (float)L;
            for (size_t j = 0; j < c->rn[k]; j++) Lf += y[j] * r[j];
            L = Lf;
        } else {
            for (size_t j = 0; j < c->rn[k]; j++) L += (double)y[j] * (double)r[j];
        }
    }
    return L;
}

/* Forward, seed every output grad with r, reverse pass. lp_tape_backward() wants a scalar loss: we
 * give it a fresh scalar that nothing depends on (its seed of 1 goes nowhere), so the reverse pass
 * runs every node with exactly the output seeds r, i.e. it differentiates L = sum <out, r> without
 * relying on the mul/sum ops under test. */
static lp_status gc_backward(gc_ctx *c, lp_gc_result *res) {
    lp_tensor *out[LP_GC_MAX_OUTPUTS];
    int n = gc_forward(c, out);
    if (n != c->n_out) return gc_fail(res, LP_ERR_ARG, "forward failed (%s)", lp_last_error());
    for (int k = 0; k < n; k++) {
        if (!out[k]->grad) return gc_fail(res, LP_ERR_ARG, "output %d carries no gradient", k);
        for (size_t j = 0; j < c->rn[k]; j++) out[k]->grad[j] += c->r[k][j];
    }
    lp_tensor *seed = lp_tape_tensor(&c->tp, 0, NULL, 1);
    if (!seed) return gc_fail(res, LP_ERR_NOMEM, "out of memory");
    seed->data[0] = 0;
    return lp_tape_backward(&c->tp, seed);
}

lp_status lp_gradcheck(lp_gc_forward_fn fwd, void *user, lp_gc_input *in, int n_in, const lp_gc_opts *opts,
                       lp_gc_result *res) {
    lp_gc_opts dflt;
    if (!opts) {
        lp_gc_opts_default(&dflt);
        opts = &dflt;
    }
    lp_gc_result_init(res);
    LP_CHECK(n_in >= 1 && n_in <= LP_GC_MAX_INPUTS);
    gc_ctx c;
    memset(&c, 0, sizeof c);
    c.fwd = fwd;
    c.user = user;
    c.in = in;
    c.n_in = n_in;
    c.loss_float = opts->loss_float;
    float *ana[LP_GC_MAX_INPUTS] = {0};
    size_t *idx = NULL;
    lp_status st = lp_tape_init(&c.tp, (size_t)1 << 20);
    if (st != LP_OK) return gc_fail(res, st, "out of memory");
    lp_rng rng;
    lp_rng_init(&rng, opts->seed, LP_RNG_STREAM_TEST);

    for (int i = 0; i < n_in; i++) {
        c.numel[i] = input_numel(&in[i]);
        if (in[i].no_grad) continue;
        c.grad[i] = lp_calloc(c.numel[i] ? c.numel[i] : 1, sizeof(float));
        ana[i] = lp_malloc(c.numel[i] ? c.numel[i] : 1, sizeof(float));
        if (!c.grad[i] || !ana[i]) {
            st = gc_fail(res, LP_ERR_NOMEM, "out of memory");
            goto done;
        }
    }

    /* Pass 0: output shapes, the projection r, and the ops this graph uses. */
    {
        lp_tensor *out[LP_GC_MAX_OUTPUTS];
        c.n_out = gc_forward(&c, out);
        if (!c.n_out) {
            st = gc_fail(res, LP_ERR_ARG, "forward failed (%s)", lp_last_error());
            goto done;
        }
        for (int k = 0; k < c.n_out; k++) {
            c.rn[k] = lp_tensor_numel(out[k]);
            c.r[k] = lp_malloc(c.rn[k] ? c.rn[k] : 1, sizeof(float));
            if (!c.r[k]) {
                st = gc_fail(res, LP_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (size_t j = 0; j < c.rn[k]; j++) c.r[k][j] = (float)(2.0 * lp_rng_uniform(&rng) - 1.0);
        }
        lp_gc_ops_add_tape(&res->ops, &c.tp);
        for (int k = 0; k < res->ops.n; k++)
            if (!lp_gc_case_find(res->ops.op[k]->name))
                gc_fail(res, LP_OK, "op %s has no gradient-check case in check/registry.c",
                        res->ops.op[k]->name);
    }

    /* Pass 1: analytic gradient from zeroed leaf grads. */
    st = gc_backward(&c, res);
    if (st != LP_OK) goto done;
    for (int i = 0; i < n_in; i++) {
        if (!ana[i]) continue;
        memcpy(ana[i], c.grad[i], c.numel[i] * sizeof(float));
        for (size_t j = 0; j < c.numel[i]; j++)
            if (fabs((double)ana[i][j]) > res->max_abs_grad) res->max_abs_grad = fabs((double)ana[i][j]);
    }

    /* Pass 2: the same backward on top of pass 1's grads must double them. Exactly so for a leaf with
     * one contribution; with several contributions the sums round differently, hence 1e-5 relative to
     * the input's largest gradient (float32 has 6e-8 relative precision; a backward that assigns
     * instead of adding is off by a whole |g|). */
    st = gc_backward(&c, res);
    if (st != LP_OK) goto done;
    for (int i = 0; i < n_in && res->accumulate_ok; i++) {
        if (!ana[i]) continue;
        double scale = 0;
        for (size_t j = 0; j < c.numel[i]; j++)
            if (fabs((double)ana[i][j]) > scale) scale = fabs((double)ana[i][j]);
        for (size_t j = 0; j < c.numel[i]; j++) {
            double want = 2.0 * ana[i][j], got = c.grad[i][j];
            if (fabs(got - want) > 1e-5 * (fabs(want) + scale) + 1e-30) {
                res->accumulate_ok = 0;
                gc_fail(res, LP_OK, "input %d (%s) elem %zu: second backward gave %g, want 2 x %g (not +=?)", i,
                        in[i].name ? in[i].name : "?", j, got, (double)ana[i][j]);
                break;
            }
        }
    }

    /* Pass 3: inference mode records nothing and allocates no output grad. */
    {
        lp_tape_set_grad(&c.tp, 0);
        lp_tensor *out[LP_GC_MAX_OUTPUTS];
        int n = gc_forward(&c, out);
        if (n != c.n_out) {
            res->nograd_ok = 0;
            gc_fail(res, LP_OK, "forward with gradients disabled failed (%s)", lp_last_error());
        } else {
            if (c.tp.n_nodes != 0) {
                res->nograd_ok = 0;
                gc_fail(res, LP_OK, "%d node(s) recorded with gradients disabled", c.tp.n_nodes);
            }
            for (int k = 0; k < n; k++)
                if (out[k]->grad) {
                    res->nograd_ok = 0;
                    gc_fail(res, LP_OK, "output %d has a grad with gradients disabled", k);
                }
        }
        lp_tape_set_grad(&c.tp, 1);
    }

    /* Central differences. */
    for (int i = 0; i < n_in; i++) {
        if (!ana[i] || !c.numel[i]) continue;
        size_t n = c.numel[i], m = n;
        lp_free(idx);
        idx = lp_malloc(n, sizeof *idx);
        if (!idx) {
            st = gc_fail(res, LP_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t j = 0; j < n; j++) idx[j] = j;
        if (opts->max_per_input > 0 && n > (size_t)opts->max_per_input) {
            m = (size_t)opts->max_per_input; /* partial Fisher-Yates: a uniform subset of m distinct elements */
            for (size_t j = 0; j < m; j++) {
                size_t k = j + lp_rng_below(&rng, (uint32_t)(n - j));
                size_t t = idx[j];
                idx[j] = idx[k];
                idx[k] = t;
            }
        }
        float *x = in[i].data;
        char tname[32];
        snprintf(tname, sizeof tname, "%s", in[i].name ? in[i].name : "?");
        lp_gc_tensor_result *tr = tensor_entry(res, tname);
        for (size_t j = 0; tr && j < n; j++) tr->max_abs_grad = fmax(tr->max_abs_grad, fabs((double)ana[i][j]));
        for (size_t s = 0; s < m; s++) {
            size_t j = idx[s];
            float orig = x[j];
            x[j] = (float)((double)orig + opts->eps);
            double xp = x[j];
            double Lp = gc_loss(&c);
            x[j] = (float)((double)orig - opts->eps);
            double xm = x[j];
            double Lm = gc_loss(&c);
            x[j] = orig;
            if (isnan(Lp) || isnan(Lm)) {
                st = gc_fail(res, LP_ERR_ARG, "perturbed forward failed (%s)", lp_last_error());
                goto done;
            }
            double num = (Lp - Lm) / (xp - xm), a = ana[i][j];
            double diff = fabs(num - a), mag = fmax(fabs(num), fabs(a));
            double ratio = diff / (opts->atol + opts->rtol * mag);
            double rel = diff / fmax(mag, opts->atol);
            if (!(ratio <= 1.0)) { /* also catches NaN */
                if (opts->verbose)
                    fprintf(stderr, "gradcheck: input %d (%s) elem %zu: numeric %.7g analytic %.7g\n", i,
                            in[i].name ? in[i].name : "?", j, num, a);
                gc_fail(res, LP_OK, "input %d (%s) elem %zu: numeric %.6g analytic %.6g", i,
                        in[i].name ? in[i].name : "?", j, num, a);
            }
            if (ratio > res->worst_ratio || isnan(ratio)) {
                res->worst_ratio = isnan(ratio) ? INFINITY : ratio;
                res->worst_input = i;
                res->worst_index = j;
                res->worst_num = num;
                res->worst_ana = a;
            }
            if (rel > res->worst_rel || isnan(rel)) res->worst_rel = isnan(rel) ? INFINITY : rel;
            res->n_checked++;
            if (tr) {
                tr->worst_ratio = isnan(ratio) ? INFINITY : fmax(tr->worst_ratio, ratio);
                tr->worst_rel = isnan(rel) ? INFINITY : fmax(tr->worst_rel, rel);
                tr->n_checked++;
            }
        }
    }
    res->ok = res->ok && res->accumulate_ok && res->nograd_ok && res->n_checked > 0;
    if (res->n_checked == 0) gc_fail(res, LP_OK, "no element checked (every input is no_grad or empty)");
    st = LP_OK;

done:
    lp_free(idx);
    for (int i = 0; i < n_in; i++) {
        lp_free(c.grad[i]);
        lp_free(ana[i]);
    }
    for (int k = 0; k < LP_GC_MAX_OUTPUTS; k++) lp_free(c.r[k]);
    lp_tape_free(&c.tp);
    if (st != LP_OK) res->ok = 0;
    return st;
}

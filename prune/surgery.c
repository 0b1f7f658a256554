/* surgery: unit footprints, masking and physical removal of LSTM units (contract in surgery.h, equations
 * and the masked == shrunk argument in docs/METHOD.md, "Surgery and ISS"). */
#include "prune/surgery.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

/* ---- footprint -------------------------------------------------------------------------------------- */

int lp_surgery_footprint(const lp_unit_group *gr, int j, lp_surgery_seg *segs) {
    const int H = gr->units, F = gr->input_dim;
    LP_CHECK(j >= 0 && j < H);
    LP_CHECK(gr->w_ih->dims[0] == 4 * H && gr->w_ih->dims[1] == F && gr->w_hh->dims[1] == H);
    const size_t h = (size_t)H, f = (size_t)F;
    int n = 0;
    // w_ih is [4H,F], w_hh is [4H,H]: gate q of unit j is row q*H + j of both (contiguous rows).
    for (size_t q = 0; q < 4; q++) segs[n++] = (lp_surgery_seg){gr->w_ih, (q * h + (size_t)j) * f, 1, F};
    for (size_t q = 0; q < 4; q++) segs[n++] = (lp_surgery_seg){gr->w_hh, (q * h + (size_t)j) * h, 1, H};
    // b is [4H]: entries j, H+j, 2H+j, 3H+j, one run with stride H.
    segs[n++] = (lp_surgery_seg){gr->b, (size_t)j, h, 4};
    // Column j of w_hh (stride H over the 4H rows), without the 4 rows listed above: rows [0, j), then
    // after each own row qH+j the rows up to the next one (or to 4H).
    if (j > 0) segs[n++] = (lp_surgery_seg){gr->w_hh, (size_t)j, h, j};
    for (int q = 0; q < 4; q++) {
        const int r0 = q * H + j + 1, r1 = q < 3 ? (q + 1) * H + j : 4 * H;
        if (r1 > r0) segs[n++] = (lp_surgery_seg){gr->w_hh, (size_t)r0 * h + (size_t)j, h, r1 - r0};
    }
    // consumer is [R, Cc]: column consumer_col0 + j.
    const lp_tensor *c = gr->consumer;
    LP_CHECK(c->ndim == 2 && gr->consumer_col0 + H <= c->dims[1]);
    segs[n++] = (lp_surgery_seg){gr->consumer, (size_t)(gr->consumer_col0 + j), (size_t)c->dims[1], c->dims[0]};
    LP_CHECK(n <= LP_SURGERY_MAX_SEGS);
    return n;
}

size_t lp_surgery_footprint_numel(const lp_unit_group *gr) {
    return 4 * (size_t)gr->input_dim + 8 * (size_t)gr->units + (size_t)gr->consumer->dims[0];
}

/* ---- masking ------------------------------------------------------------------------------------------- */

void lp_surgery_zero_unit(const lp_unit_group *gr, int j) {
    lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
    const int n = lp_surgery_footprint(gr, j, segs);
    for (int s = 0; s < n; s++) {
        float *d = segs[s].t->data + segs[s].start;
        for (int k = 0; k < segs[s].n; k++) d[(size_t)k * segs[s].stride] = 0.0f;
    }
}

lp_status lp_surgery_mask(lp_task *t, const lp_prune_plan *p) {
    LP_TRY(lp_prune_plan_check(t, p));
    for (int g = 0; g < t->n_groups; g++) {
        // Walk the ascending kept list alongside the units: every unit not in it is removed.
        const lp_unit_group *gr = &t->groups[g];
        int i = 0;
        for (int j = 0; j < gr->units; j++) {
            if (i < p->g[g].k && p->g[g].kept[i] == j) i++;
            else lp_surgery_zero_unit(gr, j);
        }
    }
    return LP_OK;
}

/* ---- shrinking ----------------------------------------------------------------------------------------- */

/* Every tensor is seen as a matrix [rows, cols] (a vector [n] as [n, 1]); the shrunk tensor's element
 * (r, c) comes from the original's (rmap[r], cmap[c]). */
typedef struct {
    int rows, cols;
    int *rmap, *cmap;
} tensor_map;

static void tensor_rc(const lp_tensor *t, int *rows, int *cols) {
    *rows = t->ndim >= 1 ? t->dims[0] : 1;
    *cols = t->ndim >= 2 ? t->dims[1] : 1;
}

static int param_index(const lp_params *ps, const char *name) {
    for (int i = 0; i < ps->count; i++)
        if (!strcmp(ps->items[i].name, name)) return i;
    return -1;
}

lp_status lp_surgery_gather(const lp_task *in, const lp_prune_plan *p, const lp_task *out, const float *src, float *dst) {
    LP_TRY(lp_prune_plan_check(in, p));
    if (out->n_groups != in->n_groups || out->params->count != in->params->count || out->ops != in->ops)
        return lp_errorf(LP_ERR_ARG, "surgery: the target model was not built from this model (task, groups or tensors "
                                     "differ)");
    const lp_params *pin = in->params, *pout = out->params;
    const lp_unit_group *gin = in->groups, *gout = out->groups;
    const int n_groups = in->n_groups;
    for (int g = 0; g < n_groups; g++)
        if (gout[g].units != p->g[g].k)
            return lp_errorf(LP_ERR_ARG, "surgery: group %d (%s) of the target model has %d units, the plan keeps %d", g,
                             gin[g].name, gout[g].units, p->g[g].k);
    const int n = pout->count;
    tensor_map *tm = lp_calloc((size_t)n, sizeof *tm);
    int *src_index = lp_malloc((size_t)n, sizeof(int));
    lp_status s = tm && src_index ? LP_OK : LP_ERR_NOMEM;
    // Identity maps, sized for the target tensors.
    for (int i = 0; i < n && s == LP_OK; i++) {
        const lp_param *po = &pout->items[i];
        src_index[i] = param_index(pin, po->name);
        if (src_index[i] < 0) {
            s = lp_errorf(LP_ERR_ARG, "surgery: the source model has no tensor '%s'", po->name);
            break;
        }
        tensor_rc(&po->t, &tm[i].rows, &tm[i].cols);
        tm[i].rmap = lp_malloc((size_t)tm[i].rows, sizeof(int));
        tm[i].cmap = lp_malloc((size_t)tm[i].cols, sizeof(int));
        if (!tm[i].rmap || !tm[i].cmap) {
            s = LP_ERR_NOMEM;
            break;
        }
        for (int r = 0; r < tm[i].rows; r++) tm[i].rmap[r] = r;
        for (int c = 0; c < tm[i].cols; c++) tm[i].cmap[c] = c;
    }
    // Each group renumbers its gate rows (w_ih, w_hh, b), the columns of w_hh and its consumer columns.
    for (int g = 0; g < n_groups && s == LP_OK; g++) {
        const lp_unit_group *gi = &gin[g], *go = &gout[g];
        const int H = gi->units, k = p->g[g].k, *kept = p->g[g].kept;
        const char *suffix[3] = {"w_ih", "w_hh", "b"};
        for (int t = 0; t < 3 && s == LP_OK; t++) {
            char name[LP_PARAM_NAME_MAX];
            snprintf(name, sizeof name, "%.23s.%s", go->name, suffix[t]);
            const int i = param_index(pout, name);
            if (i < 0 || tm[i].rows != 4 * k || (t == 1 && tm[i].cols != k)) {
                s = lp_errorf(LP_ERR_SHAPE, "surgery: tensor '%s' of the target model does not have %d units", name, k);
                break;
            }
            // gate q of new unit u is row q*k + u; it was row q*H + kept[u]
            for (int q = 0; q < 4; q++)
                for (int u = 0; u < k; u++) tm[i].rmap[q * k + u] = q * H + kept[u];
            if (t == 1)
                for (int u = 0; u < k; u++) tm[i].cmap[u] = kept[u];
        }
        const int ic = param_index(pout, go->consumer_name);
        if (s == LP_OK && (ic < 0 || strcmp(go->consumer_name, gi->consumer_name) || go->consumer_col0 + k > tm[ic].cols))
            s = lp_errorf(LP_ERR_SHAPE, "surgery: consumer '%s' of group %d (%s) does not match between the target "
                          "model and the source", go->consumer_name, g, gi->name);
        for (int u = 0; u < k && s == LP_OK; u++) tm[ic].cmap[go->consumer_col0 + u] = gi->consumer_col0 + kept[u];
    }
    // Copy, checking that every source index lies inside the source tensor (a target built from another
    // plan or model would be caught here rather than read out of bounds).
    for (int i = 0; i < n && s == LP_OK; i++) {
        const lp_param *po = &pout->items[i], *pi = &pin->items[src_index[i]];
        int rows_in, cols_in;
        tensor_rc(&pi->t, &rows_in, &cols_in);
        int bad = po->t.ndim != pi->t.ndim;
        for (int r = 0; r < tm[i].rows && !bad; r++) bad = tm[i].rmap[r] >= rows_in;
        for (int c = 0; c < tm[i].cols && !bad; c++) bad = tm[i].cmap[c] >= cols_in;
        if (bad) {
            char b1[64], b2[64];
            s = lp_errorf(LP_ERR_SHAPE, "surgery: tensor '%s' is %s in the target model and %s in the source", po->name,
                          lp_tensor_shape_str(&po->t, b1, sizeof b1), lp_tensor_shape_str(&pi->t, b2, sizeof b2));
            break;
        }
        const float *sp = src + pi->offset;
        float *dp = dst + po->offset;
        for (int r = 0; r < tm[i].rows; r++) {
            const float *srow = sp + (size_t)tm[i].rmap[r] * (size_t)cols_in;
            float *drow = dp + (size_t)r * (size_t)tm[i].cols;
            for (int c = 0; c < tm[i].cols; c++) drow[c] = srow[tm[i].cmap[c]];
        }
    }
    for (int i = 0; tm && i < n; i++) {
        lp_free(tm[i].rmap);
        lp_free(tm[i].cmap);
    }
    lp_free(tm);
    lp_free(src_index);
    return s;
}

/* A task like `in` (same sizes) holding a copy of its parameters. */
static lp_status task_copy(const lp_task *in, lp_task **out) {
    int units[LP_MAX_GROUPS];
    lp_task_units(in, units);
    LP_TRY(lp_task_resized(in, units, out));
    memcpy((*out)->params->data, in->params->data, in->params->numel * sizeof(float));
    return LP_OK;
}

lp_status lp_surgery_shrink(const lp_task *in, const lp_prune_plan *p, lp_task **out) {
    *out = NULL;
    LP_TRY(lp_prune_plan_check(in, p));
    lp_task *copy = NULL;
    if (p->opts.compensate) {
        LP_TRY(task_copy(in, &copy));
        lp_status s = lp_surgery_compensate(copy, p);
        if (s != LP_OK) {
            lp_task_free(copy);
            return s;
        }
    }
    const lp_task *src = copy ? copy : in;
    int units[LP_MAX_GROUPS];
    for (int g = 0; g < p->n_groups; g++) units[g] = p->g[g].k;
    lp_status s = lp_task_resized(in, units, out);
    if (s != LP_OK) s = lp_error_wrap(s, "surgery: building the shrunk model");
    else if ((s = lp_surgery_gather(src, p, *out, src->params->data, (*out)->params->data)) != LP_OK) {
        lp_task_free(*out);
        *out = NULL;
    }
    lp_task_free(copy);
    return s;
}

/* ---- mean compensation ---------------------------------------------------------------------------------- */

/* The bias added to the product of group gr's consumer (one entry per consumer row): "<layer>.b" for a
 * consumer "<layer>.w_ih" or "<layer>.w". LP_ERR_ARG naming the consumer when it has none of that shape. */
static lp_status consumer_bias(lp_params *ps, const lp_unit_group *gr, lp_tensor **b) {
    char name[LP_PARAM_NAME_MAX];
    const char *dot = strrchr(gr->consumer_name, '.');
    int n = dot ? (int)(dot - gr->consumer_name) : 0;
    snprintf(name, sizeof name, "%.*s.b", n, gr->consumer_name);
    *b = lp_params_find(ps, name);
    if (!*b || (*b)->ndim != 1 || (*b)->dims[0] != gr->consumer->dims[0])
        return lp_errorf(LP_ERR_ARG, "surgery: %s has no bias of %d entries (%s) to take the removed units' mean",
                         gr->consumer_name, gr->consumer->dims[0], name);
    return LP_OK;
}

/* b[r] += Σ_{j removed} w[r, col0 + j]·mean[j] for every row r of w [R, C] (sums in double). */
static void add_mean_columns(const lp_tensor *w, int col0, const unsigned char *keep, const double *mean, int h,
                             lp_tensor *b) {
    const int R = w->dims[0], C = w->dims[1];
    for (int r = 0; r < R; r++) {
        const float *row = w->data + (size_t)r * (size_t)C + col0;
        double acc = 0;
        for (int j = 0; j < h; j++)
            if (!keep[j]) acc += (double)row[j] * mean[j];
        b->data[r] = (float)((double)b->data[r] + acc);
    }
}

lp_status lp_surgery_compensate(lp_task *t, const lp_prune_plan *p) {
    LP_TRY(lp_prune_plan_check(t, p));
    const lp_unit_group *groups = t->groups;
    lp_tensor *cb[LP_MAX_GROUPS];
    int hmax = 1;
    for (int g = 0; g < t->n_groups; g++) { /* everything checked before any number changes */
        cb[g] = NULL;
        if (p->g[g].k == groups[g].units) continue; /* nothing removed: nothing to compensate */
        if (!p->g[g].mean) return lp_errorf(LP_ERR_ARG, "surgery: no mean responses for group %s", groups[g].name);
        LP_TRY(consumer_bias(t->params, &groups[g], &cb[g]));
        if (groups[g].units > hmax) hmax = groups[g].units;
    }
    unsigned char *keep = lp_malloc((size_t)hmax, 1);
    if (!keep) return LP_ERR_NOMEM;
    for (int g = 0; g < t->n_groups; g++) {
        const lp_unit_group *gr = &groups[g];
        if (!cb[g]) continue;
        memset(keep, 0, (size_t)gr->units);
        for (int i = 0; i < p->g[g].k; i++) keep[p->g[g].kept[i]] = 1;
        add_mean_columns(gr->consumer, gr->consumer_col0, keep, p->g[g].mean, gr->units, cb[g]); /* the next layer */
        add_mean_columns(gr->w_hh, 0, keep, p->g[g].mean, gr->units, gr->b);                    /* its own gates */
    }
    lp_free(keep);
    return LP_OK;
}

/* params: see params.h. */
#include "core/params.h"

#include <string.h>

#include "core/alloc.h"

void lp_params_init(lp_params *ps) { memset(ps, 0, sizeof *ps); }

static lp_param *find_param(lp_params *ps, const char *name) {
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->items[i].name, name) == 0) return &ps->items[i];
    return NULL;
}

int lp_params_declare(lp_params *ps, const char *name, int ndim, const int *dims) {
    LP_CHECK(!ps->finalized);
    LP_CHECK(ndim >= 0 && ndim <= LP_MAX_DIMS);
    if (strlen(name) >= LP_PARAM_NAME_MAX) {
        lp_errorf(LP_ERR_ARG, "parameter name '%s' is longer than %d bytes", name, LP_PARAM_NAME_MAX - 1);
        return -1;
    }
    if (find_param(ps, name)) {
        lp_errorf(LP_ERR_ARG, "parameter '%s' declared twice", name);
        return -1;
    }
    if (ps->count == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 16;
        lp_param *items = lp_realloc(ps->items, (size_t)cap, sizeof *items);
        if (!items) return -1;
        ps->items = items;
        ps->cap = cap;
    }
    lp_param *p = &ps->items[ps->count];
    memset(p, 0, sizeof *p);
    strcpy(p->name, name);
    p->t.ndim = ndim;
    for (int i = 0; i < ndim; i++) p->t.dims[i] = dims[i];
    p->offset = ps->numel;
    ps->numel += lp_tensor_numel(&p->t);
    return ps->count++;
}

lp_status lp_params_finalize(lp_params *ps) {
    LP_CHECK(!ps->finalized);
    if (ps->numel > LP_PARAMS_MAX_NUMEL)
        return lp_errorf(LP_ERR_ARG, "model of %zu parameters exceeds the limit of %zu (LP_PARAMS_MAX_NUMEL): "
                         "check the sizes (hidden units, classes, vocabulary)", ps->numel, LP_PARAMS_MAX_NUMEL);
    ps->data = lp_aligned(ps->numel, sizeof(float));
    ps->grad = lp_aligned(ps->numel, sizeof(float));
    if (!ps->data || !ps->grad) return LP_ERR_NOMEM;
    for (int i = 0; i < ps->count; i++) {
        ps->items[i].t.data = ps->data + ps->items[i].offset;
        ps->items[i].t.grad = ps->grad + ps->items[i].offset;
    }
    ps->finalized = 1;
    return LP_OK;
}

lp_tensor *lp_params_find(lp_params *ps, const char *name) {
    lp_param *p = find_param(ps, name);
    return p ? &p->t : NULL;
}

void lp_params_zero_grad(lp_params *ps) {
    if (ps->grad) memset(ps->grad, 0, ps->numel * sizeof(float));
}

void lp_params_free(lp_params *ps) {
    lp_free(ps->items);
    lp_free(ps->data);
    lp_free(ps->grad);
    memset(ps, 0, sizeof *ps);
}

/* registry: every tape op of the library with its gradient-check case, see gradcheck.h.
 *
 * The tape names no op (each op's descriptor lives in its own .c file), so this table is where the ops
 * are listed: tests/test_ops.c runs each case, and lp_gradcheck fails any graph that records an op
 * missing here. A new op therefore needs an entry and a case before any checked graph may use it. */
#include <string.h>

#include "check/gradcheck.h"

const lp_gc_case lp_gc_cases[] = {
    /* core/ops */
    {"matmul", lp_gc_case_matmul},
    {"add", lp_gc_case_add},
    {"bias_add", lp_gc_case_bias_add},
    {"mul", lp_gc_case_mul},
    {"sigmoid", lp_gc_case_sigmoid},
    {"tanh", lp_gc_case_tanh},
    {"concat", lp_gc_case_concat},
    {"split", lp_gc_case_split},
    {"slice_t", lp_gc_case_slice_t},
    {"mean_t", lp_gc_case_mean_t},
    {"sum", lp_gc_case_sum},
    {"bce_logits", lp_gc_case_bce_logits},
    {"dropout", lp_gc_case_dropout},
    /* layers/ */
    {"lstm", lp_gc_case_lstm},
    {"bilstm", lp_gc_case_bilstm},
    {"moe_mix", lp_gc_case_moe_mix},
    {"bce_probs", lp_gc_case_bce_probs},
    /* lm/lm_ops */
    {"embedding", lp_gc_case_embedding},
    {"softmax_xent", lp_gc_case_softmax_xent},
};

const int lp_gc_n_cases = (int)(sizeof lp_gc_cases / sizeof lp_gc_cases[0]);

const lp_gc_case *lp_gc_case_find(const char *name) {
    for (int i = 0; i < lp_gc_n_cases; i++)
        if (strcmp(lp_gc_cases[i].op, name) == 0) return &lp_gc_cases[i];
    return NULL;
}

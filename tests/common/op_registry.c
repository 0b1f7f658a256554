/* op_registry: every tape op of the library with its gradient-check case, see gradcheck.h.
 *
 * The tape names no op (each op's descriptor lives in its own .c file), so this table is where the ops
 * are listed: tests/test_ops.c runs each case, and lp_gradcheck fails any graph that records an op
 * missing here. A new op therefore needs an entry and a case before any checked graph may use it. */
#include <string.h>

#include "tests/common/gradcheck.h"

const lp_gc_case lp_gc_cases[] = {
    /* core/ops */
    {"matmul", lp_test_matmul_gradcheck_case},
    {"add", lp_test_add_gradcheck_case},
    {"bias_add", lp_test_bias_add_gradcheck_case},
    {"mul", lp_test_mul_gradcheck_case},
    {"sigmoid", lp_test_sigmoid_gradcheck_case},
    {"tanh", lp_test_tanh_gradcheck_case},
    {"concat", lp_test_concat_gradcheck_case},
    {"split", lp_test_split_gradcheck_case},
    {"slice_t", lp_test_slice_t_gradcheck_case},
    {"mean_t", lp_test_mean_t_gradcheck_case},
    {"sum", lp_test_sum_gradcheck_case},
    {"bce_logits", lp_test_bce_logits_gradcheck_case},
    {"dropout", lp_test_dropout_gradcheck_case},
    /* layers/ */
    {"lstm", lp_test_lstm_gradcheck_case},
    {"bilstm", lp_test_bilstm_gradcheck_case},
    {"moe_mix", lp_test_moe_mix_gradcheck_case},
    {"bce_probs", lp_test_bce_probs_gradcheck_case},
    /* lm/lm_ops */
    {"embedding", lp_test_embedding_gradcheck_case},
    {"softmax_xent", lp_test_softmax_xent_gradcheck_case},
};

const int lp_gc_n_cases = (int)(sizeof lp_gc_cases / sizeof lp_gc_cases[0]);

const lp_gc_case *lp_gc_case_find(const char *name) {
    for (int i = 0; i < lp_gc_n_cases; i++)
        if (strcmp(lp_gc_cases[i].op, name) == 0) return &lp_gc_cases[i];
    return NULL;
}

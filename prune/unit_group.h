/* unit_group: the thing structured pruning removes units from — one LSTM layer, or one direction of a
 * BiLSTM, described as views into a model's parameter block. Every prunable model (the video classifiers
 * of model/, the language model of lm/) lists its groups in this form, and the whole pruning method
 * (statistics, rates, criteria, plan, surgery, ISS) works on these descriptions only.
 *
 * Unit j of a group with H units and F inputs (gate order i, f, g, o) owns rows j, H+j, 2H+j, 3H+j of
 * w_ih [4H,F], w_hh [4H,H] and b [4H], column j of w_hh, and column consumer_col0 + j of `consumer`, the
 * weight matrix that reads the group's output (the next layer's w_ih, or the head). docs/METHOD.md,
 * "Surgery and ISS", has the footprint and why removing it is exact. */
#ifndef LP_PRUNE_UNIT_GROUP_H
#define LP_PRUNE_UNIT_GROUP_H

#include "core/params.h"
#include "core/tensor.h"

/* At most this many unit groups in one model (BiLSTM directions + unidirectional layers). */
#define LP_MAX_GROUPS 8

typedef struct {
    char name[24];              /* "bilstm.fw", "lstm2", ... (prefix of its parameter names) */
    int units;                  /* H */
    int input_dim;              /* F, columns of w_ih */
    int reverse;                /* 1 for a BiLSTM's backward direction (its final state is at t = 0) */
    int fixed;                  /* 1: never pruned — its consumer is also an input table (the last layer of
                                 * a language model with tied embeddings: removing a unit would remove an
                                 * embedding dimension) */
    lp_tensor *w_ih, *w_hh, *b; /* views into the model's params */
    lp_tensor *consumer;        /* the matrix that reads this group's outputs */
    char consumer_name[LP_PARAM_NAME_MAX];
    int consumer_col0;          /* first consumer column fed by this group (Hf for bilstm.bw, else 0) */
} lp_unit_group;

#endif

/* model: one interface over the two video classifiers, so that train, eval, predict, info and the
 * pruning surgery treat them alike.
 *
 *   paper  BiLSTM → LSTM (last state) → dense logits → sigmoid           (model/paper.h)
 *   lstm   stacked LSTMs (last state) → mixture-of-experts probabilities (model/lstm_moe.h)
 *
 * A model is fully described by its "model.*" config keys (core/kv.h), which checkpoints store; loading
 * a checkpoint rebuilds the model from those keys and then copies and checks every tensor. Both kinds
 * expose their LSTM unit groups (lp_unit_group) with the tensor that consumes each group's output. */
#ifndef LP_MODEL_H
#define LP_MODEL_H
#include <stdint.h>

#include "core/ckpt.h"
#include "core/kv.h"
#include "core/params.h"
#include "core/tape.h"
#include "model/lstm_moe.h"
#include "model/paper.h"

typedef enum { LP_MODEL_PAPER = 0, LP_MODEL_LSTM = 1 } lp_model_kind;

typedef struct {
    lp_model_kind kind;
    lp_paper paper;       /* valid when kind == LP_MODEL_PAPER */
    lp_lstm_moe lstm;     /* valid when kind == LP_MODEL_LSTM */
    lp_params *params;    /* the active model's parameter block */
    lp_unit_group *groups;
    int n_groups;
    int input_dim, classes;
} lp_model;

typedef struct {
    lp_tensor *group_h[LP_MAX_GROUPS]; /* [B,T,H_g] responses of each unit group */
    lp_tensor *scores;    /* [B,C]: logits (paper) or probabilities (lstm) */
    int scores_are_logits;
    lp_tensor *loss;      /* scalar, when labels were given */
} lp_model_out;

const char *lp_model_kind_name(lp_model_kind k);
lp_status lp_model_kind_parse(const char *s, lp_model_kind *out);

/* Build (and initialise from `seed`) the model the "model.*" keys describe. */
lp_status lp_model_init_kv(lp_model *m, const lp_kv *kv, uint64_t seed);
/* The "model.*" keys of a fresh model: paper = BiLSTM of ceil(H/2) + floor(H/2) units then `layers`
 * LSTM layers of H; lstm = `layers` LSTM layers of H and `experts` experts per class. Checked. */
lp_status lp_model_default_kv(lp_kv *kv, lp_model_kind kind, int input_dim, int hidden, int layers, int classes,
                              int experts, float dropout);
/* Bias parametrisation (docs/METHOD.md, "Bias parametrisation"). Our LSTMs have one bias vector b per
 * unit group, as the paper's TensorFlow code; PyTorch's nn.LSTM has two, b_ih + b_hh, each drawn from
 * U(±1/sqrt(H)) and each trained. Under Adam or SGD without weight decay both receive the same gradient
 * and move by the same step, so their sum is exactly a single b that starts as the sum of two draws and
 * moves at twice the learning rate. These two functions build that equivalent:
 *   lp_model_bias_pair_init  adds a second U(±1/sqrt(H_g)) draw (stream LP_RNG_STREAM_INIT_BIAS2 of
 *                            `seed`) to every group's b of a freshly initialised model;
 *   lp_model_bias_lr_scale   fills scale [numel] with 1, and `mult` at every group's b (for
 *                            lp_optim_set_lr_scale). */
void lp_model_bias_pair_init(lp_model *m, uint64_t seed);
void lp_model_bias_lr_scale(const lp_model *m, float mult, float *scale);

/* dst takes over src's model (src is left empty: lp_model_free on it is a no-op). A model must not be
 * copied by value otherwise: it points into itself. */
void lp_model_move(lp_model *dst, lp_model *src);

/* Write the "model.*" keys. */
lp_status lp_model_to_kv(const lp_model *m, lp_kv *kv);
void lp_model_free(lp_model *m);

lp_status lp_model_forward(lp_model *m, lp_tape *tp, lp_tensor *x, const int *lengths, lp_tensor *labels,
                           lp_rng *dropout_rng, lp_model_out *out);
/* loss + l2·Σw² over the head's kernel (the paper model's out.w, the LSTM+MoE's moe.w; not its bias), on
 * the tape: Keras's kernel_regularizer=l2(l2) as an objective (train.dense_l2). d/dw = 2·l2·w. NULL
 * when out of memory. */
lp_tensor *lp_model_add_head_l2(lp_model *m, lp_tape *tp, lp_tensor *loss, float l2);

/* Probabilities [B,C] from a forward pass's scores (sigmoid of logits for the paper model). */
void lp_model_probs(const lp_model_out *o, float *probs);

/* Parameters (floats) and multiply-add FLOPs: per frame for the recurrent layers (2 FLOPs per MAC,
 * gate GEMMs and recurrent GEMMs), and per video for the head. */
size_t lp_model_numel(const lp_model *m);
double lp_model_flops_per_frame(const lp_model *m);
double lp_model_flops_head(const lp_model *m);

/* Add the model's config to `c->meta` and every parameter tensor to the checkpoint (borrowed). */
lp_status lp_model_add_to_ckpt(const lp_model *m, lp_ckpt *c);
/* Build the model described by a loaded checkpoint and copy its tensors (shape-checked). */
lp_status lp_model_from_ckpt(lp_model *m, const lp_ckpt *c, const char *path);
/* Convenience: load a checkpoint file into a model (meta kept in *meta if not NULL). */
lp_status lp_model_load(lp_model *m, const char *path, lp_kv *meta);

#endif

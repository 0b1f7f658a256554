/* lstm_moe: the YouTube-8M starter code's LstmModel (model.kind = lstm), at any width and depth.
 *
 *     x [B,T,F] ──► LSTM 1 (H1 units) ──► LSTM 2 (H2 units) ──► ... ──► LSTM L (H_L units)
 *               ──► its state after each sequence's last valid step, h [B,H_L]
 *               ──► mixture-of-experts head (layers/moe.h, E experts + 1 dummy per class)
 *               ──► probabilities p [B,C];  loss = starter-code cross-entropy on p (lp_op_bce_probs)
 *
 * The starter code uses 2 layers of 1024 units (`--lstm_cells 1024 --lstm_layers 2`) and 2 experts
 * (`--moe_num_mixtures 2`), C = 3862. Every layer is a unit group (the thing pruning shrinks) with its
 * own size. The interface mirrors model/paper.h, and the groups are described with the same struct
 * (lp_unit_group), so the trainer, the statistics and the surgery treat both models alike; the
 * differences are that there is no bidirectional layer, the head is "moe.w"/"moe.b" instead of
 * "out.w"/"out.b", and the forward returns probabilities instead of logits.
 *
 * Lengths (optional): every layer skips padding steps (layers/lstm.h) — the starter code's
 * dynamic_rnn(sequence_length = num_frames) — and the head reads the last layer's state after each
 * sequence's last valid step. Without lengths all T steps count. Dropout (optional, training only; the
 * starter code has none) is applied as in the paper model: to the output of every layer, i.e. on the
 * non-recurrent connections into the next layer and into the head.
 *
 * Parameters live in one lp_params block (core/params.h) under stable names:
 *     lstm1.w_ih [4H1,F]      lstm1.w_hh [4H1,H1]     lstm1.b [4H1]
 *     lstm2.w_ih [4H2,H1]     lstm2.w_hh [4H2,H2]     lstm2.b [4H2]      (lstm3.*, ... likewise)
 *     moe.w [C*(2E+1), H_L]   moe.b [C*(2E+1)]         (gate rows first, then expert rows: layers/moe.h)
 * Initialisation (seeded, stream LP_RNG_STREAM_INIT, in the order above) follows PyTorch: LSTM tensors
 * uniform in ±1/sqrt(H_g) (one bias, drawn once), the head as nn.Linear, uniform in ±1/sqrt(H_L) for
 * weight and bias. On top of that, 1.0 is added to every forget-gate bias (rows H..2H-1 of b): the
 * starter code's BasicLSTMCell(forget_bias = 1.0) adds this constant at every step, which for a
 * trainable bias is the same model started from a shifted bias.
 * train.weight_init = keras re-initialises a fresh model as the public Keras code does (model/init.h). */
#ifndef LP_LSTM_MOE_H
#define LP_LSTM_MOE_H
#include <stdint.h>

#include "core/kv.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/tape.h"
#include "model/paper.h" /* lp_unit_group: the unit-group description shared by both models */

#define LP_LSTM_MOE_MAX_EXPERTS 64
#define LP_LSTM_MOE_FORGET_BIAS 1.0f

typedef struct {
    int input_dim;                       /* F, features per frame (1152 for YouTube-8M rgb+audio) */
    int n_groups;                        /* number of stacked LSTM layers, L >= 1 (starter code: 2) */
    int units[LP_MAX_GROUPS];   /* units per layer: [0] H1, [1] H2, ... */
    int classes;                         /* C */
    int experts;                         /* E, mixture experts per class (starter code: 2) */
    float dropout;                       /* rate in [0,1) after each layer when training; 0 = off */
} lp_lstm_moe_config;

/* The starter code's layout for width H: two layers of H units (H = 1024 there), 2 experts, no dropout. */
void lp_lstm_moe_config_default(lp_lstm_moe_config *cfg, int input_dim, int hidden, int classes);

/* LP_OK, or LP_ERR_ARG with a message naming the bad field (sizes >= 1, 1 <= n_groups <= MAX,
 * 1 <= experts <= MAX_EXPERTS, head rows C*(2E+1) representable, dropout in [0,1)). Pure. */
lp_status lp_lstm_moe_config_check(const lp_lstm_moe_config *cfg);

/* Store / read the config as "model.*" keys of a checkpoint's meta (core/kv.h): model.kind = lstm,
 * model.input_dim, model.groups, model.units (comma-separated), model.classes, model.experts,
 * model.dropout. Reading fails with LP_ERR_FORMAT naming the key when one is missing or malformed, or
 * when model.kind is not "lstm". */
lp_status lp_lstm_moe_config_to_kv(const lp_lstm_moe_config *cfg, lp_kv *kv);
lp_status lp_lstm_moe_config_from_kv(lp_lstm_moe_config *cfg, const lp_kv *kv);

/* Groups: group g is layer g+1, named "lstm<g+1>"; input_dim = F for g = 0, else H_g-1; reverse = 0;
 * consumer = "lstm<g+2>.w_ih" for all but the last layer, "moe.w" for the last; consumer_col0 = 0. */
typedef struct {
    lp_lstm_moe_config cfg;
    lp_params params;
    lp_unit_group groups[LP_MAX_GROUPS];
    lp_tensor *moe_w, *moe_b; /* [C*(2E+1), H_L], [C*(2E+1)] */
} lp_lstm_moe;

/* Check cfg, declare and allocate the parameters, initialise them from `seed`. On error nothing is
 * left allocated. */
lp_status lp_lstm_moe_init(lp_lstm_moe *m, const lp_lstm_moe_config *cfg, uint64_t seed);
/* Declare the model's tensors (names and shapes, nothing allocated) in ps, as init does: for checking a
 * checkpoint's tensor table against its config before allocating (lp_ckpt_check_params). */
lp_status lp_lstm_moe_declare(lp_params *ps, const lp_lstm_moe_config *cfg);
void lp_lstm_moe_free(lp_lstm_moe *m);

/* Number of parameters (floats). */
size_t lp_lstm_moe_numel(const lp_lstm_moe *m);

typedef struct {
    lp_tensor *group_h[LP_MAX_GROUPS]; /* [B,T,H_g] each layer's hidden states (0 at padding),
                                                 * before dropout: the responses pruning analyses */
    lp_tensor *h_last;                          /* [B,H_L] last layer's state after the last valid step */
    lp_tensor *moe_z;                           /* [B,C*(2E+1)] the head's gate and expert logits */
    lp_tensor *probs;                           /* [B,C] class probabilities in [0,1) */
    lp_tensor *loss;                            /* scalar mean-over-batch cross-entropy, when labels given */
} lp_lstm_moe_out;

/* Forward pass on x [B,T,F] (a tape tensor, usually a view of the batch). `lengths` [B] in [0,T] or
 * NULL. `labels` [B,C] with targets in {0,1} (or NULL: no loss). `dropout_rng` is the caller's
 * LP_RNG_STREAM_DROPOUT generator, used only when cfg.dropout > 0 and the tape records gradients;
 * NULL disables dropout. Returns LP_OK with *out filled, or the error (LP_ERR_SHAPE when x or labels
 * do not match the config, LP_ERR_ARG for bad lengths, LP_ERR_NOMEM). Gradients reach every parameter
 * (and x when it carries a grad) through lp_tape_backward(tp, out->loss). */
lp_status lp_lstm_moe_forward(lp_lstm_moe *m, lp_tape *tp, lp_tensor *x, const int *lengths, lp_tensor *labels,
                              lp_rng *dropout_rng, lp_lstm_moe_out *out);

#endif

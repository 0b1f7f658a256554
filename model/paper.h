/* paper: the video classifier of the paper (Gkalelis & Mezaris, ISM 2020), at any width and depth.
 *
 *     x [B,T,F] ──► BiLSTM: forward LSTM (Hf units) ‖ reverse LSTM (Hb units), outputs [fw_t, bw_t]
 *               ──► LSTM 2 (H2 units) ──► ... ──► LSTM L (H_L units), its state after the last valid step
 *               ──► dense: logits [B,C] = h·W_out^T + b_out   (sigmoid per class gives probabilities)
 *
 * The paper uses one unidirectional layer after the BiLSTM (Hf = Hb = H/2, H2 = H, H = 1024, C = 3862);
 * the config allows a list of them, so deeper stacks work the same way. Each LSTM direction/layer is a
 * *unit group* — the thing pruning shrinks — and every group has its own size, so a pruned model is
 * just a model with smaller numbers in its config.
 *
 * Lengths (optional): the BiLSTM and every later layer skip padding steps (layers/lstm.h), and the last
 * layer's output is its state after each sequence's last valid step. Without lengths all T steps count.
 * Dropout (optional, training only) is applied to the output of every recurrent layer, i.e. on the
 * non-recurrent connections into the next layer and into the dense layer.
 *
 * Parameters live in one lp_params block (core/params.h) under stable names:
 *     bilstm.fw.w_ih [4Hf,F]   bilstm.fw.w_hh [4Hf,Hf]   bilstm.fw.b [4Hf]
 *     bilstm.bw.w_ih [4Hb,F]   bilstm.bw.w_hh [4Hb,Hb]   bilstm.bw.b [4Hb]
 *     lstm2.w_ih [4H2,Hf+Hb]   lstm2.w_hh [4H2,H2]       lstm2.b [4H2]      (lstm3.*, ... likewise)
 *     out.w [C,H_L]            out.b [C]
 * Initialisation (seeded, stream LP_RNG_STREAM_INIT, in the order above) follows PyTorch: LSTM tensors
 * uniform in ±1/sqrt(H_g) (PyTorch's two biases b_ih + b_hh are one bias here, drawn once), the dense
 * layer as nn.Linear, uniform in ±1/sqrt(H_L) for weight and bias.
 * train.weight_init = keras re-initialises a fresh model as the public Keras code does (model/init.h). */
#ifndef LP_PAPER_H
#define LP_PAPER_H
#include <stdint.h>

#include "core/kv.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/tape.h"
#include "prune/unit_group.h"

/* Groups: 0 = BiLSTM forward, 1 = BiLSTM backward, 2.. = unidirectional layers 2, 3, ... */
#define LP_PAPER_GROUP_FW 0
#define LP_PAPER_GROUP_BW 1

typedef struct {
    int input_dim;                   /* F, features per frame (1152 for YouTube-8M rgb+audio) */
    int n_groups;                    /* 2 + number of unidirectional layers; 3 for the paper model */
    int units[LP_MAX_GROUPS];  /* units per group: [0] Hf, [1] Hb, [2] H2, [3] H3, ... */
    int classes;                     /* C */
    float dropout;                   /* rate in [0,1) after each recurrent layer when training; 0 = off */
} lp_paper_config;

/* The paper's layout for width H: Hf = Hb = H/2 (rounded up for the forward half), H2 = H. */
void lp_paper_config_default(lp_paper_config *cfg, int input_dim, int hidden, int classes);

/* LP_OK, or LP_ERR_ARG with a message naming the bad field (sizes >= 1, 3 <= n_groups <= MAX,
 * dropout in [0,1)). Pure: no side effect but the message. */
lp_status lp_paper_config_check(const lp_paper_config *cfg);

/* Store / read the config as "model.*" keys of a checkpoint's meta (core/kv.h): model.kind = paper,
 * model.input_dim, model.groups, model.units (comma-separated), model.classes, model.dropout.
 * Reading fails with LP_ERR_FORMAT naming the key when one is missing or malformed. */
lp_status lp_paper_config_to_kv(const lp_paper_config *cfg, lp_kv *kv);
lp_status lp_paper_config_from_kv(lp_paper_config *cfg, const lp_kv *kv);

typedef struct {
    lp_paper_config cfg;
    lp_params params;
    lp_unit_group groups[LP_MAX_GROUPS];
    lp_tensor *out_w, *out_b; /* [C,H_L], [C] */
} lp_paper;

/* Check cfg, declare and allocate the parameters, initialise them from `seed`. On error nothing is
 * left allocated. */
lp_status lp_paper_init(lp_paper *m, const lp_paper_config *cfg, uint64_t seed);
/* Declare the model's tensors (names and shapes, nothing allocated) in ps: what init builds, so a loader
 * can check a checkpoint's tensor table against its config first (lp_ckpt_check_params). */
lp_status lp_paper_declare(lp_params *ps, const lp_paper_config *cfg);
void lp_paper_free(lp_paper *m);

/* Number of parameters (floats). */
size_t lp_paper_numel(const lp_paper *m);

typedef struct {
    lp_tensor *group_h[LP_MAX_GROUPS]; /* [B,T,H_g] each group's hidden states (0 at padding),
                                              * before dropout: the responses pruning analyses */
    lp_tensor *layer1_out;                   /* [B,T,Hf+Hb] the BiLSTM output (before dropout) */
    lp_tensor *h_last;                       /* [B,H_L] last layer's state after the last valid step */
    lp_tensor *logits;                       /* [B,C] */
    lp_tensor *loss;                         /* scalar mean-over-batch BCE, when labels were given */
} lp_paper_out;

/* Forward pass on x [B,T,F] (a tape tensor, usually a view of the batch). `lengths` [B] in [0,T] or
 * NULL. `labels` [B,C] with targets in {0,1} (or NULL: no loss). `dropout_rng` is the caller's
 * LP_RNG_STREAM_DROPOUT generator, used only when cfg.dropout > 0 and the tape records gradients;
 * NULL disables dropout. Returns LP_OK with *out filled, or the error (LP_ERR_SHAPE when x does not
 * match the config, LP_ERR_ARG for bad lengths, LP_ERR_NOMEM). Gradients reach every parameter (and
 * x when it carries a grad) through lp_tape_backward(tp, out->loss). */
lp_status lp_paper_forward(lp_paper *m, lp_tape *tp, lp_tensor *x, const int *lengths, lp_tensor *labels,
                           lp_rng *dropout_rng, lp_paper_out *out);

#endif

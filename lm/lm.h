/* lm: the word-level LSTM language model of the paper's second experiment (Penn Treebank),
 * in the form of Zaremba, Sutskever & Vinyals (2014), the setting of the ISS baseline (Wen et al. 2018).
 *
 *     ids x [B,T] ──► embedding W_emb [V,E] ──► dropout
 *                 ──► LSTM 1 (H_1 units) ──► dropout ──► ... ──► LSTM L (H_L units) ──► dropout
 *                 ──► dense over the vocabulary: logits [B,T,V] = h·W_out^T + b_out
 *                 ──► softmax cross-entropy against the next words y [B,T]
 *
 * Every LSTM layer is the fused op of layers/lstm.h and a *unit group* for pruning (lp_unit_group, the same
 * description as model/paper.h's groups), each with its own size, so a pruned model is a model with
 * smaller numbers in its config. The embedding and the softmax keep their sizes when LSTMs are pruned.
 *
 * Dropout (Zaremba's "non-recurrent" dropout): on the embedding output, between layers and before the
 * softmax, never on the recurrent h→h connections. It is active only when training (a tape recording
 * gradients and a dropout generator given); evaluation is deterministic.
 *
 * Tied embeddings (Press & Wolf 2017, Inan et al. 2017), optional: the softmax weight IS the embedding
 * table (out.w is not a separate parameter; logits = h·W_emb^T + b_out), which needs E == H_L. The table
 * then receives both gradients. With tying, the last group's consumer is `embed.w`, so pruning that
 * group would change the embedding size too: prune code must leave it alone or refuse (lp_unit_group.fixed).
 *
 * Parameters live in one lp_params block (core/params.h) under stable names, in this order:
 *     embed.w [V,E]
 *     lstm1.w_ih [4H_1,E]    lstm1.w_hh [4H_1,H_1]    lstm1.b [4H_1]
 *     lstm2.w_ih [4H_2,H_1]  lstm2.w_hh [4H_2,H_2]    lstm2.b [4H_2]      (and so on)
 *     out.w [V,H_L]  (absent when tied)               out.b [V]
 * Initialisation: every parameter uniform in ±init_scale, drawn in the order above from the
 * LP_RNG_STREAM_INIT stream of the seed (Zaremba: 0.1 small, 0.05 medium, 0.04 large). One LSTM bias per
 * layer (TensorFlow's BasicLSTMCell, forget bias 0, as Zaremba's code).
 *
 * Truncated BPTT: lp_lm_state holds h and c of every layer for B streams. A forward pass with a state
 * starts from it and leaves the final h_last/c_last in it, as plain values: no gradient flows into the
 * previous window (the state is "detached"). Running windows [0,T1) then [T1,T) with a state therefore gives
 * the same outputs as one window [0,T) (tested).
 *
 * Training loss. lp_lm_forward's `loss` is the mean negative log-likelihood per target word (what
 * perplexity = exp(loss) is made of). Zaremba's code minimises the *sum over time steps of the batch
 * mean* — T times that — with SGD at lr 1 and the gradient norm clipped at 5; the LM task
 * (tasks/lm_task.h) trains the same way, so the recipes' learning rates mean what they meant.
 *
 *     lp_lm m;  lp_lm_config cfg;
 *     lp_lm_config_default(&cfg, vocab.size, 2, 200);               // Zaremba small
 *     lp_lm_init(&m, &cfg, seed);
 *     lp_lm_eval_result ev;   lp_lm_evaluate(&m, valid_ids, n_valid, 20, 35, NULL, &ev);   // ev.ppl
 */
#ifndef LP_LM_H
#define LP_LM_H
#include <stddef.h>
#include <stdint.h>

#include "core/ckpt.h"
#include "core/kv.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/tape.h"
#include "lm/ptb.h"
#include "optim/optim.h"
#include "prune/unit_group.h"

#define LP_LM_MAX_LAYERS LP_MAX_GROUPS

typedef struct {
    int vocab;                     /* V, words (10,000 for PTB) */
    int embed;                     /* E, embedding size */
    int layers;                    /* L, stacked LSTM layers, 1..LP_LM_MAX_LAYERS */
    int hidden[LP_LM_MAX_LAYERS];  /* H_1..H_L, units per layer (may differ, e.g. after pruning) */
    int tied;                      /* 1: softmax weight = embedding table (needs E == H_L) */
    float dropout;                 /* non-recurrent dropout rate in [0,1) when training; 0 = off */
    float init_scale;              /* every parameter uniform in ±init_scale at init (> 0) */
    uint64_t vocab_digest;         /* lp_ptb_vocab_digest of the vocabulary the word ids mean; 0 = not
                                    * recorded (a checkpoint older than the key, or a model not yet paired
                                    * with data). Not a size: lp_lm_config_check ignores it. */
} lp_lm_config;

/* `layers` layers of `hidden` units, E = hidden, untied, dropout 0, init_scale 0.1 (Zaremba's small
 * model with vocab 10000, layers 2, hidden 200). */
void lp_lm_config_default(lp_lm_config *cfg, int vocab, int layers, int hidden);

/* LP_OK, or LP_ERR_ARG naming the bad field (sizes >= 1, 1 <= layers <= LP_LM_MAX_LAYERS, tied needs
 * E == H_L, dropout in [0,1), init_scale > 0 and finite). Pure. */
lp_status lp_lm_config_check(const lp_lm_config *cfg);

/* Store / read the config as "model.*" keys of a checkpoint's meta (core/kv.h): model.kind = lm,
 * model.vocab, model.embed, model.layers, model.units (comma-separated), model.tied, model.dropout,
 * model.init_scale, and model.vocab_digest (16 hex digits; written only when known, optional when read:
 * checkpoints made before it lack it). Reading fails with LP_ERR_FORMAT naming the key when one is missing
 * or malformed. */
lp_status lp_lm_config_to_kv(const lp_lm_config *cfg, lp_kv *kv);
lp_status lp_lm_config_from_kv(lp_lm_config *cfg, const lp_kv *kv);

typedef struct {
    lp_lm_config cfg;
    lp_params params;
    lp_unit_group groups[LP_LM_MAX_LAYERS];
    lp_tensor *embed_w; /* [V,E] */
    lp_tensor *out_w;   /* [V,H_L]; the same tensor as embed_w when tied */
    lp_tensor *out_b;   /* [V] */
} lp_lm;

/* Check cfg, declare and allocate the parameters and initialise them from `seed`. On error nothing is
 * left allocated (lp_lm_free is still safe). */
lp_status lp_lm_init(lp_lm *m, const lp_lm_config *cfg, uint64_t seed);
void lp_lm_free(lp_lm *m);

/* Number of parameters (floats); a tied table is counted once. */
size_t lp_lm_numel(const lp_lm *m);

/* FLOPs per predicted word: the LSTM layers' gate GEMMs (input and recurrent) and the softmax layer. */
double lp_lm_flops_per_word(const lp_lm *m);

/* ---- checkpoints (core/ckpt.h) ---- */

/* Add the config ("model.*" keys) to c->meta and every parameter tensor (borrowed: m must outlive the
 * save) to c, under the parameter names above. */
lp_status lp_lm_add_to_ckpt(const lp_lm *m, lp_ckpt *c);

/* Build the LM described by a loaded checkpoint's "model.*" keys and copy every tensor into it
 * (shape-checked: LP_ERR_FORMAT for a missing tensor, LP_ERR_SHAPE naming both shapes). `path` is only
 * used in messages. On error nothing is left allocated. */
lp_status lp_lm_from_ckpt(lp_lm *m, const lp_ckpt *c, const char *path);
/* Declare the model's tensors (names and shapes, nothing allocated) in ps, as lp_lm_init does; the
 * loader checks a checkpoint's tensor table against them before allocating (lp_ckpt_check_params). */
lp_status lp_lm_declare(lp_params *ps, const lp_lm_config *cfg);

/* Whether the model's word ids mean the words of vocabulary v (the data it is about to be scored or
 * trained on). LP_ERR_ARG naming `model` and `data` (both only used in messages) when the sizes differ,
 * or when the model records a digest (cfg->vocab_digest) and v's is another: same size, other words or
 * another order. A model that records none (a checkpoint saved before model.vocab_digest) cannot be
 * checked: a warning through core/log.h, and LP_OK. */
lp_status lp_lm_vocab_check(const lp_lm_config *cfg, const lp_ptb_vocab *v, const char *model, const char *data);

/* Load a checkpoint file into a new LM; *meta (may be NULL; caller-initialised) receives its meta keys. */
lp_status lp_lm_load(lp_lm *m, const char *path, lp_kv *meta);

/* ---- recurrent state carried across windows ---- */

typedef struct {
    int batch;                       /* B streams */
    int layers;
    int hidden[LP_LM_MAX_LAYERS];
    float *h[LP_LM_MAX_LAYERS];      /* [B,H_l] */
    float *c[LP_LM_MAX_LAYERS];      /* [B,H_l] */
    float *block;                    /* owns all of them */
} lp_lm_state;

/* Zero state for `batch` streams of model m's layer sizes. */
lp_status lp_lm_state_init(lp_lm_state *s, const lp_lm *m, int batch);
void lp_lm_state_zero(lp_lm_state *s);
void lp_lm_state_free(lp_lm_state *s);

/* ---- forward ---- */

typedef struct {
    lp_tensor *embed;                         /* [B,T,E] embedding output (before dropout) */
    lp_tensor *group_h[LP_LM_MAX_LAYERS];     /* [B,T,H_l] each layer's hidden states (before dropout):
                                               * the responses pruning analyses */
    lp_tensor *logits;                        /* [B,T,V] */
    lp_tensor *loss;                          /* scalar: mean NLL per target (when y was given) */
} lp_lm_out;

/* One window: inputs x [B,T] and targets y [B,T] (row-major ids; y may be NULL: no loss). `state` (may be
 * NULL: zero initial state, nothing kept) must have been made for this model and batch B; it is read as
 * the initial state and overwritten with the final one (detached). `dropout_rng` is the caller's
 * LP_RNG_STREAM_DROPOUT generator, used when cfg.dropout > 0 and the tape records gradients; NULL
 * disables dropout. Errors: LP_ERR_ARG (an id outside [0,V), naming its position; B or T < 1),
 * LP_ERR_SHAPE (state of another batch or model), LP_ERR_NOMEM. */
lp_status lp_lm_forward(lp_lm *m, lp_tape *tp, const int32_t *x, const int32_t *y, int B, int T,
                        lp_lm_state *state, lp_rng *dropout_rng, lp_lm_out *out);

/* ---- evaluation ---- */

typedef struct {
    double nll;            /* mean negative log-likelihood per target word (nats) */
    double ppl;            /* exp(nll) */
    size_t targets;        /* words predicted */
    double seconds;        /* wall time */
    double words_per_sec;  /* targets / seconds */
} lp_lm_eval_result;

/* Perplexity of the model over the token stream ids[0..n): the stream is batched as in lm/ptb.h
 * (`batch` contiguous streams, windows of `bptt`, the short last window included so every target
 * counts), the state starts at zero and is carried across windows; no gradients, no dropout.
 * `nll_out` (may be NULL) receives every target's negative log-likelihood, window by window, each window
 * row-major [B,t] — room for lp_ptb_batcher_targets() doubles, i.e. batch * (n/batch - 1).
 * Errors: LP_ERR_ARG (batch/bptt, stream too short, id outside the vocabulary), LP_ERR_NOMEM. */
lp_status lp_lm_evaluate(lp_lm *m, const int32_t *ids, size_t n, int batch, int bptt, double *nll_out,
                         lp_lm_eval_result *res);

#endif

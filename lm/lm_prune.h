/* lm_prune: the paper's structured pruning applied to the word-level LM (lm/lm.h) — response statistics,
 * eigen rates, unit selection, real unit removal, the ISS group-lasso baseline, fine-tuning and the
 * report — i.e. the Penn Treebank half of the experiment (DESIGN.md 6b, issue 8).
 *
 * The pieces are the video classifier's (docs/METHOD.md "Pruning"); only the model differs:
 *
 *   1. responses  a no-gradient pass over training windows (B streams, windows of bptt steps, the state
 *                 carried across windows as in evaluation) accumulates, per LSTM layer l, the mean and
 *                 covariance of h_l over every step (prune/stats.h)
 *   2. rates      eigenvalues of each covariance → keep counts (prune/rates.h: energy τ, a target mean rate
 *                 searched over τ, or the uniform rule)
 *   3. selection  unit j of layer l is the vector of its rows of w_ih and w_hh over the four gates
 *                 (prune/criteria.h: gm, gm-exact, l1, l2, random); the best k_l are kept
 *   4. surgery    a unit owns the footprint of prune/surgery.h: gate rows j, H+j, 2H+j, 3H+j of w_ih, w_hh
 *                 and b, column j of w_hh and column j of its consumer — the next layer's w_ih, or out.w
 *                 for the last layer. The embedding and the softmax keep their sizes (V and E unchanged).
 *
 * Tied embeddings: the last layer's consumer is the embedding table itself (out.w IS embed.w, E = H_L), so
 * removing one of its units would remove an embedding dimension. That layer is never pruned: the plan
 * marks it not prunable (k = H), rates are assigned over the other layers only, plan.note says so, and
 * ISS leaves it out of the penalty. A tied model with a single layer cannot be pruned (LP_ERR_ARG).
 *
 * Masked == shrunk: zeroing a unit's footprint (lp_lm_prune_mask) makes its pre-activations 0, so with a
 * zero initial state c = 0 and h = 0 at every step (also across carried windows), and its outgoing columns
 * are 0: the smaller model of lp_lm_prune_shrink computes the same log-likelihoods up to the order of float
 * sums (tests/test_lm_prune.c).
 *
 * The LM's unit groups (lp_unit_group) carry the same fields as the video models' lp_unit_group; they are
 * converted to it (lp_lm_prune_groups) so the footprint code of prune/surgery.h is shared, and the index
 * maps of the shrink are built by lp_surgery_gather_groups (prune/surgery.h), which works on any
 * lp_unit_group array over an lp_params block.
 *
 * The whole job, as `lstmprune lm-prune` runs it (lp_lm_prune_run):
 *     baseline ckpt ─► [ISS: fine-tune with the group-lasso penalty, zero small units] ─► statistics ─►
 *     plan ─► pruned.ckpt (smaller) ─► fine-tune (OUT/finetune, a run directory of lm/lm_train.h) ─►
 *     report.md + report.json (sizes per layer, parameters, words/s, valid/test perplexity per model)
 */
#ifndef LP_LM_PRUNE_H
#define LP_LM_PRUNE_H
#include <stddef.h>
#include <stdint.h>

#include "core/kv.h"
#include "core/status.h"
#include "lm/lm.h"
#include "lm/ptb.h"
#include "model/paper.h"
#include "prune/criteria.h"
#include "prune/rates.h"
#include "prune/stats.h"
#include "prune/surgery.h"

/* ---- groups and footprints ---- */

/* The LM's layers as lp_unit_group descriptions (views into m's parameters; consumer = next w_ih, out.w,
 * or embed.w for a tied last layer), for the shared footprint code of prune/surgery.h. */
void lp_lm_prune_groups(const lp_lm *m, lp_unit_group *groups);

/* ---- plan ---- */

typedef struct {
    lp_rates_opts rates;     /* rule (eigen/uniform), tau, target_rate, round_to, count */
    lp_criterion criterion;  /* gm (default), gm-exact, l1, l2, random */
    int stats_windows;       /* training windows for the statistics; 0 = one whole epoch (default) */
    int stats_batch;         /* streams (default 20) */
    int stats_bptt;          /* window length (default 35) */
    uint64_t seed;           /* random criterion (stream LP_RNG_STREAM_PRUNE) */
    int compensate;          /* 1: shrink folds the removed units' mean responses into the biases that read
                              * them (prune/surgery.h; the plan needs statistics) */
} lp_lm_prune_opts;

void lp_lm_prune_opts_default(lp_lm_prune_opts *o);

typedef struct {
    char name[24];
    int h, k;             /* units before / kept */
    int prunable;         /* 0: the last layer of a tied model (kept whole) */
    double tau, rate, energy_kept;
    int64_t n_responses;
    double *eig;          /* [h] covariance spectrum, descending (NULL without statistics) */
    double *mean;         /* [h] mean response of each unit (NULL without statistics) */
    double *score;        /* [h] criterion score (smallest pruned first; NULL for kept-list plans) */
    int *kept;            /* [k] kept unit indices, ascending */
} lp_lm_prune_group;

typedef struct {
    int n_groups;
    lp_lm_prune_group g[LP_LM_MAX_LAYERS];
    lp_rates_result rates;  /* over the prunable groups */
    lp_lm_prune_opts opts;
    char method[64];        /* "eigen+gm", "uniform+l2", "iss", ... */
    char note[160];         /* "" or why a layer was left whole */
} lp_lm_prune_plan;

/* Step 1: statistics of every layer's h over `windows` training windows of ids[0..n) (0 = all windows of
 * an epoch; drop_last batching as in training). st must have room for m->cfg.layers accumulators
 * (initialised here; free each with lp_stats_free). Errors: LP_ERR_ARG (batch/bptt/short stream/ids),
 * LP_ERR_NUMERIC (a NaN/Inf response), LP_ERR_NOMEM. */
lp_status lp_lm_prune_stats(lp_lm *m, const int32_t *ids, size_t n, int batch, int bptt, int windows, lp_stats *st);

/* Steps 2 and 3. st may be NULL with the uniform rule (no spectra). Fills *p (free with
 * lp_lm_prune_plan_free). LP_ERR_ARG: bad options, eigen rule without statistics, nothing prunable. */
lp_status lp_lm_prune_plan_make(const lp_lm *m, lp_stats *st, const lp_lm_prune_opts *o, lp_lm_prune_plan *p);

/* A plan from given kept lists (ISS, tests): kept[l] (n_kept[l] ascending indices in [0,H_l), 1 <= n_kept
 * <= H_l) is copied; a tied last layer must keep all its units. LP_ERR_ARG naming the layer otherwise. */
lp_status lp_lm_prune_plan_from_kept(const lp_lm *m, int *const *kept, const int *n_kept, lp_lm_prune_plan *p);

void lp_lm_prune_plan_free(lp_lm_prune_plan *p);

/* ---- surgery ---- */

/* Zero the footprint of every unit the plan removes (in place; gradients untouched). */
lp_status lp_lm_prune_mask(lp_lm *m, const lp_lm_prune_plan *p);

/* A new, smaller LM: config with hidden[l] = k_l (everything else as in), kept gate rows, kept columns
 * of w_hh and of each consumer copied; with p->opts.compensate, the removed units' mean responses
 * (p->g[l].mean) are first folded into the biases that read them, on a copy. `in` is unchanged; on
 * error `out` holds nothing to free. */
lp_status lp_lm_prune_shrink(const lp_lm *in, const lp_lm_prune_plan *p, lp_lm *out);

/* Copy an array laid out like in's parameter block (values, gradients, momentum) into out's layout with
 * the maps of lp_lm_prune_shrink (out built from in with this plan; LP_ERR_ARG/LP_ERR_SHAPE otherwise). */
lp_status lp_lm_prune_gather(const lp_lm *in, const lp_lm_prune_plan *p, const lp_lm *out, const float *src, float *dst);

/* ---- ISS baseline (Wen et al. 2018; the penalty of prune/iss.h over the LM's footprints) ---- */

/* norms[j] = ||footprint of unit j of layer l||₂ (with its 4 bias entries), in double. */
lp_status lp_lm_iss_norms(const lp_lm *m, int l, double *norms);

/* Add λ·w/||w_{l,j}|| to the gradient of every footprint element of every prunable unit and return
 * Ω = λ Σ ||w_{l,j}|| (a zero group contributes 0 and no gradient). λ is relative to the training
 * objective of lp_lm_train_epoch (Zaremba: the sum over the window's steps of the batch-mean NLL).
 * LP_ERR_ARG (λ < 0 or not finite), LP_ERR_NUMERIC (a non-finite norm, naming layer and unit). */
lp_status lp_lm_iss_penalty(lp_lm *m, double lambda, double *penalty);

/* Zero (mask) every prunable unit whose footprint norm is below `threshold` (Wen et al.'s zeroing of
 * small groups during training, which makes the sparsity exact); *zeroed (may be NULL) = units zeroed
 * in total (including units already at zero). Never zeroes the last unit standing in a layer. */
lp_status lp_lm_iss_zero_below(lp_lm *m, double threshold, int *zeroed);

/* The plan keeping, per layer, the units with norm >= threshold (at least the largest one); tied last
 * layers are kept whole. */
lp_status lp_lm_iss_kept(const lp_lm *m, double threshold, lp_lm_prune_plan *p);

/* Hooks for lp_lm_train_opts / lp_lm_run_opts: user is an lp_lm_iss_state. */
typedef struct {
    double lambda;          /* λ */
    double zero_threshold;  /* step hook: zero units below this norm after each step (0 = off) */
    double last_penalty;    /* output: Ω at the last call */
    int64_t calls;          /* output */
    int zeroed;             /* output: units at zero after the last step hook */
} lp_lm_iss_state;

lp_status lp_lm_iss_grad_hook(void *user, lp_lm *m);
lp_status lp_lm_iss_step_hook(void *user, lp_lm *m);

/* ---- report ---- */

typedef struct {
    char label[32];       /* "baseline", "pruned", "fine-tuned" */
    char ckpt[512];
    int layers;
    int hidden[LP_LM_MAX_LAYERS];
    size_t params;
    size_t lstm_params;   /* parameters of the LSTM layers only */
    size_t ckpt_bytes;    /* 0 when unknown */
    double valid_ppl, test_ppl;
    double words_per_sec; /* evaluation throughput on the test set (1 thread unless configured) */
} lp_lm_report_row;

/* Measure a model: sizes, parameters, checkpoint bytes of `ckpt` (may be NULL), and valid/test
 * perplexity with the test words/s (batch B, window T; NaN perplexities when corpus is NULL). */
lp_status lp_lm_report_measure(lp_lm *m, const char *label, const char *ckpt, const lp_ptb_corpus *corpus, int batch,
                               int bptt, lp_lm_report_row *row);

/* Write report.md and report.json into dir: the plan (per layer: units before/after, τ, rate, energy
 * kept; the spectrum in the json) and the rows. plan may be NULL; info adds free key/values. */
lp_status lp_lm_report_write(const char *dir, const lp_lm_prune_plan *plan, const lp_lm_report_row *rows, int n_rows,
                             const lp_kv *info);

/* ---- the whole job ---- */

/* The checkpoint's model (*m, free with lp_lm_free) and keys (*meta, initialised by the caller), and the
 * corpus it was trained on from `data_dir`, else the checkpoint's data.dir, else LP_LM_DEFAULT_DATA_DIR
 * (the directory used goes to dir_out). When *corpus is NULL the corpus is loaded into *own (initialised
 * zero by the caller; free with lp_ptb_corpus_free) and *corpus points to it. LP_ERR_ARG when the corpus
 * vocabulary is not the model's. */
lp_status lp_lm_prune_load_base(const char *checkpoint, const char *data_dir, lp_lm *m, lp_kv *meta, lp_ptb_corpus *own,
                                const lp_ptb_corpus **corpus, char *dir_out, size_t dir_len);

typedef struct {
    const char *checkpoint;   /* the trained LM */
    const char *out_dir;      /* created: pruned.ckpt, finetune/, iss/, report.md, report.json */
    const char *data_dir;     /* NULL: the checkpoint's data.dir, else LP_LM_DEFAULT_DATA_DIR */
    lp_lm_prune_opts prune;
    /* ISS instead of eigen/criteria when iss_lambda > 0: iss_epochs of training from the checkpoint with
     * the penalty (lr iss_lr, no decay), units zeroed below iss_threshold after every step, then the
     * units whose norm is below iss_threshold are removed. */
    double iss_lambda, iss_threshold, iss_lr;
    int iss_epochs;
    /* Fine-tuning of the shrunk model (0 epochs = none): lr ft_lr for the first epoch, then multiplied
     * by ft_decay every epoch; batch and bptt of the checkpoint's run. The best validation epoch is kept. */
    int ft_epochs;
    double ft_lr, ft_decay;
    int eval_batch, eval_bptt; /* for the report's perplexities and words/s (20, 35) */
    int threads;               /* OpenBLAS threads (1) */
    int quiet;
} lp_lm_prune_job;

void lp_lm_prune_job_default(lp_lm_prune_job *j);

typedef struct {
    lp_lm_report_row rows[3]; /* baseline, pruned, fine-tuned (n_rows of them) */
    int n_rows;
    int hidden_before[LP_LM_MAX_LAYERS], hidden_after[LP_LM_MAX_LAYERS];
    int layers;
    double seconds;
} lp_lm_prune_result;

/* Run the job (diagram above). `corpus` may be NULL (loaded from data_dir). */
lp_status lp_lm_prune_run(const lp_lm_prune_job *j, const lp_ptb_corpus *corpus, lp_lm_prune_result *res);

#endif

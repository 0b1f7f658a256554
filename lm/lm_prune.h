/* lm_prune: the paper's structured pruning applied to the word-level LM — the Penn Treebank half of the
 * experiment. The method is the video classifier's, on the LM task (lm/lm_task.h): statistics of every
 * layer's h over training windows, eigen rates, selection, surgery (prune/plan.h, prune/surgery.h), or the
 * ISS group lasso (prune/iss.h); what is here is the job around it and its report.
 *
 * Tied embeddings: the last layer's consumer is the embedding table itself, so that layer is a fixed
 * group: never pruned, rates are assigned over the other layers only, plan.note says so, and ISS leaves it
 * out of the penalty. A tied model with a single layer cannot be pruned (LP_ERR_ARG).
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
#include "prune/plan.h"

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
lp_status lp_lm_report_write(const char *dir, const lp_prune_plan *plan, const lp_lm_report_row *rows, int n_rows,
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
    lp_prune_opts prune;      /* the method (statistics over prune.stats_batches windows, 0 = an epoch) */
    int stats_batch, stats_bptt; /* streams and window of the statistics pass (20, 35) */
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

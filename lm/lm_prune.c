/* lm_prune: the report and the whole pruning job for the word-level LM (contract in lm/lm_prune.h; the
 * method in docs/METHOD.md "Pruning" and "Surgery and ISS"). */
#include "lm/lm_prune.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/blas_env.h"
#include "core/ckpt.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/tape.h"
#include "lm/lm_task.h"
#include "model/runcfg.h"
#include "prune/iss.h"
#include "prune/surgery.h"
#include "train/trainer.h"

/* ---- report ---------------------------------------------------------------------------------------- */

lp_status lp_lm_report_measure(lp_lm *m, const char *label, const char *ckpt, const lp_ptb_corpus *corpus, int batch,
                               int bptt, lp_lm_report_row *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->label, sizeof row->label, "%s", label);
    snprintf(row->ckpt, sizeof row->ckpt, "%s", ckpt ? ckpt : "");
    row->layers = m->cfg.layers;
    for (int l = 0; l < m->cfg.layers; l++) {
        row->hidden[l] = m->cfg.hidden[l];
        const size_t H = (size_t)m->cfg.hidden[l], F = (size_t)m->groups[l].input_dim;
        row->lstm_params += 4 * H * (F + H) + 4 * H;
    }
    row->params = lp_lm_numel(m);
    struct stat sb;
    if (ckpt && stat(ckpt, &sb) == 0) row->ckpt_bytes = (size_t)sb.st_size;
    row->valid_ppl = row->test_ppl = NAN;
    if (!corpus) return LP_OK;
    lp_lm_eval_result ev;
    LP_TRY(lp_lm_evaluate(m, corpus->ids[LP_PTB_VALID], corpus->n[LP_PTB_VALID], batch, bptt, NULL, &ev));
    row->valid_ppl = ev.ppl;
    LP_TRY(lp_lm_evaluate(m, corpus->ids[LP_PTB_TEST], corpus->n[LP_PTB_TEST], batch, bptt, NULL, &ev));
    row->test_ppl = ev.ppl;
    row->words_per_sec = ev.words_per_sec;
    return LP_OK;
}

static void sizes_str(const int *h, int n, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    for (int l = 0; l < n && off < len; l++) off += (size_t)snprintf(buf + off, len - off, l ? ", %d" : "%d", h[l]);
}

/* JSON numbers with 10 significant digits (null when not finite). */
static void json_num(FILE *f, double v) { lp_json_num(f, v, 10); }

lp_status lp_lm_report_write(const char *dir, const lp_prune_plan *plan, const lp_lm_report_row *rows, int n_rows,
                             const lp_kv *info) {
    char path[4096];
    lp_atomic_file af;
    // report.md
    snprintf(path, sizeof path, "%s/report.md", dir);
    LP_TRY(lp_atomic_open(&af, path));
    FILE *f = af.f;
    fprintf(f, "# Pruning report: word-level LSTM LM on Penn Treebank\n\n");
    if (info && info->count) {
        for (int i = 0; i < info->count; i++) fprintf(f, "- %s: %s\n", info->keys[i], info->vals[i]);
        fputc('\n', f);
    }
    if (plan) {
        fprintf(f, "## Plan (%s)\n\n", plan->method);
        if (isfinite(plan->rates.tau)) fprintf(f, "Energy τ = %.4f; ", plan->rates.tau);
        fprintf(f, "mean rate over prunable layers %.4f", plan->rates.mean_rate);
        if (plan->rates.target_rate >= 0) fprintf(f, " (target %.4f)", plan->rates.target_rate);
        fprintf(f, ".\n\n");
        if (plan->note[0]) fprintf(f, "Note: %s.\n\n", plan->note);
        fprintf(f, "| layer | units before | units after | rate | τ | energy kept | responses |\n");
        fprintf(f, "|---|---:|---:|---:|---:|---:|---:|\n");
        for (int l = 0; l < plan->n_groups; l++) {
            const lp_prune_group_plan *g = &plan->g[l];
            fprintf(f, "| %s%s | %d | %d | %.4f | ", g->name, g->fixed ? " (tied, kept)" : "", g->h, g->k, g->rate);
            if (isfinite(g->tau)) fprintf(f, "%.4f", g->tau);
            else fprintf(f, "–");
            fprintf(f, " | ");
            if (isfinite(g->energy_kept)) fprintf(f, "%.4f", g->energy_kept);
            else fprintf(f, "–");
            fprintf(f, " | %lld |\n", (long long)g->n_responses);
        }
        fputc('\n', f);
    }
    fprintf(f, "## Models\n\n");
    fprintf(f, "| model | hidden sizes | parameters | LSTM parameters | checkpoint bytes | valid ppl | test ppl | "
               "words/s (test eval) |\n");
    fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int r = 0; r < n_rows; r++) {
        char sz[128];
        sizes_str(rows[r].hidden, rows[r].layers, sz, sizeof sz);
        fprintf(f, "| %s | %s | %zu | %zu | %zu | %.2f | %.2f | %.0f |\n", rows[r].label, sz, rows[r].params,
                rows[r].lstm_params, rows[r].ckpt_bytes, rows[r].valid_ppl, rows[r].test_ppl, rows[r].words_per_sec);
    }
    LP_TRY(lp_atomic_commit(&af));

    // report.json
    snprintf(path, sizeof path, "%s/report.json", dir);
    LP_TRY(lp_atomic_open(&af, path));
    f = af.f;
    fprintf(f, "{\n  \"task\": \"ptb-lm\",\n  \"info\": {");
    for (int i = 0; info && i < info->count; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        lp_json_str(f, info->keys[i]);
        fprintf(f, ": ");
        lp_json_str(f, info->vals[i]);
    }
    fprintf(f, "\n  },\n  \"plan\": ");
    if (!plan) fprintf(f, "null");
    else {
        fprintf(f, "{\n    \"method\": ");
        lp_json_str(f, plan->method);
        fprintf(f, ",\n    \"note\": ");
        lp_json_str(f, plan->note);
        fprintf(f, ",\n    \"tau\": ");
        json_num(f, plan->rates.tau);
        fprintf(f, ",\n    \"mean_rate\": ");
        json_num(f, plan->rates.mean_rate);
        fprintf(f, ",\n    \"target_rate\": ");
        json_num(f, plan->rates.target_rate >= 0 ? plan->rates.target_rate : NAN);
        fprintf(f, ",\n    \"layers\": [");
        for (int l = 0; l < plan->n_groups; l++) {
            const lp_prune_group_plan *g = &plan->g[l];
            fprintf(f, "%s\n      {\"name\": ", l ? "," : "");
            lp_json_str(f, g->name);
            fprintf(f, ", \"units_before\": %d, \"units_after\": %d, \"prunable\": %s, \"rate\": ", g->h, g->k,
                    g->fixed ? "false" : "true");
            json_num(f, g->rate);
            fprintf(f, ", \"tau\": ");
            json_num(f, g->tau);
            fprintf(f, ", \"energy_kept\": ");
            json_num(f, g->energy_kept);
            fprintf(f, ", \"responses\": %lld, \"spectrum\": ", (long long)g->n_responses);
            if (!g->eig) fprintf(f, "null");
            else {
                fputc('[', f);
                for (int j = 0; j < g->h; j++) {
                    if (j) fputc(',', f);
                    json_num(f, g->eig[j]);
                }
                fputc(']', f);
            }
            fprintf(f, ", \"kept\": [");
            for (int j = 0; j < g->k; j++) fprintf(f, "%s%d", j ? "," : "", g->kept[j]);
            fprintf(f, "]}");
        }
        fprintf(f, "\n    ]\n  }");
    }
    fprintf(f, ",\n  \"models\": [");
    for (int r = 0; r < n_rows; r++) {
        const lp_lm_report_row *w = &rows[r];
        fprintf(f, "%s\n    {\"label\": ", r ? "," : "");
        lp_json_str(f, w->label);
        fprintf(f, ", \"checkpoint\": ");
        lp_json_str(f, w->ckpt);
        fprintf(f, ", \"hidden\": [");
        for (int l = 0; l < w->layers; l++) fprintf(f, "%s%d", l ? "," : "", w->hidden[l]);
        fprintf(f, "], \"params\": %zu, \"lstm_params\": %zu, \"ckpt_bytes\": %zu, \"valid_ppl\": ", w->params,
                w->lstm_params, w->ckpt_bytes);
        json_num(f, w->valid_ppl);
        fprintf(f, ", \"test_ppl\": ");
        json_num(f, w->test_ppl);
        fprintf(f, ", \"words_per_sec\": ");
        json_num(f, w->words_per_sec);
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
    return lp_atomic_commit(&af);
}

/* ---- the whole job --------------------------------------------------------------------------------- */

void lp_lm_prune_job_default(lp_lm_prune_job *j) {
    memset(j, 0, sizeof *j);
    lp_prune_opts_default(&j->prune);
    j->prune.stats_batches = 0; /* one epoch of windows */
    j->stats_batch = 20;
    j->stats_bptt = 35;
    j->iss_lambda = 0;
    j->iss_threshold = 1e-3;
    j->iss_lr = 0.1;
    j->iss_epochs = 2;
    j->ft_epochs = 2;
    j->ft_lr = 0.1;
    j->ft_decay = 0.5;
    j->eval_batch = 20;
    j->eval_bptt = 35;
    j->threads = 1;
}

/* The configuration of a training run (ISS or fine-tuning) derived from the checkpoint's run. */
static lp_status derived_cfg(const lp_kv *meta, const char *data_dir, int epochs, double lr, double decay,
                             int decay_after, int threads, const char *recipe, lp_kv *cfg) {
    lp_kv_init(cfg);
    LP_TRY(lp_kv_set(cfg, "lm.recipe", recipe));
    LP_TRY(lp_kv_set(cfg, "data.dir", data_dir));
    const char *mw = lp_kv_get(meta, "data.max_words");
    LP_TRY(lp_kv_set(cfg, "data.max_words", mw ? mw : "0"));
    const char *copy[] = {"train.batch", "train.bptt", "train.clip", "train.seed", "train.eval_batch", "train.eval_bptt",
                          "train.momentum"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        const char *v = lp_kv_get(meta, copy[i]);
        if (v) LP_TRY(lp_kv_set(cfg, copy[i], v));
    }
    LP_TRY(lp_kv_set_int(cfg, "train.epochs", epochs));
    LP_TRY(lp_kv_set_double(cfg, "train.lr", lr));
    LP_TRY(lp_kv_set_double(cfg, "train.lr_decay", decay));
    LP_TRY(lp_kv_set_int(cfg, "train.decay_after", decay_after));
    LP_TRY(lp_kv_set_int(cfg, "train.threads", threads));
    return lp_kv_set_int(cfg, "train.test_every", 0);
}

static lp_status check_job(const lp_lm_prune_job *j) {
    if (!j->checkpoint || !j->out_dir) return lp_errorf(LP_ERR_ARG, "lm prune: a checkpoint and an output directory are needed");
    if (!(j->iss_lambda >= 0) || !isfinite(j->iss_lambda))
        return lp_errorf(LP_ERR_ARG, "lm prune: --iss-lambda must be >= 0, got %g", j->iss_lambda);
    if (j->iss_lambda > 0 && (j->iss_epochs < 1 || !(j->iss_threshold > 0) || !(j->iss_lr > 0)))
        return lp_errorf(LP_ERR_ARG, "lm prune: ISS needs --iss-epochs >= 1, --iss-threshold > 0 and --iss-lr > 0");
    if (j->ft_epochs < 0 || (j->ft_epochs > 0 && (!(j->ft_lr > 0) || !(j->ft_decay > 0 && j->ft_decay <= 1))))
        return lp_errorf(LP_ERR_ARG, "lm prune: fine-tuning needs --finetune-lr > 0 and --finetune-decay in (0, 1]");
    return LP_OK;
}

/* What one lp_lm_prune_run holds from start to end; prune_run_free releases all of it. */
typedef struct {
    const lp_lm_prune_job *j;
    const lp_ptb_corpus *corpus; /* the caller's, or &own */
    lp_ptb_corpus own;
    lp_task *base;               /* the checkpoint */
    lp_task *src;                /* ISS only: the model after group-lasso training */
    lp_task *small;              /* the pruned model */
    lp_kv meta;                  /* the checkpoint's keys */
    lp_kv info;                  /* how the run was made, for the report */
    lp_prune_plan plan;
    char data_dir[4096], pruned_path[4096];
} prune_run;

static void prune_run_free(prune_run *r) {
    lp_prune_plan_free(&r->plan);
    lp_task_free(r->small);
    lp_task_free(r->src);
    lp_task_free(r->base);
    lp_ptb_corpus_free(&r->own);
    lp_kv_free(&r->meta);
    lp_kv_free(&r->info);
}

lp_status lp_lm_prune_load_base(const char *checkpoint, const char *data_dir, lp_lm *m, lp_kv *meta, lp_ptb_corpus *own,
                                const lp_ptb_corpus **corpus, char *dir_out, size_t dir_len) {
    LP_TRY(lp_lm_load(m, checkpoint, meta));
    const char *dd = data_dir ? data_dir : lp_kv_get(meta, "data.dir");
    snprintf(dir_out, dir_len, "%s", dd ? dd : LP_LM_DEFAULT_DATA_DIR);
    if (!*corpus) {
        lp_kv dk;
        lp_kv_init(&dk);
        lp_kv_set(&dk, "data.dir", dir_out);
        const char *mw = lp_kv_get(meta, "data.max_words");
        lp_kv_set(&dk, "data.max_words", mw ? mw : "0");
        lp_status s = lp_lm_run_corpus(&dk, own);
        lp_kv_free(&dk);
        LP_TRY(s);
        *corpus = own;
    }
    if ((*corpus)->vocab.size != m->cfg.vocab)
        return lp_errorf(LP_ERR_ARG, "%s has a vocabulary of %d words, the data in %s %d", checkpoint, m->cfg.vocab,
                         dir_out, (*corpus)->vocab.size);
    return LP_OK;
}

/* The LM of checkpoint `path` as a task on the run's corpus, with the job's batching. */
static lp_status load_task(const prune_run *r, const char *path, lp_task **t) {
    lp_lm m;
    LP_TRY(lp_lm_load(&m, path, NULL));
    LP_TRY(lp_lm_task_new(&m, r->corpus, t));
    lp_lm_task *l = lp_lm_task_of(*t);
    l->stats_batch = r->j->stats_batch, l->stats_bptt = r->j->stats_bptt;
    l->eval_batch = r->j->eval_batch, l->eval_bptt = r->j->eval_bptt;
    return LP_OK;
}

static lp_lm *lm_of(lp_task *t) { return &lp_lm_task_of(t)->lm; }

/* ISS: group-lasso training from the checkpoint, zeroing small units after every step; the plan keeps
 * the units left non-zero. */
static lp_status plan_iss(prune_run *r) {
    const lp_lm_prune_job *j = r->j;
    char path[4096];
    lp_iss_state iss = {.lambda = j->iss_lambda, .zero_threshold = j->iss_threshold};
    lp_kv cfg;
    lp_status s = derived_cfg(&r->meta, r->data_dir, j->iss_epochs, j->iss_lr, 1.0, 0, j->threads, "iss", &cfg);
    snprintf(path, sizeof path, "%s/iss", j->out_dir);
    lp_train_opts ro = {.run_dir = path, .init_ckpt = j->checkpoint, .quiet = j->quiet,
                        .hooks = {.user = &iss, .after_backward = lp_iss_grad_hook, .after_update = lp_iss_update_hook}};
    const lp_task_kind kind = lp_lm_task_kind(r->corpus);
    lp_train_result rr;
    if (s == LP_OK && !j->quiet)
        fprintf(stderr, "lm-prune: ISS training, lambda %g, %d epochs at lr %g (%s)\n", j->iss_lambda, j->iss_epochs,
                j->iss_lr, path);
    if (s == LP_OK) s = lp_train(&kind, &cfg, &ro, &rr);
    lp_kv_free(&cfg);
    LP_TRY(s);
    snprintf(path, sizeof path, "%s/iss/last.ckpt", j->out_dir);
    LP_TRY(load_task(r, path, &r->src));
    LP_TRY(lp_iss_kept(r->src, j->iss_threshold, &r->plan));
    lp_kv_set_double(&r->info, "iss.lambda", j->iss_lambda);
    lp_kv_set_double(&r->info, "iss.threshold", j->iss_threshold);
    lp_kv_setf(&r->info, "iss.training", "%d epochs at lr %g from the checkpoint (%s/iss)", j->iss_epochs, j->iss_lr,
               j->out_dir);
    lp_kv_setf(&r->info, "iss.final_penalty", "%.6g", iss.last_penalty);
    return LP_OK;
}

/* A rate rule and a criterion: the eigen rule needs the response statistics of every layer first. */
static lp_status plan_criterion(prune_run *r) {
    const lp_lm_prune_job *j = r->j;
    const int need_stats = lp_prune_opts_need_stats(&j->prune);
    if (need_stats && !j->quiet)
        fprintf(stderr, "lm-prune: response statistics over %s training windows\n", j->prune.stats_batches ? "some" : "all");
    LP_TRY(lp_prune_plan_run(r->base, &j->prune, &r->plan));
    if (j->prune.compensate) LP_TRY(lp_kv_set(&r->info, "compensation", "mean responses of the removed units in the biases"));
    if (!need_stats) return lp_kv_set(&r->info, "statistics", "none (uniform rule)");
    char w[32] = "all";
    if (j->prune.stats_batches) snprintf(w, sizeof w, "the first %d", j->prune.stats_batches);
    return lp_kv_setf(&r->info, "statistics", "h of every layer at every step of %s training windows of %d x %d", w,
                      j->stats_batch, j->stats_bptt);
}

/* pruned.ckpt: the small model, its run keys (so lm-train --init and lm-eval find the data), the plan. */
static lp_status save_pruned(prune_run *r) {
    const char *copy[] = {"data.dir", "data.max_words", "lm.recipe", "train.batch", "train.bptt", "train.clip",
                          "train.seed", "train.eval_batch", "train.eval_bptt"};
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = LP_OK;
    for (size_t i = 0; i < sizeof copy / sizeof copy[0] && s == LP_OK; i++) {
        const char *v = lp_kv_get(&r->meta, copy[i]);
        if (v) s = lp_kv_set(&c.meta, copy[i], v);
    }
    if (s == LP_OK) s = lp_kv_set(&c.meta, "data.dir", r->data_dir);
    if (s == LP_OK) s = lp_lm_run_model_to_kv(&lm_of(r->small)->cfg, &c.meta);
    if (s == LP_OK) s = lp_kv_set(&c.meta, "plan.method", r->plan.method);
    if (s == LP_OK) s = lp_kv_set(&c.meta, "plan.compensate", r->plan.opts.compensate ? "mean" : "none");
    if (s == LP_OK) s = lp_kv_set(&c.meta, "plan.source", r->j->checkpoint);
    if (s == LP_OK) s = lp_kv_set_double(&c.meta, "plan.tau", r->plan.rates.tau);
    if (s == LP_OK) s = lp_kv_set_double(&c.meta, "plan.mean_rate", r->plan.rates.mean_rate);
    if (s == LP_OK) s = lp_task_save(r->small, &c);
    if (s == LP_OK) s = lp_ckpt_save(&c, r->pruned_path);
    lp_ckpt_free(&c);
    return s;
}

static void say_pruned(const prune_run *r, const lp_lm *from) {
    const lp_lm *small = lm_of(r->small);
    char a[128], b[128];
    sizes_str(from->cfg.hidden, from->cfg.layers, a, sizeof a);
    sizes_str(small->cfg.hidden, small->cfg.layers, b, sizeof b);
    fprintf(stderr, "lm-prune: %s: units %s -> %s, parameters %zu -> %zu (%s)\n", r->plan.method, a, b, lp_lm_numel(from),
            lp_lm_numel(small), r->pruned_path);
    if (r->plan.note[0]) fprintf(stderr, "lm-prune: note: %s\n", r->plan.note);
}

/* Fine-tune pruned.ckpt with the job's schedule; measure the best validation epoch into *row. */
static lp_status finetune(prune_run *r, lp_lm_report_row *row) {
    const lp_lm_prune_job *j = r->j;
    char path[4096];
    lp_kv cfg;
    lp_status s = derived_cfg(&r->meta, r->data_dir, j->ft_epochs, j->ft_lr, j->ft_decay, 1, j->threads, "finetune", &cfg);
    snprintf(path, sizeof path, "%s/finetune", j->out_dir);
    lp_train_opts ro = {.run_dir = path, .init_ckpt = r->pruned_path, .quiet = j->quiet};
    const lp_task_kind kind = lp_lm_task_kind(r->corpus);
    lp_train_result rr;
    if (s == LP_OK && !j->quiet)
        fprintf(stderr, "lm-prune: fine-tuning %d epochs from lr %g (x%g per epoch) in %s\n", j->ft_epochs, j->ft_lr,
                j->ft_decay, path);
    if (s == LP_OK) s = lp_train(&kind, &cfg, &ro, &rr);
    lp_kv_free(&cfg);
    LP_TRY(s);
    snprintf(path, sizeof path, "%s/finetune/best.ckpt", j->out_dir);
    lp_lm ft;
    memset(&ft, 0, sizeof ft);
    s = lp_lm_load(&ft, path, NULL);
    if (s == LP_OK) s = lp_lm_report_measure(&ft, "fine-tuned", path, r->corpus, j->eval_batch, j->eval_bptt, row);
    if (s == LP_OK)
        lp_kv_setf(&r->info, "fine-tuning", "%d epochs, lr %g then x%g per epoch; best validation epoch kept", j->ft_epochs,
                   j->ft_lr, j->ft_decay);
    if (ft.params.count) lp_lm_free(&ft);
    return s;
}

/* baseline -> plan (ISS training, or statistics + criterion) -> shrink -> pruned.ckpt -> fine-tune ->
 * report.md; a row of measurements after each model. */
static lp_status prune_run_all(prune_run *r, lp_lm_prune_result *res) {
    const lp_lm_prune_job *j = r->j;
    lp_lm base;
    LP_TRY(lp_lm_prune_load_base(j->checkpoint, j->data_dir, &base, &r->meta, &r->own, &r->corpus, r->data_dir,
                                 sizeof r->data_dir));
    LP_TRY(lp_lm_task_new(&base, r->corpus, &r->base));
    lp_lm_task *bt = lp_lm_task_of(r->base);
    bt->stats_batch = j->stats_batch, bt->stats_bptt = j->stats_bptt;
    bt->eval_batch = j->eval_batch, bt->eval_bptt = j->eval_bptt;
    if (!j->quiet) fprintf(stderr, "lm-prune: measuring the baseline\n");
    LP_TRY(lp_lm_report_measure(lm_of(r->base), "baseline", j->checkpoint, r->corpus, j->eval_batch, j->eval_bptt,
                                &res->rows[res->n_rows++]));
    LP_TRY(j->iss_lambda > 0 ? plan_iss(r) : plan_criterion(r));
    lp_task *from_task = r->src ? r->src : r->base;
    const lp_lm *from = lm_of(from_task);
    LP_TRY(lp_surgery_shrink(from_task, &r->plan, &r->small));
    snprintf(r->pruned_path, sizeof r->pruned_path, "%s/pruned.ckpt", j->out_dir);
    LP_TRY(save_pruned(r));
    if (!j->quiet) say_pruned(r, from);
    LP_TRY(lp_lm_report_measure(lm_of(r->small), "pruned", r->pruned_path, r->corpus, j->eval_batch, j->eval_bptt,
                                &res->rows[res->n_rows++]));
    if (j->ft_epochs > 0) LP_TRY(finetune(r, &res->rows[res->n_rows++]));
    lp_kv_set(&r->info, "checkpoint", j->checkpoint);
    lp_kv_set(&r->info, "data", r->data_dir);
    lp_kv_setf(&r->info, "evaluation", "batch %d, window %d, %d thread(s); words/s = test-set evaluation throughput",
               j->eval_batch, j->eval_bptt, j->threads);
    LP_TRY(lp_lm_report_write(j->out_dir, &r->plan, res->rows, res->n_rows, &r->info));
    res->layers = from->cfg.layers;
    for (int l = 0; l < res->layers; l++) {
        res->hidden_before[l] = from->cfg.hidden[l];
        res->hidden_after[l] = lm_of(r->small)->cfg.hidden[l];
    }
    return LP_OK;
}

lp_status lp_lm_prune_run(const lp_lm_prune_job *j, const lp_ptb_corpus *corpus, lp_lm_prune_result *res) {
    memset(res, 0, sizeof *res);
    const double t0 = lp_now_s();
    LP_TRY(check_job(j));
    LP_TRY(lp_mkdirs(j->out_dir));
    lp_blas_set_threads(j->threads);

    prune_run r;
    memset(&r, 0, sizeof r);
    r.j = j;
    r.corpus = corpus;
    lp_kv_init(&r.meta);
    lp_kv_init(&r.info);
    lp_status s = prune_run_all(&r, res);
    res->seconds = lp_now_s() - t0;
    prune_run_free(&r);
    return s;
}

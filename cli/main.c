/* lstmprune: one binary, git-style subcommands (see docs/CLI.md). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cli/cli.h"
#include "core/blas_env.h"
#include "core/dist.h"
#include "core/log.h"

/* Subcommands are added here as they are implemented: { "name", "summary", lp_cmd_name }. */
static const lp_cli_command commands[] = {
    {"synth", "write a synthetic data set in the YouTube-8M TFRecord layout", lp_cmd_synth},
    {"inspect", "list and verify the records of TFRecord files (ids, labels, frames, CRCs)", lp_cmd_inspect},
    {"train", "train a video classifier (paper or lstm model) into a run directory; --resume continues", lp_cmd_train},
    {"finetune", "continue training a (pruned) checkpoint", lp_cmd_finetune},
    {"eval", "evaluate a checkpoint: GAP@20, mAP, Hit@1, PERR", lp_cmd_eval},
    {"predict", "write Kaggle-format predictions (VideoId,LabelConfidencePairs)", lp_cmd_predict},
    {"prune", "remove LSTM units of a trained checkpoint (eigen rates + geometric median) -> smaller checkpoint", lp_cmd_prune},
    {"pipeline", "the main job: train -> prune -> fine-tune -> report (oneshot, iterative, soft, iss)", lp_cmd_pipeline},
    {"sweep", "the ablation grid from a config file: criteria x rate rules x rates x schedules (+ ISS), resumable", lp_cmd_sweep},
    {"sensitivity", "prune one unit group at a time at several rates (no fine-tuning): GAP curves, suggested rates", lp_cmd_sensitivity},
    {"info", "sizes per unit group, parameters, FLOPs per frame, file bytes of a checkpoint", lp_cmd_info},
    {"trace", "gates, cell state and output of every unit over one video or sentence, the units a plan removes, heatmaps", lp_cmd_trace},
    {"lm-train", "train a word-level LSTM language model on Penn Treebank (Zaremba recipes); --resume continues", lp_cmd_lm_train},
    {"lm-eval", "perplexity and words/s of a language-model checkpoint on PTB", lp_cmd_lm_eval},
    {"lm-prune", "prune a PTB language model (eigen+gm, uniform, ISS) -> smaller checkpoint, fine-tune, report", lp_cmd_lm_prune},
    {"lm-sensitivity", "prune one LM layer at a time at several rates (no fine-tuning): perplexity curves, suggested rates", lp_cmd_lm_sensitivity},
    {"gradcheck", "check a layer's or op's backward pass against central differences, per tensor (teaching, tests)", lp_cmd_gradcheck},
    {"export", "write a checkpoint (video model or LM, pruned or not) as an ONNX model for ONNX Runtime & co.", lp_cmd_export},
    {NULL, NULL, NULL},
};

void lp_cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    if (lp_dist_job_size() > 1) fprintf(stderr, "lstmprune %s (rank %d of %d): ", cmd, lp_dist_job_rank(), lp_dist_job_size());
    else fprintf(stderr, "lstmprune %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The library's messages (core/log.h) go to stderr. A progress line is redrawn in place on a terminal and
 * dropped elsewhere (a log file keeps only lines that mean something); the next message clears it. */
static int progress_open;

static void to_stderr(void *user, lp_log_level level, const char *msg) {
    (void)user;
    if (lp_dist_job_rank() > 0) { /* under mpirun rank 0 reports; the others only what goes wrong on them */
        if (level == LP_LOG_PROGRESS || level == LP_LOG_INFO) return;
        fprintf(stderr, "rank %d: %s\n", lp_dist_job_rank(), msg);
        return;
    }
    if (level == LP_LOG_PROGRESS) {
        if (!isatty(2)) return;
        fprintf(stderr, "\r\033[K%s", msg);
        fflush(stderr);
        progress_open = 1;
        return;
    }
    if (progress_open) fputs("\r\033[K", stderr);
    progress_open = 0;
    fprintf(stderr, "%s\n", msg);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: lstmprune <command> [options]   (lstmprune <command> --help for its options)\n\n"
            "Structured pruning of LSTMs via eigenanalysis and geometric median (Gkalelis & Mezaris, "
            "ISM 2020).\n\ncommands:\n");
    for (const lp_cli_command *c = commands; c->name; c++) fprintf(out, "  %-14s %s\n", c->name, c->summary);
}

/* The commands that run under mpirun (docs/SCALING.md): training splits every step over the ranks, and
 * evaluation every batch; the pruning commands train and evaluate that way, the rest of their work is
 * done by every rank alike and written by rank 0. */
static int distributed(const char *cmd) {
    static const char *const names[] = {"train",    "finetune", "eval",           "predict",  "prune",
                                        "pipeline", "sweep",    "sensitivity",    "lm-train", "lm-eval",
                                        "lm-prune", "lm-sensitivity"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(cmd, names[i])) return 1;
    return 0;
}

/* Under mpirun: a command that fails on one rank ends every rank (no rank waits for it in a collective). */
static int finish(int rc) {
    if (rc != 0 && lp_dist_job_size() > 1) lp_dist_abort(rc);
    lp_dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    lp_blas_env_apply(argv); /* OpenBLAS worker spin time: core/blas_env.h */
    if (lp_dist_init(&argc, &argv) != LP_OK) { /* a launcher started us, but MPI cannot start */
        fprintf(stderr, "lstmprune: %s\n", lp_last_error());
        return 1;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    lp_log_set_sink(to_stderr, NULL);
    for (const lp_cli_command *c = commands; c->name; c++) {
        if (strcmp(argv[1], c->name) != 0) continue;
        if (lp_dist_size() > 1 && !distributed(c->name)) {
            if (lp_dist_rank() == 0)
                lp_cli_error(c->name, "runs as one process: start it without mpirun (docs/SCALING.md lists the "
                                      "commands that run under it)");
            lp_dist_finalize(); /* every rank comes here: the job ends in order */
            return 2;
        }
        /* rank 0 prints the results; the others' standard output would repeat them (errors still show) */
        if (lp_dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) return finish(1);
        int rc = c->run(argc - 1, argv + 1);
        if (progress_open) fputc('\n', stderr); /* leave the last progress line on screen */
        return finish(rc);
    }
    fprintf(stderr, "lstmprune: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

/* cli: the `lstmprune` subcommands. Each lives in cli/cmd_<name>.c and returns the process exit code
 * (0 success, 1 runtime error, 2 usage error). Only cli/ prints to the user and exits. */
#ifndef LP_CLI_H
#define LP_CLI_H

#include "experiments/pipeline.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} lp_cli_command;

/* Print "lstmprune NAME: <message from lp_last_error()>" style errors. */
void lp_cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The end-of-run tables of the pruning commands (cli/show.c): per-group sizes, and one row per model. */
void lp_cli_print_groups(const lp_pipeline_result *r);
void lp_cli_print_models(const lp_task_ops *ops, const lp_report_model *rows, int n_rows);

/* "lstmprune SUBCOMMAND ARGS..." into buf (n bytes, truncated to fit), each argument that a shell would split
 * or expand in single quotes: the line a pruning run records in its output directory (command.txt).
 * argv[0] is the subcommand name. Returns buf. */
const char *lp_cli_command_line(int argc, char **argv, char *buf, size_t n);

/* Subcommands (cli/cmd_<name>.c). */
int lp_cmd_synth(int argc, char **argv);
int lp_cmd_inspect(int argc, char **argv);
int lp_cmd_train(int argc, char **argv);
int lp_cmd_finetune(int argc, char **argv);
int lp_cmd_eval(int argc, char **argv);
int lp_cmd_predict(int argc, char **argv);
int lp_cmd_info(int argc, char **argv);
int lp_cmd_trace(int argc, char **argv);
int lp_cmd_prune(int argc, char **argv);
int lp_cmd_pipeline(int argc, char **argv);
int lp_cmd_sweep(int argc, char **argv);
int lp_cmd_sensitivity(int argc, char **argv);
int lp_cmd_lm_train(int argc, char **argv);
int lp_cmd_lm_eval(int argc, char **argv);
int lp_cmd_lm_prune(int argc, char **argv);
int lp_cmd_lm_sensitivity(int argc, char **argv);
int lp_cmd_export(int argc, char **argv);
int lp_cmd_gradcheck(int argc, char **argv);
/* train and finetune share their implementation (cli/cmd_train.c). */
int lp_cmd_train_like(const char *cmd, int argc, char **argv, int finetune);

#endif

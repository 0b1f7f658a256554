/* args: table-driven flags that map onto configuration keys (core/kv.h).
 *
 * Most options of train/eval/predict/prune are configuration: `--lr 1e-3` sets `train.lr`. A table
 * describes each such flag once (name, key, type, help); the parser checks the value's type and range
 * where it reads it (so a bad flag names itself), `--help` prints every flag with its default, and the
 * resolved configuration is written to the run directory. Flags that are not configuration (--out,
 * --resume, --quiet) are given to the command's own handler. */
#ifndef LP_CLI_ARGS_H
#define LP_CLI_ARGS_H
#include <stdio.h>

#include "core/kv.h"

typedef enum {
    LP_ARG_STR,   /* any text */
    LP_ARG_INT,   /* integer >= min */
    LP_ARG_NUM,   /* finite number >= min */
    LP_ARG_FLAG,  /* no value: sets the key to 1 */
    LP_ARG_APPEND /* text; repeated flags are joined with ';' (glob patterns) */
} lp_arg_type;

typedef struct {
    const char *name;  /* long option without "--" */
    const char *key;   /* configuration key it sets; NULL = handled by the command */
    lp_arg_type type;
    double min;
    const char *metavar; /* value name in --help; for LP_ARG_FLAG: the value the flag sets (NULL = "1") */
    const char *help;
    const char *dflt;  /* shown in --help when the key has no default in the defaults kv */
} lp_arg;

/* Handler for flags whose key is NULL: return 0 on success, 2 on a usage error (message printed). */
typedef int (*lp_arg_handler)(void *user, const char *name, const char *value);

/* Parse argv (argv[0] = subcommand). Positional arguments are collected into *pos (may be NULL: then
 * any positional argument is an error). -h is short for --help, and -q for --quiet in a table that has
 * --quiet. Returns 0, 1 when --help was asked for, 2 on a usage error (message printed, naming the
 * flag). */
int lp_args_parse(const char *cmd, int argc, char **argv, const lp_arg *table, int n, lp_kv *kv,
                  lp_arg_handler handler, void *user, char ***pos, int *n_pos);

/* Print the table with defaults taken from `defaults` (or each entry's dflt). */
void lp_args_help(FILE *out, const lp_arg *table, int n, const lp_kv *defaults);

/* The flags shared by every command that reads YouTube-8M data. */
extern const lp_arg lp_args_data[];
extern const int lp_args_data_n;
/* Model flags (train). */
extern const lp_arg lp_args_model[];
extern const int lp_args_model_n;
/* Optimisation flags (train, finetune). */
extern const lp_arg lp_args_train[];
extern const int lp_args_train_n;

/* The pruning method's flags (prune, pipeline, lm-prune): rate rule, τ, target rate, criterion, rounding. */
extern const lp_arg lp_args_method[];
extern const int lp_args_method_n;
/* After them, the pruning step's own (prune, pipeline, trace): kept-eigenvalue counting, the statistics'
 * batches and steps, the random criterion's seed, mean compensation. */
extern const lp_arg lp_args_prune[];
extern const int lp_args_prune_n;

/* Report the failure of a configuration check (lp_runcfg_check, lp_lm_run_check: lp_last_error() names
 * the key) as a usage error under the flag of the table that sets that key ("--batch: train.batch = ...";
 * a key set by FLAG's "_flag" twin counts too). Returns 2. */
int lp_args_check_failed(const char *cmd, const lp_arg *table, int n);

/* --force, for the commands that write a run or output directory: a table entry whose handler sets a flag
 * that is then given to lp_args_claim_out. */
#define LP_ARG_FORCE \
    {"force", NULL, LP_ARG_FLAG, 0, NULL, "start over in a non-empty DIR: delete everything in it first", NULL}

/* Micro-batches and how their gradients are summed (train/trainer.h, docs/SCALING.md), for every command
 * that trains: train, finetune, pipeline, lm-train. */
#define LP_ARG_MICRO_BATCHES \
    {"micro-batches", "train.micro_batches", LP_ARG_INT, 0, "K", \
     "split each batch into K micro-batches (gradients summed; under mpirun spread over the ranks; 0 = one per rank)", "0"}
/* The precision of the products (core/gemm.h): train, finetune, pipeline, lm-train, eval, predict, lm-eval. */
#define LP_ARG_PRECISION_OR(dflt) \
    {"precision", "train.precision", LP_ARG_STR, 0, "P", \
     "matrix products in fp32 (OpenBLAS) or bf16 (oneDNN, fp32 accumulation; CPUs with AVX512-BF16): docs/METHOD.md", dflt}
#define LP_ARG_PRECISION LP_ARG_PRECISION_OR("fp32")
#define LP_ARG_REDUCE \
    {"reduce", "train.reduce", LP_ARG_STR, 0, "MODE", \
     "fast (MPI_Allreduce) or exact (the micro-batch gradients summed in order: the same weights for any number of ranks)", "fast"}

/* Before writing the output directory `dir`: under mpirun rank 0 claims it and the others take its answer. a non-empty one is refused unless `force` (which clears it;
 * core/rundir.h lp_rundir_claim). 0; 2 when refused (a usage error: the command line must say --resume
 * or --force), message printed; 1 when it cannot be read or cleared. */
int lp_args_claim_out(const char *cmd, const char *dir, int force);

/* Concatenate tables into `out` (capacity cap); returns the count. */
int lp_args_join(lp_arg *out, int cap, const lp_arg *a, int na, const lp_arg *b, int nb);

/* Drop the entries named in `names` (NULL-terminated) from table[n], keeping the order: a command leaves
 * out the shared flags that would do nothing there, so that it refuses them instead. Returns the count. */
int lp_args_without(lp_arg *table, int n, const char *const *names);

/* Build model.* keys from the model flags (model.kind/hidden/layers/experts/dropout) and the data
 * flags (input size from data.frame_features, data.classes). */
int lp_args_model_kv(const char *cmd, lp_kv *kv);

#endif

/* args: see args.h. */
#include "cli/args.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/alloc.h"
#include "core/dist.h"
#include "core/rundir.h"
#include "data/yt8m.h"
#include "model/model.h"
#include "model/runcfg.h"

const lp_arg lp_args_data[] = {
    {"train", "data.train", LP_ARG_APPEND, 0, "GLOB", "training shards (repeatable)", ""},
    {"valid", "data.valid", LP_ARG_APPEND, 0, "GLOB", "validation shards, evaluated after every epoch (repeatable)", ""},
    {"frame-features", "data.frame_features", LP_ARG_STR, 0, "SPEC", "frame features name:size,... (concatenated in order)", NULL},
    {"video-features", "data.video_features", LP_ARG_STR, 0, "SPEC", "video-level features name:size,...", NULL},
    {"level", "data.level", LP_ARG_STR, 0, "L", "record level: auto, frame or video", NULL},
    {"id-key", "data.id_key", LP_ARG_STR, 0, "KEY", "context key of the video id (video_id for 2017 files and AudioSet)", NULL},
    {"classes", "data.classes", LP_ARG_INT, 1, "N", "number of classes (3862 for the 2018 release, 4716 for 2017)", NULL},
    {"max-frames", "data.max_frames", LP_ARG_INT, 1, "N", "use at most the first N frames of a video", NULL},
    {"max-record-mb", "data.max_record_mb", LP_ARG_INT, 1, "MB", "longer records are refused (limits what one record can allocate)", "16"},
    {"padding", "data.padding", LP_ARG_STR, 0, "MODE", "mask: zeros, each video stops at its length (starter code); repeat: the last frame up to --max-frames, all read (public paper code)", NULL},
    {"no-l2norm", "data.l2norm", LP_ARG_FLAG, 0, "0", "do not L2-normalise each frame", "normalise"},
    {"shuffle-buffer", "data.shuffle_buffer", LP_ARG_INT, 1, "N", "records in the shuffle buffer", NULL},
    {"skip-bad", "data.skip_bad", LP_ARG_FLAG, 0, NULL, "skip and count records with bad content instead of stopping", NULL},
    {"prefetch", "data.prefetch", LP_ARG_INT, 0, "N", "batches decoded ahead by the prefetch thread (0 = no thread)", NULL},
    {"eval-batch", "train.eval_batch", LP_ARG_INT, 1, "N", "batch size for evaluation", NULL},
    {"top-k", "train.top_k", LP_ARG_INT, 1, "K", "k of GAP@k", NULL},
    {"threads", "train.threads", LP_ARG_INT, 0, "N", "OpenBLAS threads (0 = library default: all cores)", NULL},
};
const int lp_args_data_n = (int)(sizeof lp_args_data / sizeof lp_args_data[0]);

const lp_arg lp_args_method[] = {
    {"rate-rule", "prune.rule", LP_ARG_STR, 0, "RULE",
     "eigen (rates from the response spectra), uniform, or sensitivity (rates from each group's sensitivity curve)", "eigen"},
    {"tau", "prune.tau", LP_ARG_NUM, 0, "T", "energy kept per group by the eigen rule (without --target-rate)", "0.9"},
    {"target-rate", "prune.target_rate", LP_ARG_NUM, 0, "R", "mean pruning rate over groups; eigen: τ is searched", "none"},
    {"criterion", "prune.criterion", LP_ARG_STR, 0, "C", "unit selection: gm, gm-exact, l1, l2, random", "gm"},
    {"round-to", "prune.round_to", LP_ARG_INT, 0, "N", "keep group sizes multiples of N (0 = no rounding)", "0"},
    {"rates", "prune.rates", LP_ARG_STR, 0, "LIST",
     "per-group rates instead of a target: fw=0.3,lstm2=0.1 (names as `info` prints them; others kept whole) or one per group", NULL},
    {"units", "prune.units", LP_ARG_STR, 0, "LIST", "per-group sizes to keep: 14,14,16 (the model.units order) or NAME=N,...", NULL},
    {"rates-from", "prune.rates_from", LP_ARG_STR, 0, "FILE", "per-group rates from GROUP = rate lines (sensitivity's suggested.txt)", NULL},
    {"sensitivity", "prune.sensitivity", LP_ARG_STR, 0, "DIR",
     "sensitivity rule: the curves of an earlier `lstmprune sensitivity --out DIR` (default: measured on the trained model)", NULL},
};
const int lp_args_method_n = (int)(sizeof lp_args_method / sizeof lp_args_method[0]);

const lp_arg lp_args_prune[] = {
    {"keep-count", "prune.keep_count", LP_ARG_STR, 0, "RULE", "kept-eigenvalue counting: standard (the paper), public (#{k : C(k) > tau}, the public code) or below", "standard"},
    {"stats-batches", "prune.stats_batches", LP_ARG_INT, 0, "N", "training batches for the response statistics (0 = an epoch)", "20"},
    {"stats-steps", "prune.stats_steps", LP_ARG_STR, 0, "S", "responses at all valid steps or only the last", "all"},
    {"prune-seed", "prune.seed", LP_ARG_INT, 0, "S", "seed of the random criterion", "1"},
    {"compensate", "prune.compensate", LP_ARG_STR, 0, "MODE",
     "none, or mean: each removed unit's mean response goes into the biases that read it (oneshot, iterative)", "none"},
};
const int lp_args_prune_n = (int)(sizeof lp_args_prune / sizeof lp_args_prune[0]);

const lp_arg lp_args_model[] = {
    {"model", "model.arch", LP_ARG_STR, 0, "KIND", "paper (BiLSTM -> LSTM -> dense) or lstm (stacked LSTMs -> mixture of experts)", "paper"},
    {"hidden", "model.hidden", LP_ARG_INT, 1, "H", "width H: paper = BiLSTM H/2 per direction + LSTM H; lstm = H per layer", "1024"},
    {"layers", "model.layers", LP_ARG_INT, 1, "N", "unidirectional LSTM layers (paper: after the BiLSTM)", "1 (paper), 2 (lstm)"},
    {"experts", "model.experts_flag", LP_ARG_INT, 1, "E", "mixture-of-experts experts per class (lstm model)", "2"},
    {"dropout", "model.dropout_flag", LP_ARG_NUM, 0, "P", "dropout rate after each recurrent layer (training only)", "0"},
};
const int lp_args_model_n = (int)(sizeof lp_args_model / sizeof lp_args_model[0]);

const lp_arg lp_args_train[] = {
    {"epochs", "train.epochs", LP_ARG_INT, 1, "N", "training epochs", NULL},
    {"batch", "train.batch", LP_ARG_INT, 1, "B", "batch size", NULL},
    {"optimizer", "train.optimizer", LP_ARG_STR, 0, "NAME", "adam or sgd", NULL},
    {"lr", "train.lr", LP_ARG_NUM, 0, "LR", "learning rate", NULL},
    {"momentum", "train.momentum", LP_ARG_NUM, 0, "M", "SGD momentum", NULL},
    {"weight-decay", "train.weight_decay", LP_ARG_NUM, 0, "WD", "L2 weight decay (added to the gradient)", NULL},
    {"clip", "train.clip", LP_ARG_NUM, 0, "NORM", "clip the global gradient norm to NORM (0 = off)", NULL},
    {"weight-init", "train.weight_init", LP_ARG_STR, 0, "HOW", "initialisers: pytorch (uniform ±1/sqrt(H)) or keras (Glorot input, orthogonal recurrent, forget bias 1; the public code's)", NULL},
    {"bias-init", "train.bias_init", LP_ARG_STR, 0, "HOW", "LSTM biases: uniform, or pair (sum of two draws: PyTorch's b_ih + b_hh)", NULL},
    {"bias-lr-mult", "train.bias_lr_mult", LP_ARG_NUM, 0, "M", "lr multiplier of the LSTM biases (pair + 2 = nn.LSTM)", NULL},
    {"dense-l2", "train.dense_l2", LP_ARG_NUM, 0, "L", "add L times the sum of squares of the classifier's kernel (dense or MoE, not its bias) to the objective", NULL},
    {"adam-eps", "train.eps", LP_ARG_NUM, 0, "E", "Adam's epsilon (Keras's default: 1e-7)", NULL},
    {"lr-decay", "train.lr_decay", LP_ARG_NUM, 0, "R", "multiply the learning rate by R every --lr-decay-steps steps", NULL},
    {"lr-decay-steps", "train.lr_decay_steps", LP_ARG_INT, 1, "N", "steps between learning-rate decays", NULL},
    {"lr-smooth", "train.lr_staircase", LP_ARG_FLAG, 0, "0", "continuous instead of staircase decay", "staircase"},
    {"seed", "train.seed", LP_ARG_INT, 0, "S", "seed of initialisation, shuffling and dropout", NULL},
    {"save-every", "train.save_every", LP_ARG_INT, 0, "N", "also write last.ckpt every N steps (0 = per epoch only)", NULL},
    {"log-every", "train.log_every", LP_ARG_INT, 1, "N", "write a train.tsv row every N steps", NULL},
    {"iss-lambda", "train.iss_lambda", LP_ARG_NUM, 0, "L", "ISS group lasso over the LSTM units (proximal: a unit shrinks by lr*L per step); 0 = off", "0"},
    LP_ARG_MICRO_BATCHES,
    LP_ARG_REDUCE,
    {"shard-files", "data.shard_files", LP_ARG_FLAG, 0, "1",
     "under mpirun: rank r reads only the training files r, r+N, ... (default: every rank reads them all)", NULL},
    LP_ARG_PRECISION,
};
const int lp_args_train_n = (int)(sizeof lp_args_train / sizeof lp_args_train[0]);

int lp_args_claim_out(const char *cmd, const char *dir, int force) {
    int32_t rc = 0; /* one rank decides: several would each find the others' files */
    if (lp_dist_rank() == 0) {
        lp_status s = lp_rundir_claim(dir, force);
        if (s != LP_OK) lp_cli_error(cmd, "%s", lp_last_error());
        rc = s == LP_OK ? 0 : s == LP_ERR_ARG ? 2 : 1;
    }
    if (lp_dist_bcast(&rc, sizeof rc, 0) != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        return 1;
    }
    return rc;
}

int lp_args_join(lp_arg *out, int cap, const lp_arg *a, int na, const lp_arg *b, int nb) {
    int n = 0;
    for (int i = 0; i < na && n < cap; i++) out[n++] = a[i];
    for (int i = 0; i < nb && n < cap; i++) out[n++] = b[i];
    return n;
}

int lp_args_without(lp_arg *table, int n, const char *const *names) {
    int kept = 0;
    for (int i = 0; i < n; i++) {
        int drop = 0;
        for (const char *const *p = names; *p && !drop; p++) drop = !strcmp(table[i].name, *p);
        if (!drop) table[kept++] = table[i];
    }
    return kept;
}

void lp_args_help(FILE *out, const lp_arg *table, int n, const lp_kv *defaults) {
    for (int i = 0; i < n; i++) {
        const lp_arg *a = &table[i];
        char left[64];
        const char *mv = a->type == LP_ARG_FLAG ? NULL : a->metavar;
        snprintf(left, sizeof left, "--%s%s%s", a->name, mv ? " " : "", mv ? mv : "");
        const char *d = a->key && defaults && a->type != LP_ARG_FLAG ? lp_kv_get(defaults, a->key) : NULL;
        if (!d) d = a->dflt;
        fprintf(out, "  %-24s %s", left, a->help);
        if (d && *d) fprintf(out, " [default: %s]", d);
        fputc('\n', out);
    }
}

static int set_value(const char *cmd, const lp_arg *a, const char *val, lp_kv *kv) {
    char *end;
    errno = 0;
    if (a->type == LP_ARG_INT) {
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end || v < (long long)a->min) {
            lp_cli_error(cmd, "--%s: '%s' is not an integer >= %g", a->name, val, a->min);
            return 2;
        }
    } else if (a->type == LP_ARG_NUM) {
        double v = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(v) || v < a->min) {
            lp_cli_error(cmd, "--%s: '%s' is not a number >= %g", a->name, val, a->min);
            return 2;
        }
    }
    if (a->type == LP_ARG_APPEND && lp_kv_get(kv, a->key) && *lp_kv_get(kv, a->key)) {
        char buf[8192];
        snprintf(buf, sizeof buf, "%s;%s", lp_kv_get(kv, a->key), val);
        return lp_kv_set(kv, a->key, buf) == LP_OK ? 0 : 2;
    }
    if (strchr(val, '\n')) {
        lp_cli_error(cmd, "--%s: the value contains a newline", a->name);
        return 2;
    }
    const char *v = a->type == LP_ARG_FLAG ? (a->metavar ? a->metavar : "1") : val;
    return lp_kv_set(kv, a->key, v) == LP_OK ? 0 : 2;
}

/* getopt_long's '?': an unknown option, or a value given to a flag that takes none (getopt then puts the
 * flag's val in optopt: 1000 + its index). */
static void bad_option(const char *cmd, const lp_arg *table, char **argv) {
    if (optopt >= 1000) lp_cli_error(cmd, "option '--%s' takes no value", table[optopt - 1000].name);
    else if (optopt > 0) lp_cli_error(cmd, "unknown option '-%c' (see lstmprune %s --help)", optopt, cmd);
    else lp_cli_error(cmd, "unknown option '%s' (see lstmprune %s --help)", argv[optind - 1], cmd);
}

/* Whether the option getopt_long just returned was spelt out in full. getopt_long also takes any unique
 * prefix, so a flag a command does not have could silently become a longer one it has (eval --top 3 was
 * --top-k 3: GAP@3); a flag is therefore taken only under its whole name. The option's word is the last
 * one read, or the one before when its value came as a separate word. */
static int spelt_out(const lp_arg *a, char **argv) {
    const char *word = argv[optind - 1];
    if (optarg && optarg == argv[optind - 1] && optind >= 2) word = argv[optind - 2];
    if (strncmp(word, "--", 2)) return 1; /* -q, the short --quiet */
    size_t len = strlen(a->name);
    return !strncmp(word + 2, a->name, len) && (word[2 + len] == '\0' || word[2 + len] == '=');
}

static int find(const lp_arg *table, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(table[i].name, name)) return i;
    return -1;
}

int lp_args_parse(const char *cmd, int argc, char **argv, const lp_arg *table, int n, lp_kv *kv,
                  lp_arg_handler handler, void *user, char ***pos, int *n_pos) {
    struct option *opts = lp_calloc((size_t)n + 2, sizeof *opts);
    if (!opts) return 2;
    for (int i = 0; i < n; i++) {
        opts[i].name = table[i].name;
        opts[i].has_arg = table[i].type == LP_ARG_FLAG ? no_argument : required_argument;
        opts[i].val = 1000 + i;
    }
    opts[n].name = "help";
    opts[n].val = 'h';
    int quiet = find(table, n, "quiet");
    int rc = 0;
    optind = 1;
    opterr = 0;
    int c;
    while (rc == 0 && (c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
        if (c == 'q' && quiet >= 0) c = 1000 + quiet;
        if (c == 'h') {
            rc = 1;
        } else if (c == 'q') {
            lp_cli_error(cmd, "unknown option '-q' (see lstmprune %s --help)", cmd);
            rc = 2;
        } else if (c == '?') {
            bad_option(cmd, table, argv);
            rc = 2;
        } else if (c == ':') {
            lp_cli_error(cmd, "option '%s' needs a value", argv[optind - 1]);
            rc = 2;
        } else if (!spelt_out(&table[c - 1000], argv)) {
            const char *w = argv[optind - 1];
            if (optarg && optarg == w && optind >= 2) w = argv[optind - 2];
            lp_cli_error(cmd, "unknown option '%.*s' (see lstmprune %s --help)", (int)strcspn(w, "="), w, cmd);
            rc = 2;
        } else {
            const lp_arg *a = &table[c - 1000];
            if (a->key) rc = set_value(cmd, a, optarg ? optarg : "1", kv);
            else rc = handler ? handler(user, a->name, optarg) : 2;
        }
    }
    if (rc == 0) {
        int np = argc - optind;
        if (np > 0 && !pos) {
            lp_cli_error(cmd, "unexpected argument '%s'", argv[optind]);
            rc = 2;
        } else if (pos) {
            *pos = argv + optind;
            *n_pos = np;
        }
    }
    lp_free(opts);
    return rc;
}

int lp_args_model_kv(const char *cmd, lp_kv *kv) {
    lp_model_kind kind = LP_MODEL_PAPER;
    const char *arch = lp_kv_get(kv, "model.arch");
    if (arch && lp_model_kind_parse(arch, &kind) != LP_OK) {
        lp_cli_error(cmd, "--model: %s", lp_last_error());
        return 2;
    }
    lp_yt8m_features f;
    if (lp_yt8m_features_parse(&f, lp_kv_get(kv, "data.frame_features")) != LP_OK) {
        lp_cli_error(cmd, "--frame-features: %s", lp_last_error());
        return 2;
    }
    int hidden = (int)lp_kv_get_int_or(kv, "model.hidden", 1024);
    int layers = (int)lp_kv_get_int_or(kv, "model.layers", kind == LP_MODEL_PAPER ? 1 : 2);
    int experts = (int)lp_kv_get_int_or(kv, "model.experts_flag", 2);
    int classes = (int)lp_kv_get_int_or(kv, "data.classes", 3862);
    double dropout = lp_kv_get_double_or(kv, "model.dropout_flag", 0);
    if (!(dropout >= 0 && dropout < 1)) { /* the model's own message would not name the flag */
        lp_cli_error(cmd, "--dropout: model.dropout = %s is outside [0, 1)", lp_kv_get(kv, "model.dropout_flag"));
        return 2;
    }
    lp_status s = lp_model_default_kv(kv, kind, f.dim, hidden, layers, classes, experts, (float)dropout);
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        return 2;
    }
    return 0;
}

/* Where `key` occurs in msg as a whole key (not the start of a longer one), or NULL. */
static const char *find_key(const char *msg, const char *key, size_t len) {
    for (const char *p = strstr(msg, key); p; p = strstr(p + 1, key)) {
        char next = p[len];
        if (!(next == '_' || next == '.' || (next >= 'a' && next <= 'z') || (next >= '0' && next <= '9'))) return p;
    }
    return NULL;
}

int lp_args_check_failed(const char *cmd, const lp_arg *table, int n) {
    const char *msg = lp_last_error();
    const lp_arg *flag = NULL;
    const char *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!table[i].key) continue;
        size_t len = strlen(table[i].key);
        if (len > 5 && !strcmp(table[i].key + len - 5, "_flag")) len -= 5; /* model.dropout_flag sets model.dropout */
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)len, table[i].key);
        const char *p = find_key(msg, key, len);
        if (p && (!first || p < first)) first = p, flag = &table[i];
    }
    if (flag) lp_cli_error(cmd, "--%s: %s", flag->name, msg);
    else lp_cli_error(cmd, "%s", msg);
    return 2;
}

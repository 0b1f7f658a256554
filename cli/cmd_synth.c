/* cmd_synth: `lstmprune synth` — write a synthetic data set in the YouTube-8M TFRecord layout
 * (generative model: data/synth.h and docs/DATA.md).
 *
 * The flags are lp_args tables (cli/args.h) whose keys are the flag names themselves, so that a value
 * checked after parsing (upper bounds, --splits, feature specs) is reported under its flag. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/status.h"
#include "data/synth.h"
#include "data/yt8m.h"

/* Three tables for the three headings of --help; parsing uses them joined. */
static const lp_arg dataset_args[] = {
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory (created; required)", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "no progress output", NULL},
    {"videos", "videos", LP_ARG_INT, 1, "N", "number of videos", NULL},
    {"classes", "classes", LP_ARG_INT, 2, "C", "number of classes", NULL},
    {"seed", "seed", LP_ARG_INT, 0, "S", "random seed", NULL},
    {"splits", "splits", LP_ARG_STR, 0, "A,B,C", "train,validate,test fractions", NULL},
    {"shards", "shards", LP_ARG_INT, 1, "K", "files per split, at most", NULL},
    {"video-level", "video-level", LP_ARG_FLAG, 0, NULL, "also write video-level Examples (mean features) to DIR/video/", NULL},
    {"frames-min", "frames-min", LP_ARG_INT, 1, "N", "shortest video in frames", NULL},
    {"frames-max", "frames-max", LP_ARG_INT, 1, "N", "longest video in frames", NULL},
    {"labels-min", "labels-min", LP_ARG_INT, 1, "N", "fewest labels per video", NULL},
    {"labels-max", "labels-max", LP_ARG_INT, 1, "N", "most labels per video", NULL},
};

static const lp_arg format_args[] = {
    {"frame-features", "frame-features", LP_ARG_STR, 0, "SPEC", "frame feature lists, name:size,...", NULL},
    {"video-features", "video-features", LP_ARG_STR, 0, "SPEC", "video-level features (follows --frame-features: rgb:N -> mean_rgb:N)", NULL},
    {"id-key", "id-key", LP_ARG_STR, 0, "KEY", "context key of the id", NULL},
    {"labels-key", "labels-key", LP_ARG_STR, 0, "KEY", "context key of the labels", NULL},
};

static const lp_arg model_args[] = {
    {"latent", "latent", LP_ARG_INT, 1, "L", "latent dimensions", NULL},
    {"vocab", "vocab", LP_ARG_INT, 0, "V", "shared latent states, 0 = 2*latent", NULL},
    {"states", "states", LP_ARG_INT, 1, "K", "states per class trajectory", NULL},
    {"state-jitter", "state-jitter", LP_ARG_NUM, 0, "X", "class-specific perturbation of shared states", NULL},
    {"pair-fraction", "pair-fraction", LP_ARG_NUM, 0, "X", "fraction of classes in time-reversed pairs", NULL},
    {"zipf", "zipf", LP_ARG_NUM, 0, "S", "label prior exponent, p(c) ~ 1/(c+Q)^S", NULL},
    {"zipf-offset", "zipf-offset", LP_ARG_NUM, 0, "Q", "label prior offset", NULL},
    {"latent-noise", "latent-noise", LP_ARG_NUM, 0, "X", "AR(1) latent noise level", NULL},
    {"noise-rho", "noise-rho", LP_ARG_NUM, 0, "X", "AR(1) coefficient", NULL},
    {"offset", "offset", LP_ARG_NUM, 0, "X", "per-video latent offset level", NULL},
    {"feature-noise", "feature-noise", LP_ARG_NUM, 0, "X", "per-feature noise before quantisation", NULL},
    {"window-jitter", "window-jitter", LP_ARG_NUM, 0, "X", "random cut of each label's trajectory at either end", NULL},
};

#define COUNT(t) ((int)(sizeof t / sizeof t[0]))

/* What the flags configure: the generative model and how it is written. */
typedef struct {
    lp_synth_config c;
    lp_synth_write_opts o;
} job;

static void job_default(job *j) {
    lp_synth_config_default(&j->c, 100, 1);
    lp_synth_write_opts_default(&j->o);
}

/* Where a numeric flag's value goes: exactly one of u, i, d is set. The table's min is the lower bound
 * (checked while parsing); max is the upper bound of an integer, the same as the library's, checked here
 * so that the message names the flag. Real numbers are range-checked by lp_synth_config_check. */
typedef struct {
    const char *flag;
    uint64_t *u;
    int *i;
    double *d;
    long long max;
} field;

#define MAX_FIELDS 32

static int fields_of(job *j, field *out) {
    lp_synth_config *c = &j->c;
    lp_synth_write_opts *o = &j->o;
    const field f[] = {
        {"videos", .u = &o->videos, .max = 1LL << 40},
        {"classes", .i = &c->classes, .max = 1 << 24},
        {"seed", .u = &c->seed, .max = INT64_MAX},
        {"shards", .i = &o->shards, .max = 100000},
        {"frames-min", .i = &c->frames_min, .max = 100000},
        {"frames-max", .i = &c->frames_max, .max = 100000},
        {"labels-min", .i = &c->labels_min, .max = LP_SYNTH_MAX_LABELS},
        {"labels-max", .i = &c->labels_max, .max = LP_SYNTH_MAX_LABELS},
        {"latent", .i = &c->latent, .max = 1024},
        {"vocab", .i = &c->vocab, .max = 1 << 20},
        {"states", .i = &c->states, .max = 64},
        {"state-jitter", .d = &c->state_jitter},
        {"pair-fraction", .d = &c->pair_fraction},
        {"zipf", .d = &c->zipf_s},
        {"zipf-offset", .d = &c->zipf_q},
        {"latent-noise", .d = &c->latent_noise},
        {"noise-rho", .d = &c->noise_rho},
        {"offset", .d = &c->offset},
        {"feature-noise", .d = &c->feature_noise},
        {"window-jitter", .d = &c->window_jitter},
    };
    _Static_assert(COUNT(f) <= MAX_FIELDS, "MAX_FIELDS too small");
    memcpy(out, f, sizeof f);
    return COUNT(f);
}

/* The library's defaults as text under the flag names, for --help. */
static void help_defaults(lp_kv *d) {
    job j;
    job_default(&j);
    field f[MAX_FIELDS];
    int n = fields_of(&j, f);
    for (int k = 0; k < n; k++) {
        if (f[k].u) lp_kv_setf(d, f[k].flag, "%llu", (unsigned long long)*f[k].u);
        else if (f[k].i) lp_kv_set_int(d, f[k].flag, *f[k].i);
        else lp_kv_setf(d, f[k].flag, "%g", *f[k].d);
    }
    lp_kv_setf(d, "splits", "%g,%g,%g", j.o.split[0], j.o.split[1], j.o.split[2]);
    lp_kv_set(d, "frame-features", LP_YT8M_DEFAULT_FRAME_FEATURES);
    lp_kv_set(d, "video-features", LP_YT8M_DEFAULT_VIDEO_FEATURES);
    lp_kv_set(d, "id-key", LP_YT8M_DEFAULT_ID_KEY);
    lp_kv_set(d, "labels-key", LP_YT8M_DEFAULT_LABELS_KEY);
}

static void usage(void) {
    lp_kv d;
    lp_kv_init(&d);
    help_defaults(&d);
    printf("usage: lstmprune synth --out DIR [options]\n\n"
           "Writes frame-level YouTube-8M shards (tf.train.SequenceExample: id, labels; rgb 1024 B and audio\n"
           "128 B per frame, quantised) with planted temporal structure, split into train/validate/test:\n"
           "DIR/train0000.tfrecord ... DIR/validate0000.tfrecord ... DIR/test0000.tfrecord ..., plus\n"
           "DIR/classes.csv and DIR/synth.txt. Same options and seed give byte-identical files.\n"
           "See docs/DATA.md for the generative model.\n\n");
    printf("data set:\n");
    lp_args_help(stdout, dataset_args, COUNT(dataset_args), &d);
    printf("format:\n");
    lp_args_help(stdout, format_args, COUNT(format_args), &d);
    printf("generative model:\n");
    lp_args_help(stdout, model_args, COUNT(model_args), &d);
    lp_kv_free(&d);
}

/* The numeric flags given, onto the job (values the parser already found to be numbers >= min). */
static int take_numbers(const lp_kv *kv, job *j) {
    field f[MAX_FIELDS];
    int n = fields_of(j, f);
    for (int k = 0; k < n; k++) {
        const char *v = lp_kv_get(kv, f[k].flag);
        if (!v) continue;
        if (f[k].d) {
            *f[k].d = strtod(v, NULL);
            continue;
        }
        long long x = strtoll(v, NULL, 10);
        if (x > f[k].max) {
            lp_cli_error("synth", "--%s: '%s' is not an integer <= %lld", f[k].flag, v, f[k].max);
            return 2;
        }
        if (f[k].u) *f[k].u = (uint64_t)x;
        else *f[k].i = (int)x;
    }
    return 0;
}

/* --splits A,B,C: three fractions in [0, 1] summing to 1 within 1e-6 (lp_synth_write's rule, checked
 * here so that the message names the flag and comes before any output). */
static int take_splits(const char *s, double out[3]) {
    const char *p = s;
    double sum = 0;
    int ok = 1;
    for (int k = 0; k < 3 && ok; k++) {
        char *end;
        out[k] = strtod(p, &end);
        ok = end != p && *end == (k < 2 ? ',' : '\0') && out[k] >= 0 && out[k] <= 1;
        sum += out[k];
        p = end + 1;
    }
    if (ok && fabs(sum - 1.0) <= 1e-6) return 0;
    lp_cli_error("synth", "--splits: '%s' is not three fractions in [0, 1] that sum to 1, like 0.7,0.15,0.15", s);
    return 2;
}

/* Without --video-features the video-level names follow the frame-level ones: rgb:1024 ->
 * mean_rgb:1024, so that --video-level works with any --frame-features. */
static void derive_video_spec(const lp_yt8m_features *frame, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < frame->count && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%smean_%s:%d", k ? "," : "", frame->f[k].name, frame->f[k].size);
}

static int take_format(const lp_kv *kv, job *j) {
    const char *frame = lp_kv_get(kv, "frame-features"), *video = lp_kv_get(kv, "video-features");
    lp_yt8m_features vf;
    if (frame && lp_yt8m_features_parse(&j->c.frame, frame) != LP_OK) {
        lp_cli_error("synth", "--frame-features: %s", lp_last_error());
        return 2;
    }
    if (video && lp_yt8m_features_parse(&vf, video) != LP_OK) {
        lp_cli_error("synth", "--video-features: %s", lp_last_error());
        return 2;
    }
    char derived[LP_YT8M_MAX_FEATURES * (LP_YT8M_NAME_MAX + 16)];
    if (frame && !video) {
        derive_video_spec(&j->c.frame, derived, sizeof derived);
        video = derived;
    }
    if (lp_yt8m_config_set(&j->o.yt8m, frame, video, lp_kv_get(kv, "id-key"), lp_kv_get(kv, "labels-key")) != LP_OK) {
        lp_cli_error("synth", "%s", lp_last_error());
        return 2;
    }
    return 0;
}

/* Library messages start with "synth: "; the CLI prefix already says so. */
static const char *msg(void) {
    const char *m = lp_last_error();
    return strncmp(m, "synth: ", 7) ? m : m + 7;
}

/* Everything the flags say, onto the job, checked as the library will check it. */
static int take_flags(const lp_kv *kv, job *j) {
    if (take_numbers(kv, j)) return 2;
    const char *splits = lp_kv_get(kv, "splits");
    if (splits && take_splits(splits, j->o.split)) return 2;
    j->o.video_level = lp_kv_get(kv, "video-level") != NULL;
    if (take_format(kv, j)) return 2;
    j->o.yt8m.classes = j->c.classes;
    if (lp_synth_config_check(&j->c) != LP_OK) {
        lp_cli_error("synth", "%s", msg());
        return 2;
    }
    return 0;
}

typedef struct {
    const char *out;
    int quiet;
} synth_flags;

static int handle(void *user, const char *name, const char *value) {
    synth_flags *f = user;
    if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    return 0;
}

static void progress(void *ctx, const char *path, uint64_t records, uint64_t bytes) {
    (void)ctx;
    printf("wrote %s: %llu records, %.1f MB\n", path, (unsigned long long)records, (double)bytes / 1e6);
    fflush(stdout);
}

static int run(const synth_flags *f, job *j) {
    j->o.out_dir = f->out;
    if (!f->quiet) {
        j->o.progress = progress;
        printf("synth: %llu videos, %d classes, seed %llu -> %s\n", (unsigned long long)j->o.videos, j->c.classes,
               (unsigned long long)j->c.seed, f->out);
    }
    lp_status s = lp_synth_write(&j->c, &j->o);
    if (s != LP_OK) {
        lp_cli_error("synth", "%s", msg());
        return s == LP_ERR_ARG ? 2 : 1;
    }
    return 0;
}

int lp_cmd_synth(int argc, char **argv) {
    lp_arg table[64];
    int n = lp_args_join(table, 64, dataset_args, COUNT(dataset_args), format_args, COUNT(format_args));
    n = lp_args_join(table, 64, table, n, model_args, COUNT(model_args));
    lp_kv kv;
    lp_kv_init(&kv);
    synth_flags f = {0};
    job j;
    job_default(&j);
    int rc = lp_args_parse("synth", argc, argv, table, n, &kv, handle, &f, NULL, NULL);
    if (rc == 1) {
        usage();
        rc = 0;
    } else if (rc == 0 && !f.out) {
        lp_cli_error("synth", "--out DIR is required");
        rc = 2;
    } else if (rc == 0 && (rc = take_flags(&kv, &j)) == 0) {
        rc = run(&f, &j);
    }
    lp_kv_free(&kv);
    return rc;
}

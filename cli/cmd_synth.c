/* cmd_synth: `lstmprune synth` — write a synthetic data set in the YouTube-8M TFRecord layout
 * (generative model: data/synth.h and docs/DATA.md). */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/status.h"
#include "data/synth.h"
#include "data/yt8m.h"

static void usage(FILE *out) {
    lp_synth_config c;
    lp_synth_config_default(&c, 100, 1);
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    fprintf(out,
            "usage: lstmprune synth --out DIR [options]\n\n"
            "Writes frame-level YouTube-8M shards (tf.train.SequenceExample: id, labels; rgb 1024 B and audio\n"
            "128 B per frame, quantised) with planted temporal structure, split into train/validate/test:\n"
            "DIR/train0000.tfrecord ... DIR/validate0000.tfrecord ... DIR/test0000.tfrecord ..., plus\n"
            "DIR/classes.csv and DIR/synth.txt. Same options and seed give byte-identical files.\n"
            "See docs/DATA.md for the generative model.\n\n"
            "data set:\n"
            "  --out DIR              output directory (created; required)\n"
            "  --videos N             number of videos (default %llu)\n"
            "  --classes C            number of classes (default 100)\n"
            "  --seed S               random seed (default 1)\n"
            "  --splits A,B,C         train,validate,test fractions (default %g,%g,%g)\n"
            "  --shards K             files per split, at most (default %d)\n"
            "  --video-level          also write video-level Examples (mean features) to DIR/video/\n"
            "  --frames-min N         shortest video in frames (default %d)\n"
            "  --frames-max N         longest video in frames (default %d)\n"
            "  --labels-min N         fewest labels per video (default %d)\n"
            "  --labels-max N         most labels per video (default %d)\n"
            "format:\n"
            "  --frame-features SPEC  frame feature lists (default %s)\n"
            "  --video-features SPEC  video-level features (default %s)\n"
            "  --id-key KEY           context key of the id (default %s)\n"
            "  --labels-key KEY       context key of the labels (default %s)\n"
            "generative model:\n"
            "  --latent L             latent dimensions (default %d)\n"
            "  --vocab V              shared latent states, 0 = 2*latent (default 0)\n"
            "  --states K             states per class trajectory (default %d)\n"
            "  --state-jitter X       class-specific perturbation of shared states (default %g)\n"
            "  --pair-fraction X      fraction of classes in time-reversed pairs (default %g)\n"
            "  --zipf S               label prior exponent, p(c) ~ 1/(c+Q)^S (default %g)\n"
            "  --zipf-offset Q        label prior offset (default %g)\n"
            "  --latent-noise X       AR(1) latent noise level (default %g)\n"
            "  --noise-rho X          AR(1) coefficient (default %g)\n"
            "  --offset X             per-video latent offset level (default %g)\n"
            "  --feature-noise X      per-feature noise before quantisation (default %g)\n"
            "  --window-jitter X      random cut of each label's trajectory at either end (default %g)\n"
            "  --quiet                no progress output\n"
            "  --help                 this text\n",
            (unsigned long long)o.videos, o.split[0], o.split[1], o.split[2], o.shards, c.frames_min,
            c.frames_max, c.labels_min, c.labels_max, LP_YT8M_DEFAULT_FRAME_FEATURES,
            LP_YT8M_DEFAULT_VIDEO_FEATURES, LP_YT8M_DEFAULT_ID_KEY, LP_YT8M_DEFAULT_LABELS_KEY, c.latent, c.states,
            c.state_jitter, c.pair_fraction, c.zipf_s, c.zipf_q, c.latent_noise, c.noise_rho, c.offset,
            c.feature_noise, c.window_jitter);
}

static int parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        lp_cli_error("synth", "%s expects an integer in [%lld, %lld], got '%s'", opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_double(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        lp_cli_error("synth", "%s expects a number, got '%s'", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_splits(const char *s, double out[3]) {
    char *end;
    const char *p = s;
    for (int k = 0; k < 3; k++) {
        errno = 0;
        out[k] = strtod(p, &end);
        if (errno || end == p || (k < 2 && *end != ',') || (k == 2 && *end)) {
            lp_cli_error("synth", "--splits expects three fractions like 0.7,0.15,0.15, got '%s'", s);
            return 0;
        }
        p = end + 1;
    }
    return 1;
}

/* Library messages start with "synth: "; the CLI prefix already says so. */
static const char *msg(void) {
    const char *m = lp_last_error();
    return strncmp(m, "synth: ", 7) ? m : m + 7;
}

static void progress(void *ctx, const char *path, uint64_t records, uint64_t bytes) {
    (void)ctx;
    printf("wrote %s: %llu records, %.1f MB\n", path, (unsigned long long)records, (double)bytes / 1e6);
    fflush(stdout);
}

int lp_cmd_synth(int argc, char **argv) {
    enum {
        O_OUT = 256, O_VIDEOS, O_CLASSES, O_SEED, O_SPLITS, O_SHARDS, O_VIDEO_LEVEL, O_FMIN, O_FMAX, O_LMIN,
        O_LMAX, O_FRAME_FEAT, O_VIDEO_FEAT, O_ID_KEY, O_LABELS_KEY, O_LATENT, O_VOCAB, O_STATES, O_JITTER,
        O_PAIRS, O_ZIPF, O_ZIPF_Q, O_LNOISE, O_RHO, O_OFFSET, O_FNOISE, O_WINDOW, O_QUIET, O_HELP
    };
    static const struct option opts[] = {
        {"out", required_argument, 0, O_OUT},
        {"videos", required_argument, 0, O_VIDEOS},
        {"classes", required_argument, 0, O_CLASSES},
        {"seed", required_argument, 0, O_SEED},
        {"splits", required_argument, 0, O_SPLITS},
        {"shards", required_argument, 0, O_SHARDS},
        {"video-level", no_argument, 0, O_VIDEO_LEVEL},
        {"frames-min", required_argument, 0, O_FMIN},
        {"frames-max", required_argument, 0, O_FMAX},
        {"labels-min", required_argument, 0, O_LMIN},
        {"labels-max", required_argument, 0, O_LMAX},
        {"frame-features", required_argument, 0, O_FRAME_FEAT},
        {"video-features", required_argument, 0, O_VIDEO_FEAT},
        {"id-key", required_argument, 0, O_ID_KEY},
        {"labels-key", required_argument, 0, O_LABELS_KEY},
        {"latent", required_argument, 0, O_LATENT},
        {"vocab", required_argument, 0, O_VOCAB},
        {"states", required_argument, 0, O_STATES},
        {"state-jitter", required_argument, 0, O_JITTER},
        {"pair-fraction", required_argument, 0, O_PAIRS},
        {"zipf", required_argument, 0, O_ZIPF},
        {"zipf-offset", required_argument, 0, O_ZIPF_Q},
        {"latent-noise", required_argument, 0, O_LNOISE},
        {"noise-rho", required_argument, 0, O_RHO},
        {"offset", required_argument, 0, O_OFFSET},
        {"feature-noise", required_argument, 0, O_FNOISE},
        {"window-jitter", required_argument, 0, O_WINDOW},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    lp_synth_config c;
    lp_synth_config_default(&c, 100, 1);
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    const char *frame_spec = NULL, *video_spec = NULL, *id_key = NULL, *labels_key = NULL;
    int quiet = 0;
    long long v;
    optind = 1;
    opterr = 0;
    for (;;) {
        int oi = 0, ch = getopt_long(argc, argv, "", opts, &oi);
        if (ch == -1) break;
        const char *name = argv[optind - 1];
        int ok = 1;
        switch (ch) {
        case O_OUT: o.out_dir = optarg; break;
        case O_VIDEOS: ok = parse_int("--videos", optarg, 1, 1ll << 40, &v); o.videos = (uint64_t)v; break;
        case O_CLASSES: ok = parse_int("--classes", optarg, 2, 1 << 24, &v); c.classes = (int)v; break;
        case O_SEED: ok = parse_int("--seed", optarg, 0, INT64_MAX, &v); c.seed = (uint64_t)v; break;
        case O_SPLITS: ok = parse_splits(optarg, o.split); break;
        case O_SHARDS: ok = parse_int("--shards", optarg, 1, 100000, &v); o.shards = (int)v; break;
        case O_VIDEO_LEVEL: o.video_level = 1; break;
        case O_FMIN: ok = parse_int("--frames-min", optarg, 1, 100000, &v); c.frames_min = (int)v; break;
        case O_FMAX: ok = parse_int("--frames-max", optarg, 1, 100000, &v); c.frames_max = (int)v; break;
        case O_LMIN: ok = parse_int("--labels-min", optarg, 1, LP_SYNTH_MAX_LABELS, &v); c.labels_min = (int)v; break;
        case O_LMAX: ok = parse_int("--labels-max", optarg, 1, LP_SYNTH_MAX_LABELS, &v); c.labels_max = (int)v; break;
        case O_FRAME_FEAT: frame_spec = optarg; break;
        case O_VIDEO_FEAT: video_spec = optarg; break;
        case O_ID_KEY: id_key = optarg; break;
        case O_LABELS_KEY: labels_key = optarg; break;
        case O_LATENT: ok = parse_int("--latent", optarg, 1, 1024, &v); c.latent = (int)v; break;
        case O_VOCAB: ok = parse_int("--vocab", optarg, 0, 1 << 20, &v); c.vocab = (int)v; break;
        case O_STATES: ok = parse_int("--states", optarg, 1, 64, &v); c.states = (int)v; break;
        case O_JITTER: ok = parse_double("--state-jitter", optarg, &c.state_jitter); break;
        case O_PAIRS: ok = parse_double("--pair-fraction", optarg, &c.pair_fraction); break;
        case O_ZIPF: ok = parse_double("--zipf", optarg, &c.zipf_s); break;
        case O_ZIPF_Q: ok = parse_double("--zipf-offset", optarg, &c.zipf_q); break;
        case O_LNOISE: ok = parse_double("--latent-noise", optarg, &c.latent_noise); break;
        case O_RHO: ok = parse_double("--noise-rho", optarg, &c.noise_rho); break;
        case O_OFFSET: ok = parse_double("--offset", optarg, &c.offset); break;
        case O_FNOISE: ok = parse_double("--feature-noise", optarg, &c.feature_noise); break;
        case O_WINDOW: ok = parse_double("--window-jitter", optarg, &c.window_jitter); break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: usage(stdout); return 0;
        default:
            if (optopt) lp_cli_error("synth", "option '%s' needs a value (see --help)", name);
            else lp_cli_error("synth", "unknown option '%s' (see --help)", name);
            return 2;
        }
        if (!ok) return 2;
    }
    if (optind < argc) {
        lp_cli_error("synth", "unexpected argument '%s' (see --help)", argv[optind]);
        return 2;
    }
    if (!o.out_dir) {
        lp_cli_error("synth", "--out DIR is required (see --help)");
        return 2;
    }
    if (frame_spec && lp_yt8m_features_parse(&c.frame, frame_spec) != LP_OK) {
        lp_cli_error("synth", "--frame-features: %s", lp_last_error());
        return 2;
    }
    char derived[LP_YT8M_MAX_FEATURES * (LP_YT8M_NAME_MAX + 16)];
    if (frame_spec && !video_spec) {
        /* Video-level names follow the frame-level ones: rgb:1024 -> mean_rgb:1024. */
        size_t n = 0;
        derived[0] = 0;
        for (int k = 0; k < c.frame.count; k++)
            n += (size_t)snprintf(derived + n, sizeof derived - n, "%smean_%s:%d", k ? "," : "", c.frame.f[k].name,
                                  c.frame.f[k].size);
        video_spec = derived;
    }
    if (lp_yt8m_config_set(&o.yt8m, frame_spec, video_spec, id_key, labels_key) != LP_OK) {
        lp_cli_error("synth", "%s", lp_last_error());
        return 2;
    }
    o.yt8m.classes = c.classes;
    if (lp_synth_config_check(&c) != LP_OK) {
        lp_cli_error("synth", "%s", msg());
        return 2;
    }
    if (!quiet) {
        o.progress = progress;
        printf("synth: %llu videos, %d classes, seed %llu -> %s\n", (unsigned long long)o.videos, c.classes,
               (unsigned long long)c.seed, o.out_dir);
    }
    lp_status s = lp_synth_write(&c, &o);
    if (s != LP_OK) {
        lp_cli_error("synth", "%s", msg());
        return s == LP_ERR_ARG ? 2 : 1;
    }
    return 0;
}

/* synth: a synthetic YouTube-8M generator with planted temporal structure (the data of the demo and the
 * tests, since the real 1.5 TB set cannot be downloaded here). Full description: docs/DATA.md.
 *
 * Generative model (all randomness from lp_rng, stream LP_RNG_STREAM_SYNTH; no time or address
 * dependence, so the same seed and options give byte-identical files):
 *
 *   Model (drawn once from the seed):
 *     - a vocabulary of V states v_1..v_V in a latent space of L dims (default L = 12, V = 2L),
 *       v ~ N(0, I/L), so |v| ≈ 1;
 *     - per class c a trajectory of K states (default K = 4): S_c,k = v_{idx(c,k)} + 0.35·N(0, I/L)
 *       with consecutive indices distinct. Classes share vocabulary states, so the *set* of states
 *       says less than the order in which they are visited;
 *     - time-reversed pairs: for the first round(pair_fraction·C/2) pairs (2p, 2p+1), class 2p+1 visits
 *       the states of class 2p in reverse order. Its trajectory is the exact mirror, z_{2p+1}(u) =
 *       z_{2p}(1−u), so over symmetric sampling the time average (mean pooling) of the two classes is
 *       identical: only the order tells them apart;
 *     - a fixed random projection P [D, L] (entries N(0, 0.45²)) and bias b [D] (N(0, 0.1²)) to the
 *       D = 1024 + 128 features (the sizes come from the frame feature spec);
 *     - label prior: Zipf–Mandelbrot, p(c) ∝ 1/(c + q)^s (s = 1, q = 2): class 0 is the most frequent
 *       and the paired classes are the frequent ones.
 *   Trajectory of class c at phase u ∈ [0,1]: K states at the segment centres (k+0.5)/K, smoothstep
 *     blending between neighbours, held constant before the first and after the last centre.
 *   Video i (its own rng, seeded from (seed, i), so videos do not depend on split or shard counts):
 *     - T frames, uniform in [frames_min, frames_max];
 *     - m labels, m in [labels_min, labels_max] with P(m) ∝ 0.6^(m−labels_min), distinct, drawn from the
 *       prior (written in ascending order);
 *     - per label j: amplitude α_j ~ U(0.7, 1.3) and a random window [a_j, b_j] of the phase with
 *       a_j, 1−b_j ~ U(0, window_jitter) (start/end cut and speed vary; the window distribution is
 *       mirror-symmetric, so reversed pairs stay indistinguishable by their mean);
 *     - a per-video constant latent offset o ~ N(0, offset²·I/L) and AR(1) latent noise
 *       e_t = ρ e_{t−1} + sqrt(1−ρ²)·N(0, latent_noise²·I/L) (ρ = 0.8, stationary, time-reversible);
 *     - z_t = o + e_t + Σ_j α_j·traj(c_j, a_j + (b_j − a_j)(t+0.5)/T)                 [L]
 *     - f_t = P z_t + b + feature_noise·ξ_t,  ξ approximately N(0, 1) per feature      [D]
 *     - q_t = nearest YouTube-8M level: round((f + 2 − 4/512)·255/4) clamped to [0, 255], so that the
 *       dequantisation x = q·4/255 + 4/512 − 2 recovers f within half a level (2/255) inside the range.
 *   Video-level records carry the mean over frames of the dequantised frame values.
 *
 * So the hidden responses of a model that tracks z are redundant (z has L ≪ H dimensions), and a
 * model must use the order of frames to separate the reversed pairs.
 *
 * Layout written by lp_synth_write (names as in the real set):
 *   DIR/train0000.tfrecord … DIR/validate0000.tfrecord … DIR/test0000.tfrecord …   frame level
 *   DIR/video/train0000.tfrecord …                                  video level (with video_level)
 *   DIR/classes.csv   class,prior,partner,states   (partner = time-reversed twin or -1)
 *   DIR/synth.txt     the options used (key = value)
 * Videos 0..N−1 are split in order: the first round(train·N) go to train, the next round(validate·N) to
 * validate, the rest to test; each split is cut into `shards` contiguous files (fewer when a split has
 * fewer videos, at least one file per split). Test records keep their labels (unlike the real test set)
 * so the split can be scored.
 */
#ifndef LP_SYNTH_H
#define LP_SYNTH_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "data/yt8m.h"

#define LP_SYNTH_MAX_LABELS 16

typedef struct {
    uint64_t seed;
    int classes;             /* C >= 2 (labels in [0, C)) */
    int latent;              /* L, latent dimensions, default 12 */
    int vocab;               /* V, shared states, default 2L (0 = 2L) */
    int states;              /* K, states per class trajectory, default 4 */
    double state_jitter;     /* class-specific perturbation of the shared states (norm), default 0.35 */
    double pair_fraction;    /* fraction of classes in time-reversed pairs, default 0.5 */
    double zipf_s, zipf_q;   /* label prior exponent and offset, default 1 and 2 */
    int labels_min, labels_max; /* labels per video, default 1..4 (<= LP_SYNTH_MAX_LABELS, <= C) */
    int frames_min, frames_max; /* frames per video, default 20..300 */
    double latent_noise;     /* std (norm) of the AR(1) latent noise, default 0.45 */
    double noise_rho;        /* AR(1) coefficient, default 0.8 */
    double offset;           /* std (norm) of the per-video latent offset, default 0.35 */
    double feature_noise;    /* per-feature noise std (before quantisation), default 0.25 */
    double window_jitter;    /* max cut at either end of each label's phase window, default 0.2 */
    lp_yt8m_features frame;  /* frame features, default "rgb:1024,audio:128" */
} lp_synth_config;

/* Defaults above for `classes` classes and `seed`. */
void lp_synth_config_default(lp_synth_config *c, int classes, uint64_t seed);

/* LP_OK or LP_ERR_ARG with a message naming the bad option. */
lp_status lp_synth_config_check(const lp_synth_config *c);

/* The model drawn from the seed (class trajectories, projection, label prior). */
typedef struct lp_synth lp_synth;

lp_status lp_synth_new(lp_synth **out, const lp_synth_config *cfg);
void lp_synth_free(lp_synth *s);
const lp_synth_config *lp_synth_get_config(const lp_synth *s);

/* Time-reversed twin of class c, or -1. */
int lp_synth_partner(const lp_synth *s, int c);
/* Prior probability of class c (the Zipf law, normalised). */
double lp_synth_prior(const lp_synth *s, int c);
/* Latent position of class c's trajectory at phase u in [0,1]: z [L]. */
void lp_synth_trajectory(const lp_synth *s, int c, double u, double *z);
/* The projection: features f = P z + b (no noise, no quantisation) for one latent z [L] → f [D]. */
void lp_synth_project(const lp_synth *s, const double *z, double *f);

/* One generated video (caller-owned; buffers reused across calls). */
typedef struct {
    char id[16];                        /* 4 characters [0-9a-zA-Z] (more past 62^4 videos) */
    int32_t labels[LP_SYNTH_MAX_LABELS];/* ascending */
    int n_labels;
    int n_frames;
    int dim;                            /* D = frame.dim */
    uint8_t *q;                         /* [n_frames, D] quantised, features in spec order */
    double *latent;                     /* [n_frames, L] the z_t that produced q (for tests/analysis) */
    size_t q_cap, latent_cap;
} lp_synth_video;

void lp_synth_video_init(lp_synth_video *v);
void lp_synth_video_free(lp_synth_video *v);

/* Generate video number `index` (0-based; deterministic in (seed, index) only). Optional overrides for
 * analysis and tests: force_label >= 0 makes the video single-label with that class; force_frames > 0
 * fixes T. Pass -1 / 0 for the normal model. */
lp_status lp_synth_video_make(const lp_synth *s, uint64_t index, int force_label, int force_frames,
                              lp_synth_video *v);

/* Mean over frames of the dequantised values: out [D] (the video-level features). */
void lp_synth_video_mean(const lp_synth_video *v, float *out);

/* ---- writing a data set ---- */

typedef struct {
    const char *out_dir;     /* created if missing */
    uint64_t videos;         /* N >= 1 */
    double split[3];         /* train, validate, test fractions; >= 0, sum 1 (±1e-6); default .7 .15 .15 */
    int shards;              /* files per split (at most), default 1 */
    int video_level;         /* also write DIR/video/… video-level shards */
    lp_yt8m_config yt8m;     /* id/labels keys and the video feature spec used for encoding (the frame
                                spec is taken from the synth config; sizes must match the video spec) */
    /* Optional progress callback (called after each file); may be NULL. */
    void (*progress)(void *ctx, const char *path, uint64_t records, uint64_t bytes);
    void *progress_ctx;
} lp_synth_write_opts;

void lp_synth_write_opts_default(lp_synth_write_opts *o);

/* Generate and write the whole data set (see the layout above). Errors name the file. */
lp_status lp_synth_write(const lp_synth_config *cfg, const lp_synth_write_opts *o);

#endif

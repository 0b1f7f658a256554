/* synth: the synthetic YouTube-8M generator (model and layout documented in synth.h and docs/DATA.md).
 *
 * Everything is computed in double from lp_rng draws in a fixed order, and each video has its own rng
 * seeded from (seed, index), so files are byte-identical for the same options and a video's content
 * does not depend on how the set is split or sharded. */
#include "data/synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "data/tfrecord.h"

struct lp_synth {
    lp_synth_config cfg;
    int L, K, V, D;
    double *vocab;   /* [V, L] */
    double *states;  /* [C, K, L] per-class trajectory states */
    int *state_idx;  /* [C, K] vocabulary index behind each state */
    int *partner;    /* [C] time-reversed twin or -1 */
    double *prior;   /* [C] */
    double *cdf;     /* [C] cumulative prior, cdf[C-1] == 1 */
    double *proj;    /* [D, L] P */
    double *bias;    /* [D] b */
};

void lp_synth_config_default(lp_synth_config *c, int classes, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->seed = seed;
    c->classes = classes;
    c->latent = 12;
    c->vocab = 0;
    c->states = 4;
    c->state_jitter = 0.35;
    c->pair_fraction = 0.5;
    c->zipf_s = 1.0;
    c->zipf_q = 2.0;
    c->labels_min = 1;
    c->labels_max = 4;
    c->frames_min = 20;
    c->frames_max = 300;
    c->latent_noise = 0.45;
    c->noise_rho = 0.8;
    c->offset = 0.35;
    c->feature_noise = 0.25;
    c->window_jitter = 0.2;
    lp_status s = lp_yt8m_features_parse(&c->frame, LP_YT8M_DEFAULT_FRAME_FEATURES);
    LP_CHECK(s == LP_OK);
}

static int finite_in(double x, double lo, double hi) { return isfinite(x) && x >= lo && x <= hi; }

lp_status lp_synth_config_check(const lp_synth_config *c) {
    if (c->classes < 2 || c->classes > (1 << 24))
        return lp_errorf(LP_ERR_ARG, "synth: classes must be in [2, 2^24], got %d", c->classes);
    if (c->latent < 1 || c->latent > 1024)
        return lp_errorf(LP_ERR_ARG, "synth: latent dims must be in [1, 1024], got %d", c->latent);
    if (c->vocab < 0 || c->vocab == 1 || c->vocab > (1 << 20))
        return lp_errorf(LP_ERR_ARG, "synth: vocab must be 0 (= 2*latent) or in [2, 2^20], got %d", c->vocab);
    if (c->states < 1 || c->states > 64)
        return lp_errorf(LP_ERR_ARG, "synth: states per class must be in [1, 64], got %d", c->states);
    if (!finite_in(c->state_jitter, 0, 100))
        return lp_errorf(LP_ERR_ARG, "synth: state jitter must be in [0, 100], got %g", c->state_jitter);
    if (!finite_in(c->pair_fraction, 0, 1))
        return lp_errorf(LP_ERR_ARG, "synth: pair fraction must be in [0, 1], got %g", c->pair_fraction);
    if (!finite_in(c->zipf_s, 0, 10) || !finite_in(c->zipf_q, 1e-9, 1e9))
        return lp_errorf(LP_ERR_ARG, "synth: zipf exponent must be in [0, 10] and offset > 0 (got %g, %g)",
                         c->zipf_s, c->zipf_q);
    if (c->labels_min < 1 || c->labels_max < c->labels_min || c->labels_max > LP_SYNTH_MAX_LABELS)
        return lp_errorf(LP_ERR_ARG, "synth: labels per video must satisfy 1 <= min <= max <= %d (got %d..%d)",
                         LP_SYNTH_MAX_LABELS, c->labels_min, c->labels_max);
    if (c->labels_max > c->classes)
        return lp_errorf(LP_ERR_ARG, "synth: labels per video (max %d) exceed the %d classes", c->labels_max,
                         c->classes);
    if (c->frames_min < 1 || c->frames_max < c->frames_min || c->frames_max > 100000)
        return lp_errorf(LP_ERR_ARG, "synth: frames must satisfy 1 <= min <= max <= 100000 (got %d..%d)",
                         c->frames_min, c->frames_max);
    if (!finite_in(c->latent_noise, 0, 100) || !finite_in(c->offset, 0, 100) ||
        !finite_in(c->feature_noise, 0, 100))
        return lp_errorf(LP_ERR_ARG, "synth: noise levels must be in [0, 100] (latent %g, offset %g, feature %g)",
                         c->latent_noise, c->offset, c->feature_noise);
    if (!finite_in(c->noise_rho, 0, 0.999999))
        return lp_errorf(LP_ERR_ARG, "synth: AR coefficient must be in [0, 1), got %g", c->noise_rho);
    if (!finite_in(c->window_jitter, 0, 0.49))
        return lp_errorf(LP_ERR_ARG, "synth: window jitter must be in [0, 0.49], got %g", c->window_jitter);
    if (c->frame.count < 1 || c->frame.dim < 1)
        return lp_errorf(LP_ERR_ARG, "synth: empty frame feature spec");
    return LP_OK;
}

/* Fill n doubles with N(0, sd^2). */
static void normals(lp_rng *r, double *x, int n, double sd) {
    for (int i = 0; i < n; i++) x[i] = sd * lp_rng_normal(r);
}

lp_status lp_synth_new(lp_synth **out, const lp_synth_config *cfg) {
    *out = NULL;
    LP_TRY(lp_synth_config_check(cfg));
    lp_synth *s = lp_calloc(1, sizeof *s);
    if (!s) return LP_ERR_NOMEM;
    s->cfg = *cfg;
    const int C = cfg->classes, L = cfg->latent, K = cfg->states, D = cfg->frame.dim;
    const int V = cfg->vocab ? cfg->vocab : 2 * L;
    s->L = L;
    s->K = K;
    s->V = V;
    s->D = D;
    s->vocab = lp_malloc((size_t)V * L, sizeof(double));
    s->states = lp_malloc((size_t)C * K, (size_t)L * sizeof(double));
    s->state_idx = lp_malloc((size_t)C * K, sizeof(int));
    s->partner = lp_malloc((size_t)C, sizeof(int));
    s->prior = lp_malloc((size_t)C, sizeof(double));
    s->cdf = lp_malloc((size_t)C, sizeof(double));
    s->proj = lp_malloc((size_t)D * L, sizeof(double));
    s->bias = lp_malloc((size_t)D, sizeof(double));
    if (!s->vocab || !s->states || !s->state_idx || !s->partner || !s->prior || !s->cdf || !s->proj ||
        !s->bias) {
        lp_synth_free(s);
        return LP_ERR_NOMEM;
    }
    lp_rng r;
    lp_rng_init(&r, cfg->seed, LP_RNG_STREAM_SYNTH);
    const double sd = 1.0 / sqrt((double)L); /* so that |v| ≈ 1 */
    normals(&r, s->vocab, V * L, sd);

    const double c_jit = cfg->state_jitter;
    int pairs = (int)floor(cfg->pair_fraction * C / 2.0 + 0.5);
    if (pairs > C / 2) pairs = C / 2;
    for (int c = 0; c < C; c++) {
        double *S = s->states + (size_t)c * K * L;
        int *idx = s->state_idx + (size_t)c * K;
        if (c % 2 == 1 && c / 2 < pairs) {
            /* The twin of class c-1: its states in reverse order (exact copies). */
            const double *P = s->states + (size_t)(c - 1) * K * L;
            const int *pidx = s->state_idx + (size_t)(c - 1) * K;
            for (int k = 0; k < K; k++) {
                memcpy(S + (size_t)k * L, P + (size_t)(K - 1 - k) * L, (size_t)L * sizeof(double));
                idx[k] = pidx[K - 1 - k];
            }
            s->partner[c] = c - 1;
            s->partner[c - 1] = c;
            continue;
        }
        s->partner[c] = -1;
        for (int k = 0; k < K; k++) {
            int j;
            do j = (int)lp_rng_below(&r, (uint32_t)V);
            while (k > 0 && j == idx[k - 1] && V > 1);
            idx[k] = j;
            for (int l = 0; l < L; l++) S[(size_t)k * L + l] = s->vocab[(size_t)j * L + l] + c_jit * sd * lp_rng_normal(&r);
        }
        if (K > 1 && c % 2 == 0 && c / 2 < pairs) {
            /* A reversed pair needs a trajectory that differs from its mirror: redraw the last state if
             * the state sequence is a palindrome (possible for small V). */
            int pal = 1;
            for (int k = 0; k < K / 2; k++) pal &= idx[k] == idx[K - 1 - k];
            if (pal) {
                int j = (idx[K - 1] + 1 + (int)lp_rng_below(&r, (uint32_t)(V > 2 ? V - 2 : 1))) % V;
                if (j == idx[K - 2] && V > 2) j = (j + 1) % V;
                idx[K - 1] = j;
                for (int l = 0; l < L; l++)
                    S[(size_t)(K - 1) * L + l] = s->vocab[(size_t)j * L + l] + c_jit * sd * lp_rng_normal(&r);
            }
        }
    }

    normals(&r, s->proj, D * L, 0.45);
    normals(&r, s->bias, D, 0.1);

    double z = 0;
    for (int c = 0; c < C; c++) z += s->prior[c] = pow((double)c + cfg->zipf_q, -cfg->zipf_s);
    double acc = 0;
    for (int c = 0; c < C; c++) {
        s->prior[c] /= z;
        acc += s->prior[c];
        s->cdf[c] = acc;
    }
    s->cdf[C - 1] = 1.0;
    *out = s;
    return LP_OK;
}

void lp_synth_free(lp_synth *s) {
    if (!s) return;
    lp_free(s->vocab);
    lp_free(s->states);
    lp_free(s->state_idx);
    lp_free(s->partner);
    lp_free(s->prior);
    lp_free(s->cdf);
    lp_free(s->proj);
    lp_free(s->bias);
    lp_free(s);
}

const lp_synth_config *lp_synth_get_config(const lp_synth *s) { return &s->cfg; }

int lp_synth_partner(const lp_synth *s, int c) {
    LP_CHECK(c >= 0 && c < s->cfg.classes);
    return s->partner[c];
}

double lp_synth_prior(const lp_synth *s, int c) {
    LP_CHECK(c >= 0 && c < s->cfg.classes);
    return s->prior[c];
}

/* Accumulate alpha * traj(c, u) into z [L]. States sit at the segment centres (k+0.5)/K; between two
 * centres the weight of the next state is smoothstep(w) = w²(3−2w), which is symmetric
 * (smoothstep(1−w) = 1 − smoothstep(w)), so a reversed state list gives exactly z(1−u). */
static void traj_add(const lp_synth *s, int c, double u, double alpha, double *z) {
    const int K = s->K, L = s->L;
    const double *S = s->states + (size_t)c * K * L;
    double p = u * K - 0.5;
    int k0;
    double w;
    if (p <= 0) {
        k0 = 0;
        w = 0;
    } else if (p >= K - 1) {
        k0 = K - 1;
        w = 0;
    } else {
        k0 = (int)p;
        w = p - k0;
        w = w * w * (3.0 - 2.0 * w);
    }
    const double *a = S + (size_t)k0 * L;
    if (w == 0) {
        for (int l = 0; l < L; l++) z[l] += alpha * a[l];
        return;
    }
    const double *b = a + L;
    for (int l = 0; l < L; l++) z[l] += alpha * ((1.0 - w) * a[l] + w * b[l]);
}

void lp_synth_trajectory(const lp_synth *s, int c, double u, double *z) {
    LP_CHECK(c >= 0 && c < s->cfg.classes);
    for (int l = 0; l < s->L; l++) z[l] = 0;
    traj_add(s, c, u, 1.0, z);
}

void lp_synth_project(const lp_synth *s, const double *z, double *f) {
    const int L = s->L;
    for (int i = 0; i < s->D; i++) {
        const double *p = s->proj + (size_t)i * L;
        double acc = s->bias[i];
        for (int l = 0; l < L; l++) acc += p[l] * z[l];
        f[i] = acc;
    }
}

void lp_synth_video_init(lp_synth_video *v) { memset(v, 0, sizeof *v); }

void lp_synth_video_free(lp_synth_video *v) {
    lp_free(v->q);
    lp_free(v->latent);
    lp_synth_video_init(v);
}

/* SplitMix64 finaliser: decorrelates (seed, index) into a per-video seed. */
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Ids look like the anonymised 4-character ids of the 2018 release. Indices below 62^4 are scrambled by
 * an affine bijection mod 62^4 (A is odd and not a multiple of 31, hence coprime to 62^4), so ids are
 * unique within a set; larger indices get "x" + base-62 (length >= 5, so still unique). */
static void make_id(uint64_t index, char *id) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const uint64_t M = 62ull * 62 * 62 * 62;
    if (index < M) {
        uint64_t x = (index * 9576890767ull + 1234567ull) % M;
        for (int i = 3; i >= 0; i--) {
            id[i] = digits[x % 62];
            x /= 62;
        }
        id[4] = 0;
        return;
    }
    char tmp[16];
    int n = 0;
    for (uint64_t x = index; x; x /= 62) tmp[n++] = digits[x % 62];
    id[0] = 'x';
    for (int i = 0; i < n; i++) id[1 + i] = tmp[n - 1 - i];
    id[1 + n] = 0;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int draw_class(const lp_synth *s, lp_rng *r) {
    double u = lp_rng_uniform(r);
    int lo = 0, hi = s->cfg.classes - 1; /* smallest c with cdf[c] > u */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Nearest YouTube-8M level for the dequantisation q·4/255 + 4/512 − 2. */
static inline uint8_t quantize_nearest(double f) {
    double y = (f + 2.0 - 4.0 / 512.0) * (255.0 / 4.0) + 0.5;
    if (!(y > 0)) return 0;
    if (y >= 255.0) return 255;
    return (uint8_t)y;
}

lp_status lp_synth_video_make(const lp_synth *s, uint64_t index, int force_label, int force_frames,
                              lp_synth_video *v) {
    const lp_synth_config *c = &s->cfg;
    const int L = s->L, D = s->D;
    if (force_label >= c->classes)
        return lp_errorf(LP_ERR_ARG, "synth: forced label %d outside [0, %d)", force_label, c->classes);
    if (force_frames < 0 || force_frames > 100000)
        return lp_errorf(LP_ERR_ARG, "synth: forced frame count %d outside [0, 100000]", force_frames);
    lp_rng r;
    lp_rng_init(&r, mix64(c->seed ^ mix64(index)), LP_RNG_STREAM_SYNTH);

    int T = c->frames_min + (int)lp_rng_below(&r, (uint32_t)(c->frames_max - c->frames_min + 1));
    if (force_frames > 0) T = force_frames;

    /* Number of labels: P(m) ∝ 0.6^(m − min). */
    int m = c->labels_min;
    {
        double tot = 0, w = 1;
        for (int k = c->labels_min; k <= c->labels_max; k++, w *= 0.6) tot += w;
        double u = lp_rng_uniform(&r) * tot;
        w = 1;
        for (int k = c->labels_min; k <= c->labels_max; k++, w *= 0.6) {
            m = k;
            if (u < w) break;
            u -= w;
        }
    }
    int32_t lab[LP_SYNTH_MAX_LABELS];
    if (force_label >= 0) {
        m = 1;
        lab[0] = force_label;
    } else {
        for (int j = 0; j < m; j++) {
            int cl, dup;
            do {
                cl = draw_class(s, &r);
                dup = 0;
                for (int i = 0; i < j; i++) dup |= lab[i] == cl;
            } while (dup);
            lab[j] = cl;
        }
    }
    double alpha[LP_SYNTH_MAX_LABELS], a[LP_SYNTH_MAX_LABELS], b[LP_SYNTH_MAX_LABELS];
    for (int j = 0; j < m; j++) {
        alpha[j] = 0.7 + 0.6 * lp_rng_uniform(&r);
        a[j] = c->window_jitter * lp_rng_uniform(&r);
        b[j] = 1.0 - c->window_jitter * lp_rng_uniform(&r);
    }

    size_t nq = (size_t)T * D, nl = (size_t)T * L;
    if (nq > v->q_cap) {
        uint8_t *q = lp_realloc(v->q, nq, 1);
        if (!q) return LP_ERR_NOMEM;
        v->q = q;
        v->q_cap = nq;
    }
    if (nl > v->latent_cap) {
        double *z = lp_realloc(v->latent, nl, sizeof(double));
        if (!z) return LP_ERR_NOMEM;
        v->latent = z;
        v->latent_cap = nl;
    }
    make_id(index, v->id);
    memcpy(v->labels, lab, (size_t)m * sizeof lab[0]);
    qsort(v->labels, (size_t)m, sizeof v->labels[0], cmp_i32);
    v->n_labels = m;
    v->n_frames = T;
    v->dim = D;

    const double sd = 1.0 / sqrt((double)L);
    double off[1024], e[1024];
    normals(&r, off, L, c->offset * sd);
    normals(&r, e, L, c->latent_noise * sd); /* stationary start */
    const double rho = c->noise_rho, innov = sqrt(1.0 - rho * rho) * c->latent_noise * sd;
    /* ξ: (sum of the 4 bytes of a u32 − 510)/147.8 has mean 0, variance 1 (4 × (256²−1)/12) and a
     * near-Gaussian bell shape (Irwin–Hall), at one rng call per feature. */
    const double xi_scale = c->feature_noise / sqrt(4.0 * (256.0 * 256.0 - 1.0) / 12.0);
    for (int t = 0; t < T; t++) {
        double *z = v->latent + (size_t)t * L;
        if (t > 0)
            for (int l = 0; l < L; l++) e[l] = rho * e[l] + innov * lp_rng_normal(&r);
        for (int l = 0; l < L; l++) z[l] = off[l] + e[l];
        double u = (t + 0.5) / T;
        for (int j = 0; j < m; j++) traj_add(s, lab[j], a[j] + (b[j] - a[j]) * u, alpha[j], z);
        uint8_t *q = v->q + (size_t)t * D;
        for (int i = 0; i < D; i++) {
            const double *p = s->proj + (size_t)i * L;
            double f = s->bias[i];
            for (int l = 0; l < L; l++) f += p[l] * z[l];
            uint32_t x = lp_rng_u32(&r);
            int sum = (int)(x & 255) + (int)((x >> 8) & 255) + (int)((x >> 16) & 255) + (int)(x >> 24);
            f += xi_scale * (sum - 510);
            q[i] = quantize_nearest(f);
        }
    }
    return LP_OK;
}

void lp_synth_video_mean(const lp_synth_video *v, float *out) {
    const float *dq = lp_yt8m_dequant_table();
    const int D = v->dim;
    double acc[4096];
    for (int i0 = 0; i0 < D; i0 += 4096) {
        int n = D - i0 < 4096 ? D - i0 : 4096;
        for (int i = 0; i < n; i++) acc[i] = 0;
        for (int t = 0; t < v->n_frames; t++) {
            const uint8_t *q = v->q + (size_t)t * D + i0;
            for (int i = 0; i < n; i++) acc[i] += dq[q[i]];
        }
        for (int i = 0; i < n; i++) out[i0 + i] = v->n_frames ? (float)(acc[i] / v->n_frames) : 0.0f;
    }
}

/* ---- writing ---- */

void lp_synth_write_opts_default(lp_synth_write_opts *o) {
    memset(o, 0, sizeof *o);
    o->videos = 1000;
    o->split[0] = 0.7;
    o->split[1] = 0.15;
    o->split[2] = 0.15;
    o->shards = 1;
    lp_yt8m_config_default(&o->yt8m);
}

static lp_status write_text_files(const lp_synth *s, const lp_synth_write_opts *o) {
    const lp_synth_config *c = &s->cfg;
    char path[4096];
    snprintf(path, sizeof path, "%s/classes.csv", o->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) return lp_errorf(LP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "class,prior,partner,states\n");
    for (int k = 0; k < c->classes; k++) {
        fprintf(f, "%d,%.9g,%d,", k, s->prior[k], s->partner[k]);
        for (int j = 0; j < s->K; j++) fprintf(f, "%s%d", j ? " " : "", s->state_idx[(size_t)k * s->K + j]);
        fputc('\n', f);
    }
    if (fclose(f) != 0) return lp_errorf(LP_ERR_IO, "%s: write failed: %s", path, strerror(errno));

    snprintf(path, sizeof path, "%s/synth.txt", o->out_dir);
    f = fopen(path, "w");
    if (!f) return lp_errorf(LP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    char spec[1024];
    lp_yt8m_features_format(&c->frame, spec, sizeof spec);
    fprintf(f, "# lstmprune synth: options of this data set (docs/DATA.md)\n");
    fprintf(f, "seed = %llu\nvideos = %llu\nclasses = %d\n", (unsigned long long)c->seed,
            (unsigned long long)o->videos, c->classes);
    fprintf(f, "split = %g,%g,%g\nshards = %d\nvideo_level = %d\n", o->split[0], o->split[1], o->split[2],
            o->shards, o->video_level);
    fprintf(f, "frame_features = %s\n", spec);
    lp_yt8m_features_format(&o->yt8m.video, spec, sizeof spec);
    fprintf(f, "video_features = %s\nid_key = %s\nlabels_key = %s\n", spec, o->yt8m.id_key, o->yt8m.labels_key);
    fprintf(f, "latent = %d\nvocab = %d\nstates = %d\npair_fraction = %g\nzipf_s = %g\nzipf_q = %g\n", s->L,
            s->V, s->K, c->pair_fraction, c->zipf_s, c->zipf_q);
    fprintf(f, "labels_min = %d\nlabels_max = %d\nframes_min = %d\nframes_max = %d\n", c->labels_min,
            c->labels_max, c->frames_min, c->frames_max);
    fprintf(f, "latent_noise = %g\nnoise_rho = %g\noffset = %g\nfeature_noise = %g\nwindow_jitter = %g\n",
            c->latent_noise, c->noise_rho, c->offset, c->feature_noise, c->window_jitter);
    if (fclose(f) != 0) return lp_errorf(LP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return LP_OK;
}

typedef struct {
    lp_tfrecord_writer *fw, *vw;
    lp_synth_video v;
    lp_yt8m_buf buf;
    float *mean;
} writer_state;

static lp_status write_shard(const lp_synth *s, const lp_synth_write_opts *o, const lp_yt8m_config *ycfg,
                             const char *split, int shard, uint64_t first, uint64_t count, writer_state *w) {
    char fpath[4096], vpath[4096];
    snprintf(fpath, sizeof fpath, "%s/%s%04d.tfrecord", o->out_dir, split, shard);
    snprintf(vpath, sizeof vpath, "%s/video/%s%04d.tfrecord", o->out_dir, split, shard);
    LP_TRY(lp_tfrecord_writer_open(&w->fw, fpath));
    if (o->video_level) LP_TRY(lp_tfrecord_writer_open(&w->vw, vpath));
    for (uint64_t i = first; i < first + count; i++) {
        LP_TRY(lp_synth_video_make(s, i, -1, 0, &w->v));
        LP_TRY(lp_yt8m_encode_frame(ycfg, w->v.id, w->v.labels, w->v.n_labels, w->v.q, w->v.n_frames, &w->buf));
        LP_TRY(lp_tfrecord_write(w->fw, w->buf.data, w->buf.len));
        if (o->video_level) {
            lp_synth_video_mean(&w->v, w->mean);
            LP_TRY(lp_yt8m_encode_video(ycfg, w->v.id, w->v.labels, w->v.n_labels, w->mean, &w->buf));
            LP_TRY(lp_tfrecord_write(w->vw, w->buf.data, w->buf.len));
        }
    }
    uint64_t bytes = lp_tfrecord_writer_bytes(w->fw);
    lp_status st = lp_tfrecord_writer_close(w->fw);
    w->fw = NULL;
    LP_TRY(st);
    if (o->progress) o->progress(o->progress_ctx, fpath, count, bytes);
    if (o->video_level) {
        bytes = lp_tfrecord_writer_bytes(w->vw);
        st = lp_tfrecord_writer_close(w->vw);
        w->vw = NULL;
        LP_TRY(st);
        if (o->progress) o->progress(o->progress_ctx, vpath, count, bytes);
    }
    return LP_OK;
}

lp_status lp_synth_write(const lp_synth_config *cfg, const lp_synth_write_opts *o) {
    if (!o->out_dir || !*o->out_dir) return lp_errorf(LP_ERR_ARG, "synth: no output directory");
    if (o->videos < 1 || o->videos > (1ull << 40))
        return lp_errorf(LP_ERR_ARG, "synth: videos must be in [1, 2^40], got %llu", (unsigned long long)o->videos);
    double tot = 0;
    for (int k = 0; k < 3; k++) {
        if (!finite_in(o->split[k], 0, 1))
            return lp_errorf(LP_ERR_ARG, "synth: split fractions must be in [0, 1], got %g", o->split[k]);
        tot += o->split[k];
    }
    if (fabs(tot - 1.0) > 1e-6)
        return lp_errorf(LP_ERR_ARG, "synth: split fractions must sum to 1, got %g", tot);
    if (o->shards < 1 || o->shards > 100000)
        return lp_errorf(LP_ERR_ARG, "synth: shards must be in [1, 100000], got %d", o->shards);
    lp_yt8m_config ycfg = o->yt8m;
    ycfg.frame = cfg->frame;
    ycfg.classes = cfg->classes;
    if (o->video_level) {
        int ok = ycfg.video.count == cfg->frame.count;
        for (int k = 0; ok && k < cfg->frame.count; k++) ok = ycfg.video.f[k].size == cfg->frame.f[k].size;
        if (!ok) {
            char a[512], b[512];
            lp_yt8m_features_format(&cfg->frame, a, sizeof a);
            lp_yt8m_features_format(&ycfg.video, b, sizeof b);
            return lp_errorf(LP_ERR_ARG, "synth: video features '%s' must match the frame features '%s' in count "
                             "and sizes", b, a);
        }
    }
    LP_TRY(lp_yt8m_config_check(&ycfg));

    lp_synth *s;
    LP_TRY(lp_synth_new(&s, cfg));
    lp_status st = lp_mkdirs(o->out_dir);
    if (st == LP_OK && o->video_level) {
        char vdir[4096];
        snprintf(vdir, sizeof vdir, "%s/video", o->out_dir);
        st = lp_mkdirs(vdir);
    }
    if (st == LP_OK) st = write_text_files(s, o);

    writer_state w;
    memset(&w, 0, sizeof w);
    lp_synth_video_init(&w.v);
    w.mean = lp_malloc((size_t)cfg->frame.dim, sizeof(float));
    if (!w.mean && st == LP_OK) st = LP_ERR_NOMEM;

    /* Split sizes: train and validate rounded, test takes the rest. */
    const char *names[3] = {"train", "validate", "test"};
    uint64_t n[3];
    n[0] = (uint64_t)floor(o->split[0] * (double)o->videos + 0.5);
    if (n[0] > o->videos) n[0] = o->videos;
    n[1] = (uint64_t)floor(o->split[1] * (double)o->videos + 0.5);
    if (n[1] > o->videos - n[0]) n[1] = o->videos - n[0];
    n[2] = o->videos - n[0] - n[1];
    uint64_t first = 0;
    for (int k = 0; k < 3 && st == LP_OK; k++) {
        uint64_t shards = (uint64_t)o->shards < n[k] ? (uint64_t)o->shards : n[k];
        if (shards == 0) shards = 1; /* an empty split still gets one (empty, valid) file */
        for (uint64_t j = 0; j < shards && st == LP_OK; j++) {
            uint64_t lo = n[k] * j / shards, hi = n[k] * (j + 1) / shards;
            st = write_shard(s, o, &ycfg, names[k], (int)j, first + lo, hi - lo, &w);
        }
        first += n[k];
    }
    if (w.fw) lp_tfrecord_writer_close(w.fw);
    if (w.vw) lp_tfrecord_writer_close(w.vw);
    lp_synth_video_free(&w.v);
    lp_yt8m_buf_free(&w.buf);
    lp_free(w.mean);
    lp_synth_free(s);
    return st;
}

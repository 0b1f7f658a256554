/* test_synth: the synthetic YouTube-8M generator — round trip through the real decoder, byte-identical
 * output per seed, the label law, the time-reversed pairs (order matters, mean pooling cannot tell them
 * apart) and option checking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/status.h"
#include "data/synth.h"
#include "data/yt8m.h"
#include "tests/common/scratch.h"

static int setup(void **state) {
    (void)state;
    return lp_test_scratch_make("synth");
}

static void small_config(lp_synth_config *c, int classes, uint64_t seed) {
    lp_synth_config_default(c, classes, seed);
    c->frames_min = 5;
    c->frames_max = 40;
}

/* Write N videos with 2 shards per split and read every file back with the real decoder: records are in
 * video order across the split files, ids/labels/frame counts are as generated, frame bytes dequantise
 * to exactly the table values of the generated q, and the video-level means match the frames. */
static void test_round_trip(void **state) {
    (void)state;
    lp_synth_config c;
    small_config(&c, 30, 11);
    c.feature_noise = 0; /* so the pre-quantisation value is P z + b, recomputable from the latent */
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    o.out_dir = lp_test_scratch_path("rt");
    o.videos = 60;
    o.shards = 2;
    o.video_level = 1;
    assert_int_equal(lp_synth_write(&c, &o), LP_OK);

    lp_synth *s;
    assert_int_equal(lp_synth_new(&s, &c), LP_OK);
    lp_yt8m_config y;
    lp_yt8m_config_default(&y);
    y.classes = 30;
    const float *dq = lp_yt8m_dequant_table();
    /* 60 videos at .7/.15/.15: 42 train (21+21), 9 validate (4+5), 9 test (4+5). */
    const char *files[6] = {"train0000", "train0001", "validate0000", "validate0001", "test0000", "test0001"};
    const int counts[6] = {21, 21, 4, 5, 4, 5};
    lp_synth_video g;
    lp_synth_video_init(&g);
    lp_yt8m_video v, vv;
    lp_yt8m_video_init(&v);
    lp_yt8m_video_init(&vv);
    double f[1152];
    double worst_q = 0;
    int in_range = 0;
    uint64_t index = 0;
    for (int k = 0; k < 6; k++) {
        lp_yt8m_reader *r, *rv;
        char name[2][64];
        snprintf(name[0], sizeof name[0], "rt/%s.tfrecord", files[k]);
        snprintf(name[1], sizeof name[1], "rt/video/%s.tfrecord", files[k]);
        assert_int_equal(lp_yt8m_reader_open(&r, lp_test_scratch_path(name[0]), &y), LP_OK);
        assert_int_equal(lp_yt8m_reader_open(&rv, lp_test_scratch_path(name[1]), &y), LP_OK);
        int n = 0;
        lp_status st;
        while ((st = lp_yt8m_reader_next(r, &v)) == LP_OK) {
            assert_int_equal(lp_synth_video_make(s, index, -1, 0, &g), LP_OK);
            assert_string_equal(v.id, g.id);
            assert_int_equal(v.level, LP_YT8M_LEVEL_FRAME);
            assert_int_equal(v.n_labels, g.n_labels);
            for (int j = 0; j < g.n_labels; j++) assert_int_equal(v.labels[j], g.labels[j]);
            assert_int_equal(v.n_frames, g.n_frames);
            assert_true(g.n_frames >= 5 && g.n_frames <= 40);
            assert_int_equal(v.dim, 1152);
            for (int t = 0; t < g.n_frames; t++) {
                lp_synth_project(s, g.latent + (size_t)t * c.latent, f);
                for (int i = 0; i < 1152; i++) {
                    const float x = v.features[(size_t)t * 1152 + i];
                    assert_true(x == dq[g.q[(size_t)t * 1152 + i]]);
                    /* Inside the representable range the nearest level is within half a step (2/255). */
                    if (f[i] > -1.99 && f[i] < 2.0) {
                        in_range++;
                        double e = fabs(x - f[i]);
                        if (e > worst_q) worst_q = e;
                    }
                }
            }
            /* Video level: same id and labels, mean of the dequantised frames (float32 mean of <= 40
             * values in [-2, 2]: 1e-5 absolute is ~100 ulps of slack). */
            assert_int_equal(lp_yt8m_reader_next(rv, &vv), LP_OK);
            assert_int_equal(vv.level, LP_YT8M_LEVEL_VIDEO);
            assert_string_equal(vv.id, g.id);
            assert_int_equal(vv.n_labels, g.n_labels);
            for (int i = 0; i < 1152; i += 7) {
                double m = 0;
                for (int t = 0; t < v.n_frames; t++) m += v.features[(size_t)t * 1152 + i];
                assert_true(fabs(vv.features[i] - m / v.n_frames) < 1e-5);
            }
            n++;
            index++;
        }
        assert_int_equal(st, LP_ERR_EOF);
        assert_int_equal(lp_yt8m_reader_next(rv, &vv), LP_ERR_EOF);
        assert_int_equal(n, counts[k]);
        lp_yt8m_reader_close(r);
        lp_yt8m_reader_close(rv);
    }
    assert_int_equal(index, 60);
    assert_true(in_range > 100000);
    /* Half a quantisation step, 2/255 = 0.00784, plus float32 rounding of the table entry. */
    assert_true(worst_q <= 2.0 / 255.0 + 1e-6);
    assert_true(worst_q > 0.5 / 255.0); /* values really are quantised */

    /* The side files exist and say what was generated. */
    char *txt;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("rt/classes.csv"), &txt, &len), LP_OK);
    assert_non_null(strstr(txt, "class,prior,partner,states\n0,"));
    lp_free(txt);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("rt/synth.txt"), &txt, &len), LP_OK);
    assert_non_null(strstr(txt, "seed = 11\n"));
    assert_non_null(strstr(txt, "videos = 60\n"));
    lp_free(txt);

    lp_yt8m_video_free(&v);
    lp_yt8m_video_free(&vv);
    lp_synth_video_free(&g);
    lp_synth_free(s);
}

static int files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (lp_file_read_all(a, &x, &nx) != LP_OK) return -1;
    if (lp_file_read_all(b, &y, &ny) != LP_OK) {
        lp_free(x);
        return -1;
    }
    int eq = nx == ny && memcmp(x, y, nx) == 0;
    lp_free(x);
    lp_free(y);
    return eq;
}

static void write_set(const char *dir, uint64_t seed, int shards) {
    lp_synth_config c;
    small_config(&c, 12, seed);
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    o.out_dir = dir;
    o.videos = 30;
    o.shards = shards;
    assert_int_equal(lp_synth_write(&c, &o), LP_OK);
}

/* Same seed: byte-identical files; another seed: different files; the sharding does not change the
 * videos (the concatenated shards equal the single-shard file, TFRecord files concatenate). */
static void test_deterministic(void **state) {
    (void)state;
    char a[512], b[512], d[512], e[512];
    snprintf(a, sizeof a, "%s", lp_test_scratch_path("s1a"));
    snprintf(b, sizeof b, "%s", lp_test_scratch_path("s1b"));
    snprintf(d, sizeof d, "%s", lp_test_scratch_path("s2"));
    snprintf(e, sizeof e, "%s", lp_test_scratch_path("s1sh"));
    write_set(a, 1, 1);
    write_set(b, 1, 1);
    write_set(d, 2, 1);
    write_set(e, 1, 3);
    const char *names[] = {"train0000.tfrecord", "validate0000.tfrecord", "test0000.tfrecord", "classes.csv",
                           "synth.txt"};
    char p[1024], q[1024];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", a, names[i]);
        snprintf(q, sizeof q, "%s/%s", b, names[i]);
        assert_int_equal(files_equal(p, q), 1);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", a, names[i]);
        snprintf(q, sizeof q, "%s/%s", d, names[i]);
        assert_int_equal(files_equal(p, q), 0);
    }
    /* 21 train videos in 3 shards of 7: their concatenation is the 1-shard file. */
    char *whole, *part;
    size_t nw, np, off = 0;
    snprintf(p, sizeof p, "%s/train0000.tfrecord", a);
    assert_int_equal(lp_file_read_all(p, &whole, &nw), LP_OK);
    for (int k = 0; k < 3; k++) {
        snprintf(q, sizeof q, "%s/train%04d.tfrecord", e, k);
        assert_int_equal(lp_file_read_all(q, &part, &np), LP_OK);
        assert_true(np > 0 && off + np <= nw);
        assert_memory_equal(whole + off, part, np);
        off += np;
        lp_free(part);
    }
    assert_int_equal(off, nw);
    lp_free(whole);
}

/* Labels: 1..4 per video, distinct, ascending, every count used; Zipf-like frequencies. Ids: 4
 * characters, unique. (Frames forced to 1: the labels do not depend on T.) */
static void test_labels_and_ids(void **state) {
    (void)state;
    const int C = 50, N = 6000;
    lp_synth_config c;
    lp_synth_config_default(&c, C, 5);
    lp_synth *s;
    assert_int_equal(lp_synth_new(&s, &c), LP_OK);
    lp_synth_video v;
    lp_synth_video_init(&v);
    int count[50] = {0}, per_video[5] = {0};
    char(*ids)[16] = lp_malloc(N, sizeof *ids);
    assert_non_null(ids);
    for (int n = 0; n < N; n++) {
        assert_int_equal(lp_synth_video_make(s, (uint64_t)n, -1, 1, &v), LP_OK);
        assert_true(v.n_labels >= 1 && v.n_labels <= 4);
        per_video[v.n_labels]++;
        for (int j = 0; j < v.n_labels; j++) {
            assert_true(v.labels[j] >= 0 && v.labels[j] < C);
            if (j) assert_true(v.labels[j] > v.labels[j - 1]);
            count[v.labels[j]]++;
        }
        assert_int_equal(strlen(v.id), 4);
        memcpy(ids[n], v.id, 16);
    }
    for (int m = 1; m <= 4; m++) assert_true(per_video[m] > N / 20);
    assert_true(per_video[1] > per_video[4]); /* P(m) decreasing */
    int mx = 0, mn = N;
    for (int k = 0; k < C; k++) {
        if (count[k] > mx) mx = count[k];
        if (count[k] < mn) mn = count[k];
    }
    /* The law p(c) ∝ 1/(c+2) gives p(0)/p(49) = 25.5; sampling distinct labels flattens it somewhat. */
    assert_int_equal(mx, count[0]);
    assert_true(mn > 0);
    assert_true(mx > 8 * mn);
    int head = 0, tail = 0;
    for (int k = 0; k < 5; k++) {
        head += count[k];
        tail += count[C - 1 - k];
    }
    assert_true(head > 5 * tail);
    double psum = 0;
    for (int k = 0; k < C; k++) psum += lp_synth_prior(s, k);
    assert_true(fabs(psum - 1) < 1e-12);
    assert_true(lp_synth_prior(s, 0) > lp_synth_prior(s, 1));
    /* Unique ids. */
    qsort(ids, N, 16, (int (*)(const void *, const void *))strcmp);
    for (int n = 1; n < N; n++) assert_true(strcmp(ids[n - 1], ids[n]) != 0);
    lp_free(ids);
    lp_synth_video_free(&v);
    lp_synth_free(s);
}

/* Nearest-centroid accuracy of test videos of classes a and b, from features computed by feat()
 * (train: videos 0..ntr-1 of each class; test: the next nte). */
typedef void (*feat_fn)(const lp_synth_video *v, double *out); /* out [1152] */

static void feat_mean(const lp_synth_video *v, double *out) {
    const float *dq = lp_yt8m_dequant_table();
    for (int i = 0; i < 1152; i++) out[i] = 0;
    for (int t = 0; t < v->n_frames; t++)
        for (int i = 0; i < 1152; i++) out[i] += dq[v->q[(size_t)t * 1152 + i]];
    for (int i = 0; i < 1152; i++) out[i] /= v->n_frames;
}

/* An order-aware summary: mean of the first half minus mean of the second half. */
static void feat_order(const lp_synth_video *v, double *out) {
    const float *dq = lp_yt8m_dequant_table();
    const int h = v->n_frames / 2;
    for (int i = 0; i < 1152; i++) out[i] = 0;
    for (int t = 0; t < 2 * h; t++) {
        const double sgn = t < h ? 1.0 / h : -1.0 / h;
        for (int i = 0; i < 1152; i++) out[i] += sgn * dq[v->q[(size_t)t * 1152 + i]];
    }
}

static double centroid_accuracy(const lp_synth *s, int a, int b, feat_fn feat) {
    enum { NTR = 30, NTE = 30 };
    static double ca[1152], cb[1152], f[1152];
    lp_synth_video v;
    lp_synth_video_init(&v);
    const int cls[2] = {a, b};
    double *cen[2] = {ca, cb};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 1152; i++) cen[k][i] = 0;
        for (int n = 0; n < NTR; n++) {
            assert_int_equal(lp_synth_video_make(s, 1000u * (unsigned)cls[k] + (unsigned)n, cls[k], 0, &v), LP_OK);
            feat(&v, f);
            for (int i = 0; i < 1152; i++) cen[k][i] += f[i] / NTR;
        }
    }
    int right = 0;
    for (int k = 0; k < 2; k++)
        for (int n = NTR; n < NTR + NTE; n++) {
            assert_int_equal(lp_synth_video_make(s, 1000u * (unsigned)cls[k] + (unsigned)n, cls[k], 0, &v), LP_OK);
            feat(&v, f);
            double d0 = 0, d1 = 0;
            for (int i = 0; i < 1152; i++) {
                d0 += (f[i] - ca[i]) * (f[i] - ca[i]);
                d1 += (f[i] - cb[i]) * (f[i] - cb[i]);
            }
            right += (d0 < d1) == (k == 0);
        }
    lp_synth_video_free(&v);
    return right / (2.0 * NTE);
}

/* The planted structure: class 1 is the exact time-reverse of class 0 (so their time averages are
 * equal), mean pooling cannot separate them but an order-aware summary can, while an unpaired class is
 * separable by its mean. */
static void test_reversed_pairs_order_matters(void **state) {
    (void)state;
    lp_synth_config c;
    lp_synth_config_default(&c, 40, 3);
    c.frames_min = 30;
    c.frames_max = 60;
    lp_synth *s;
    assert_int_equal(lp_synth_new(&s, &c), LP_OK);
    /* pair_fraction 0.5 of 40 classes: pairs (0,1) ... (18,19); classes 20.. unpaired. */
    assert_int_equal(lp_synth_partner(s, 0), 1);
    assert_int_equal(lp_synth_partner(s, 1), 0);
    assert_int_equal(lp_synth_partner(s, 19), 18);
    assert_int_equal(lp_synth_partner(s, 20), -1);
    double z0[12], z1[12], m0[12] = {0}, m1[12] = {0};
    double far = 0;
    const int G = 64;
    for (int g = 0; g < G; g++) {
        const double u = (g + 0.5) / G;
        lp_synth_trajectory(s, 0, u, z0);
        lp_synth_trajectory(s, 1, 1.0 - u, z1);
        for (int l = 0; l < 12; l++) assert_true(fabs(z0[l] - z1[l]) < 1e-12); /* exact mirror up to rounding */
        lp_synth_trajectory(s, 1, u, z1);
        double d = 0;
        for (int l = 0; l < 12; l++) {
            m0[l] += z0[l] / G;
            m1[l] += z1[l] / G;
            d += (z0[l] - z1[l]) * (z0[l] - z1[l]);
        }
        if (d > far) far = d;
    }
    for (int l = 0; l < 12; l++) assert_true(fabs(m0[l] - m1[l]) < 1e-12); /* same time average */
    assert_true(sqrt(far) > 0.5);                                           /* different paths */

    /* On generated videos (noise, random windows, quantisation). 60 test videos: chance is 0.5 ± 0.065. */
    double pair_mean = centroid_accuracy(s, 0, 1, feat_mean);
    double pair_order = centroid_accuracy(s, 0, 1, feat_order);
    double other_mean = centroid_accuracy(s, 20, 22, feat_mean);
    print_message("nearest-centroid accuracy: pair by mean %.2f, pair by order %.2f, unpaired by mean %.2f\n",
                  pair_mean, pair_order, other_mean);
    assert_true(pair_mean < 0.75);
    assert_true(pair_order > 0.9);
    assert_true(other_mean > 0.9);
    lp_synth_free(s);
}

static void test_config_errors(void **state) {
    (void)state;
    lp_synth_config c;
    lp_synth_config_default(&c, 1, 1);
    assert_int_equal(lp_synth_config_check(&c), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "classes"));
    lp_synth_config_default(&c, 3, 1);
    assert_int_equal(lp_synth_config_check(&c), LP_ERR_ARG); /* 4 labels per video > 3 classes */
    assert_non_null(strstr(lp_last_error(), "labels"));
    lp_synth_config_default(&c, 10, 1);
    c.frames_min = 50;
    c.frames_max = 40;
    assert_int_equal(lp_synth_config_check(&c), LP_ERR_ARG);
    lp_synth_config_default(&c, 10, 1);
    c.noise_rho = 1.0;
    assert_int_equal(lp_synth_config_check(&c), LP_ERR_ARG);
    lp_synth_config_default(&c, 10, 1);
    c.pair_fraction = NAN;
    assert_int_equal(lp_synth_config_check(&c), LP_ERR_ARG);
    lp_synth_config_default(&c, 10, 1);
    assert_int_equal(lp_synth_config_check(&c), LP_OK);

    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    o.out_dir = lp_test_scratch_path("bad");
    o.split[0] = 0.5; /* sums to 0.8 */
    assert_int_equal(lp_synth_write(&c, &o), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "sum to 1"));
    lp_synth_write_opts_default(&o);
    o.out_dir = lp_test_scratch_path("bad");
    o.video_level = 1;
    assert_int_equal(lp_yt8m_features_parse(&o.yt8m.video, "mean_rgb:1000,mean_audio:128"), LP_OK);
    assert_int_equal(lp_synth_write(&c, &o), LP_ERR_ARG); /* sizes differ from the frame features */
    /* Unwritable output is an I/O error naming the path. */
    lp_synth_write_opts_default(&o);
    o.out_dir = "/proc/lp_no_such_dir";
    o.videos = 2;
    assert_int_not_equal(lp_synth_write(&c, &o), LP_OK);
    assert_non_null(strstr(lp_last_error(), "/proc/lp_no_such_dir"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_labels_and_ids),
        cmocka_unit_test(test_reversed_pairs_order_matters),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

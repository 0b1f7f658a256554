/* test_yt8m: YouTube-8M record decoding on the reference files (values from tfrecord_expected.json), on
 * real data (YouTube-8M 2018 video level vs an independent parse, AudioSet vs Google's segment list,
 * Google's frame-level extractor output; expected counts read from data/README.md), bad content built
 * with protobuf-c (each error, and skip-bad counting), the encoder round trip and the spec parser. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/rng.h"
#include "data/tfrecord.h"
#include "data/yt8m.h"
#include "tests/common/refdata.h"
#include "third_party/tf_example.pb-c.h"

static char tmpdir[256];

static char *slurp_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fprintf(stderr, "cannot open %s\n", path);
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = 0;
    fclose(f);
    return p;
}

static const char *ref(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s", lp_ref_path(rel));
    return buf[k];
}

/* ---- minimal extraction from tfrecord_expected.json ---- */

typedef struct {
    char id[64];
    long labels[32];
    int n_labels;
    long num_frames;  /* -1 when absent */
    double rgb4[4], audio4[4];
    double rgb_sum, audio_sum, mean_rgb_sum, mean_audio_first; /* NAN when absent */
} exp_video;

/* The value after "key": inside [p, end) — a pointer to its first character, or NULL. */
static const char *json_value(const char *p, const char *end, const char *key) {
    char k[96];
    snprintf(k, sizeof k, "\"%s\"", key);
    const char *q = strstr(p, k);
    if (!q || q >= end) return NULL;
    q = strchr(q + strlen(k), ':');
    assert_non_null(q);
    q++;
    while (*q == ' ' || *q == '\n') q++;
    return q;
}

/* "[a, b, ...]" → doubles; returns the count. */
static int json_array(const char *p, double *out, int max) {
    assert_true(*p == '[');
    p++;
    int n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == ',') p++;
        if (*p == ']') return n;
        char *e;
        double v = strtod(p, &e);
        assert_true(e != p);
        assert_true(n < max);
        out[n++] = v;
        p = e;
    }
}

static int load_expected(const char *file, exp_video *out, int max) {
    char *json = slurp_text(ref("reference/tfrecord_expected.json"));
    char key[128];
    snprintf(key, sizeof key, "\"%s\"", file);
    const char *sec = strstr(json, key);
    assert_non_null(sec);
    const char *sec_end = strstr(sec + strlen(key), ".tfrecord\"");  // next top-level file key
    if (!sec_end) sec_end = json + strlen(json);
    int n = 0;
    const char *id = json_value(sec, sec_end, "id");
    while (id) {
        assert_true(n < max);
        exp_video *v = &out[n++];
        memset(v, 0, sizeof *v);
        const char *next = json_value(id, sec_end, "id");  // the next video's id value, or NULL
        const char *vend = next ? next : sec_end;          // this video's fields lie before it
        assert_true(*id == '"');
        const char *q = strchr(id + 1, '"');
        snprintf(v->id, sizeof v->id, "%.*s", (int)(q - id - 1), id + 1);
        double tmp[32];
        const char *x = json_value(id, vend, "labels");
        assert_non_null(x);
        v->n_labels = json_array(x, tmp, 32);
        for (int i = 0; i < v->n_labels; i++) v->labels[i] = (long)tmp[i];
        x = json_value(id, vend, "num_frames");
        v->num_frames = x ? strtol(x, NULL, 10) : -1;
        x = json_value(id, vend, "rgb_first_frame_first4_dequantized");
        if (x) assert_int_equal(json_array(x, v->rgb4, 4), 4);
        x = json_value(id, vend, "audio_last_frame_last4_dequantized");
        if (x) assert_int_equal(json_array(x, v->audio4, 4), 4);
        x = json_value(id, vend, "rgb_sum_dequantized");
        v->rgb_sum = x ? strtod(x, NULL) : NAN;
        x = json_value(id, vend, "audio_sum_dequantized");
        v->audio_sum = x ? strtod(x, NULL) : NAN;
        x = json_value(id, vend, "mean_rgb_sum");
        v->mean_rgb_sum = x ? strtod(x, NULL) : NAN;
        x = json_value(id, vend, "mean_audio_first");
        v->mean_audio_first = x ? strtod(x, NULL) : NAN;
        id = next;
    }
    free(json);
    return n;
}

/* The integers in data/README.md between `from` and the next `to` (commas followed by a digit are
 * thousands separators: "22,160"; "[1, 2]" is two numbers). Returns the count. */
static int readme_numbers(const char *from, const char *to, long *out, int max) {
    char *t = slurp_text(ref("data/README.md"));
    const char *p = strstr(t, from);
    if (!p) fprintf(stderr, "README anchor not found: %s\n", from);
    assert_non_null(p);
    p += strlen(from);
    const char *end = strstr(p, to);
    assert_non_null(end);
    int n = 0;
    while (p < end) {
        if (*p < '0' || *p > '9') {
            p++;
            continue;
        }
        long v = 0;
        while (p < end && ((*p >= '0' && *p <= '9') || (*p == ',' && p[1] >= '0' && p[1] <= '9'))) {
            if (*p != ',') v = v * 10 + (*p - '0');
            p++;
        }
        assert_true(n < max);
        out[n++] = v;
    }
    free(t);
    return n;
}

/* ---- reference files ---- */

static void test_reference_frame_level(void **state) {
    (void)state;
    exp_video ex[8];
    int n = load_expected("yt8m_frame.tfrecord", ex, 8);
    assert_true(n >= 4);
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    lp_yt8m_reader *r;
    assert_int_equal(lp_yt8m_reader_open(&r, ref("reference/yt8m_frame.tfrecord"), &cfg), LP_OK);
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    for (int i = 0; i < n; i++) {
        assert_int_equal(lp_yt8m_reader_next(r, &v), LP_OK);
        assert_int_equal(v.level, LP_YT8M_LEVEL_FRAME);
        assert_string_equal(v.id, ex[i].id);
        assert_int_equal(v.n_labels, ex[i].n_labels);
        for (int k = 0; k < v.n_labels; k++) assert_int_equal(v.labels[k], ex[i].labels[k]);
        assert_int_equal(v.n_frames, ex[i].num_frames);
        assert_int_equal(v.total_frames, ex[i].num_frames);
        assert_int_equal(v.dim, 1152);
        /* Dequantised values are float32 roundings of the float64 reference: |err| <= half an ulp at 2
         * (1.2e-7); 1e-6 leaves margin, while a wrong offset (4/512 = 0.0078) or scale is far outside. */
        for (int k = 0; k < 4; k++) assert_true(fabs(v.features[k] - ex[i].rgb4[k]) <= 1e-6);
        const float *last = v.features + (size_t)(v.n_frames - 1) * 1152;
        for (int k = 0; k < 4; k++) assert_true(fabs(last[1024 + 124 + k] - ex[i].audio4[k]) <= 1e-6);
        double rs = 0, as = 0;
        for (int t = 0; t < v.n_frames; t++)
            for (int j = 0; j < 1152; j++) *(j < 1024 ? &rs : &as) += v.features[(size_t)t * 1152 + j];
        /* Sums in double of float32 values: each term off by <= 1.2e-7 from the float64 reference. */
        assert_true(fabs(rs - ex[i].rgb_sum) <= 1.2e-7 * 1024 * v.n_frames + 1e-9);
        assert_true(fabs(as - ex[i].audio_sum) <= 1.2e-7 * 128 * v.n_frames + 1e-9);
    }
    assert_int_equal(lp_yt8m_reader_next(r, &v), LP_ERR_EOF);
    assert_int_equal(lp_yt8m_reader_skipped(r), 0);
    lp_yt8m_reader_close(r);
    lp_yt8m_video_free(&v);
}

static void test_reference_video_level(void **state) {
    (void)state;
    exp_video ex[8];
    int n = load_expected("yt8m_video.tfrecord", ex, 8);
    assert_true(n >= 3);
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    for (int level = 0; level < 2; level++) {  // auto-detected and forced video level
        cfg.level = level ? LP_YT8M_LEVEL_VIDEO : LP_YT8M_LEVEL_AUTO;
        lp_yt8m_reader *r;
        assert_int_equal(lp_yt8m_reader_open(&r, ref("reference/yt8m_video.tfrecord"), &cfg), LP_OK);
        lp_yt8m_video v;
        lp_yt8m_video_init(&v);
        for (int i = 0; i < n; i++) {
            assert_int_equal(lp_yt8m_reader_next(r, &v), LP_OK);
            assert_int_equal(v.level, LP_YT8M_LEVEL_VIDEO);
            assert_string_equal(v.id, ex[i].id);
            assert_int_equal(v.n_labels, ex[i].n_labels);
            for (int k = 0; k < v.n_labels; k++) assert_int_equal(v.labels[k], ex[i].labels[k]);
            assert_int_equal(v.n_frames, 0);
            assert_int_equal(v.dim, 1152);
            double s = 0;
            for (int j = 0; j < 1024; j++) s += v.features[j];
            /* The stored floats are exact; the reference sum may be a float32 accumulation: 1024 terms
             * of |x| <~ 3 give at most ~1024 * 3 * 6e-8 = 2e-4. */
            assert_true(fabs(s - ex[i].mean_rgb_sum) <= 2e-4);
            /* A float32 value printed in float64: exact up to float32 representation. */
            assert_true(fabs(v.features[1024] - ex[i].mean_audio_first) <= 1e-7 * fabs(ex[i].mean_audio_first));
        }
        assert_int_equal(lp_yt8m_reader_next(r, &v), LP_ERR_EOF);
        lp_yt8m_reader_close(r);
        lp_yt8m_video_free(&v);
    }
}

static void test_level_mismatch_is_an_error(void **state) {
    (void)state;
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    lp_yt8m_reader *r;
    cfg.level = LP_YT8M_LEVEL_FRAME;  // video-level records have no feature lists
    assert_int_equal(lp_yt8m_reader_open(&r, ref("reference/yt8m_video.tfrecord"), &cfg), LP_OK);
    assert_int_equal(lp_yt8m_reader_next(r, &v), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "record 1 at byte offset 0: video 'vl0': missing feature list 'rgb'"));
    lp_yt8m_reader_close(r);
    cfg.level = LP_YT8M_LEVEL_VIDEO;  // frame-level records have no mean_rgb
    assert_int_equal(lp_yt8m_reader_open(&r, ref("reference/yt8m_frame.tfrecord"), &cfg), LP_OK);
    assert_int_equal(lp_yt8m_reader_next(r, &v), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "missing video feature 'mean_rgb'"));
    lp_yt8m_reader_close(r);
    lp_yt8m_video_free(&v);
}

static void test_max_frames(void **state) {
    (void)state;
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    lp_yt8m_video full, cut;
    lp_yt8m_video_init(&full);
    lp_yt8m_video_init(&cut);
    lp_yt8m_reader *a, *b;
    assert_int_equal(lp_yt8m_reader_open(&a, ref("reference/yt8m_frame.tfrecord"), &cfg), LP_OK);
    cfg.max_frames = 2;
    assert_int_equal(lp_yt8m_reader_open(&b, ref("reference/yt8m_frame.tfrecord"), &cfg), LP_OK);
    while (lp_yt8m_reader_next(a, &full) == LP_OK) {
        assert_int_equal(lp_yt8m_reader_next(b, &cut), LP_OK);
        assert_int_equal(cut.total_frames, full.n_frames);
        assert_int_equal(cut.n_frames, full.n_frames < 2 ? full.n_frames : 2);
        assert_memory_equal(cut.features, full.features, (size_t)cut.n_frames * 1152 * sizeof(float));
    }
    lp_yt8m_reader_close(a);
    lp_yt8m_reader_close(b);
    lp_yt8m_video_free(&full);
    lp_yt8m_video_free(&cut);
}

/* ---- real data ---- */

static void test_real_yt8m_video_2018(void **state) {
    (void)state;
    /* expected_labels.csv rows: yt8m_id,youtube_id,"[l1, l2]" or [l], in shard/record order. */
    char *csv = slurp_text(ref("data/yt8m_video_2018/expected_labels.csv"));
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    cfg.level = LP_YT8M_LEVEL_VIDEO;
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    const char *shards[] = {"data/yt8m_video_2018/validate0000.tfrecord", "data/yt8m_video_2018/validate0101.tfrecord",
                            "data/yt8m_video_2018/validate0199.tfrecord"};
    lp_yt8m_reader *r;
    assert_int_equal(lp_yt8m_reader_open(&r, ref(shards[0]), &cfg), LP_OK);
    char *line = csv;
    long total = 0, shard_counts[3] = {0};
    for (int s = 0; s < 3; s++) {
        if (s) assert_int_equal(lp_yt8m_reader_reopen(r, ref(shards[s])), LP_OK);
        lp_status st;
        while ((st = lp_yt8m_reader_next(r, &v)) == LP_OK) {
            while (*line == '#') line = strchr(line, '\n') + 1;  // comment lines
            assert_true(*line != 0);                            // more records than rows
            char *eol = strchr(line, '\n');
            if (eol) *eol = 0;
            char *c1 = strchr(line, ',');
            assert_non_null(c1);
            *c1 = 0;
            assert_string_equal(v.id, line);
            char *lab = strchr(c1 + 1, '[');
            assert_non_null(lab);
            int k = 0;
            for (char *p = lab + 1; *p && *p != ']';) {
                if (*p >= '0' && *p <= '9') {
                    long l = strtol(p, &p, 10);
                    assert_true(k < v.n_labels);
                    assert_int_equal(v.labels[k++], l);
                } else {
                    p++;
                }
            }
            assert_int_equal(k, v.n_labels);
            for (int j = 0; j < v.dim; j++) assert_true(isfinite(v.features[j]));
            line = eol ? eol + 1 : line + strlen(line);
            total++;
            shard_counts[s]++;
        }
        assert_int_equal(st, LP_ERR_EOF);
    }
    while (*line == '#') line = strchr(line, '\n') + 1;
    assert_true(*line == 0 || *line == '\n');  // every row matched
    /* "- 284 + 268 + 317 records." in data/README.md; 869 in all. */
    long want[4];
    assert_int_equal(readme_numbers("YouTube-8M data CC BY 4.0 (Google).", "records.", want, 4), 3);
    for (int s = 0; s < 3; s++) assert_int_equal(shard_counts[s], want[s]);
    assert_int_equal(total, want[0] + want[1] + want[2]);
    lp_yt8m_reader_close(r);
    lp_yt8m_video_free(&v);
    free(csv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_frame_level),
        cmocka_unit_test(test_reference_video_level),
        cmocka_unit_test(test_level_mismatch_is_an_error),
        cmocka_unit_test(test_max_frames),
        cmocka_unit_test(test_real_yt8m_video_2018),
    };
    (void)tmpdir;
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include "tests/common/scratch.h"
#include "third_party/tf_example.pb-c.h"

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

/* AudioSet: counts per split from data/README.md, 1..10 frames of 128 values, labels below the number
 * of classes in class_labels_indices.csv, and for the balanced training set the label set of every
 * record equals Google's balanced_train_segments.csv row for its YouTube id. */
typedef struct {
    char ytid[24];
    int labels[32];
    int n;
} seg_row;

static int seg_cmp(const void *a, const void *b) {
    return strcmp(((const seg_row *)a)->ytid, ((const seg_row *)b)->ytid);
}

static int int_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_real_audioset(void **state) {
    (void)state;
    /* class_labels_indices.csv: "index,mid,display_name" then one row per class. */
    char *cls = slurp_text(ref("data/audioset/class_labels_indices.csv"));
    static char mids[1024][32];
    int n_classes = 0;
    for (char *line = strchr(cls, '\n') + 1; *line; n_classes++) {
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        assert_non_null(c2);
        assert_int_equal(strtol(line, NULL, 10), n_classes);
        assert_true(n_classes < 1024);
        snprintf(mids[n_classes], sizeof mids[0], "%.*s", (int)(c2 - c1 - 1), c1 + 1);
        char *eol = strchr(line, '\n');
        line = eol ? eol + 1 : line + strlen(line);
    }
    free(cls);

    /* balanced_train_segments.csv: YTID, start, end, "mid,mid,..." */
    char *segs_txt = slurp_text(ref("data/audioset/balanced_train_segments.csv"));
    int cap = 30000, n_segs = 0;
    seg_row *segs = calloc((size_t)cap, sizeof *segs);
    for (char *line = segs_txt; *line;) {
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        if (*line && *line != '#') {
            assert_true(n_segs < cap);
            seg_row *sr = &segs[n_segs++];
            char *c1 = strchr(line, ',');
            assert_non_null(c1);
            snprintf(sr->ytid, sizeof sr->ytid, "%.*s", (int)(c1 - line), line);
            char *q = strchr(line, '"');
            assert_non_null(q);
            for (char *m = q + 1; *m && *m != '"';) {
                size_t len = strcspn(m, ",\"");
                int found = -1;
                for (int c = 0; c < n_classes; c++)
                    if (strlen(mids[c]) == len && !strncmp(mids[c], m, len)) found = c;
                assert_true(found >= 0);
                assert_true(sr->n < 32);
                sr->labels[sr->n++] = found;
                m += len;
                if (*m == ',') m++;
            }
            qsort(sr->labels, (size_t)sr->n, sizeof(int), int_cmp);
        }
        line = eol ? eol + 1 : line + strlen(line);
    }
    free(segs_txt);
    qsort(segs, (size_t)n_segs, sizeof *segs, seg_cmp);

    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    assert_int_equal(lp_yt8m_config_set(&cfg, "audio_embedding:128", NULL, "video_id", NULL), LP_OK);
    cfg.classes = n_classes;
    cfg.level = LP_YT8M_LEVEL_FRAME;
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    lp_yt8m_reader *r = NULL;
    const char *sets[2] = {"bal_train", "eval"};
    const char *anchors[2] = {"`bal_train-0[0-7].tfrecord`:", "`eval-0[0-7].tfrecord`:"};
    for (int set = 0; set < 2; set++) {
        long want;
        assert_int_equal(readme_numbers(anchors[set], " records", &want, 1), 1);
        long count = 0, frames = 0, matched = 0;
        for (int k = 0; k < 8; k++) {
            char rel[128];
            snprintf(rel, sizeof rel, "data/audioset/%s-%02d.tfrecord", sets[set], k);
            if (!r) assert_int_equal(lp_yt8m_reader_open(&r, ref(rel), &cfg), LP_OK);
            else assert_int_equal(lp_yt8m_reader_reopen(r, ref(rel)), LP_OK);
            lp_status s;
            while ((s = lp_yt8m_reader_next(r, &v)) == LP_OK) {
                count++;
                frames += v.n_frames;
                assert_true(v.n_frames >= 1 && v.n_frames <= 10);
                assert_int_equal(v.dim, 128);
                assert_true(v.n_labels >= 1);
                for (int i = 0; i < v.n_labels; i++) assert_true(v.labels[i] >= 0 && v.labels[i] < n_classes);
                if (set == 0) {
                    seg_row key;
                    snprintf(key.ytid, sizeof key.ytid, "%s", v.id);
                    const seg_row *sr = bsearch(&key, segs, (size_t)n_segs, sizeof *segs, seg_cmp);
                    assert_non_null(sr);
                    int sorted[32];
                    assert_int_equal(v.n_labels, sr->n);
                    memcpy(sorted, v.labels, (size_t)v.n_labels * sizeof(int));
                    qsort(sorted, (size_t)v.n_labels, sizeof(int), int_cmp);
                    assert_memory_equal(sorted, sr->labels, (size_t)sr->n * sizeof(int));
                    matched++;
                }
            }
            assert_int_equal(s, LP_ERR_EOF);
        }
        fprintf(stderr, "  audioset %s: %ld records, %ld frames, %ld label sets matched\n", sets[set], count,
                frames, matched);
        assert_int_equal(count, want);
        if (set == 0) assert_int_equal(matched, n_segs);
    }
    assert_int_equal(lp_yt8m_reader_skipped(r), 0);
    lp_yt8m_reader_close(r);
    lp_yt8m_video_free(&v);
    free(segs);
}

/* Google's feature extractor output: frame counts and labels from data/README.md; extra context keys
 * (mean_rgb, mean_audio) are ignored; the audio was all zeros, so it dequantises to -2 + 4/512. */
static void test_real_frame_extractor(void **state) {
    (void)state;
    const char *files[2] = {"data/yt8m_frame_extractor/0_out.tfrecord", "data/yt8m_frame_extractor/1_out.tfrecord"};
    const char *from[2] = {"`0_out.tfrecord`:", "`1_out.tfrecord`:"};
    const char *to[2] = {";", ". Context"};
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    const float zero = lp_yt8m_dequant_table()[0];
    for (int f = 0; f < 2; f++) {
        long want[8];  // records, frames, labels...
        int nw = readme_numbers(from[f], to[f], want, 8);
        assert_true(nw >= 3);
        lp_yt8m_reader *r;
        lp_yt8m_video v;
        lp_yt8m_video_init(&v);
        assert_int_equal(lp_yt8m_reader_open(&r, ref(files[f]), &cfg), LP_OK);
        long count = 0;
        while (lp_yt8m_reader_next(r, &v) == LP_OK) {
            count++;
            assert_int_equal(v.level, LP_YT8M_LEVEL_FRAME);
            assert_int_equal(v.n_frames, want[1]);
            assert_int_equal(v.n_labels, nw - 2);
            for (int i = 0; i < v.n_labels; i++) assert_int_equal(v.labels[i], want[2 + i]);
            double s = 0, s2 = 0;
            for (int t = 0; t < v.n_frames; t++) {
                const float *x = v.features + (size_t)t * 1152;
                for (int j = 0; j < 1024; j++) s += x[j], s2 += (double)x[j] * x[j];
                for (int j = 1024; j < 1152; j++) assert_true(x[j] == zero);
            }
            double n = 1024.0 * v.n_frames;
            assert_true(s2 / n - (s / n) * (s / n) > 1e-3);  // real rgb features vary
        }
        assert_true(lp_yt8m_reader_failed(r) == 0);
        assert_int_equal(count, want[0]);
        lp_yt8m_reader_close(r);
        lp_yt8m_video_free(&v);
    }
}

/* ---- bad content, built with protobuf-c ---- */

typedef struct {
    const char *id;    /* NULL: no id feature */
    int64_t labels[4];
    int n_labels;
    int frames[2];     /* rgb, audio frame counts; -1 omits that feature list */
    int bad_frame;     /* an rgb frame with 1023 bytes, or -1 */
    int extras;        /* unrelated context keys and feature list, as real files carry */
    const char *raw;   /* if set: these bytes instead of a protobuf (raw_len of them) */
    size_t raw_len;
    const char *error; /* expected message part, NULL for a good record */
} rec_case;

static uint8_t pattern(int t, int j) {
    return (uint8_t)(t * 37 + j * 11 + 5);
}

/* Serialise a case; caller frees. */
static uint8_t *build_record(const rec_case *rc, size_t *len) {
    if (rc->raw) {
        uint8_t *p = malloc(rc->raw_len);
        memcpy(p, rc->raw, rc->raw_len);
        *len = rc->raw_len;
        return p;
    }
    const int sizes[2] = {1024, 128};
    const char *names[2] = {"rgb", "audio"};
    Tensorflow__Features__FeatureEntry *ctx_e[8];
    Tensorflow__Features__FeatureEntry ent[8];
    Tensorflow__Feature feat[8];
    Tensorflow__BytesList bl[8];
    Tensorflow__Int64List il[8];
    Tensorflow__FloatList fl[8];
    ProtobufCBinaryData bin[8];
    float zeros[1024] = {0};
    int n_ctx = 0;
    // context entry k: key and a Feature built by the caller below
#define CTX_ENTRY(KEY)                                                            \
    do {                                                                         \
        Tensorflow__Features__FeatureEntry e = TENSORFLOW__FEATURES__FEATURE_ENTRY__INIT; \
        Tensorflow__Feature f0 = TENSORFLOW__FEATURE__INIT;                      \
        feat[n_ctx] = f0;                                                        \
        e.key = (char *)(KEY);                                                   \
        e.value = &feat[n_ctx];                                                  \
        ent[n_ctx] = e;                                                          \
        ctx_e[n_ctx] = &ent[n_ctx];                                              \
    } while (0)
    if (rc->extras) {
        CTX_ENTRY("mean_rgb");
        Tensorflow__FloatList f = TENSORFLOW__FLOAT_LIST__INIT;
        f.n_value = 1024;
        f.value = zeros;
        fl[n_ctx] = f;
        feat[n_ctx].kind_case = TENSORFLOW__FEATURE__KIND_FLOAT_LIST;
        feat[n_ctx].float_list = &fl[n_ctx];
        n_ctx++;
    }
    if (rc->id) {
        CTX_ENTRY("id");
        Tensorflow__BytesList b = TENSORFLOW__BYTES_LIST__INIT;
        bin[n_ctx].data = (uint8_t *)rc->id;
        bin[n_ctx].len = strlen(rc->id);
        b.n_value = 1;
        b.value = &bin[n_ctx];
        bl[n_ctx] = b;
        feat[n_ctx].kind_case = TENSORFLOW__FEATURE__KIND_BYTES_LIST;
        feat[n_ctx].bytes_list = &bl[n_ctx];
        n_ctx++;
    }
    {
        CTX_ENTRY("labels");
        Tensorflow__Int64List l = TENSORFLOW__INT64_LIST__INIT;
        l.n_value = (size_t)rc->n_labels;
        l.value = (int64_t *)rc->labels;
        il[n_ctx] = l;
        feat[n_ctx].kind_case = TENSORFLOW__FEATURE__KIND_INT64_LIST;
        feat[n_ctx].int64_list = &il[n_ctx];
        n_ctx++;
    }
    if (rc->extras) {
        CTX_ENTRY("start_time_seconds");
        Tensorflow__FloatList f = TENSORFLOW__FLOAT_LIST__INIT;
        f.n_value = 1;
        f.value = zeros;
        fl[n_ctx] = f;
        feat[n_ctx].kind_case = TENSORFLOW__FEATURE__KIND_FLOAT_LIST;
        feat[n_ctx].float_list = &fl[n_ctx];
        n_ctx++;
    }
#undef CTX_ENTRY
    Tensorflow__Features ctx = TENSORFLOW__FEATURES__INIT;
    ctx.n_feature = (size_t)n_ctx;
    ctx.feature = ctx_e;

    // Feature lists: one Feature/BytesList/value per frame, from a fixed byte pattern.
    Tensorflow__FeatureLists__FeatureListEntry le[3], *lep[3];
    Tensorflow__FeatureList lists[3];
    Tensorflow__Feature *ff[3] = {0};
    Tensorflow__Feature **ffp[3] = {0};
    Tensorflow__BytesList *fbl[3] = {0};
    ProtobufCBinaryData *fbin[3] = {0};
    uint8_t *payload[3] = {0};
    int n_lists = 0;
    int order[3] = {0, 1, 2};
    if (rc->extras) order[0] = 2, order[1] = 1, order[2] = 0;  // extras first, audio before rgb
    for (int oi = 0; oi < 3; oi++) {
        int i = order[oi];
        int nfr = i < 2 ? rc->frames[i] : (rc->extras ? 2 : -1);
        if (nfr < 0) continue;
        int size = i < 2 ? sizes[i] : 3;
        size_t cells = nfr ? (size_t)nfr : 1;
        ff[i] = calloc(cells, sizeof(Tensorflow__Feature));
        ffp[i] = calloc(cells, sizeof(Tensorflow__Feature *));
        fbl[i] = calloc(cells, sizeof(Tensorflow__BytesList));
        fbin[i] = calloc(cells, sizeof(ProtobufCBinaryData));
        payload[i] = malloc(cells * (size_t)size);
        for (int t = 0; t < nfr; t++) {
            uint8_t *d = payload[i] + (size_t)t * (size_t)size;
            for (int j = 0; j < size; j++) d[j] = pattern(t, (i == 1 ? 1024 : 0) + j);
            fbin[i][t].data = d;
            fbin[i][t].len = (size_t)size - (i == 0 && t == rc->bad_frame ? 1 : 0);
            Tensorflow__BytesList b = TENSORFLOW__BYTES_LIST__INIT;
            b.n_value = 1;
            b.value = &fbin[i][t];
            fbl[i][t] = b;
            Tensorflow__Feature f = TENSORFLOW__FEATURE__INIT;
            f.kind_case = TENSORFLOW__FEATURE__KIND_BYTES_LIST;
            f.bytes_list = &fbl[i][t];
            ff[i][t] = f;
            ffp[i][t] = &ff[i][t];
        }
        Tensorflow__FeatureList l = TENSORFLOW__FEATURE_LIST__INIT;
        l.n_feature = (size_t)nfr;
        l.feature = ffp[i];
        lists[n_lists] = l;
        Tensorflow__FeatureLists__FeatureListEntry e = TENSORFLOW__FEATURE_LISTS__FEATURE_LIST_ENTRY__INIT;
        e.key = (char *)(i < 2 ? names[i] : "segment_extra");
        e.value = &lists[n_lists];
        le[n_lists] = e;
        lep[n_lists] = &le[n_lists];
        n_lists++;
    }
    Tensorflow__FeatureLists fls = TENSORFLOW__FEATURE_LISTS__INIT;
    fls.n_feature_list = (size_t)n_lists;
    fls.feature_list = lep;
    Tensorflow__SequenceExample se = TENSORFLOW__SEQUENCE_EXAMPLE__INIT;
    se.context = &ctx;
    se.feature_lists = &fls;
    *len = tensorflow__sequence_example__get_packed_size(&se);
    uint8_t *out = malloc(*len + 1);
    assert_int_equal(tensorflow__sequence_example__pack(&se, out), *len);
    for (int i = 0; i < 3; i++) {
        free(ff[i]);
        free(ffp[i]);
        free(fbl[i]);
        free(fbin[i]);
        free(payload[i]);
    }
    return out;
}

static void check_pattern(const lp_yt8m_video *v, int frames) {
    const float *dq = lp_yt8m_dequant_table();
    assert_int_equal(v->n_frames, frames);
    for (int t = 0; t < frames; t++)
        for (int j = 0; j < 1152; j++) assert_true(v->features[(size_t)t * 1152 + j] == dq[pattern(t, j)]);
}

static void test_bad_content(void **state) {
    (void)state;
    static const char garbage[] = {0x0a, (char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x0f, 0x01, 0x02};
    const rec_case cases[] = {
        {"good0", {1, 2}, 2, {5, 5}, -1, 1, NULL, 0, NULL},
        {"lab_hi", {3862}, 1, {2, 2}, -1, 0, NULL, 0, "video 'lab_hi': label 3862 outside [0, 3862)"},
        {"lab_neg", {-1}, 1, {2, 2}, -1, 0, NULL, 0, "label -1 outside [0, 3862)"},
        {"size", {0}, 1, {6, 6}, 3, 0, NULL, 0, "video 'size': feature list 'rgb' frame 4: wrong size: expected 1024 bytes, got 1023"},
        {"noaudio", {0}, 1, {3, -1}, -1, 1, NULL, 0, "video 'noaudio': missing feature list 'audio' (feature lists present: segment_extra, rgb)"},
        {"counts", {0}, 1, {5, 4}, -1, 0, NULL, 0, "different frame counts: 'rgb' 5, 'audio' 4"},
        {NULL, {0}, 1, {0, 0}, -1, 0, garbage, sizeof garbage, "unparsable protobuf"},
        {NULL, {0}, 1, {2, 2}, -1, 1, NULL, 0, "missing id feature 'id' (features present: mean_rgb, labels, start_time_seconds)"},
        {"zero", {0}, 1, {0, 0}, -1, 0, NULL, 0, "record has 0 frames"},
        {"good1", {3861}, 1, {1, 1}, -1, 0, NULL, 0, NULL},
    };
    const int n = (int)(sizeof cases / sizeof cases[0]);
    char path[512];
    snprintf(path, sizeof path, "%s", lp_test_scratch_path("bad.tfrecord"));
    lp_tfrecord_writer *w;
    assert_int_equal(lp_tfrecord_writer_open(&w, path), LP_OK);
    uint64_t offsets[16];
    int n_bad = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        uint8_t *rec = build_record(&cases[i], &len);
        offsets[i] = lp_tfrecord_writer_bytes(w);
        assert_int_equal(lp_tfrecord_write(w, rec, len), LP_OK);
        free(rec);
        n_bad += cases[i].error != NULL;
    }
    assert_int_equal(lp_tfrecord_writer_close(w), LP_OK);

    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    for (int skip = 0; skip < 2; skip++) {
        cfg.skip_bad = skip;
        lp_yt8m_reader *r;
        assert_int_equal(lp_yt8m_reader_open(&r, path, &cfg), LP_OK);
        for (int i = 0; i < n; i++) {
            if (skip && cases[i].error) continue;  // skipped silently, counted below
            lp_status s = lp_yt8m_reader_next(r, &v);
            if (!cases[i].error) {
                assert_int_equal(s, LP_OK);
                assert_string_equal(v.id, cases[i].id);
                assert_int_equal(v.n_labels, cases[i].n_labels);
                assert_int_equal(v.labels[0], cases[i].labels[0]);
                check_pattern(&v, cases[i].frames[0]);
            } else {
                assert_int_equal(s, LP_ERR_FORMAT);
                char want[1024];
                snprintf(want, sizeof want, "%s: record %d at byte offset %llu: ", path, i + 1,
                         (unsigned long long)offsets[i]);
                const char *msg = lp_last_error();
                if (!strstr(msg, want) || !strstr(msg, cases[i].error))
                    fprintf(stderr, "got:  %s\nwant: %s...%s\n", msg, want, cases[i].error);
                assert_non_null(strstr(msg, want));
                assert_non_null(strstr(msg, cases[i].error));
                assert_false(lp_yt8m_reader_failed(r));  // content errors do not end the file
            }
            assert_int_equal(lp_yt8m_reader_record_number(r), (uint64_t)i + 1);
            assert_int_equal(lp_yt8m_reader_record_offset(r), offsets[i]);
        }
        assert_int_equal(lp_yt8m_reader_next(r, &v), LP_ERR_EOF);
        assert_int_equal(lp_yt8m_reader_skipped(r), skip ? (uint64_t)n_bad : 0);
        lp_yt8m_reader_close(r);
    }
    lp_yt8m_video_free(&v);
}

/* ---- encoder, quantisation, specs ---- */

static void test_encode_decode_round_trip(void **state) {
    (void)state;
    lp_rng rng;
    lp_rng_init(&rng, 21, LP_RNG_STREAM_TEST);
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    lp_yt8m_decoder *d;
    assert_int_equal(lp_yt8m_decoder_new(&d, &cfg), LP_OK);
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    lp_yt8m_buf a = {0}, b = {0};
    const float *dq = lp_yt8m_dequant_table();
    for (int rep = 0; rep < 3; rep++) {
        int frames = 1 + (int)lp_rng_below(&rng, 40);
        uint8_t *q = malloc((size_t)frames * 1152);
        for (size_t i = 0; i < (size_t)frames * 1152; i++) q[i] = (uint8_t)lp_rng_u32(&rng);
        int32_t labels[3] = {(int32_t)lp_rng_below(&rng, 3862), 0, 3861};
        assert_int_equal(lp_yt8m_encode_frame(&cfg, "enc", labels, 3, q, frames, &a), LP_OK);
        assert_int_equal(lp_yt8m_encode_frame(&cfg, "enc", labels, 3, q, frames, &b), LP_OK);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);  // deterministic bytes
        assert_int_equal(lp_yt8m_decode(d, a.data, a.len, &v), LP_OK);
        assert_string_equal(v.id, "enc");
        assert_int_equal(v.n_labels, 3);
        assert_memory_equal(v.labels, labels, sizeof labels);
        assert_int_equal(v.n_frames, frames);
        for (size_t i = 0; i < (size_t)frames * 1152; i++) assert_true(v.features[i] == dq[q[i]]);
        free(q);
    }
    float f[1152];
    for (int j = 0; j < 1152; j++) f[j] = (float)lp_rng_normal(&rng);
    int32_t one = 7;
    assert_int_equal(lp_yt8m_encode_video(&cfg, "vid", &one, 1, f, &a), LP_OK);
    assert_int_equal(lp_yt8m_decode(d, a.data, a.len, &v), LP_OK);
    assert_int_equal(v.level, LP_YT8M_LEVEL_VIDEO);
    assert_string_equal(v.id, "vid");
    assert_memory_equal(v.features, f, sizeof f);  // floats are stored exactly
    /* Labels outside [0, classes) are refused by the encoder too. */
    int32_t bad = 3862;
    assert_int_equal(lp_yt8m_encode_video(&cfg, "vid", &bad, 1, f, &a), LP_ERR_ARG);
    /* Unparsable bytes through the decoder directly: a message without file context. */
    const uint8_t junk[] = {0x0a, 0x05, 0x01};
    assert_int_equal(lp_yt8m_decode(d, junk, sizeof junk, &v), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "unparsable protobuf"));
    lp_yt8m_decoder_free(d);

    /* Other names and sizes are configuration: AudioSet-like records. */
    assert_int_equal(lp_yt8m_config_set(&cfg, "audio_embedding:128", NULL, "video_id", NULL), LP_OK);
    cfg.classes = 527;
    assert_int_equal(lp_yt8m_decoder_new(&d, &cfg), LP_OK);
    uint8_t q[3 * 128];
    for (int i = 0; i < 3 * 128; i++) q[i] = (uint8_t)i;
    assert_int_equal(lp_yt8m_encode_frame(&cfg, "yt", &one, 1, q, 3, &a), LP_OK);
    assert_int_equal(lp_yt8m_decode(d, a.data, a.len, &v), LP_OK);
    assert_int_equal(v.dim, 128);
    assert_int_equal(v.n_frames, 3);
    assert_true(v.features[3 * 128 - 1] == dq[q[3 * 128 - 1]]);
    lp_yt8m_decoder_free(d);
    lp_yt8m_buf_free(&a);
    lp_yt8m_buf_free(&b);
    lp_yt8m_video_free(&v);
}

static void test_quantize(void **state) {
    (void)state;
    const float *dq = lp_yt8m_dequant_table();
    for (int q = 0; q < 256; q++) {
        /* q·4/255 + 4/512 − 2 in float64 vs the float32 table: half an ulp at 2 is 1.2e-7. */
        assert_true(fabs(dq[q] - (q * 4.0 / 255.0 + 4.0 / 512.0 - 2.0)) <= 1.2e-7);
        assert_int_equal(lp_yt8m_quantize(dq[q]), q);  // the bin centre quantises back to itself
    }
    assert_int_equal(lp_yt8m_quantize(-5.0f), 0);
    assert_int_equal(lp_yt8m_quantize(5.0f), 255);
    assert_int_equal(lp_yt8m_quantize(NAN), 0);
    assert_int_equal(lp_yt8m_quantize(0.0f), 128);  // (0+2)*255/4 = 127.5 rounds up
}

static void test_feature_specs(void **state) {
    (void)state;
    lp_yt8m_features f;
    assert_int_equal(lp_yt8m_features_parse(&f, "rgb:1024,audio:128"), LP_OK);
    assert_int_equal(f.count, 2);
    assert_int_equal(f.dim, 1152);
    assert_string_equal(f.f[0].name, "rgb");
    assert_int_equal(f.f[1].size, 128);
    char buf[128];
    lp_yt8m_features_format(&f, buf, sizeof buf);
    assert_string_equal(buf, "rgb:1024,audio:128");
    assert_int_equal(lp_yt8m_features_parse(&f, "audio_embedding:128"), LP_OK);
    assert_int_equal(f.dim, 128);
    const char *bad[] = {"", "rgb", "rgb:", ":5", "rgb:0", "rgb:-1", "rgb:12x", "rgb:5,rgb:6", ",", "rgb:5,",
                         "a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1", "rgb:99999999999",
                         "a_name_that_is_far_too_long_for_the_sixty_four_byte_limit_of_names:4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(lp_yt8m_features_parse(&f, bad[i]), LP_ERR_ARG);
        if (bad[i][0]) assert_non_null(strstr(lp_last_error(), bad[i]));  // the message quotes the spec
    }
    lp_yt8m_config c;
    lp_yt8m_config_default(&c);
    assert_int_equal(lp_yt8m_config_set(&c, "rgb:1024,audio:12x", NULL, NULL, NULL), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "frame features"));
    assert_int_equal(c.frame.dim, 1152);  // unchanged on error
    assert_int_equal(lp_yt8m_config_set(&c, NULL, NULL, "labels", NULL), LP_ERR_ARG);  // same as labels key
    lp_yt8m_config_default(&c);
    c.classes = 0;
    assert_int_equal(lp_yt8m_config_check(&c), LP_ERR_ARG);
    lp_yt8m_level l;
    assert_int_equal(lp_yt8m_level_parse(&l, "video"), LP_OK);
    assert_int_equal(l, LP_YT8M_LEVEL_VIDEO);
    assert_string_equal(lp_yt8m_level_str(l), "video");
    assert_int_equal(lp_yt8m_level_parse(&l, "frames"), LP_ERR_ARG);
}

static int setup(void **state) {
    (void)state;
    return lp_test_scratch_make("yt8m");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_frame_level),
        cmocka_unit_test(test_reference_video_level),
        cmocka_unit_test(test_level_mismatch_is_an_error),
        cmocka_unit_test(test_max_frames),
        cmocka_unit_test(test_real_yt8m_video_2018),
        cmocka_unit_test(test_real_audioset),
        cmocka_unit_test(test_real_frame_extractor),
        cmocka_unit_test(test_bad_content),
        cmocka_unit_test(test_encode_decode_round_trip),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_feature_specs),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

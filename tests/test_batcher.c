/* test_batcher: batches from synthetic shards — determinism (seed, thread), epochs as permutations,
 * padding semantics, L2 normalisation, truncation, globbing, skip-bad counting, reader errors surfacing
 * with their message, drop_last, resume by replay, video-level input. */
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
#include "core/crc32c.h"
#include "core/fileio.h"
#include "core/status.h"
#include "data/batcher.h"
#include "data/synth.h"
#include "data/tfrecord.h"
#include "data/yt8m.h"
#include "tests/common/scratch.h"

enum { CLASSES = 20, VIDEOS = 120, TRAIN = 84 };

/* 120 videos of 3..30 frames, 20 classes, 3 shards per split: train 84 = 28+28+28, validate 18, test 18. */
static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("batcher") != 0) return -1;
    lp_synth_config c;
    lp_synth_config_default(&c, CLASSES, 9);
    c.frames_min = 3;
    c.frames_max = 30;
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    o.out_dir = lp_test_scratch_path("set");
    o.videos = VIDEOS;
    o.shards = 3;
    o.video_level = 1;
    return lp_synth_write(&c, &o) == LP_OK ? 0 : -1;
}

static const char *pat_train[1];

static void base_config(lp_batcher_config *c) {
    lp_batcher_config_default(c);
    pat_train[0] = lp_test_scratch_path("set/train*.tfrecord");
    c->patterns = pat_train;
    c->n_patterns = 1;
    c->yt8m.classes = CLASSES;
    c->batch_size = 8;
    c->shuffle_buffer = 16;
    c->seed = 42;
}

/* FNV-1a over a batch's contents (x, lengths, labels, ids, shape). */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t batch_hash(const lp_batch *b) {
    uint64_t h = 1469598103934665603ull;
    int shape[4] = {b->B, b->T, b->D, b->classes};
    h = fnv(h, shape, sizeof shape);
    h = fnv(h, b->x, (size_t)b->B * b->T * b->D * sizeof(float));
    h = fnv(h, b->lengths, (size_t)b->B * sizeof(int));
    h = fnv(h, b->labels, (size_t)b->B * b->classes * sizeof(float));
    for (int i = 0; i < b->B; i++) h = fnv(h, b->ids[i], strlen(b->ids[i]) + 1);
    return h;
}

/* Run a batcher to the end (all epochs), recording one hash per batch and 0 per epoch end. */
static int run_all(const lp_batcher_config *c, uint64_t *hashes, int cap) {
    lp_batcher *b;
    assert_int_equal(lp_batcher_new(&b, c), LP_OK);
    int n = 0;
    for (;;) {
        const lp_batch *batch;
        lp_status s;
        while ((s = lp_batcher_next(b, &batch)) == LP_OK) {
            assert_true(n < cap);
            hashes[n++] = batch_hash(batch);
        }
        assert_int_equal(s, LP_ERR_EOF);
        if (lp_batcher_finished(b)) break;
        assert_true(n < cap);
        hashes[n++] = 0;
    }
    lp_batcher_free(b);
    return n;
}

static void test_same_seed_same_batches(void **state) {
    (void)state;
    lp_batcher_config c;
    base_config(&c);
    c.epochs = 2;
    uint64_t a[64], b[64], d[64], e[64];
    int na = run_all(&c, a, 64);
    int nb = run_all(&c, b, 64);
    c.prefetch = 0; /* no thread: the same batches */
    int nd = run_all(&c, d, 64);
    c.prefetch = 5;
    int ne = run_all(&c, e, 64);
    /* 84 records in batches of 8: 10 full + 1 of 4 per epoch, plus the epoch-end marker of epoch 0. */
    assert_int_equal(na, 11 + 1 + 11);
    assert_int_equal(nb, na);
    assert_int_equal(nd, na);
    assert_int_equal(ne, na);
    assert_memory_equal(a, b, sizeof a[0] * (size_t)na);
    assert_memory_equal(a, d, sizeof a[0] * (size_t)na);
    assert_memory_equal(a, e, sizeof a[0] * (size_t)na);
    /* Another seed: other batches (the epoch-end marker sits at the same place). */
    c.seed = 43;
    int nf = run_all(&c, e, 64);
    assert_int_equal(nf, na);
    int differ = 0;
    for (int i = 0; i < na; i++) differ += a[i] != e[i];
    assert_true(differ >= 20);
    /* Two epochs of one run differ from each other too (reshuffled). */
    differ = 0;
    for (int i = 0; i < 11; i++) differ += a[i] != a[12 + i];
    assert_true(differ >= 9);
}

/* Each epoch delivers every record exactly once; shuffling changes the order but not the set;
 * without shuffling the order is sorted files, records in order. */
static void test_epochs_are_permutations(void **state) {
    (void)state;
    /* The ids in file order, from the plain reader. */
    char ids[TRAIN][16];
    lp_yt8m_config y;
    lp_yt8m_config_default(&y);
    y.classes = CLASSES;
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    int n = 0;
    for (int k = 0; k < 3; k++) {
        lp_yt8m_reader *r;
        char name[64];
        snprintf(name, sizeof name, "set/train%04d.tfrecord", k);
        assert_int_equal(lp_yt8m_reader_open(&r, lp_test_scratch_path(name), &y), LP_OK);
        while (lp_yt8m_reader_next(r, &v) == LP_OK) snprintf(ids[n++], 16, "%s", v.id);
        lp_yt8m_reader_close(r);
    }
    lp_yt8m_video_free(&v);
    assert_int_equal(n, TRAIN);

    for (int shuffle = 0; shuffle <= 1; shuffle++) {
        lp_batcher_config c;
        base_config(&c);
        c.shuffle = shuffle;
        c.epochs = 2;
        lp_batcher *b;
        assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
        assert_int_equal(lp_batcher_num_files(b), 3);
        assert_non_null(strstr(lp_batcher_file(b, 0), "train0000.tfrecord"));
        for (int ep = 0; ep < 2; ep++) {
            int seen[TRAIN] = {0}, pos = 0, in_order = 0;
            const lp_batch *batch;
            lp_status s;
            int64_t expect_idx = 0;
            while ((s = lp_batcher_next(b, &batch)) == LP_OK) {
                assert_int_equal(batch->pos.epoch, ep);
                assert_int_equal(batch->pos.batch, expect_idx++);
                for (int i = 0; i < batch->B; i++, pos++) {
                    int found = -1;
                    for (int k = 0; k < TRAIN; k++)
                        if (!strcmp(ids[k], batch->ids[i])) found = k;
                    assert_true(found >= 0);
                    seen[found]++;
                    in_order += found == pos;
                }
            }
            assert_int_equal(s, LP_ERR_EOF);
            assert_int_equal(pos, TRAIN);
            for (int k = 0; k < TRAIN; k++) assert_int_equal(seen[k], 1);
            if (shuffle) assert_true(in_order < TRAIN / 4);
            else assert_int_equal(in_order, TRAIN);
            lp_batcher_cursor cur = lp_batcher_position(b);
            assert_int_equal(cur.epoch, ep + 1);
            assert_int_equal(cur.batch, 0);
            assert_int_equal(lp_batcher_finished(b), ep == 1);
        }
        const lp_batch *batch;
        assert_int_equal(lp_batcher_next(b, &batch), LP_ERR_EOF);
        assert_int_equal(lp_batcher_finished(b), 1);
        assert_int_equal(lp_batcher_next(b, &batch), LP_ERR_EOF); /* stays finished */
        lp_batcher_stats st = lp_batcher_get_stats(b);
        assert_int_equal(st.records, 2 * TRAIN);
        assert_int_equal(st.skipped, 0);
        assert_true(st.bytes > 0);
        lp_batcher_free(b);
    }
}

/* Reference frames for the first `count` records in file order, decoded by the plain reader (not
 * normalised, all frames), with lengths. */
typedef struct {
    float *x[16];
    int n[16];
} ref_frames;

static void load_ref(ref_frames *rf, int count) {
    lp_yt8m_config y;
    lp_yt8m_config_default(&y);
    y.classes = CLASSES;
    lp_yt8m_reader *r;
    assert_int_equal(lp_yt8m_reader_open(&r, lp_test_scratch_path("set/train0000.tfrecord"), &y), LP_OK);
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    for (int i = 0; i < count; i++) {
        assert_int_equal(lp_yt8m_reader_next(r, &v), LP_OK);
        rf->n[i] = v.n_frames;
        rf->x[i] = lp_malloc((size_t)v.n_frames * 1152, sizeof(float));
        memcpy(rf->x[i], v.features, (size_t)v.n_frames * 1152 * sizeof(float));
    }
    lp_yt8m_video_free(&v);
    lp_yt8m_reader_close(r);
}

static void free_ref(ref_frames *rf, int count) {
    for (int i = 0; i < count; i++) lp_free(rf->x[i]);
}

static const lp_batch *first_batch(lp_batcher **b, const lp_batcher_config *c) {
    assert_int_equal(lp_batcher_new(b, c), LP_OK);
    const lp_batch *batch;
    assert_int_equal(lp_batcher_next(*b, &batch), LP_OK);
    return batch;
}

/* Padding: repeat copies the last real frame, mask writes zeros; T is the longest sequence (or
 * max_frames when fixed); lengths are reported in both modes; frames are as decoded (l2 off). */
static void test_padding_repeat_and_mask(void **state) {
    (void)state;
    ref_frames rf;
    load_ref(&rf, 8);
    for (int fixed = 0; fixed <= 1; fixed++)
        for (int mode = 0; mode <= 1; mode++) {
            lp_batcher_config c;
            base_config(&c);
            c.shuffle = 0;
            c.l2_normalize = 0;
            c.pad = mode ? LP_PAD_MASK : LP_PAD_REPEAT;
            c.fixed_frames = fixed;
            c.max_frames = 35;
            lp_batcher *b;
            const lp_batch *bt = first_batch(&b, &c);
            int longest = 0, shortest = 1000;
            for (int i = 0; i < 8; i++) {
                if (rf.n[i] > longest) longest = rf.n[i];
                if (rf.n[i] < shortest) shortest = rf.n[i];
            }
            assert_true(shortest < longest); /* the case needs padding */
            assert_int_equal(bt->B, 8);
            assert_int_equal(bt->D, 1152);
            assert_int_equal(bt->T, fixed ? 35 : longest);
            for (int i = 0; i < 8; i++) {
                assert_int_equal(bt->lengths[i], rf.n[i]);
                const float *row = bt->x + (size_t)i * bt->T * 1152;
                assert_memory_equal(row, rf.x[i], (size_t)rf.n[i] * 1152 * sizeof(float));
                for (int t = rf.n[i]; t < bt->T; t++) {
                    const float *fr = row + (size_t)t * 1152;
                    if (mode == 1) {
                        for (int d = 0; d < 1152; d++) assert_true(fr[d] == 0.0f);
                    } else {
                        assert_memory_equal(fr, rf.x[i] + (size_t)(rf.n[i] - 1) * 1152, 1152 * sizeof(float));
                    }
                }
            }
            lp_batcher_free(b);
        }
    free_ref(&rf, 8);
}

/* L2: every real frame has unit norm and is the decoded frame scaled; max_frames keeps the first frames. */
static void test_l2_and_truncation(void **state) {
    (void)state;
    ref_frames rf;
    load_ref(&rf, 8);
    lp_batcher_config c;
    base_config(&c);
    c.shuffle = 0;
    c.max_frames = 10;
    lp_batcher *b;
    const lp_batch *bt = first_batch(&b, &c);
    int truncated = 0;
    for (int i = 0; i < 8; i++) {
        int want = rf.n[i] < 10 ? rf.n[i] : 10;
        truncated += rf.n[i] > 10;
        assert_int_equal(bt->lengths[i], want);
        for (int t = 0; t < want; t++) {
            const float *fr = bt->x + ((size_t)i * bt->T + t) * 1152;
            const float *ref = rf.x[i] + (size_t)t * 1152;
            double n2 = 0, r2 = 0;
            for (int d = 0; d < 1152; d++) {
                n2 += (double)fr[d] * fr[d];
                r2 += (double)ref[d] * ref[d];
            }
            /* float32 products summed in double: |norm - 1| ~ 1e-7; 1e-5 is generous. */
            assert_true(fabs(sqrt(n2) - 1.0) < 1e-5);
            const double inv = 1.0 / sqrt(r2);
            for (int d = 0; d < 1152; d += 13) assert_true(fabs(fr[d] - ref[d] * inv) < 1e-6);
        }
    }
    assert_true(truncated >= 2); /* the case exercises truncation */
    assert_true(bt->T <= 10);
    lp_batcher_free(b);
    free_ref(&rf, 8);
}

static int count_records(const char *const *pats, int n, int *files) {
    lp_batcher_config c;
    base_config(&c);
    c.patterns = pats;
    c.n_patterns = n;
    c.shuffle = 0;
    lp_batcher *b;
    assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
    *files = lp_batcher_num_files(b);
    const lp_batch *bt;
    int recs = 0;
    while (lp_batcher_next(b, &bt) == LP_OK) recs += bt->B;
    lp_batcher_free(b);
    return recs;
}

static void test_glob_patterns(void **state) {
    (void)state;
    char p1[1024], p2[1024], p3[1024];
    snprintf(p1, sizeof p1, "%s", lp_test_scratch_path("set/train*.tfrecord"));
    snprintf(p2, sizeof p2, "%s", lp_test_scratch_path("set/validate000[01].tfrecord"));
    snprintf(p3, sizeof p3, "%s", lp_test_scratch_path("set/*"));
    int files;
    const char *a[] = {p1, p2};
    /* validate: 18 videos in 3 shards of 6. */
    assert_int_equal(count_records(a, 2, &files), TRAIN + 12);
    assert_int_equal(files, 5);
    const char *dup[] = {p1, p1, p2};
    assert_int_equal(count_records(dup, 3, &files), TRAIN + 12); /* duplicates once */
    assert_int_equal(files, 5);
    /* The pattern set/<star> also matches classes.csv and synth.txt (not TFRecords) but not the video/ directory. */
    char **list;
    int n;
    const char *all[] = {p3};
    assert_int_equal(lp_batcher_expand(all, 1, &list, &n), LP_OK);
    assert_int_equal(n, 11);
    for (int i = 0; i < n; i++) {
        assert_null(strstr(list[i], "/video"));
        if (i) assert_true(strcmp(list[i - 1], list[i]) < 0);
    }
    for (int i = 0; i < n; i++) lp_free(list[i]);
    lp_free(list);

    /* A pattern without matches is a clear error naming it, even next to good ones. */
    char bad[1024];
    snprintf(bad, sizeof bad, "%s", lp_test_scratch_path("set/nothing*.tfrecord"));
    lp_batcher_config c;
    base_config(&c);
    const char *pats[] = {p1, bad};
    c.patterns = pats;
    c.n_patterns = 2;
    lp_batcher *b = (lp_batcher *)1;
    assert_int_equal(lp_batcher_new(&b, &c), LP_ERR_ARG);
    assert_null(b);
    assert_non_null(strstr(lp_last_error(), "no files match"));
    assert_non_null(strstr(lp_last_error(), "nothing*.tfrecord"));
}

/* A file with good records and bad-content ones: a label outside [0, classes) and unparsable bytes. */
static void write_mixed_file(const char *path) {
    lp_yt8m_config y;
    lp_yt8m_config_default(&y);
    y.classes = 100;
    uint8_t q[3 * 1152];
    for (int i = 0; i < 3 * 1152; i++) q[i] = (uint8_t)(i * 7);
    lp_yt8m_buf buf = {0};
    lp_tfrecord_writer *w;
    assert_int_equal(lp_tfrecord_writer_open(&w, path), LP_OK);
    const int32_t good[] = {1, 5}, bad[] = {2, 50};
    const char garbage[] = "\xff\xff\xff\xff not a protobuf";
    for (int k = 0; k < 5; k++) {
        if (k == 3) {
            assert_int_equal(lp_tfrecord_write(w, garbage, sizeof garbage - 1), LP_OK);
            continue;
        }
        char id[8];
        snprintf(id, sizeof id, "r%d", k);
        assert_int_equal(lp_yt8m_encode_frame(&y, id, k == 1 ? bad : good, 2, q, 3, &buf), LP_OK);
        assert_int_equal(lp_tfrecord_write(w, buf.data, buf.len), LP_OK);
    }
    assert_int_equal(lp_tfrecord_writer_close(w), LP_OK);
    lp_yt8m_buf_free(&buf);
}

static void test_skip_bad_and_errors(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s", lp_test_scratch_path("mixed.tfrecord"));
    write_mixed_file(path);
    const char *pats[] = {path};
    lp_batcher_config c;
    base_config(&c);
    c.patterns = pats;
    c.shuffle = 0;
    c.batch_size = 1;
    c.yt8m.skip_bad = 1;
    for (int prefetch = 0; prefetch <= 2; prefetch += 2) {
        c.prefetch = prefetch;
        lp_batcher *b;
        assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
        const lp_batch *bt;
        const char *want[] = {"r0", "r2", "r4"};
        for (int i = 0; i < 3; i++) {
            assert_int_equal(lp_batcher_next(b, &bt), LP_OK);
            assert_string_equal(bt->ids[0], want[i]);
        }
        assert_int_equal(lp_batcher_next(b, &bt), LP_ERR_EOF);
        lp_batcher_stats st = lp_batcher_get_stats(b);
        assert_int_equal(st.skipped, 2);
        assert_int_equal(st.records, 3);
        lp_batcher_free(b);
    }
    /* Without skip_bad: the good record first, then the error naming file, record and offset. */
    c.yt8m.skip_bad = 0;
    c.prefetch = 2;
    lp_batcher *b;
    assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
    const lp_batch *bt;
    assert_int_equal(lp_batcher_next(b, &bt), LP_OK);
    assert_string_equal(bt->ids[0], "r0");
    assert_int_equal(lp_batcher_next(b, &bt), LP_ERR_FORMAT);
    assert_null(bt);
    assert_non_null(strstr(lp_last_error(), "mixed.tfrecord: record 2 at byte offset"));
    assert_non_null(strstr(lp_last_error(), "label 50"));
    assert_int_equal(lp_batcher_next(b, &bt), LP_ERR_FORMAT); /* sticky */
    assert_non_null(strstr(lp_last_error(), "record 2"));
    lp_batcher_free(b);
}

/* A CRC error of the reader comes out of next() with the reader's message, after the good batch. */
static void test_reader_error_surfaces(void **state) {
    (void)state;
    char *data;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("set/test0000.tfrecord"), &data, &len), LP_OK);
    /* Flip a byte in the middle of the second record's payload (the first record's length is at 0). */
    uint64_t first = 0;
    memcpy(&first, data, 8);
    size_t at = (size_t)first + LP_TFRECORD_OVERHEAD + 12 + 100;
    assert_true(at < len);
    data[at] ^= 0x40;
    char path[1024];
    snprintf(path, sizeof path, "%s", lp_test_scratch_path("crc.tfrecord"));
    assert_int_equal(lp_file_write_all(path, data, len), LP_OK);
    lp_free(data);
    const char *pats[] = {path};
    lp_batcher_config c;
    base_config(&c);
    c.patterns = pats;
    c.shuffle = 0;
    c.batch_size = 1;
    c.yt8m.skip_bad = 1; /* framing errors are never skipped */
    lp_batcher *b;
    assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
    const lp_batch *bt;
    assert_int_equal(lp_batcher_next(b, &bt), LP_OK);
    assert_int_equal(lp_batcher_next(b, &bt), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "crc.tfrecord"));
    assert_non_null(strstr(lp_last_error(), "record 2"));
    assert_non_null(strstr(lp_last_error(), "CRC"));
    lp_batcher_free(b);
}

static void test_drop_last_and_endless(void **state) {
    (void)state;
    lp_batcher_config c;
    base_config(&c);
    c.drop_last = 1;
    c.epochs = 0; /* endless: read three epochs and stop */
    lp_batcher *b;
    assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
    for (int ep = 0; ep < 3; ep++) {
        const lp_batch *bt;
        int nb = 0;
        while (lp_batcher_next(b, &bt) == LP_OK) {
            assert_int_equal(bt->B, 8);
            nb++;
        }
        assert_int_equal(nb, 10); /* 84 = 10·8 + 4 dropped */
    }
    lp_batcher_stats st = lp_batcher_get_stats(b);
    assert_int_equal(st.dropped, 12);
    assert_int_equal(st.records, 240);
    assert_int_equal(lp_batcher_finished(b), 0);
    lp_batcher_free(b); /* with the thread blocked on a full queue */

    /* Endless epochs over fewer records than one batch with drop_last: an error, not a silent spin. */
    char one[1024];
    snprintf(one, sizeof one, "%s", lp_test_scratch_path("set/validate0000.tfrecord"));
    const char *pats[] = {one};
    c.patterns = pats;
    c.batch_size = 64;
    assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
    const lp_batch *bt;
    assert_int_equal(lp_batcher_next(b, &bt), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "no batch"));
    lp_batcher_free(b);
}

/* Resume by replay: a batcher started at cursor (e, k) delivers exactly what an uninterrupted one does
 * from that point. */
static void test_resume(void **state) {
    (void)state;
    lp_batcher_config c;
    base_config(&c);
    c.epochs = 3;
    c.yt8m.skip_bad = 1;
    uint64_t all[64];
    int n = run_all(&c, all, 64); /* per epoch: 11 batches + marker (none after the last) */
    assert_int_equal(n, 3 * 12 - 1);
    const lp_batcher_cursor starts[] = {{0, 5}, {1, 0}, {1, 3}, {2, 10}};
    for (int k = 0; k < 4; k++) {
        c.start = starts[k];
        uint64_t part[64];
        int m = run_all(&c, part, 64);
        int from = (int)(starts[k].epoch * 12 + starts[k].batch);
        assert_int_equal(m, n - from);
        assert_memory_equal(part, all + from, sizeof all[0] * (size_t)m);
    }
    /* The cursor reported mid-run is the resume position. */
    c.start = (lp_batcher_cursor){0, 0};
    lp_batcher *b;
    assert_int_equal(lp_batcher_new(&b, &c), LP_OK);
    const lp_batch *bt;
    for (int i = 0; i < 4; i++) assert_int_equal(lp_batcher_next(b, &bt), LP_OK);
    lp_batcher_cursor cur = lp_batcher_position(b);
    assert_int_equal(cur.epoch, 0);
    assert_int_equal(cur.batch, 4);
    lp_batcher_free(b);
}

static void test_video_level_and_config(void **state) {
    (void)state;
    lp_batcher_config c;
    base_config(&c);
    pat_train[0] = lp_test_scratch_path("set/video/train*.tfrecord");
    c.yt8m.level = LP_YT8M_LEVEL_VIDEO;
    lp_batcher *b;
    const lp_batch *bt = first_batch(&b, &c);
    assert_int_equal(bt->T, 1);
    assert_int_equal(bt->D, 1152);
    for (int i = 0; i < bt->B; i++) {
        assert_int_equal(bt->lengths[i], 1);
        double n2 = 0;
        for (int d = 0; d < 1152; d++) n2 += (double)bt->x[(size_t)i * 1152 + d] * bt->x[(size_t)i * 1152 + d];
        assert_true(fabs(sqrt(n2) - 1) < 1e-5);
        int nl = 0;
        for (int k = 0; k < CLASSES; k++) {
            float l = bt->labels[(size_t)i * CLASSES + k];
            assert_true(l == 0.0f || l == 1.0f);
            nl += l == 1.0f;
        }
        assert_true(nl >= 1 && nl <= 4);
    }
    lp_batcher_free(b);

    base_config(&c);
    c.batch_size = 0;
    assert_int_equal(lp_batcher_new(&b, &c), LP_ERR_ARG);
    base_config(&c);
    c.n_patterns = 0;
    assert_int_equal(lp_batcher_new(&b, &c), LP_ERR_ARG);
    lp_pad_mode m;
    assert_int_equal(lp_pad_mode_parse(&m, "mask"), LP_OK);
    assert_int_equal(m, LP_PAD_MASK);
    assert_int_equal(lp_pad_mode_parse(&m, "zeros"), LP_ERR_ARG);
    assert_string_equal(lp_pad_mode_str(LP_PAD_REPEAT), "repeat");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_batches),
        cmocka_unit_test(test_epochs_are_permutations),
        cmocka_unit_test(test_padding_repeat_and_mask),
        cmocka_unit_test(test_l2_and_truncation),
        cmocka_unit_test(test_glob_patterns),
        cmocka_unit_test(test_skip_bad_and_errors),
        cmocka_unit_test(test_reader_error_surfaces),
        cmocka_unit_test(test_drop_last_and_endless),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_video_level_and_config),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}

/* bench_data: speed of the data path on synthetic YouTube-8M frame-level shards, next to the speed of
 * plainly read()ing the same (cached) files in the same run.
 *
 * It writes `--videos` videos of `--frames-min`..`--frames-max` frames (default 600 of 150..300, about
 * 0.2 GB) with `lstmprune synth`'s generator into a temporary directory, then measures, best of
 * `--reps` passes over all files:
 *   read()      plain read(2) of the files in 1 MiB blocks (the ceiling: page-cache copy)
 *   tfrecord    data/tfrecord reader: framing + both CRC32Cs
 *   decode      data/yt8m reader: + protobuf-c parse + dequantisation to floats
 *   batcher     data/batcher without thread (prefetch 0): + shuffle buffer, max_frames, L2
 *               normalisation, padding into [B,T,1152] batches — the whole pipeline on one core,
 *               timed over its second epoch (steady state); the first epoch is reported as "cold"
 * reporting MB/s of TFRecord input and frames/s. Then the overlap test: a consumer that "computes" for
 * a fixed time per batch (sleeping, as if the model ran on other cores) with prefetch 0 and 2, and the
 * mean time next() made it wait during the second epoch. With prefetch the wait should drop to ~0 whenever the compute time per
 * batch exceeds the pipeline's time per batch.
 *
 * Options: --videos N --frames-min N --frames-max N --batch B (64) --reps R (3) --compute-ms X (default:
 * 1.5 x the measured pipeline time per batch). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "data/batcher.h"
#include "data/synth.h"
#include "data/tfrecord.h"
#include "data/yt8m.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "bench_data: %s: %s\n", what, lp_last_error());
    exit(1);
}

static char **files;
static int n_files;
static double total_bytes;

static double pass_read(void) {
    static char buf[1 << 20];
    double t0 = now();
    double got = 0;
    for (int i = 0; i < n_files; i++) {
        int fd = open(files[i], O_RDONLY);
        if (fd < 0) die("open");
        ssize_t k;
        while ((k = read(fd, buf, sizeof buf)) > 0) got += (double)k;
        close(fd);
    }
    double dt = now() - t0;
    if (got != total_bytes) die("short read");
    return dt;
}

static double pass_tfrecord(uint64_t *records) {
    double t0 = now();
    lp_tfrecord_reader *r = NULL;
    *records = 0;
    for (int i = 0; i < n_files; i++) {
        if ((r ? lp_tfrecord_reopen(r, files[i]) : lp_tfrecord_open(&r, files[i])) != LP_OK) die("open");
        const uint8_t *d;
        size_t len;
        lp_status s;
        while ((s = lp_tfrecord_next(r, &d, &len)) == LP_OK) (*records)++;
        if (s != LP_ERR_EOF) die("tfrecord");
    }
    lp_tfrecord_close(r);
    return now() - t0;
}

static double pass_decode(uint64_t *frames) {
    lp_yt8m_config y;
    lp_yt8m_config_default(&y);
    y.classes = 100;
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    lp_yt8m_reader *r = NULL;
    *frames = 0;
    double t0 = now();
    for (int i = 0; i < n_files; i++) {
        if ((r ? lp_yt8m_reader_reopen(r, files[i]) : lp_yt8m_reader_open(&r, files[i], &y)) != LP_OK) die("open");
        lp_status s;
        while ((s = lp_yt8m_reader_next(r, &v)) == LP_OK) *frames += (uint64_t)v.n_frames;
        if (s != LP_ERR_EOF) die("decode");
    }
    double dt = now() - t0;
    lp_yt8m_reader_close(r);
    lp_yt8m_video_free(&v);
    return dt;
}

static void batcher_config(lp_batcher_config *c, const char *const *pats, int batch, int prefetch) {
    lp_batcher_config_default(c);
    c->patterns = pats;
    c->n_patterns = 1;
    c->yt8m.classes = 100;
    c->batch_size = batch;
    c->shuffle_buffer = 4 * batch;
    c->prefetch = prefetch;
    c->epochs = 1;
}

/* Two epochs without thread: returns the second (steady state: buffers allocated and touched) and
 * stores the first (cold: includes lp_batcher_new, the shuffle-buffer fill and first-touch page faults). */
static double pass_batcher(const char *const *pats, int batch, double *cold, uint64_t *frames, int *batches) {
    lp_batcher_config c;
    batcher_config(&c, pats, batch, 0);
    c.epochs = 2;
    lp_batcher *b;
    double t0 = now(), t1 = 0;
    if (lp_batcher_new(&b, &c) != LP_OK) die("batcher");
    const lp_batch *bt;
    lp_status s;
    *batches = 0;
    for (int e = 0; e < 2; e++) {
        while ((s = lp_batcher_next(b, &bt)) == LP_OK) *batches += e;
        if (s != LP_ERR_EOF) die("batcher");
        if (e == 0) t1 = now();
    }
    double t2 = now();
    *frames = lp_batcher_get_stats(b).frames / 2;
    lp_batcher_free(b);
    *cold = t1 - t0;
    return t2 - t1;
}

/* Mean wait per next() over the second epoch (steady state) with a consumer that sleeps `compute`
 * seconds per batch, as if the model ran on other cores. */
static double overlap(const char *const *pats, int batch, int prefetch, double compute, int *batches) {
    lp_batcher_config c;
    batcher_config(&c, pats, batch, prefetch);
    c.epochs = 2;
    lp_batcher *b;
    if (lp_batcher_new(&b, &c) != LP_OK) die("batcher");
    const lp_batch *bt;
    double wait = 0;
    int n = 0;
    for (int e = 0; e < 2;) {
        double t0 = now();
        lp_status s = lp_batcher_next(b, &bt);
        double w = now() - t0;
        if (s == LP_ERR_EOF) {
            e++;
            continue;
        }
        if (s != LP_OK) die("batcher");
        if (e == 1) {
            wait += w;
            n++;
        }
        struct timespec ts = {(time_t)compute, (long)((compute - (double)(time_t)compute) * 1e9)};
        nanosleep(&ts, NULL);
    }
    lp_batcher_free(b);
    *batches = n;
    return n ? wait / n : 0;
}

int main(int argc, char **argv) {
    long videos = 600, fmin = 150, fmax = 300, batch = 64, reps = 3;
    double compute_ms = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_data: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--videos")) videos = atol(v);
        else if (!strcmp(a, "--frames-min")) fmin = atol(v);
        else if (!strcmp(a, "--frames-max")) fmax = atol(v);
        else if (!strcmp(a, "--batch")) batch = atol(v);
        else if (!strcmp(a, "--reps")) reps = atol(v);
        else if (!strcmp(a, "--compute-ms")) compute_ms = atof(v);
        else {
            fprintf(stderr, "usage: bench_data [--videos N] [--frames-min N] [--frames-max N] [--batch B] [--reps R] "
                            "[--compute-ms X]\n");
            return 2;
        }
        i++;
    }
    if (videos < 1 || fmin < 1 || fmax < fmin || batch < 1 || reps < 1) {
        fprintf(stderr, "bench_data: bad option value\n");
        return 2;
    }

    char dir[] = "/tmp/lp_bench_data_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_data: mkdtemp");
        return 1;
    }
    lp_synth_config sc;
    lp_synth_config_default(&sc, 100, 1);
    sc.frames_min = (int)fmin;
    sc.frames_max = (int)fmax;
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    o.out_dir = dir;
    o.videos = (uint64_t)videos;
    o.split[0] = 1;
    o.split[1] = o.split[2] = 0;
    o.shards = 4;
    double t0 = now();
    if (lp_synth_write(&sc, &o) != LP_OK) die("synth");
    double tgen = now() - t0;

    char pat[256];
    snprintf(pat, sizeof pat, "%s/train*.tfrecord", dir);
    const char *pats[] = {pat};
    if (lp_batcher_expand(pats, 1, &files, &n_files) != LP_OK) die("glob");
    total_bytes = 0;
    for (int i = 0; i < n_files; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) die("fopen");
        fseek(f, 0, SEEK_END);
        total_bytes += (double)ftell(f);
        fclose(f);
    }
    const double MB = total_bytes / 1e6;
    printf("bench_data: %ld videos of %ld..%ld frames, %d files, %.1f MB (generated in %.2f s)\n", videos, fmin,
           fmax, n_files, MB, tgen);

    double best_read = 1e30, best_tf = 1e30, best_dec = 1e30, best_bat = 1e30, best_cold = 1e30, cold;
    uint64_t recs = 0, frames = 0, bframes = 0;
    int nbat = 0;
    pass_read(); /* warm the page cache */
    for (long k = 0; k < reps; k++) {
        double d;
        if ((d = pass_read()) < best_read) best_read = d;
        if ((d = pass_tfrecord(&recs)) < best_tf) best_tf = d;
        if ((d = pass_decode(&frames)) < best_dec) best_dec = d;
        if ((d = pass_batcher(pats, (int)batch, &cold, &bframes, &nbat)) < best_bat) best_bat = d;
        if (cold < best_cold) best_cold = cold;
    }
    printf("  %-10s %9.0f MB/s\n", "read()", MB / best_read);
    printf("  %-10s %9.0f MB/s  %9.0f records/s\n", "tfrecord", MB / best_tf, (double)recs / best_tf);
    printf("  %-10s %9.0f MB/s  %9.0f frames/s\n", "decode", MB / best_dec, (double)frames / best_dec);
    printf("  %-10s %9.0f MB/s  %9.0f frames/s  (batch %ld, %d batches/epoch, one core, steady state)\n",
           "batcher", MB / best_bat, (double)bframes / best_bat, batch, nbat);
    printf("  %-10s %9.0f MB/s  (first epoch: creation, shuffle-buffer fill, first-touch page faults)\n",
           "cold", MB / best_cold);

    const double per_batch = best_bat / nbat;
    const double compute = compute_ms > 0 ? compute_ms / 1e3 : 1.5 * per_batch;
    int n0, n2;
    double w0 = overlap(pats, (int)batch, 0, compute, &n0);
    double w2 = overlap(pats, (int)batch, 2, compute, &n2);
    printf("  overlap: pipeline %.1f ms/batch, consumer computes %.1f ms/batch\n", 1e3 * per_batch, 1e3 * compute);
    printf("    prefetch 0: mean wait %7.2f ms/batch (%d batches)\n", 1e3 * w0, n0);
    printf("    prefetch 2: mean wait %7.2f ms/batch (%d batches)\n", 1e3 * w2, n2);
    printf("  target >= 300 MB/s of TFRecord input per core: %s (batcher %.0f MB/s)\n",
           MB / best_bat >= 300 ? "met" : "NOT met", MB / best_bat);

    for (int i = 0; i < n_files; i++) lp_free(files[i]);
    lp_free(files);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_data: could not remove %s\n", dir);
    return 0;
}

/* batcher: turns TFRecord shards (glob patterns) into training/evaluation batches
 *
 *     glob(s) → file order (shuffled per epoch) → shuffle buffer of raw records → decode (data/yt8m)
 *     → first max_frames frames → per-frame L2 normalisation → pad to the batch's T → batch
 *
 * as the paper's public code does. A prefetch thread runs that pipeline ahead of the
 * consumer with a bounded queue of `prefetch` batches, so decoding overlaps compute.
 *
 * Determinism. All decisions (file order, shuffle-buffer draws) are made by the one producer in a fixed
 * order from an lp_rng (stream LP_RNG_STREAM_SHUFFLE) seeded from (seed, epoch); the thread only changes
 * WHEN a batch is made, never WHAT it contains. The same config gives the same batches with or without
 * the thread. shuffle = 0 reads the files in sorted path order and the records in file order
 * (evaluation).
 *
 * Files. Every pattern is expanded with glob(3); the union is sorted and duplicates removed. A pattern
 * that matches nothing is an error (LP_ERR_ARG, quoting the pattern). Files are streamed one at a time
 * (data/tfrecord: 1 MiB buffer), so memory does not grow with the number of shards.
 *
 * Shuffle buffer. Holds up to `shuffle_buffer` serialised records (a full 300-frame YouTube-8M record is
 * ~0.35 MB). It is filled up to capacity, then each step draws a uniformly random record from it and
 * refills. At the end of an epoch the buffer drains, so an epoch is exactly one pass over all records.
 *
 * Batches. x is [B,T,D] float, batch-major (x[(b·T + t)·D + d]); D = frame.dim of the yt8m config
 * (video.dim when its level is LP_YT8M_LEVEL_VIDEO; a video-level record is a sequence of one frame).
 * T is the longest sequence in the batch (after truncation to max_frames), or max_frames with
 * fixed_frames. lengths[b] (1..T) is always reported. Padding frames t >= lengths[b] are
 * LP_PAD_REPEAT: copies of the last real frame (the paper's public code), or LP_PAD_MASK: zeros (the
 * starter code). The mode also says how a model reads the batch (lp_batch_model_lengths): under MASK
 * each sequence stops at its length; under REPEAT the model reads all T steps, the repeated frames
 * included, as the public code's unmasked Keras LSTMs do — with fixed_frames (as lp_runcfg_batcher sets
 * it for REPEAT) every sequence then has exactly max_frames steps whatever else is in its batch.
 * L2 normalisation (on by default): each real frame is divided by
 * sqrt(max(Σx², 1e-12)) as tf.nn.l2_normalize does (an all-zero frame stays zero). labels is [B,classes]
 * multi-hot (1.0f/0.0f). ids[b] is the record's id. The last batch of an epoch may have B < batch_size
 * unless drop_last.
 *
 * Epochs and resuming. lp_batcher_next returns LP_OK with a batch, and LP_ERR_EOF once after the last
 * batch of each epoch; the next call starts the next epoch. The LP_ERR_EOF that ends epoch number
 * `epochs` (0 = endless) sets lp_batcher_finished() to 1, and every later call returns LP_ERR_EOF. Resuming is by deterministic replay:
 * the cursor is (epoch, batch index within the epoch) of the next batch to be delivered
 * (lp_batcher_position). Create a new batcher with the same config and cfg.start = that cursor; it
 * begins epoch `start.epoch` directly (each epoch's rng depends only on (seed, epoch)) and decodes and
 * discards the first `start.batch` batches of it, so the following batches are exactly those the old
 * batcher would have delivered.
 *
 * Errors. A framing/I/O error of the reader, or bad content without skip_bad, is returned by
 * lp_batcher_next (after the batches made before it) with the message naming file, record and byte
 * offset ("FILE: record N at byte offset O: ..."); every later call returns it again. With
 * yt8m.skip_bad, bad-content records are skipped and counted (lp_batcher_stats().skipped); framing
 * errors are never skipped.
 *
 * Memory: (prefetch + 1) batch slots of batch_size·max_frames·D floats (~0.22 GB each at the paper's
 * B = 160, max_frames = 300, D = 1152), plus the shuffle buffer, one decoded record and 1 MiB read buffer.
 *
 *     lp_batcher_config c; lp_batcher_config_default(&c);
 *     const char *pats[] = {"data/train*.tfrecord"}; c.patterns = pats; c.n_patterns = 1;
 *     c.yt8m.classes = 100; c.batch_size = 64; c.epochs = 10;
 *     lp_batcher *b; if (lp_batcher_new(&b, &c) != LP_OK) ... lp_last_error() ...
 *     for (;;) {                               // one iteration per epoch
 *         const lp_batch *batch; lp_status s;
 *         while ((s = lp_batcher_next(b, &batch)) == LP_OK) train_step(batch);
 *         if (s != LP_ERR_EOF) ... error ...;
 *         ... end of epoch: evaluate, checkpoint lp_batcher_position(b) ...
 *         if (lp_batcher_finished(b)) break;
 *     }
 *     lp_batcher_free(b);
 */
#ifndef LP_BATCHER_H
#define LP_BATCHER_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "data/yt8m.h"

typedef enum {
    LP_PAD_REPEAT = 0, /* repeat the last real frame; the model reads every step (paper code) */
    LP_PAD_MASK        /* zeros; the model stops at each length (starter code) */
} lp_pad_mode;

/* "repeat" / "mask", and parsing them (LP_ERR_ARG otherwise). */
const char *lp_pad_mode_str(lp_pad_mode m);
lp_status lp_pad_mode_parse(lp_pad_mode *out, const char *s);

typedef struct {
    int64_t epoch; /* 0-based */
    int64_t batch; /* index of the batch within the epoch */
} lp_batcher_cursor;

typedef struct {
    const char *const *patterns; /* glob patterns (copied by lp_batcher_new) */
    int n_patterns;
    lp_yt8m_config yt8m;         /* features, keys, classes, level, skip_bad (its max_frames is ignored) */
    int batch_size;              /* default 32 */
    int max_frames;              /* keep at most this many leading frames, default 300 */
    int fixed_frames;            /* 1: T = max_frames always; 0 (default): T = longest in the batch */
    int l2_normalize;            /* per-frame L2 normalisation, default 1 */
    lp_pad_mode pad;             /* default LP_PAD_MASK */
    int shuffle;                 /* default 1; 0 = sorted files, records in order */
    int shuffle_buffer;          /* records in the shuffle buffer, default 512 (ignored without shuffle) */
    uint64_t seed;               /* default 1 */
    int64_t epochs;              /* default 1; 0 = endless */
    int drop_last;               /* drop an epoch's last partial batch, default 0 */
    int prefetch;                /* batches made ahead by the thread, default 2; 0 = no thread */
    lp_batcher_cursor start;     /* resume position, default {0, 0} */
    int shard, n_shards;         /* n_shards > 1: read only the files i (in sorted order) with i % n_shards ==
                                  * shard (a rank's share of a data-parallel run); default 0, 0: all */
} lp_batcher_config;

void lp_batcher_config_default(lp_batcher_config *c);
/* LP_OK or LP_ERR_ARG with a message naming the option (also checks the yt8m config). */
lp_status lp_batcher_config_check(const lp_batcher_config *c);

typedef struct {
    int B, T, D, classes;
    float *x;       /* [B,T,D] */
    int *lengths;   /* [B], real frames per sequence, 1..T */
    float *labels;  /* [B,classes] multi-hot */
    char **ids;     /* [B] NUL-terminated */
    lp_pad_mode pad; /* the batcher's padding mode */
    lp_batcher_cursor pos; /* this batch's epoch and index within the epoch */
} lp_batch;

/* The lengths a model reads this batch with (lp_model_forward's `lengths`): the sequences' own lengths
 * under LP_PAD_MASK; NULL under LP_PAD_REPEAT, where all T steps are input and the final state is the
 * one at T (docs/REPRODUCING.md, "Our defaults vs the public code"). */
const int *lp_batch_model_lengths(const lp_batch *b);

typedef struct {
    uint64_t records;    /* records delivered in batches (skipped and dropped ones not counted) */
    uint64_t frames;     /* real frames delivered (after truncation) */
    uint64_t skipped;    /* bad records skipped (skip_bad) */
    uint64_t dropped;    /* records in dropped partial batches (drop_last) */
    uint64_t bytes;      /* TFRecord bytes read (framing included; uncompressed stream for gzip) */
} lp_batcher_stats;

typedef struct lp_batcher lp_batcher;

/* Expand the patterns, check the config, start the prefetch thread. Errors: LP_ERR_ARG (bad option,
 * a pattern without matches), LP_ERR_NOMEM, LP_ERR_IO (thread creation). */
lp_status lp_batcher_new(lp_batcher **out, const lp_batcher_config *cfg);

/* The next batch (valid until the next call of next/free), LP_ERR_EOF at the end of an epoch (and for
 * good after the last one), or the pipeline's error with its message. */
lp_status lp_batcher_next(lp_batcher *b, const lp_batch **out);

/* Epoch and batch index of the next batch to be delivered (the resume cursor). */
lp_batcher_cursor lp_batcher_position(const lp_batcher *b);

/* 1 once the end of the last of `epochs` epochs has been returned (never with endless epochs). */
int lp_batcher_finished(const lp_batcher *b);

/* Counters as of the last value returned by lp_batcher_next (deterministic). */
lp_batcher_stats lp_batcher_get_stats(const lp_batcher *b);

/* The expanded file list (sorted, unique). */
int lp_batcher_num_files(const lp_batcher *b);
const char *lp_batcher_file(const lp_batcher *b, int i);

/* Stop the thread and free everything. NULL is fine. */
void lp_batcher_free(lp_batcher *b);

/* Expand glob patterns into a sorted, duplicate-free list of paths (caller frees each and the array with
 * lp_free). A pattern without matches is LP_ERR_ARG. */
lp_status lp_batcher_expand(const char *const *patterns, int n_patterns, char ***files, int *n_files);

#endif

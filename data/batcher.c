/* batcher: shards → shuffled, decoded, normalised, padded batches, with a prefetch thread (contract in
 * batcher.h).
 *
 * Structure: one producer (make_entry) owns every pipeline decision and writes "entries" — a batch, an
 * end-of-epoch marker, the end of all epochs, or an error with its message — into a ring of slots; the
 * consumer (lp_batcher_next) takes them in ring order. With prefetch > 0 the producer runs in a pthread;
 * with prefetch = 0 the consumer calls it inline. Since the producer is the same sequential code either
 * way, the thread cannot change the batches. */
#include "data/batcher.h"

#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "data/tfrecord.h"

/* A serialised record waiting in the shuffle buffer, with where it came from (for error messages). */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    int file;
    uint64_t rec_no, offset;
} rec_item;

typedef enum { ENTRY_BATCH, ENTRY_EPOCH_END, ENTRY_DONE, ENTRY_ERROR } entry_kind;
typedef enum { SLOT_FREE, SLOT_READY, SLOT_HELD } slot_state;

typedef struct {
    slot_state state;
    entry_kind kind;
    lp_batch batch;             /* x [batch_size·max_frames·D] during assembly, then [B,T,D] */
    size_t *id_off;             /* [batch_size] offsets into idpool (pointers fixed at the end) */
    char *idpool;
    size_t idpool_len, idpool_cap;
    lp_status status;           /* ENTRY_ERROR */
    char msg[1024];
    lp_batcher_stats stats;     /* producer counters after this entry */
} slot;

struct lp_batcher {
    lp_batcher_config cfg;
    char **patterns;
    char **files;
    int n_files;
    int D;

    /* ---- producer state ---- */
    int in_epoch;
    int64_t epoch, batch_idx;
    int *order;                 /* [n_files] file order of the current epoch */
    int next_file;              /* position in order of the next file to open */
    int reading;                /* a file is open and not exhausted */
    lp_tfrecord_reader *reader;
    rec_item *res;              /* [res_cap + 1] shuffle buffer; res[res_n] holds a spare buffer */
    int res_n, res_cap;
    rec_item cur;               /* the record being decoded */
    lp_rng rng;
    lp_yt8m_decoder *dec;
    lp_yt8m_video v;
    lp_yt8m_level seen_level;   /* the level of the first record decoded (AUTO until then) */
    int seen_file;              /* and its file */
    lp_batcher_stats pstats;

    /* ---- queue ---- */
    slot *slots;
    int n_slots, head, tail, held;
    int threaded, stop;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* any slot state change */

    /* ---- consumer state ---- */
    lp_batcher_cursor pos;
    lp_batcher_stats cstats;
    int finished;
    int term;                   /* a DONE or ERROR entry was taken */
    lp_status term_status;
    char term_msg[1024];
};

const char *lp_pad_mode_str(lp_pad_mode m) { return m == LP_PAD_MASK ? "mask" : "repeat"; }

lp_status lp_pad_mode_parse(lp_pad_mode *out, const char *s) {
    if (!strcmp(s, "repeat")) *out = LP_PAD_REPEAT;
    else if (!strcmp(s, "mask")) *out = LP_PAD_MASK;
    else return lp_errorf(LP_ERR_ARG, "padding must be 'repeat' or 'mask', got '%s'", s);
    return LP_OK;
}

void lp_batcher_config_default(lp_batcher_config *c) {
    memset(c, 0, sizeof *c);
    lp_yt8m_config_default(&c->yt8m);
    c->batch_size = 32;
    c->max_frames = 300;
    c->fixed_frames = 0;
    c->l2_normalize = 1;
    c->pad = LP_PAD_MASK;
    c->shuffle = 1;
    c->shuffle_buffer = 512;
    c->seed = 1;
    c->epochs = 1;
    c->drop_last = 0;
    c->prefetch = 2;
}

lp_status lp_batcher_config_check(const lp_batcher_config *c) {
    if (c->n_patterns < 1 || !c->patterns) return lp_errorf(LP_ERR_ARG, "batcher: no file patterns given");
    for (int i = 0; i < c->n_patterns; i++)
        if (!c->patterns[i] || !*c->patterns[i]) return lp_errorf(LP_ERR_ARG, "batcher: empty file pattern");
    if (c->batch_size < 1 || c->batch_size > (1 << 20))
        return lp_errorf(LP_ERR_ARG, "batcher: batch size must be in [1, 2^20], got %d", c->batch_size);
    if (c->max_frames < 1 || c->max_frames > (1 << 20))
        return lp_errorf(LP_ERR_ARG, "batcher: max_frames must be in [1, 2^20], got %d", c->max_frames);
    if (c->pad != LP_PAD_REPEAT && c->pad != LP_PAD_MASK) return lp_errorf(LP_ERR_ARG, "batcher: bad padding mode");
    if (c->shuffle && (c->shuffle_buffer < 1 || c->shuffle_buffer > (1 << 24)))
        return lp_errorf(LP_ERR_ARG, "batcher: shuffle buffer must be in [1, 2^24] records, got %d", c->shuffle_buffer);
    if (c->epochs < 0) return lp_errorf(LP_ERR_ARG, "batcher: epochs must be >= 0 (0 = endless), got %lld", (long long)c->epochs);
    if (c->prefetch < 0 || c->prefetch > 64)
        return lp_errorf(LP_ERR_ARG, "batcher: prefetch must be in [0, 64] batches, got %d", c->prefetch);
    if (c->n_shards > 1 && (c->shard < 0 || c->shard >= c->n_shards))
        return lp_errorf(LP_ERR_ARG, "batcher: shard %d of %d", c->shard, c->n_shards);
    if (c->start.epoch < 0 || c->start.batch < 0)
        return lp_errorf(LP_ERR_ARG, "batcher: resume position must be >= 0 (epoch %lld, batch %lld)",
                         (long long)c->start.epoch, (long long)c->start.batch);
    lp_status s = lp_yt8m_config_check(&c->yt8m);
    if (s != LP_OK) return lp_error_wrap(s, "batcher");
    return LP_OK;
}

/* ---- file list ---- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

lp_status lp_batcher_expand(const char *const *patterns, int n_patterns, char ***files, int *n_files) {
    *files = NULL;
    *n_files = 0;
    char **list = NULL;
    size_t n = 0, cap = 0;
    lp_status st = LP_OK;
    for (int i = 0; i < n_patterns && st == LP_OK; i++) {
        glob_t g;
        memset(&g, 0, sizeof g);
        /* GLOB_MARK appends '/' to directories so they can be left out. */
        int rc = glob(patterns[i], GLOB_MARK, NULL, &g);
        size_t added = 0;
        if (rc == 0) {
            for (size_t k = 0; k < g.gl_pathc && st == LP_OK; k++) {
                const char *p = g.gl_pathv[k];
                size_t len = strlen(p);
                if (len && p[len - 1] == '/') continue;
                if (n == cap) {
                    size_t nc = cap ? 2 * cap : 64;
                    char **nl = lp_realloc(list, nc, sizeof *nl);
                    if (!nl) {
                        st = LP_ERR_NOMEM;
                        break;
                    }
                    list = nl;
                    cap = nc;
                }
                if (!(list[n] = lp_strdup(p))) {
                    st = LP_ERR_NOMEM;
                    break;
                }
                n++;
                added++;
            }
        } else if (rc == GLOB_NOSPACE) {
            st = lp_errorf(LP_ERR_NOMEM, "glob '%s': out of memory", patterns[i]);
        } else if (rc == GLOB_ABORTED) {
            st = lp_errorf(LP_ERR_IO, "glob '%s': read error in a directory", patterns[i]);
        }
        globfree(&g);
        if (st == LP_OK && added == 0)
            st = lp_errorf(LP_ERR_ARG, "no files match '%s'", patterns[i]);
    }
    if (st == LP_OK && n > (size_t)1 << 30) st = lp_errorf(LP_ERR_ARG, "too many files (%zu)", n);
    if (st != LP_OK) {
        for (size_t k = 0; k < n; k++) lp_free(list[k]);
        lp_free(list);
        return st;
    }
    qsort(list, n, sizeof *list, cmp_str);
    size_t u = 0;
    for (size_t k = 0; k < n; k++) {
        if (u > 0 && !strcmp(list[u - 1], list[k])) {
            lp_free(list[k]);
            continue;
        }
        list[u++] = list[k];
    }
    *files = list;
    *n_files = (int)u;
    return LP_OK;
}

/* Keep the files i with i % n == shard (the list is sorted: every rank computes the same split). */
static lp_status keep_shard(lp_batcher *b, int shard, int n) {
    int kept = 0;
    for (int i = 0; i < b->n_files; i++) {
        if (i % n == shard) b->files[kept++] = b->files[i];
        else lp_free(b->files[i]);
    }
    const int total = b->n_files;
    b->n_files = kept;
    if (kept == 0)
        return lp_errorf(LP_ERR_ARG, "shard %d of %d: the %d file(s) of the data leave none for it (give at least %d "
                                     "files, or read without --shard-files)", shard, n, total, n);
    return LP_OK;
}

/* ---- producer ---- */

/* SplitMix64 finaliser, to derive each epoch's rng seed from (seed, epoch). */
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void start_epoch(lp_batcher *b) {
    lp_rng_init(&b->rng, mix64(b->cfg.seed ^ mix64((uint64_t)b->epoch)), LP_RNG_STREAM_SHUFFLE);
    for (int i = 0; i < b->n_files; i++) b->order[i] = i;
    if (b->cfg.shuffle) lp_rng_shuffle_int(&b->rng, b->order, b->n_files);
    b->next_file = 0;
    b->reading = 0;
    b->res_n = 0;
    b->batch_idx = 0;
    b->in_epoch = 1;
}

/* Copy a record into an item's buffer. */
static lp_status item_set(rec_item *it, const uint8_t *data, size_t len) {
    if (len > it->cap) {
        size_t nc = len + len / 4 + 64;
        uint8_t *p = lp_realloc(it->data, nc, 1);
        if (!p) return LP_ERR_NOMEM;
        it->data = p;
        it->cap = nc;
    }
    if (len) memcpy(it->data, data, len);
    it->len = len;
    return LP_OK;
}

/* Fill the shuffle buffer to capacity from the epoch's files (fewer when they run out). */
static lp_status refill(lp_batcher *b) {
    while (b->res_n < b->res_cap) {
        if (!b->reading) {
            if (b->next_file >= b->n_files) return LP_OK;
            const char *path = b->files[b->order[b->next_file++]];
            lp_status s = b->reader ? lp_tfrecord_reopen(b->reader, path)
                                    : lp_tfrecord_open_max(&b->reader, path, b->cfg.yt8m.max_record_bytes);
            if (s != LP_OK) return s;
            b->reading = 1;
        }
        const uint8_t *data;
        size_t len;
        lp_status s = lp_tfrecord_next(b->reader, &data, &len);
        if (s == LP_ERR_EOF) {
            b->reading = 0;
            continue;
        }
        if (s != LP_OK) return s;
        rec_item *it = &b->res[b->res_n];
        LP_TRY(item_set(it, data, len));
        it->file = b->order[b->next_file - 1];
        it->rec_no = lp_tfrecord_record_number(b->reader);
        it->offset = lp_tfrecord_record_offset(b->reader);
        b->pstats.bytes += (uint64_t)len + LP_TFRECORD_OVERHEAD;
        b->res_n++;
    }
    return LP_OK;
}

/* Move a record out of the buffer into b->cur: a uniform draw when shuffling, else the only one.
 * Buffers are swapped, not copied; the one leaving b->cur becomes the spare at res[res_n]. */
static void draw(lp_batcher *b) {
    int j = b->cfg.shuffle ? (int)lp_rng_below(&b->rng, (uint32_t)b->res_n) : 0;
    rec_item tmp = b->cur;
    b->cur = b->res[j];
    b->res[j] = b->res[b->res_n - 1];
    b->res[b->res_n - 1] = tmp;
    b->res_n--;
}

static lp_status slot_error(slot *s, lp_status st) {
    s->kind = ENTRY_ERROR;
    s->status = st;
    snprintf(s->msg, sizeof s->msg, "%s", lp_last_error());
    return st;
}

/* With data.level = auto every record says its own level; frame- and video-level files mixed in one glob
 * would train one model on two kinds of input (of equal width, they are not even noticed): refused, as a
 * mistake in the glob rather than a bad record (LP_ERR_ARG, which skip_bad does not skip). */
static lp_status same_level(lp_batcher *b) {
    if (b->seen_level == LP_YT8M_LEVEL_AUTO) {
        b->seen_level = b->v.level;
        b->seen_file = b->cur.file;
    }
    if (b->v.level == b->seen_level) return LP_OK;
    return lp_errorf(LP_ERR_ARG, "%s: record %llu is %s-level but %s is %s-level: frame-level and video-level files "
                     "cannot be mixed in one data set", b->files[b->cur.file], (unsigned long long)b->cur.rec_no,
                     lp_yt8m_level_str(b->v.level), b->files[b->seen_file], lp_yt8m_level_str(b->seen_level));
}

/* Append row n (the decoded record b->v) to the slot's batch; x rows have stride max_frames here. */
static lp_status place(lp_batcher *b, slot *s, int n) {
    const lp_yt8m_video *v = &b->v;
    const int D = b->D, Tmax = b->cfg.max_frames;
    int len = v->level == LP_YT8M_LEVEL_VIDEO ? 1 : v->n_frames;
    if (len > Tmax) len = Tmax;
    float *dst = s->batch.x + (size_t)n * Tmax * D;
    for (int t = 0; t < len; t++) {
        const float *src = v->features + (size_t)t * D;
        float *d = dst + (size_t)t * D;
        if (b->cfg.l2_normalize) {
            /* tf.nn.l2_normalize: x / sqrt(max(Σx², 1e-12)). Eight independent double accumulators: exact
             * enough for any D, and free of the serial add chain (the compiler may not reassociate). */
            double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int i = 0;
            for (; i + 8 <= D; i += 8)
                for (int j = 0; j < 8; j++) acc[j] += (double)src[i + j] * (double)src[i + j];
            for (; i < D; i++) acc[0] += (double)src[i] * (double)src[i];
            const double ss = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            float inv = (float)(1.0 / sqrt(ss > 1e-12 ? ss : 1e-12));
            for (i = 0; i < D; i++) d[i] = src[i] * inv;
        } else {
            memcpy(d, src, (size_t)D * sizeof(float));
        }
    }
    s->batch.lengths[n] = len;
    float *lab = s->batch.labels + (size_t)n * b->cfg.yt8m.classes;
    memset(lab, 0, (size_t)b->cfg.yt8m.classes * sizeof(float));
    for (int i = 0; i < v->n_labels; i++) lab[v->labels[i]] = 1.0f;
    size_t idl = strlen(v->id) + 1;
    if (s->idpool_len + idl > s->idpool_cap) {
        size_t nc = 2 * (s->idpool_len + idl) + 256;
        char *p = lp_realloc(s->idpool, nc, 1);
        if (!p) return LP_ERR_NOMEM;
        s->idpool = p;
        s->idpool_cap = nc;
    }
    memcpy(s->idpool + s->idpool_len, v->id, idl);
    s->id_off[n] = s->idpool_len;
    s->idpool_len += idl;
    return LP_OK;
}

/* Turn the n assembled rows (stride max_frames) into x [n,T,D] with padding. */
static void finish_batch(lp_batcher *b, slot *s, int n) {
    const int D = b->D, Tmax = b->cfg.max_frames;
    int T = 1;
    for (int i = 0; i < n; i++)
        if (s->batch.lengths[i] > T) T = s->batch.lengths[i];
    if (b->cfg.fixed_frames) T = Tmax;
    float *x = s->batch.x;
    const size_t row = (size_t)T * D, frame = (size_t)D;
    for (int i = 0; i < n; i++) {
        /* Row i moves from i·Tmax·D down to i·T·D (T <= Tmax): ascending i never overwrites a source not
         * yet moved, and its padding ends at (i+1)·T·D <= (i+1)·Tmax·D, the start of the next source. */
        const int len = s->batch.lengths[i];
        float *dst = x + (size_t)i * row;
        if (T != Tmax && i > 0) memmove(dst, x + (size_t)i * Tmax * D, (size_t)len * frame * sizeof(float));
        if (b->cfg.pad == LP_PAD_MASK) {
            memset(dst + (size_t)len * frame, 0, (size_t)(T - len) * frame * sizeof(float));
        } else {
            const float *last = dst + (size_t)(len - 1) * frame;
            for (int t = len; t < T; t++) memcpy(dst + (size_t)t * frame, last, frame * sizeof(float));
        }
        s->batch.ids[i] = s->idpool + s->id_off[i];
    }
    s->batch.B = n;
    s->batch.T = T;
    s->batch.pad = b->cfg.pad;
}

const int *lp_batch_model_lengths(const lp_batch *b) { return b->pad == LP_PAD_MASK ? b->lengths : NULL; }

/* Produce the next entry into slot s. Never fails silently: errors become ENTRY_ERROR entries. */
static void make_entry(lp_batcher *b, slot *s) {
    const lp_batcher_config *c = &b->cfg;
    for (;;) {
        if (!b->in_epoch) {
            if (c->epochs > 0 && b->epoch >= c->epochs) {
                s->kind = ENTRY_DONE;
                break;
            }
            start_epoch(b);
        }
        /* Replaying up to the resume position: decode (so skip_bad decisions match) but do not copy. */
        const int dry = b->epoch == c->start.epoch && b->batch_idx < c->start.batch;
        int n = 0;
        s->idpool_len = 0;
        lp_status st = LP_OK;
        while (n < c->batch_size) {
            if ((st = refill(b)) != LP_OK) break;
            if (b->res_n == 0) break;
            draw(b);
            st = lp_yt8m_decode(b->dec, b->cur.data, b->cur.len, &b->v);
            if (st == LP_OK && b->v.dim != b->D)
                st = lp_errorf(LP_ERR_FORMAT, "%s-level record of %d values per frame, the batcher expects %d",
                               lp_yt8m_level_str(b->v.level), b->v.dim, b->D);
            if (st == LP_OK) st = same_level(b);
            if (st != LP_OK) {
                if (st == LP_ERR_FORMAT) {
                    if (c->yt8m.skip_bad) {
                        b->pstats.skipped++;
                        st = LP_OK;
                        continue;
                    }
                    lp_error_wrap(st, "%s: record %llu at byte offset %llu", b->files[b->cur.file],
                                  (unsigned long long)b->cur.rec_no, (unsigned long long)b->cur.offset);
                }
                break;
            }
            if (!dry && (st = place(b, s, n)) != LP_OK) break;
            n++;
        }
        if (st != LP_OK) {
            slot_error(s, st);
            break;
        }
        if (n == 0 || (n < c->batch_size && c->drop_last)) {
            if (!dry) b->pstats.dropped += (uint64_t)n;
            const int64_t delivered = b->batch_idx;
            b->in_epoch = 0;
            b->epoch++;
            if (delivered == 0 && c->epochs == 0) {
                slot_error(s, lp_errorf(LP_ERR_ARG, "epoch %lld produced no batch (%d record(s) left, batch size %d%s) "
                                        "and epochs are endless",
                                        (long long)(b->epoch - 1), n, c->batch_size, c->drop_last ? ", drop_last" : ""));
                break;
            }
            s->kind = ENTRY_EPOCH_END;
            break;
        }
        const int64_t idx = b->batch_idx++;
        if (dry) continue;
        finish_batch(b, s, n);
        s->batch.pos.epoch = b->epoch;
        s->batch.pos.batch = idx;
        b->pstats.records += (uint64_t)n;
        for (int i = 0; i < n; i++) b->pstats.frames += (uint64_t)s->batch.lengths[i];
        s->kind = ENTRY_BATCH;
        break;
    }
    s->stats = b->pstats;
}

static void *producer_main(void *arg) {
    lp_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stop && b->slots[b->tail].state != SLOT_FREE) pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop) break;
        slot *s = &b->slots[b->tail];
        pthread_mutex_unlock(&b->mu);
        make_entry(b, s); /* the slot is FREE, so the consumer does not touch it */
        pthread_mutex_lock(&b->mu);
        s->state = SLOT_READY;
        b->tail = (b->tail + 1) % b->n_slots;
        pthread_cond_broadcast(&b->cv);
        if (s->kind == ENTRY_DONE || s->kind == ENTRY_ERROR) break;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- lifecycle ---- */

static lp_status slot_alloc(lp_batcher *b, slot *s) {
    const size_t B = (size_t)b->cfg.batch_size;
    memset(s, 0, sizeof *s);
    s->batch.D = b->D;
    s->batch.classes = b->cfg.yt8m.classes;
    s->batch.x = lp_malloc(B * (size_t)b->cfg.max_frames, (size_t)b->D * sizeof(float));
    s->batch.lengths = lp_malloc(B, sizeof(int));
    s->batch.labels = lp_malloc(B, (size_t)b->cfg.yt8m.classes * sizeof(float));
    s->batch.ids = lp_malloc(B, sizeof(char *));
    s->id_off = lp_malloc(B, sizeof(size_t));
    if (!s->batch.x || !s->batch.lengths || !s->batch.labels || !s->batch.ids || !s->id_off) return LP_ERR_NOMEM;
    return LP_OK;
}

static void slot_free(slot *s) {
    lp_free(s->batch.x);
    lp_free(s->batch.lengths);
    lp_free(s->batch.labels);
    lp_free(s->batch.ids);
    lp_free(s->id_off);
    lp_free(s->idpool);
}

void lp_batcher_free(lp_batcher *b) {
    if (!b) return;
    if (b->threaded) {
        pthread_mutex_lock(&b->mu);
        b->stop = 1;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
    }
    if (b->slots)
        for (int i = 0; i < b->n_slots; i++) slot_free(&b->slots[i]);
    lp_free(b->slots);
    if (b->res)
        for (int i = 0; i <= b->res_cap; i++) lp_free(b->res[i].data);
    lp_free(b->res);
    lp_free(b->cur.data);
    lp_tfrecord_close(b->reader);
    lp_yt8m_decoder_free(b->dec);
    lp_yt8m_video_free(&b->v);
    lp_free(b->order);
    for (int i = 0; i < b->n_files; i++) lp_free(b->files[i]);
    lp_free(b->files);
    if (b->patterns)
        for (int i = 0; i < b->cfg.n_patterns; i++) lp_free(b->patterns[i]);
    lp_free(b->patterns);
    lp_free(b);
}

lp_status lp_batcher_new(lp_batcher **out, const lp_batcher_config *cfg) {
    *out = NULL;
    LP_TRY(lp_batcher_config_check(cfg));
    lp_batcher *b = lp_calloc(1, sizeof *b);
    if (!b) return LP_ERR_NOMEM;
    b->cfg = *cfg;
    b->cfg.patterns = NULL;
    lp_status st = LP_OK;
    b->patterns = lp_calloc((size_t)cfg->n_patterns, sizeof(char *));
    if (!b->patterns) st = LP_ERR_NOMEM;
    for (int i = 0; st == LP_OK && i < cfg->n_patterns; i++)
        if (!(b->patterns[i] = lp_strdup(cfg->patterns[i]))) st = LP_ERR_NOMEM;
    if (st != LP_OK) {
        b->cfg.n_patterns = b->patterns ? cfg->n_patterns : 0;
        lp_batcher_free(b);
        return st;
    }
    b->cfg.patterns = (const char *const *)b->patterns;
    b->D = cfg->yt8m.level == LP_YT8M_LEVEL_VIDEO ? cfg->yt8m.video.dim : cfg->yt8m.frame.dim;
    b->pos = cfg->start;
    b->epoch = cfg->start.epoch;
    b->held = -1;

    st = lp_batcher_expand(cfg->patterns, cfg->n_patterns, &b->files, &b->n_files);
    if (st == LP_OK && cfg->n_shards > 1) st = keep_shard(b, cfg->shard, cfg->n_shards);
    lp_yt8m_config dcfg = cfg->yt8m;
    dcfg.max_frames = cfg->max_frames; /* the decoder stops copying after max_frames (still checks all) */
    dcfg.skip_bad = 0;                 /* skipping is decided here, per record */
    if (st == LP_OK) st = lp_yt8m_decoder_new(&b->dec, &dcfg);
    lp_yt8m_video_init(&b->v);
    b->res_cap = cfg->shuffle ? cfg->shuffle_buffer : 1;
    if (st == LP_OK) {
        b->order = lp_malloc((size_t)b->n_files, sizeof(int));
        b->res = lp_calloc((size_t)b->res_cap + 1, sizeof(rec_item));
        if (!b->order || !b->res) st = LP_ERR_NOMEM;
    }
    b->n_slots = cfg->prefetch > 0 ? cfg->prefetch + 1 : 1;
    if (st == LP_OK) {
        b->slots = lp_calloc((size_t)b->n_slots, sizeof(slot));
        if (!b->slots) st = LP_ERR_NOMEM;
        for (int i = 0; st == LP_OK && i < b->n_slots; i++) st = slot_alloc(b, &b->slots[i]);
    }
    if (st == LP_OK && cfg->prefetch > 0) {
        if (pthread_mutex_init(&b->mu, NULL) != 0 || pthread_cond_init(&b->cv, NULL) != 0) {
            st = lp_errorf(LP_ERR_IO, "batcher: cannot create a mutex/condition variable");
        } else if (pthread_create(&b->thread, NULL, producer_main, b) != 0) {
            pthread_mutex_destroy(&b->mu);
            pthread_cond_destroy(&b->cv);
            st = lp_errorf(LP_ERR_IO, "batcher: cannot start the prefetch thread");
        } else {
            b->threaded = 1;
        }
    }
    if (st != LP_OK) {
        lp_batcher_free(b);
        return st;
    }
    *out = b;
    return LP_OK;
}

/* Consume the entry of slot i (taken in ring order). Called with the lock held in threaded mode. */
static lp_status take(lp_batcher *b, int i, const lp_batch **out) {
    slot *s = &b->slots[i];
    b->cstats = s->stats;
    switch (s->kind) {
    case ENTRY_BATCH:
        s->state = SLOT_HELD;
        b->held = i;
        b->pos.epoch = s->batch.pos.epoch;
        b->pos.batch = s->batch.pos.batch + 1;
        *out = &s->batch;
        return LP_OK;
    case ENTRY_EPOCH_END:
        s->state = SLOT_FREE;
        b->pos.epoch++;
        b->pos.batch = 0;
        if (b->cfg.epochs > 0 && b->pos.epoch >= b->cfg.epochs) {
            /* The end of the last epoch: finished now, so the caller's end-of-epoch code runs once more
             * and then stops (the producer's DONE entry is never needed). */
            b->finished = 1;
            b->term = 1;
            b->term_status = LP_ERR_EOF;
        }
        return LP_ERR_EOF;
    case ENTRY_DONE:
        b->term = 1;
        b->finished = 1;
        b->term_status = LP_ERR_EOF;
        return LP_ERR_EOF;
    case ENTRY_ERROR:
    default:
        b->term = 1;
        b->term_status = s->status;
        snprintf(b->term_msg, sizeof b->term_msg, "%s", s->msg);
        return lp_errorf(s->status, "%s", s->msg);
    }
}

lp_status lp_batcher_next(lp_batcher *b, const lp_batch **out) {
    *out = NULL;
    if (!b->threaded) {
        if (b->held >= 0) b->slots[b->held].state = SLOT_FREE;
        b->held = -1;
        if (b->term) return b->term_status == LP_ERR_EOF ? LP_ERR_EOF : lp_errorf(b->term_status, "%s", b->term_msg);
        make_entry(b, &b->slots[0]);
        return take(b, 0, out);
    }
    pthread_mutex_lock(&b->mu);
    if (b->held >= 0) {
        b->slots[b->held].state = SLOT_FREE;
        b->held = -1;
        pthread_cond_broadcast(&b->cv);
    }
    lp_status st;
    if (b->term) {
        st = b->term_status == LP_ERR_EOF ? LP_ERR_EOF : lp_errorf(b->term_status, "%s", b->term_msg);
    } else {
        while (b->slots[b->head].state != SLOT_READY) pthread_cond_wait(&b->cv, &b->mu);
        int i = b->head;
        b->head = (b->head + 1) % b->n_slots;
        st = take(b, i, out);
        if (b->slots[i].state == SLOT_FREE) pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return st;
}

lp_batcher_cursor lp_batcher_position(const lp_batcher *b) { return b->pos; }
int lp_batcher_finished(const lp_batcher *b) { return b->finished; }
lp_batcher_stats lp_batcher_get_stats(const lp_batcher *b) { return b->cstats; }
int lp_batcher_num_files(const lp_batcher *b) { return b->n_files; }
const char *lp_batcher_file(const lp_batcher *b, int i) {
    LP_CHECK(i >= 0 && i < b->n_files);
    return b->files[i];
}

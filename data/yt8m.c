/* yt8m: YouTube-8M record decoding/encoding on top of the protobuf-c tf.train code.
 *
 * Every record is unpacked as a SequenceExample (field 1 is shared with Example, see yt8m.h) into a
 * per-decoder arena that is reset per record, so protobuf-c's many small allocations cost a pointer
 * bump and no free. The decoded floats go to the caller's lp_yt8m_video, whose buffers only grow. */
#include "data/yt8m.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "data/tfrecord.h"
#include "third_party/tf_example.pb-c.h"

/* ---- feature specs ---- */

#define MAX_FEATURE_SIZE (1 << 24)

lp_status lp_yt8m_features_parse(lp_yt8m_features *out, const char *spec) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return lp_errorf(LP_ERR_ARG, "empty feature spec (want e.g. \"rgb:1024,audio:128\")");
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t item_len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', item_len);
        if (!colon)
            return lp_errorf(LP_ERR_ARG, "feature spec \"%s\": item \"%.*s\" is not name:size", spec, (int)item_len, p);
        size_t name_len = (size_t)(colon - p);
        if (name_len == 0) return lp_errorf(LP_ERR_ARG, "feature spec \"%s\": empty feature name", spec);
        if (name_len >= LP_YT8M_NAME_MAX)
            return lp_errorf(LP_ERR_ARG, "feature spec \"%s\": name \"%.*s\" longer than %d characters", spec,
                             (int)name_len, p, LP_YT8M_NAME_MAX - 1);
        if (out->count == LP_YT8M_MAX_FEATURES)
            return lp_errorf(LP_ERR_ARG, "feature spec \"%s\": more than %d features", spec, LP_YT8M_MAX_FEATURES);
        const char *num = colon + 1, *num_end = p + item_len;
        long size = 0;
        int ok = num < num_end;
        for (const char *q = num; ok && q < num_end; q++) {
            if (*q < '0' || *q > '9' || size > MAX_FEATURE_SIZE) ok = 0;
            else size = size * 10 + (*q - '0');
        }
        if (!ok || size < 1 || size > MAX_FEATURE_SIZE)
            return lp_errorf(LP_ERR_ARG, "feature spec \"%s\": size of \"%.*s\" must be an integer in [1, %d]", spec,
                             (int)name_len, p, MAX_FEATURE_SIZE);
        lp_yt8m_feature *f = &out->f[out->count];
        memcpy(f->name, p, name_len);
        f->name[name_len] = 0;
        for (int i = 0; i < out->count; i++)
            if (!strcmp(out->f[i].name, f->name))
                return lp_errorf(LP_ERR_ARG, "feature spec \"%s\": feature \"%s\" given twice", spec, f->name);
        f->size = (int)size;
        if (out->dim > INT_MAX - f->size) return lp_errorf(LP_ERR_ARG, "feature spec \"%s\": total size too large", spec);
        out->dim += f->size;
        out->count++;
        if (!comma) break;
        p = comma + 1;
    }
    return LP_OK;
}

void lp_yt8m_features_format(const lp_yt8m_features *f, char *buf, size_t n) {
    if (!n) return;
    buf[0] = 0;
    size_t used = 0;
    for (int i = 0; i < f->count && used < n; i++) {
        int k = snprintf(buf + used, n - used, "%s%s:%d", i ? "," : "", f->f[i].name, f->f[i].size);
        if (k < 0) break;
        used += (size_t)k;
    }
}

/* ---- configuration ---- */

const char *lp_yt8m_level_str(lp_yt8m_level l) {
    switch (l) {
    case LP_YT8M_LEVEL_FRAME: return "frame";
    case LP_YT8M_LEVEL_VIDEO: return "video";
    default: return "auto";
    }
}

lp_status lp_yt8m_level_parse(lp_yt8m_level *out, const char *s) {
    if (!strcmp(s, "auto")) *out = LP_YT8M_LEVEL_AUTO;
    else if (!strcmp(s, "frame")) *out = LP_YT8M_LEVEL_FRAME;
    else if (!strcmp(s, "video")) *out = LP_YT8M_LEVEL_VIDEO;
    else return lp_errorf(LP_ERR_ARG, "level must be frame, video or auto, got \"%s\"", s);
    return LP_OK;
}

static lp_status set_key(char dst[LP_YT8M_NAME_MAX], const char *src, const char *what) {
    size_t n = strlen(src);
    if (n == 0) return lp_errorf(LP_ERR_ARG, "%s must not be empty", what);
    if (n >= LP_YT8M_NAME_MAX)
        return lp_errorf(LP_ERR_ARG, "%s \"%s\" longer than %d characters", what, src, LP_YT8M_NAME_MAX - 1);
    memcpy(dst, src, n + 1);
    return LP_OK;
}

void lp_yt8m_config_default(lp_yt8m_config *c) {
    memset(c, 0, sizeof *c);
    c->level = LP_YT8M_LEVEL_AUTO;
    lp_status s = lp_yt8m_features_parse(&c->frame, LP_YT8M_DEFAULT_FRAME_FEATURES);
    s |= lp_yt8m_features_parse(&c->video, LP_YT8M_DEFAULT_VIDEO_FEATURES);
    LP_CHECK(s == LP_OK);
    strcpy(c->id_key, LP_YT8M_DEFAULT_ID_KEY);
    strcpy(c->labels_key, LP_YT8M_DEFAULT_LABELS_KEY);
    c->classes = LP_YT8M_DEFAULT_CLASSES;
    c->max_record_bytes = LP_YT8M_DEFAULT_MAX_RECORD;
}

lp_status lp_yt8m_config_set(lp_yt8m_config *c, const char *frame_spec, const char *video_spec,
                             const char *id_key, const char *labels_key) {
    if (frame_spec) {
        lp_yt8m_features f;
        if (lp_yt8m_features_parse(&f, frame_spec) != LP_OK) return lp_error_wrap(LP_ERR_ARG, "frame features");
        c->frame = f;
    }
    if (video_spec) {
        lp_yt8m_features f;
        if (lp_yt8m_features_parse(&f, video_spec) != LP_OK) return lp_error_wrap(LP_ERR_ARG, "video features");
        c->video = f;
    }
    if (id_key) LP_TRY(set_key(c->id_key, id_key, "id key"));
    if (labels_key) LP_TRY(set_key(c->labels_key, labels_key, "labels key"));
    return lp_yt8m_config_check(c);
}

lp_status lp_yt8m_config_check(const lp_yt8m_config *c) {
    if (c->level != LP_YT8M_LEVEL_AUTO && c->level != LP_YT8M_LEVEL_FRAME && c->level != LP_YT8M_LEVEL_VIDEO)
        return lp_errorf(LP_ERR_ARG, "unknown level %d", (int)c->level);
    if (c->classes < 1) return lp_errorf(LP_ERR_ARG, "classes must be >= 1, got %d", c->classes);
    if (c->classes > LP_YT8M_MAX_CLASSES)
        return lp_errorf(LP_ERR_ARG, "classes = %d exceeds the limit of %d classes (LP_YT8M_MAX_CLASSES)", c->classes,
                         LP_YT8M_MAX_CLASSES);
    if (c->max_record_bytes < 1024 || c->max_record_bytes > LP_YT8M_MAX_RECORD_LIMIT)
        return lp_errorf(LP_ERR_ARG, "max_record_bytes must be in [1024, %zu], got %zu", LP_YT8M_MAX_RECORD_LIMIT,
                         c->max_record_bytes);
    if (c->max_frames < 0) return lp_errorf(LP_ERR_ARG, "max_frames must be >= 0 (0 = all), got %d", c->max_frames);
    if (c->frame.count < 1 || c->frame.dim < 1) return lp_errorf(LP_ERR_ARG, "no frame features configured");
    if (c->video.count < 1 || c->video.dim < 1) return lp_errorf(LP_ERR_ARG, "no video features configured");
    if (!c->id_key[0] || !c->labels_key[0]) return lp_errorf(LP_ERR_ARG, "id and labels keys must not be empty");
    if (!memchr(c->id_key, 0, LP_YT8M_NAME_MAX) || !memchr(c->labels_key, 0, LP_YT8M_NAME_MAX))
        return lp_errorf(LP_ERR_ARG, "id/labels key not terminated");
    if (!strcmp(c->id_key, c->labels_key))
        return lp_errorf(LP_ERR_ARG, "id key and labels key are both \"%s\"", c->id_key);
    return LP_OK;
}

/* ---- decoded video ---- */

void lp_yt8m_video_init(lp_yt8m_video *v) {
    memset(v, 0, sizeof *v);
}

void lp_yt8m_video_free(lp_yt8m_video *v) {
    lp_free(v->id);
    lp_free(v->labels);
    lp_free(v->features);
    memset(v, 0, sizeof *v);
}

/* Above this many bytes a buffer four times larger than needed is given back (see shrinkable). */
#define VIDEO_BUF_KEEP ((size_t)8 << 20)

/* A buffer grown by one unusually large record and now mostly unused: reallocate it to size. */
static int shrinkable(size_t cap, size_t n, size_t size) {
    return cap * size > VIDEO_BUF_KEEP && cap / 4 > n;
}

/* Grow *p to at least n elements of `size` bytes (contents not kept: every record overwrites). */
static lp_status reserve(void **p, size_t *cap, size_t n, size_t size) {
    if (shrinkable(*cap, n, size)) {
        lp_free(*p);
        *p = NULL;
        *cap = 0;
    }
    if (n <= *cap && *p) return LP_OK;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < n) ncap = ncap > SIZE_MAX / 2 ? n : ncap * 2;
    void *q = lp_malloc(ncap, size);
    if (!q) return LP_ERR_NOMEM;
    lp_free(*p);
    *p = q;
    *cap = ncap;
    return LP_OK;
}

/* ---- dequantisation ---- */

static float dequant[256];
static pthread_once_t dequant_once = PTHREAD_ONCE_INIT;

static void dequant_build(void) {
    // YouTube-8M utils.Dequantize: q * (max-min)/255 + (max-min)/512 + min with [min,max] = [-2,2].
    for (int q = 0; q < 256; q++) dequant[q] = (float)(q * 4.0 / 255.0 + 4.0 / 512.0 - 2.0);
}

const float *lp_yt8m_dequant_table(void) {
    pthread_once(&dequant_once, dequant_build);
    return dequant;
}

uint8_t lp_yt8m_quantize(float x) {
    // YouTube-8M utils.quantize: round((x - min) * 255/(max-min)) clamped to [0, 255].
    if (!(x == x)) return 0;
    double q = ((double)x + 2.0) * (255.0 / 4.0);
    if (q <= 0) return 0;
    if (q >= 255) return 255;
    return (uint8_t)(q + 0.5);
}

/* ---- decoder ---- */

#define ARENA_BLOCK ((size_t)1 << 20)
/* Arena held between records at most: a larger one (after an unusually large record) is freed at the
 * next reset, so one big record does not keep its peak for the rest of the run. */
#define ARENA_KEEP ((size_t)8 << 20)

struct lp_yt8m_decoder {
    lp_yt8m_config cfg;
    lp_arena arena;              /* protobuf-c allocations of the current record */
    size_t budget;               /* bytes protobuf-c may take for one record */
    int over_budget;             /* the current record's unpack was stopped by the budget */
    ProtobufCAllocator alloc;
    const float *dq;
};

/* protobuf-c unpacks a whole message before we see any count, so the only way to bound what one record
 * costs is to refuse allocations past a budget: unpack then fails and returns NULL. */
static void *arena_alloc(void *data, size_t size) {
    lp_yt8m_decoder *d = data;
    if (size > d->budget || d->arena.used > d->budget - size) {
        d->over_budget = 1;
        return NULL;
    }
    return lp_arena_alloc(&d->arena, size, 1);
}

static void arena_reset(lp_yt8m_decoder *d) {
    if (d->arena.high_water > ARENA_KEEP) {
        lp_arena_free(&d->arena);
        lp_arena_init(&d->arena, ARENA_BLOCK);
    } else {
        lp_arena_reset(&d->arena);
    }
    d->over_budget = 0;
}

static void arena_free(void *data, void *p) {
    (void)data;
    (void)p;  // freed all at once by the reset before the next record
}

lp_status lp_yt8m_decoder_new(lp_yt8m_decoder **out, const lp_yt8m_config *cfg) {
    *out = NULL;
    LP_TRY(lp_yt8m_config_check(cfg));
    lp_yt8m_decoder *d = lp_calloc(1, sizeof *d);
    if (!d) return LP_ERR_NOMEM;
    d->cfg = *cfg;
    lp_arena_init(&d->arena, ARENA_BLOCK);
    d->budget = cfg->max_record_bytes * LP_YT8M_DECODE_BUDGET_FACTOR;
    d->alloc.alloc = arena_alloc;
    d->alloc.free = arena_free;
    d->alloc.allocator_data = d;
    d->dq = lp_yt8m_dequant_table();
    *out = d;
    return LP_OK;
}

void lp_yt8m_decoder_free(lp_yt8m_decoder *d) {
    if (!d) return;
    lp_arena_free(&d->arena);
    lp_free(d);
}

static const Tensorflow__Feature *find_feature(const Tensorflow__Features *fs, const char *key) {
    if (!fs) return NULL;
    for (size_t i = 0; i < fs->n_feature; i++)
        if (fs->feature[i]->key && !strcmp(fs->feature[i]->key, key)) return fs->feature[i]->value;
    return NULL;
}

static const Tensorflow__FeatureList *find_list(const Tensorflow__FeatureLists *fl, const char *key) {
    if (!fl) return NULL;
    for (size_t i = 0; i < fl->n_feature_list; i++)
        if (fl->feature_list[i]->key && !strcmp(fl->feature_list[i]->key, key)) return fl->feature_list[i]->value;
    return NULL;
}

/* "a, b, c" (at most n bytes) — the keys present, for messages about a missing key. */
static void list_context_keys(const Tensorflow__Features *fs, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    size_t count = fs ? fs->n_feature : 0;
    for (size_t i = 0; i < count && used < n; i++) {
        int k = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", fs->feature[i]->key ? fs->feature[i]->key : "?");
        if (k < 0) break;
        used += (size_t)k;
    }
    if (!count) snprintf(buf, n, "none");
}

static void list_list_keys(const Tensorflow__FeatureLists *fl, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    size_t count = fl ? fl->n_feature_list : 0;
    for (size_t i = 0; i < count && used < n; i++) {
        const char *k0 = fl->feature_list[i]->key ? fl->feature_list[i]->key : "?";
        int k = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", k0);
        if (k < 0) break;
        used += (size_t)k;
    }
    if (!count) snprintf(buf, n, "none");
}

static const char *kind_name(const Tensorflow__Feature *f) {
    switch (f->kind_case) {
    case TENSORFLOW__FEATURE__KIND_BYTES_LIST: return "bytes_list";
    case TENSORFLOW__FEATURE__KIND_FLOAT_LIST: return "float_list";
    case TENSORFLOW__FEATURE__KIND_INT64_LIST: return "int64_list";
    default: return "empty feature";
    }
}

/* One value block of `size` floats from a Feature: one quantised bytes value or `size` floats.
 * where_fmt/name/where_idx name it for messages ("feature list 'rgb' frame 3"; the index is unused by
 * formats without a %ld). dst may be NULL (check only). */
static lp_status feature_values(const lp_yt8m_decoder *d, const Tensorflow__Feature *f, int size, float *dst,
                                const char *where_fmt, const char *name, long where_idx) {
    char where[LP_YT8M_NAME_MAX + 64];
    if (f->kind_case == TENSORFLOW__FEATURE__KIND_BYTES_LIST && f->bytes_list->n_value == 1 &&
        f->bytes_list->value[0].len == (size_t)size) {
        if (dst) {
            const uint8_t *q = f->bytes_list->value[0].data;
            const float *dq = d->dq;
            for (int j = 0; j < size; j++) dst[j] = dq[q[j]];
        }
        return LP_OK;
    }
    if (f->kind_case == TENSORFLOW__FEATURE__KIND_FLOAT_LIST && f->float_list->n_value == (size_t)size) {
        if (dst) memcpy(dst, f->float_list->value, (size_t)size * sizeof(float));
        return LP_OK;
    }
    snprintf(where, sizeof where, where_fmt, name, where_idx);
    if (f->kind_case == TENSORFLOW__FEATURE__KIND_BYTES_LIST) {
        if (f->bytes_list->n_value != 1)
            return lp_errorf(LP_ERR_FORMAT, "%s: expected one bytes value of %d bytes, got %zu values", where, size,
                             f->bytes_list->n_value);
        return lp_errorf(LP_ERR_FORMAT, "%s: wrong size: expected %d bytes, got %zu", where, size,
                         f->bytes_list->value[0].len);
    }
    if (f->kind_case == TENSORFLOW__FEATURE__KIND_FLOAT_LIST)
        return lp_errorf(LP_ERR_FORMAT, "%s: wrong size: expected %d floats, got %zu", where, size,
                         f->float_list->n_value);
    return lp_errorf(LP_ERR_FORMAT, "%s: expected bytes_list or float_list, got %s", where, kind_name(f));
}

/* Every frame of every feature list checked, nothing copied: finds the bad frame of a record whose
 * frames cannot all be valid. */
static lp_status check_frames(const lp_yt8m_decoder *d, const Tensorflow__FeatureList *const *lists, size_t n) {
    const lp_yt8m_config *c = &d->cfg;
    for (int i = 0; i < c->frame.count; i++)
        for (size_t t = 0; t < n; t++)
            LP_TRY(feature_values(d, lists[i]->feature[t], c->frame.f[i].size, NULL, "feature list '%s' frame %ld",
                                  c->frame.f[i].name, (long)t + 1));
    return LP_OK;
}

static lp_status decode_frames(lp_yt8m_decoder *d, const Tensorflow__FeatureLists *fls, size_t len,
                               lp_yt8m_video *v) {
    const lp_yt8m_config *c = &d->cfg;
    const Tensorflow__FeatureList *lists[LP_YT8M_MAX_FEATURES];
    size_t n = 0;
    for (int i = 0; i < c->frame.count; i++) {
        lists[i] = find_list(fls, c->frame.f[i].name);
        if (!lists[i]) {
            char keys[256];
            list_list_keys(fls, keys, sizeof keys);
            return lp_errorf(LP_ERR_FORMAT, "missing feature list '%s' (feature lists present: %s)", c->frame.f[i].name,
                             keys);
        }
        if (i == 0) n = lists[0]->n_feature;
        else if (lists[i]->n_feature != n)
            return lp_errorf(LP_ERR_FORMAT, "feature lists have different frame counts: '%s' %zu, '%s' %zu",
                             c->frame.f[0].name, n, c->frame.f[i].name, lists[i]->n_feature);
    }
    if (n == 0) return lp_errorf(LP_ERR_FORMAT, "record has 0 frames");
    if (n > LP_YT8M_MAX_FRAMES)
        return lp_errorf(LP_ERR_FORMAT, "record has %zu frames, more than the limit of %d (LP_YT8M_MAX_FRAMES)", n,
                         LP_YT8M_MAX_FRAMES);
    size_t keep = c->max_frames > 0 && (size_t)c->max_frames < n ? (size_t)c->max_frames : n;
    const size_t dim = (size_t)c->frame.dim;
    // A valid frame stores its `dim` values in at least `dim` bytes of the record (one byte each, or a
    // float each), so more values than record bytes means a bad frame: find it before sizing the buffer
    // by a count the record only claims (5M empty frames would otherwise ask for 23 GB).
    if (keep > len / dim) {
        LP_TRY(check_frames(d, lists, n));
        return lp_errorf(LP_ERR_FORMAT, "%zu frames of %zu values cannot fit in %zu bytes", keep, dim, len);
    }
    LP_TRY(reserve((void **)&v->features, &v->features_cap, keep * dim, sizeof(float)));
    // out is [keep, dim]; feature i fills columns [off, off+size) of every frame.
    size_t off = 0;
    for (int i = 0; i < c->frame.count; i++) {
        const int size = c->frame.f[i].size;
        for (size_t t = 0; t < n; t++) {
            float *dst = t < keep ? v->features + t * dim + off : NULL;
            LP_TRY(feature_values(d, lists[i]->feature[t], size, dst, "feature list '%s' frame %ld",
                                  c->frame.f[i].name, (long)t + 1));
        }
        off += (size_t)size;
    }
    v->level = LP_YT8M_LEVEL_FRAME;
    v->n_frames = (int)keep;
    v->total_frames = (int)n;
    v->dim = (int)dim;
    return LP_OK;
}

static lp_status decode_video(lp_yt8m_decoder *d, const Tensorflow__Features *ctx, lp_yt8m_video *v) {
    const lp_yt8m_config *c = &d->cfg;
    const size_t dim = (size_t)c->video.dim;
    LP_TRY(reserve((void **)&v->features, &v->features_cap, dim, sizeof(float)));
    size_t off = 0;
    for (int i = 0; i < c->video.count; i++) {
        const Tensorflow__Feature *f = find_feature(ctx, c->video.f[i].name);
        if (!f) {
            char keys[256];
            list_context_keys(ctx, keys, sizeof keys);
            return lp_errorf(LP_ERR_FORMAT, "missing video feature '%s' (features present: %s)", c->video.f[i].name,
                             keys);
        }
        LP_TRY(feature_values(d, f, c->video.f[i].size, v->features + off, "video feature '%s'",
                              c->video.f[i].name, 0L));
        off += (size_t)c->video.f[i].size;
    }
    v->level = LP_YT8M_LEVEL_VIDEO;
    v->n_frames = 0;
    v->total_frames = 0;
    v->dim = (int)dim;
    return LP_OK;
}

static lp_status record_too_long(size_t len, size_t max) {
    return lp_errorf(LP_ERR_FORMAT, "record of %zu bytes exceeds the limit of %zu bytes (--max-record-mb or "
                     "data.max_record_mb raises it)", len, max);
}

lp_status lp_yt8m_decode(lp_yt8m_decoder *d, const uint8_t *data, size_t len, lp_yt8m_video *v) {
    const lp_yt8m_config *c = &d->cfg;
    arena_reset(d);
    if (len > c->max_record_bytes) return record_too_long(len, c->max_record_bytes);
    Tensorflow__SequenceExample *se = tensorflow__sequence_example__unpack(&d->alloc, len, data);
    if (!se && d->over_budget)
        return lp_errorf(LP_ERR_FORMAT,
                         "decoding this %zu-byte record needs more than %zu bytes, the decode budget (%d x the "
                         "record limit of %zu bytes; --max-record-mb raises both): too many entries for its size",
                         len, d->budget, LP_YT8M_DECODE_BUDGET_FACTOR, c->max_record_bytes);
    if (!se) return lp_errorf(LP_ERR_FORMAT, "unparsable protobuf (not a tf.train.SequenceExample or Example, %zu bytes)", len);
    const Tensorflow__Features *ctx = se->context;

    // id: a bytes feature; the first value is the id.
    const Tensorflow__Feature *idf = find_feature(ctx, c->id_key);
    if (!idf) {
        char keys[256];
        list_context_keys(ctx, keys, sizeof keys);
        return lp_errorf(LP_ERR_FORMAT, "missing id feature '%s' (features present: %s)", c->id_key, keys);
    }
    if (idf->kind_case != TENSORFLOW__FEATURE__KIND_BYTES_LIST || idf->bytes_list->n_value < 1)
        return lp_errorf(LP_ERR_FORMAT, "id feature '%s' is not a non-empty bytes_list (%s)", c->id_key, kind_name(idf));
    const ProtobufCBinaryData *id = &idf->bytes_list->value[0];
    LP_TRY(reserve((void **)&v->id, &v->id_cap, id->len + 1, 1));
    if (id->len) memcpy(v->id, id->data, id->len);
    v->id[id->len] = 0;
    v->id_len = id->len;

    // labels: an int64 list; absent means no labels (unlabelled test data).
    v->n_labels = 0;
    const Tensorflow__Feature *lf = find_feature(ctx, c->labels_key);
    if (lf && lf->kind_case != TENSORFLOW__FEATURE__KIND__NOT_SET) {
        if (lf->kind_case != TENSORFLOW__FEATURE__KIND_INT64_LIST)
            return lp_errorf(LP_ERR_FORMAT, "labels feature '%s' is a %s, not an int64_list", c->labels_key,
                             kind_name(lf));
        size_t nl = lf->int64_list->n_value;
        if (nl > INT_MAX) return lp_errorf(LP_ERR_FORMAT, "%zu labels", nl);
        LP_TRY(reserve((void **)&v->labels, &v->labels_cap, nl, sizeof(int32_t)));
        for (size_t i = 0; i < nl; i++) {
            int64_t l = lf->int64_list->value[i];
            if (l < 0 || l >= c->classes)
                return lp_errorf(LP_ERR_FORMAT, "video '%s': label %lld outside [0, %d)", v->id, (long long)l,
                                 c->classes);
            v->labels[i] = (int32_t)l;
        }
        v->n_labels = (int)nl;
    }

    lp_yt8m_level level = c->level;
    if (level == LP_YT8M_LEVEL_AUTO) {
        level = LP_YT8M_LEVEL_VIDEO;
        for (int i = 0; i < c->frame.count; i++)
            if (find_list(se->feature_lists, c->frame.f[i].name)) level = LP_YT8M_LEVEL_FRAME;
    }
    lp_status s =
        level == LP_YT8M_LEVEL_FRAME ? decode_frames(d, se->feature_lists, len, v) : decode_video(d, ctx, v);
    if (s != LP_OK && s != LP_ERR_NOMEM) return lp_error_wrap(s, "video '%s'", v->id);
    return s;
}

/* ---- reader ---- */

struct lp_yt8m_reader {
    lp_tfrecord_reader *tr;
    lp_yt8m_decoder *dec;
    int skip_bad;
    uint64_t skipped;
};

lp_status lp_yt8m_reader_open(lp_yt8m_reader **out, const char *path, const lp_yt8m_config *cfg) {
    *out = NULL;
    lp_yt8m_reader *r = lp_calloc(1, sizeof *r);
    if (!r) return LP_ERR_NOMEM;
    lp_status s = lp_yt8m_decoder_new(&r->dec, cfg);
    if (s == LP_OK) s = lp_tfrecord_open_max(&r->tr, path, cfg->max_record_bytes);
    if (s != LP_OK) {
        lp_yt8m_reader_close(r);
        return s;
    }
    r->skip_bad = cfg->skip_bad;
    *out = r;
    return LP_OK;
}

lp_status lp_yt8m_reader_reopen(lp_yt8m_reader *r, const char *path) {
    return lp_tfrecord_reopen(r->tr, path);
}

lp_status lp_yt8m_reader_next(lp_yt8m_reader *r, lp_yt8m_video *v) {
    for (;;) {
        const uint8_t *data;
        size_t len;
        lp_status s = lp_tfrecord_next(r->tr, &data, &len);
        if (s != LP_OK) return s;  // EOF, or a framing error whose message is already complete
        s = lp_yt8m_decode(r->dec, data, len, v);
        if (s == LP_OK) return LP_OK;
        lp_error_wrap(s, "%s: record %llu at byte offset %llu%s", lp_tfrecord_path(r->tr),
                      (unsigned long long)lp_tfrecord_record_number(r->tr),
                      (unsigned long long)lp_tfrecord_record_offset(r->tr),
                      lp_tfrecord_is_gzip(r->tr) ? " (uncompressed)" : "");
        if (s != LP_ERR_FORMAT || !r->skip_bad) return s;
        r->skipped++;
    }
}

uint64_t lp_yt8m_reader_skipped(const lp_yt8m_reader *r) {
    return r->skipped;
}

uint64_t lp_yt8m_reader_record_number(const lp_yt8m_reader *r) {
    return lp_tfrecord_record_number(r->tr);
}

uint64_t lp_yt8m_reader_record_offset(const lp_yt8m_reader *r) {
    return lp_tfrecord_record_offset(r->tr);
}

const char *lp_yt8m_reader_path(const lp_yt8m_reader *r) {
    return lp_tfrecord_path(r->tr);
}

int lp_yt8m_reader_failed(const lp_yt8m_reader *r) {
    return lp_tfrecord_failed(r->tr);
}

void lp_yt8m_reader_close(lp_yt8m_reader *r) {
    if (!r) return;
    lp_tfrecord_close(r->tr);
    lp_yt8m_decoder_free(r->dec);
    lp_free(r);
}

/* ---- encoder ---- */

void lp_yt8m_buf_free(lp_yt8m_buf *b) {
    lp_free(b->data);
    memset(b, 0, sizeof *b);
}

static lp_status pack_into(const ProtobufCMessage *m, lp_yt8m_buf *out) {
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > out->cap || !out->data) {
        uint8_t *p = lp_malloc(n + n / 4 + 64, 1);
        if (!p) return LP_ERR_NOMEM;
        lp_free(out->data);
        out->data = p;
        out->cap = n + n / 4 + 64;
    }
    out->len = protobuf_c_message_pack(m, out->data);
    LP_CHECK(out->len == n);
    return LP_OK;
}

/* The two context entries every record has, id (BytesList) and labels (Int64List), and the storage they
 * point into. The message only borrows `id`; labels64 is ours (context_free). */
typedef struct {
    ProtobufCBinaryData id_bin;
    Tensorflow__BytesList id_list;
    Tensorflow__Int64List lab_list;
    Tensorflow__Feature id_f, lab_f;
    Tensorflow__Features__FeatureEntry e_id, e_lab;
    int64_t *labels64;
} context_msg;

static void context_free(context_msg *c) {
    lp_free(c->labels64);
    c->labels64 = NULL;
}

/* Fill c with id and labels (checked against the config's class count). On failure c needs context_free. */
static lp_status encode_context(const lp_yt8m_config *cfg, const char *id, const int32_t *labels, int n_labels,
                                context_msg *c) {
    *c = (context_msg){.id_list = TENSORFLOW__BYTES_LIST__INIT,
                       .lab_list = TENSORFLOW__INT64_LIST__INIT,
                       .id_f = TENSORFLOW__FEATURE__INIT,
                       .lab_f = TENSORFLOW__FEATURE__INIT,
                       .e_id = TENSORFLOW__FEATURES__FEATURE_ENTRY__INIT,
                       .e_lab = TENSORFLOW__FEATURES__FEATURE_ENTRY__INIT};
    if (n_labels < 0) return lp_errorf(LP_ERR_ARG, "negative label count %d", n_labels);
    c->labels64 = lp_malloc(n_labels ? (size_t)n_labels : 1, sizeof(int64_t));
    if (!c->labels64) return LP_ERR_NOMEM;
    for (int i = 0; i < n_labels; i++) {
        if (labels[i] < 0 || labels[i] >= cfg->classes)
            return lp_errorf(LP_ERR_ARG, "label %d outside [0, %d)", labels[i], cfg->classes);
        c->labels64[i] = labels[i];
    }
    c->id_bin.data = (uint8_t *)id;
    c->id_bin.len = strlen(id);
    c->id_list.n_value = 1;
    c->id_list.value = &c->id_bin;
    c->id_f.kind_case = TENSORFLOW__FEATURE__KIND_BYTES_LIST;
    c->id_f.bytes_list = &c->id_list;
    c->lab_list.n_value = (size_t)n_labels;
    c->lab_list.value = c->labels64;
    c->lab_f.kind_case = TENSORFLOW__FEATURE__KIND_INT64_LIST;
    c->lab_f.int64_list = &c->lab_list;
    c->e_id.key = (char *)cfg->id_key;
    c->e_id.value = &c->id_f;
    c->e_lab.key = (char *)cfg->labels_key;
    c->e_lab.value = &c->lab_f;
    return LP_OK;
}

lp_status lp_yt8m_encode_frame(const lp_yt8m_config *cfg, const char *id, const int32_t *labels, int n_labels,
                               const uint8_t *q, int n_frames, lp_yt8m_buf *out) {
    LP_TRY(lp_yt8m_config_check(cfg));
    if (n_frames < 1) return lp_errorf(LP_ERR_ARG, "a frame-level record needs >= 1 frame, got %d", n_frames);
    context_msg c;
    lp_status s = encode_context(cfg, id, labels, n_labels, &c);
    // Per frame and feature: one Feature holding a BytesList with one value pointing into q.
    const int nf = cfg->frame.count;
    const size_t cells = (size_t)nf * (size_t)n_frames;
    Tensorflow__Feature *feats = s == LP_OK ? lp_malloc(cells, sizeof *feats) : NULL;
    Tensorflow__Feature **featp = feats ? lp_malloc(cells, sizeof *featp) : NULL;
    Tensorflow__BytesList *bls = featp ? lp_malloc(cells, sizeof *bls) : NULL;
    ProtobufCBinaryData *bins = bls ? lp_malloc(cells, sizeof *bins) : NULL;
    if (s == LP_OK && !bins) s = LP_ERR_NOMEM;
    if (s == LP_OK) {
        Tensorflow__FeatureList lists[LP_YT8M_MAX_FEATURES];
        Tensorflow__FeatureLists__FeatureListEntry entries[LP_YT8M_MAX_FEATURES];
        Tensorflow__FeatureLists__FeatureListEntry *entryp[LP_YT8M_MAX_FEATURES];
        size_t off = 0;
        for (int i = 0; i < nf; i++) {
            for (int t = 0; t < n_frames; t++) {
                size_t k = (size_t)i * (size_t)n_frames + (size_t)t;
                Tensorflow__BytesList bl = TENSORFLOW__BYTES_LIST__INIT;
                Tensorflow__Feature f = TENSORFLOW__FEATURE__INIT;
                bins[k].data = (uint8_t *)q + (size_t)t * (size_t)cfg->frame.dim + off;
                bins[k].len = (size_t)cfg->frame.f[i].size;
                bl.n_value = 1;
                bl.value = &bins[k];
                bls[k] = bl;
                f.kind_case = TENSORFLOW__FEATURE__KIND_BYTES_LIST;
                f.bytes_list = &bls[k];
                feats[k] = f;
                featp[k] = &feats[k];
            }
            Tensorflow__FeatureList fl = TENSORFLOW__FEATURE_LIST__INIT;
            fl.n_feature = (size_t)n_frames;
            fl.feature = featp + (size_t)i * (size_t)n_frames;
            lists[i] = fl;
            Tensorflow__FeatureLists__FeatureListEntry e = TENSORFLOW__FEATURE_LISTS__FEATURE_LIST_ENTRY__INIT;
            e.key = (char *)cfg->frame.f[i].name;
            e.value = &lists[i];
            entries[i] = e;
            entryp[i] = &entries[i];
            off += (size_t)cfg->frame.f[i].size;
        }
        Tensorflow__FeatureLists fls = TENSORFLOW__FEATURE_LISTS__INIT;
        fls.n_feature_list = (size_t)nf;
        fls.feature_list = entryp;
        Tensorflow__Features__FeatureEntry *ctx_entries[2] = {&c.e_id, &c.e_lab};
        Tensorflow__Features ctx = TENSORFLOW__FEATURES__INIT;
        ctx.n_feature = 2;
        ctx.feature = ctx_entries;
        Tensorflow__SequenceExample se = TENSORFLOW__SEQUENCE_EXAMPLE__INIT;
        se.context = &ctx;
        se.feature_lists = &fls;
        s = pack_into(&se.base, out);
    }
    lp_free(bins);
    lp_free(bls);
    lp_free(featp);
    lp_free(feats);
    context_free(&c);
    return s;
}

lp_status lp_yt8m_encode_video(const lp_yt8m_config *cfg, const char *id, const int32_t *labels, int n_labels,
                               const float *f, lp_yt8m_buf *out) {
    LP_TRY(lp_yt8m_config_check(cfg));
    context_msg c;
    lp_status s = encode_context(cfg, id, labels, n_labels, &c);
    if (s == LP_OK) {
        const int nf = cfg->video.count;
        Tensorflow__FloatList fl[LP_YT8M_MAX_FEATURES];
        Tensorflow__Feature ff[LP_YT8M_MAX_FEATURES];
        Tensorflow__Features__FeatureEntry fe[LP_YT8M_MAX_FEATURES];
        Tensorflow__Features__FeatureEntry *entryp[LP_YT8M_MAX_FEATURES + 2] = {&c.e_id, &c.e_lab};
        size_t off = 0;
        for (int i = 0; i < nf; i++) {
            Tensorflow__FloatList l = TENSORFLOW__FLOAT_LIST__INIT;
            l.n_value = (size_t)cfg->video.f[i].size;
            l.value = (float *)f + off;
            fl[i] = l;
            Tensorflow__Feature x = TENSORFLOW__FEATURE__INIT;
            x.kind_case = TENSORFLOW__FEATURE__KIND_FLOAT_LIST;
            x.float_list = &fl[i];
            ff[i] = x;
            Tensorflow__Features__FeatureEntry e = TENSORFLOW__FEATURES__FEATURE_ENTRY__INIT;
            e.key = (char *)cfg->video.f[i].name;
            e.value = &ff[i];
            fe[i] = e;
            entryp[2 + i] = &fe[i];
            off += (size_t)cfg->video.f[i].size;
        }
        Tensorflow__Features feats = TENSORFLOW__FEATURES__INIT;
        feats.n_feature = (size_t)nf + 2;
        feats.feature = entryp;
        Tensorflow__Example ex = TENSORFLOW__EXAMPLE__INIT;
        ex.features = &feats;
        s = pack_into(&ex.base, out);
    }
    context_free(&c);
    return s;
}

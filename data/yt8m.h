/* yt8m: decodes YouTube-8M-style records (also AudioSet and other data in the same layout) and encodes
 * them (for the synthetic generator and tests).
 *
 * Frame level: a tf.train.SequenceExample; context holds the id (bytes, key `id` or `video_id`) and the
 * labels (int64 list, key `labels`); each frame feature is a feature list with one Feature per frame,
 * a BytesList holding `size` quantised bytes (a FloatList of `size` floats is accepted too). Bytes are
 * dequantised as x = q·4/255 + 4/512 − 2 (YouTube-8M's range [-2, 2]). The features named in the frame
 * spec are concatenated per frame in spec order: "rgb:1024,audio:128" gives [n_frames, 1152].
 * Video level: a tf.train.Example with id, labels and the video features (FloatLists) of the video
 * spec concatenated: "mean_rgb:1024,mean_audio:128" gives [1152].
 *
 * Every record is parsed as a SequenceExample: Example.features and SequenceExample.context share field
 * number 1, so this reads both kinds and tolerates extras (the empty field 2 of the 2018 video-level
 * files, context keys such as mean_rgb or start_time_seconds in frame-level files). Keys not asked for
 * are ignored.
 *
 * Bad content is LP_ERR_FORMAT with a message: a label outside [0, classes), a frame of the wrong size,
 * a missing id or feature (list), feature lists with different frame counts, a frame-level record with
 * 0 frames, an unparsable protobuf. A record without the labels key has no labels (unlabelled data);
 * a present labels key must be an int64_list.
 * The reader prefixes "FILE: record N at byte offset O: " and, with `skip_bad`, skips such records and
 * counts them instead. Corrupt framing (CRC, truncation) is never skipped: see data/tfrecord.h.
 *
 * Decoding reuses the caller's lp_yt8m_video buffers and the decoder's arena (protobuf-c allocates from
 * it and it is reset per record), so the steady state does no malloc/free per record.
 *
 *     lp_yt8m_config cfg; lp_yt8m_config_default(&cfg);
 *     lp_yt8m_reader *r; lp_yt8m_video v; lp_yt8m_video_init(&v);
 *     if (lp_yt8m_reader_open(&r, path, &cfg) != LP_OK) ... lp_last_error() ...
 *     while ((s = lp_yt8m_reader_next(r, &v)) == LP_OK) use(v.id, v.labels, v.n_frames, v.features);
 *     if (s != LP_ERR_EOF) ... error ...
 *     lp_yt8m_reader_close(r); lp_yt8m_video_free(&v);
 */
#ifndef LP_YT8M_H
#define LP_YT8M_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define LP_YT8M_MAX_FEATURES 8  /* features in one spec */
#define LP_YT8M_NAME_MAX 64     /* feature / key name length, NUL included */
#define LP_YT8M_DEFAULT_FRAME_FEATURES "rgb:1024,audio:128"
#define LP_YT8M_DEFAULT_VIDEO_FEATURES "mean_rgb:1024,mean_audio:128"
#define LP_YT8M_DEFAULT_ID_KEY "id"
#define LP_YT8M_DEFAULT_LABELS_KEY "labels"
#define LP_YT8M_DEFAULT_CLASSES 3862 /* 2018 release; 4716 for 2017, 527 for AudioSet */

/* Limits on what a record can make the decoder allocate (input-driven memory stays bounded):
 *  - classes: at most LP_YT8M_MAX_CLASSES (a batch holds [batch, classes] label floats and the model a
 *    [classes, H] output layer; real data sets have 527 to 4716);
 *  - a record's length: at most max_record_bytes (default LP_YT8M_DEFAULT_MAX_RECORD = 16 MiB; a real
 *    frame-level record is under 0.5 MB), raised with `--max-record-mb` / data.max_record_mb; a longer
 *    record ends its file (LP_ERR_FORMAT);
 *  - protobuf-c's allocations while unpacking one record: at most LP_YT8M_DECODE_BUDGET_FACTOR times
 *    max_record_bytes (64 MiB by default). A legitimate record needs about twice its length; a "bomb"
 *    of millions of empty Feature entries needs ~36 bytes per input byte and is refused as bad content;
 *  - frames: at most LP_YT8M_MAX_FRAMES per record; the float buffer for them is only sized after the
 *    record's length shows that its frames can hold that many values.
 * Buffers grown by one large record are released again before the next one (they would otherwise keep
 * that record's peak for the rest of the run). */
#define LP_YT8M_MAX_CLASSES 100000
#define LP_YT8M_DEFAULT_MAX_RECORD ((size_t)16 << 20)
#define LP_YT8M_MAX_RECORD_LIMIT ((size_t)1 << 30) /* the largest max_record_bytes (TFRecord's own limit) */
#define LP_YT8M_DECODE_BUDGET_FACTOR 4
#define LP_YT8M_MAX_FRAMES (1 << 20)

/* ---- feature specs: "name:size,name:size,..." ---- */

typedef struct {
    char name[LP_YT8M_NAME_MAX];
    int size; /* values per frame (frame level) or per video (video level), >= 1 */
} lp_yt8m_feature;

typedef struct {
    int count;                                /* number of features, 1..LP_YT8M_MAX_FEATURES */
    int dim;                                  /* sum of sizes: floats per frame / per video */
    lp_yt8m_feature f[LP_YT8M_MAX_FEATURES];  /* in spec order (= concatenation order) */
} lp_yt8m_features;

/* Parse a spec such as "rgb:1024,audio:128". Names are non-empty, unique, without ',' or ':';
 * sizes are integers in [1, 1<<24]. A bad spec is LP_ERR_ARG with a message quoting it. */
lp_status lp_yt8m_features_parse(lp_yt8m_features *out, const char *spec);

/* Format back as "rgb:1024,audio:128" (truncated to n bytes, always NUL-terminated). */
void lp_yt8m_features_format(const lp_yt8m_features *f, char *buf, size_t n);

/* ---- configuration ---- */

typedef enum {
    LP_YT8M_LEVEL_AUTO = 0, /* per record: frame level if any frame feature list is present, else video */
    LP_YT8M_LEVEL_FRAME,
    LP_YT8M_LEVEL_VIDEO
} lp_yt8m_level;

/* "auto" / "frame" / "video"; and parsing it (LP_ERR_ARG for anything else). */
const char *lp_yt8m_level_str(lp_yt8m_level l);
lp_status lp_yt8m_level_parse(lp_yt8m_level *out, const char *s);

typedef struct {
    lp_yt8m_level level;
    lp_yt8m_features frame;                /* default LP_YT8M_DEFAULT_FRAME_FEATURES */
    lp_yt8m_features video;                /* default LP_YT8M_DEFAULT_VIDEO_FEATURES */
    char id_key[LP_YT8M_NAME_MAX];         /* default "id" ("video_id" for AudioSet and 2017 files) */
    char labels_key[LP_YT8M_NAME_MAX];     /* default "labels" */
    int classes;                           /* labels must be in [0, classes); default 3862 */
    int max_frames;                        /* frame level: decode at most this many leading frames
                                              (0 = all); every frame's size and the counts are still
                                              checked. Default 0. */
    int skip_bad;                          /* reader: skip and count bad-content records. Default 0. */
    size_t max_record_bytes;               /* longest record accepted, in [1 KiB, LP_YT8M_MAX_RECORD_LIMIT];
                                              default LP_YT8M_DEFAULT_MAX_RECORD */
} lp_yt8m_config;

/* Fill with the defaults above. */
void lp_yt8m_config_default(lp_yt8m_config *c);

/* Set the string parts from user flags (any may be NULL = keep); checks everything (LP_ERR_ARG). */
lp_status lp_yt8m_config_set(lp_yt8m_config *c, const char *frame_spec, const char *video_spec,
                             const char *id_key, const char *labels_key);

/* Check a configuration: LP_OK or LP_ERR_ARG with a message (classes >= 1, max_frames >= 0, ...). */
lp_status lp_yt8m_config_check(const lp_yt8m_config *c);

/* ---- decoded video (caller-owned, reused across records) ---- */

typedef struct {
    lp_yt8m_level level;  /* LP_YT8M_LEVEL_FRAME or LP_YT8M_LEVEL_VIDEO: what this record was */
    char *id;             /* NUL-terminated id (bytes as stored; an embedded NUL ends it early) */
    size_t id_len;        /* stored length in bytes */
    int32_t *labels;      /* [n_labels], in record order */
    int n_labels;
    int n_frames;         /* frame level: frames decoded (<= max_frames when set); video level: 0 */
    int total_frames;     /* frame level: frames in the record; video level: 0 */
    int dim;              /* floats per frame (frame level) or per video (video level) */
    float *features;      /* frame level [n_frames, dim]; video level [dim] */
    /* capacities of the buffers above (private) */
    size_t id_cap, labels_cap, features_cap;
} lp_yt8m_video;

void lp_yt8m_video_init(lp_yt8m_video *v);
void lp_yt8m_video_free(lp_yt8m_video *v);

/* ---- decoder: one record from bytes ---- */

typedef struct lp_yt8m_decoder lp_yt8m_decoder;

/* The config is copied (checked with lp_yt8m_config_check). */
lp_status lp_yt8m_decoder_new(lp_yt8m_decoder **out, const lp_yt8m_config *cfg);
void lp_yt8m_decoder_free(lp_yt8m_decoder *d);

/* Decode one serialised record into v. LP_ERR_FORMAT (message without file context) for bad content;
 * v is then unspecified. */
lp_status lp_yt8m_decode(lp_yt8m_decoder *d, const uint8_t *data, size_t len, lp_yt8m_video *v);

/* Dequantisation table: lp_yt8m_dequant_table()[q] == q·4/255 + 4/512 − 2 (as float). */
const float *lp_yt8m_dequant_table(void);
/* YouTube-8M quantisation of a value: round((x + 2)·255/4) clamped to [0, 255]; NaN gives 0. */
uint8_t lp_yt8m_quantize(float x);

/* ---- reader: records of one TFRecord file (plain or gzip), decoded ---- */

typedef struct lp_yt8m_reader lp_yt8m_reader;

lp_status lp_yt8m_reader_open(lp_yt8m_reader **out, const char *path, const lp_yt8m_config *cfg);
/* Move to another file keeping buffers; the skipped count carries over. */
lp_status lp_yt8m_reader_reopen(lp_yt8m_reader *r, const char *path);

/* Next video: LP_OK, LP_ERR_EOF at the clean end, or an error whose message names the file, record and
 * byte offset. With cfg.skip_bad, bad-content records are skipped and counted; otherwise they are
 * returned as LP_ERR_FORMAT and the following call continues with the next record. Framing errors
 * (lp_yt8m_reader_failed() non-zero) end the file. */
lp_status lp_yt8m_reader_next(lp_yt8m_reader *r, lp_yt8m_video *v);

uint64_t lp_yt8m_reader_skipped(const lp_yt8m_reader *r);        /* bad records skipped (all files) */
uint64_t lp_yt8m_reader_record_number(const lp_yt8m_reader *r);  /* 1-based, of the last record */
uint64_t lp_yt8m_reader_record_offset(const lp_yt8m_reader *r);  /* its byte offset in the file */
const char *lp_yt8m_reader_path(const lp_yt8m_reader *r);
int lp_yt8m_reader_failed(const lp_yt8m_reader *r);
void lp_yt8m_reader_close(lp_yt8m_reader *r);

/* ---- encoder (synthetic data, tests) ---- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} lp_yt8m_buf;
void lp_yt8m_buf_free(lp_yt8m_buf *b);

/* Serialise a frame-level SequenceExample into out (replacing its contents): context {id_key: id,
 * labels_key: labels}, one feature list per cfg->frame feature. q is [n_frames, cfg->frame.dim]
 * quantised bytes, features concatenated in spec order. Deterministic bytes for the same input. */
lp_status lp_yt8m_encode_frame(const lp_yt8m_config *cfg, const char *id, const int32_t *labels,
                               int n_labels, const uint8_t *q, int n_frames, lp_yt8m_buf *out);

/* Serialise a video-level Example: {id_key: id, labels_key: labels, one FloatList per cfg->video
 * feature}. f is [cfg->video.dim]. */
lp_status lp_yt8m_encode_video(const lp_yt8m_config *cfg, const char *id, const int32_t *labels,
                               int n_labels, const float *f, lp_yt8m_buf *out);

#endif

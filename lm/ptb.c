/* ptb: Penn Treebank text -> vocabulary, token ids and truncated-BPTT windows (contract in lm/ptb.h).
 *
 * A file is read whole (the training file is 5 MB), checked to be UTF-8 text, then walked once by a
 * small tokenizer that hands words and line ends to a callback: counting for the vocabulary, mapping to
 * ids for the token streams. Word lookup is an open-addressing hash table (FNV-1a, linear probing). */
#include "lm/ptb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"

/* ---- reading and checking a file ---- */

/* 1-based line number of byte offset `off`. */
static size_t line_of(const char *buf, size_t off) {
    size_t line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    return line;
}

/* Length of the valid UTF-8 sequence starting at s[0] (s has `left` bytes), 0 when invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t left) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (left < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

/* Read `path` whole and check that it is non-empty UTF-8 text without NUL bytes. */
static lp_status read_text(const char *path, char **buf, size_t *len) {
    lp_status s = lp_file_read_max(path, LP_PTB_MAX_FILE_BYTES, "a text file (LP_PTB_MAX_FILE_BYTES)", buf, len);
    if (s != LP_OK) return s;
    if (*len == 0) {
        lp_free(*buf);
        *buf = NULL;
        return lp_errorf(LP_ERR_FORMAT, "%s: empty file (expected one sentence a line)", path);
    }
    const unsigned char *u = (const unsigned char *)*buf;
    for (size_t i = 0; i < *len;) {
        size_t k = u[i] == 0 ? 0 : utf8_len(u + i, *len - i);
        if (k == 0) {
            size_t line = line_of(*buf, i);
            const char *what = u[i] == 0 ? "NUL byte" : "invalid UTF-8";
            lp_free(*buf);
            *buf = NULL;
            return lp_errorf(LP_ERR_FORMAT, "%s: line %zu, byte offset %zu: %s (not a text file?)", path, line,
                             i, what);
        }
        i += k;
    }
    return LP_OK;
}

/* ---- tokenizer ---- */

typedef lp_status (*token_fn)(void *user, const char *word, size_t len);

static int is_sep(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Calls fn for every word and for `<eos>` at the end of every line (also a last line without '\n'). */
static lp_status tokenize(const char *buf, size_t len, token_fn fn, void *user) {
    size_t i = 0;
    int line_open = 0; /* bytes seen on the current line (a final line without '\n' still gets <eos>) */
    while (i < len) {
        char c = buf[i];
        if (c == '\n') {
            LP_TRY(fn(user, LP_PTB_EOS, strlen(LP_PTB_EOS)));
            line_open = 0;
            i++;
        } else if (is_sep(c)) {
            line_open = 1;
            i++;
        } else {
            size_t j = i;
            while (j < len && !is_sep(buf[j])) j++;
            LP_TRY(fn(user, buf + i, j - i));
            line_open = 1;
            i = j;
        }
    }
    if (line_open) LP_TRY(fn(user, LP_PTB_EOS, strlen(LP_PTB_EOS)));
    return LP_OK;
}

/* ---- hashing ---- */

#define FNV_OFFSET 1469598103934665603ull

/* FNV-1a 64 continued from h over s[0..len) */
static uint64_t fnv1a_more(uint64_t h, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t fnv1a(const char *s, size_t len) { return fnv1a_more(FNV_OFFSET, s, len); }

/* Counting table used while building: entries point into the file buffer (or at the static "<eos>"). */
typedef struct {
    const char *word;
    size_t len;
    int64_t count;
} count_entry;

typedef struct {
    count_entry *e;
    int n, cap;
    int *slots; /* entry index + 1, 0 = empty */
    size_t n_slots;
} count_table;

static lp_status count_grow(count_table *t) {
    size_t ns = t->n_slots ? t->n_slots * 2 : 1024;
    int *slots = lp_calloc(ns, sizeof *slots);
    if (!slots) return LP_ERR_NOMEM;
    for (int k = 0; k < t->n; k++) {
        size_t p = fnv1a(t->e[k].word, t->e[k].len) & (ns - 1);
        while (slots[p]) p = (p + 1) & (ns - 1);
        slots[p] = k + 1;
    }
    lp_free(t->slots);
    t->slots = slots;
    t->n_slots = ns;
    return LP_OK;
}

static lp_status count_word(void *user, const char *word, size_t len) {
    count_table *t = user;
    if ((size_t)(t->n + 1) * 2 > t->n_slots) LP_TRY(count_grow(t)); /* load factor <= 1/2 */
    size_t p = fnv1a(word, len) & (t->n_slots - 1);
    while (t->slots[p]) {
        count_entry *e = &t->e[t->slots[p] - 1];
        if (e->len == len && memcmp(e->word, word, len) == 0) {
            e->count++;
            return LP_OK;
        }
        p = (p + 1) & (t->n_slots - 1);
    }
    if (t->n == LP_PTB_MAX_VOCAB)
        return lp_errorf(LP_ERR_FORMAT, "more than %d distinct words, the limit of a vocabulary (LP_PTB_MAX_VOCAB)",
                         LP_PTB_MAX_VOCAB);
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 1024;
        count_entry *ne = lp_realloc(t->e, (size_t)cap, sizeof *ne);
        if (!ne) return LP_ERR_NOMEM;
        t->e = ne;
        t->cap = cap;
    }
    t->e[t->n] = (count_entry){word, len, 1};
    t->slots[p] = ++t->n;
    return LP_OK;
}

/* Byte-wise order of two words (a proper prefix sorts first), as Python compares str. */
static int word_cmp(const char *a, size_t la, const char *b, size_t lb) {
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c) return c;
    return (la > lb) - (la < lb);
}

static int by_count_then_word(const void *pa, const void *pb) {
    const count_entry *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return word_cmp(a->word, a->len, b->word, b->len);
}

/* ---- vocabulary ---- */

static int vocab_find(const lp_ptb_vocab *v, const char *word, size_t len) {
    if (!v->slots) return -1;
    size_t p = fnv1a(word, len) & (v->n_slots - 1);
    while (v->slots[p]) {
        int id = v->slots[p] - 1;
        const char *w = v->words[id];
        if (strncmp(w, word, len) == 0 && w[len] == '\0') return id;
        p = (p + 1) & (v->n_slots - 1);
    }
    return -1;
}

void lp_ptb_vocab_free(lp_ptb_vocab *v) {
    lp_free(v->words);
    lp_free(v->counts);
    lp_free(v->pool);
    lp_free(v->slots);
    memset(v, 0, sizeof *v);
}

lp_status lp_ptb_vocab_build(lp_ptb_vocab *v, const char *train_path, int max_words) {
    memset(v, 0, sizeof *v);
    if (max_words < 0 || max_words == 1)
        return lp_errorf(LP_ERR_ARG, "vocabulary size must be 0 (all words) or >= 2, got %d", max_words);
    char *buf = NULL;
    size_t len = 0;
    LP_TRY(read_text(train_path, &buf, &len));

    count_table t = {0};
    lp_status s = tokenize(buf, len, count_word, &t);
    if (s == LP_ERR_FORMAT) s = lp_error_wrap(s, "%s", train_path);
    if (s != LP_OK) goto done;
    qsort(t.e, (size_t)t.n, sizeof *t.e, by_count_then_word);

    /* Keep the first `keep` entries; reserve the last place for <unk> when it is not among them. */
    int keep = t.n;
    if (max_words > 0 && keep > max_words) keep = max_words;
    int has_unk = 0;
    for (int k = 0; k < keep; k++)
        has_unk |= t.e[k].len == strlen(LP_PTB_UNK) && memcmp(t.e[k].word, LP_PTB_UNK, t.e[k].len) == 0;
    if (!has_unk && max_words > 0 && keep == max_words) keep--;
    int size = keep + !has_unk;

    size_t pool_bytes = sizeof LP_PTB_UNK;
    for (int k = 0; k < keep; k++) pool_bytes += t.e[k].len + 1;
    v->words = lp_malloc((size_t)size, sizeof *v->words);
    v->counts = lp_malloc((size_t)size, sizeof *v->counts);
    v->pool = lp_malloc(pool_bytes, 1);
    v->n_slots = 16;
    while (v->n_slots < (size_t)size * 2) v->n_slots *= 2;
    v->slots = lp_calloc(v->n_slots, sizeof *v->slots);
    if (!v->words || !v->counts || !v->pool || !v->slots) {
        s = LP_ERR_NOMEM;
        goto done;
    }
    char *p = v->pool;
    for (int k = 0; k < size; k++) {
        const char *w = k < keep ? t.e[k].word : LP_PTB_UNK;
        size_t wl = k < keep ? t.e[k].len : strlen(LP_PTB_UNK);
        memcpy(p, w, wl);
        p[wl] = '\0';
        v->words[k] = p;
        v->counts[k] = k < keep ? t.e[k].count : 0;
        p += wl + 1;
        size_t h = fnv1a(w, wl) & (v->n_slots - 1);
        while (v->slots[h]) h = (h + 1) & (v->n_slots - 1);
        v->slots[h] = k + 1;
    }
    v->size = size;
    v->unk = vocab_find(v, LP_PTB_UNK, strlen(LP_PTB_UNK));
    v->eos = vocab_find(v, LP_PTB_EOS, strlen(LP_PTB_EOS));
    if (v->eos < 0) {
        /* Only possible when max_words cut it off; every non-empty file has at least one <eos>. */
        s = lp_errorf(LP_ERR_ARG, "%s: vocabulary of %d words leaves out %s (raise the size)", train_path,
                      max_words, LP_PTB_EOS);
        goto done;
    }
    LP_CHECK(v->unk >= 0);
done:
    lp_free(t.e);
    lp_free(t.slots);
    lp_free(buf);
    if (s != LP_OK) lp_ptb_vocab_free(v);
    return s;
}

int lp_ptb_vocab_id(const lp_ptb_vocab *v, const char *word) { return vocab_find(v, word, strlen(word)); }

uint64_t lp_ptb_vocab_digest(const lp_ptb_vocab *v) {
    if (!v->words) return 0; /* ids without words (a corpus made of ids alone): nothing to digest */
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < v->size; i++) {
        if (i) h = fnv1a_more(h, "\n", 1);
        h = fnv1a_more(h, v->words[i], strlen(v->words[i]));
    }
    return h ? h : 1; /* 0 means "not recorded" in lp_lm_config */
}

const char *lp_ptb_vocab_word(const lp_ptb_vocab *v, int id) {
    LP_CHECK(id >= 0 && id < v->size);
    return v->words[id];
}

/* ---- token ids ---- */

typedef struct {
    const lp_ptb_vocab *v;
    int32_t *ids;
    size_t n, cap, oov;
} id_sink;

static lp_status put_id(void *user, const char *word, size_t len) {
    id_sink *k = user;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 65536;
        int32_t *ni = lp_realloc(k->ids, cap, sizeof *ni);
        if (!ni) return LP_ERR_NOMEM;
        k->ids = ni;
        k->cap = cap;
    }
    int id = vocab_find(k->v, word, len);
    if (id < 0) {
        id = k->v->unk;
        k->oov++;
    }
    k->ids[k->n++] = id;
    return LP_OK;
}

lp_status lp_ptb_tokens_load(const lp_ptb_vocab *v, const char *path, int32_t **ids, size_t *n,
                             size_t *n_oov) {
    *ids = NULL;
    *n = 0;
    if (n_oov) *n_oov = 0;
    LP_CHECK(v->size > 0);
    char *buf = NULL;
    size_t len = 0;
    LP_TRY(read_text(path, &buf, &len));
    id_sink k = {v, NULL, 0, 0, 0};
    lp_status s = tokenize(buf, len, put_id, &k);
    lp_free(buf);
    if (s != LP_OK) {
        lp_free(k.ids);
        return s;
    }
    *ids = k.ids;
    *n = k.n;
    if (n_oov) *n_oov = k.oov;
    return LP_OK;
}

/* ---- corpus ---- */

const char *lp_ptb_split_name(int split) {
    static const char *const names[LP_PTB_SPLITS] = {"train", "valid", "test"};
    LP_CHECK(split >= 0 && split < LP_PTB_SPLITS);
    return names[split];
}

void lp_ptb_corpus_free(lp_ptb_corpus *c) {
    lp_ptb_vocab_free(&c->vocab);
    for (int i = 0; i < LP_PTB_SPLITS; i++) lp_free(c->ids[i]);
    memset(c, 0, sizeof *c);
}

lp_status lp_ptb_corpus_load(lp_ptb_corpus *c, const char *dir, int max_words) {
    memset(c, 0, sizeof *c);
    char path[4096];
    for (int i = 0; i < LP_PTB_SPLITS; i++) {
        int w = snprintf(path, sizeof path, "%s/ptb.%s.txt", dir, lp_ptb_split_name(i));
        if (w < 0 || (size_t)w >= sizeof path) {
            lp_ptb_corpus_free(c);
            return lp_errorf(LP_ERR_ARG, "PTB directory name too long: %s", dir);
        }
        lp_status s = LP_OK;
        if (i == LP_PTB_TRAIN) s = lp_ptb_vocab_build(&c->vocab, path, max_words);
        if (s == LP_OK) s = lp_ptb_tokens_load(&c->vocab, path, &c->ids[i], &c->n[i], &c->n_oov[i]);
        if (s != LP_OK) {
            lp_ptb_corpus_free(c);
            return s;
        }
    }
    return LP_OK;
}

/* ---- truncated-BPTT windows ---- */

lp_status lp_ptb_batcher_init(lp_ptb_batcher *bt, const int32_t *ids, size_t n, int batch, int bptt,
                              int drop_last) {
    memset(bt, 0, sizeof *bt);
    if (batch < 1) return lp_errorf(LP_ERR_ARG, "batch size must be >= 1, got %d", batch);
    if (bptt < 1) return lp_errorf(LP_ERR_ARG, "bptt must be >= 1, got %d", bptt);
    size_t L = n / (size_t)batch;
    size_t steps = L > 0 ? L - 1 : 0; /* targets per stream */
    size_t windows = drop_last ? steps / (size_t)bptt : (steps + (size_t)bptt - 1) / (size_t)bptt;
    if (windows == 0)
        return lp_errorf(LP_ERR_ARG,
                         "%zu tokens in %d streams give %zu tokens per stream: too short for %s window of "
                         "%d steps",
                         n, batch, L, drop_last ? "a full" : "a", bptt);
    if (windows > (size_t)0x7fffffff) return lp_errorf(LP_ERR_ARG, "too many windows (%zu)", windows);
    bt->ids = ids;
    bt->batch = batch;
    bt->bptt = bptt;
    bt->drop_last = drop_last != 0;
    bt->stream_len = L;
    bt->windows = (int)windows;
    return LP_OK;
}

size_t lp_ptb_batcher_offset(const lp_ptb_batcher *bt, int w) {
    LP_CHECK(w >= 0 && w < bt->windows);
    return (size_t)w * (size_t)bt->bptt;
}

int lp_ptb_batcher_window(const lp_ptb_batcher *bt, int w, int32_t *x, int32_t *y) {
    size_t off = lp_ptb_batcher_offset(bt, w);
    size_t left = bt->stream_len - 1 - off; /* targets left in each stream */
    int t = left < (size_t)bt->bptt ? (int)left : bt->bptt;
    // x, y are [B, t]; stream b starts at ids + b*L
    for (int b = 0; b < bt->batch; b++) {
        const int32_t *s = bt->ids + (size_t)b * bt->stream_len + off;
        memcpy(x + (size_t)b * t, s, (size_t)t * sizeof *x);
        memcpy(y + (size_t)b * t, s + 1, (size_t)t * sizeof *y);
    }
    return t;
}

size_t lp_ptb_batcher_targets(const lp_ptb_batcher *bt) {
    size_t per_stream = bt->drop_last ? (size_t)bt->windows * (size_t)bt->bptt : bt->stream_len - 1;
    return per_stream * (size_t)bt->batch;
}

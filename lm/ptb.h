/* ptb: the Penn Treebank word-level data path for language modelling.
 *
 * Mikolov's preprocessed PTB is plain text: one sentence a line, words separated by
 * spaces. This module turns it into token ids and into the windows of truncated backpropagation through
 * time used by Zaremba et al. (2014) and the ISS paper.
 *
 * Tokens. Words are the maximal runs of bytes other than space, tab, CR and LF (so a leading space, a space
 * before the newline and CRLF line ends change nothing). Every line ends with the token `<eos>`, including a
 * last line without a final newline; a file of N lines thus has N `<eos>` tokens, and the three PTB files
 * give 929,589 / 73,760 / 82,430 tokens. The text must be UTF-8 without NUL bytes: anything else (a binary
 * file given by mistake) is LP_ERR_FORMAT naming the file, the 1-based line and the byte offset.
 *
 * Vocabulary. Built from the training file only: every distinct word (and `<eos>`), counted, then ordered
 * by descending count and, for equal counts, by byte-wise (= code point) order of the word. This is the
 * order of TensorFlow's PTB reader (models/rnn/ptb/reader.py, `sorted(counter.items(), key=lambda x:
 * (-x[1], x[0]))`) that Zaremba's code uses, so ids agree with it (on PTB: 0 "the", 1 `<unk>`, 2 `<eos>`;
 * code should still use v->unk / v->eos rather than assume them).
 * With `max_words` > 0 only the max_words most frequent entries are kept (the rest become `<unk>`).
 * The vocabulary always contains `<unk>`: when the training file lacks it, it is added as the last id
 * (taking the last of the max_words places when capped). `<eos>` is always present (every line has one).
 * PTB's training file has exactly 10,000 distinct words including `<unk>` and `<eos>`.
 *
 * Ids. lp_ptb_tokens_load maps each word of a file through the vocabulary; a word not in it maps to `<unk>`
 * (their number is reported, so a caller can say "valid: 0 out-of-vocabulary words").
 *
 * Batching for truncated BPTT (Zaremba's reader, ptb_producer):
 *
 *     stream length L = n / B (integer division; the last n mod B tokens are dropped)
 *     stream b = ids[b*L .. b*L + L)               i.e. the token stream reshaped to [B, L]
 *     window w: x[b, t] = stream_b[w*bptt + t],  y[b, t] = stream_b[w*bptt + t + 1],  t < len_w
 *
 * so row b of window w+1 continues exactly where row b of window w stopped, which is what lets the model
 * carry its hidden state across windows. Each window predicts len_w targets per stream; over an epoch the
 * targets are tokens 1 .. L-1 of every stream. The last window may be shorter: with drop_last = 0
 * (default, used for evaluation so every target counts) there are ceil((L-1)/bptt) windows and the last one
 * has len = (L-1) - (windows-1)*bptt steps; with drop_last = 1 there are floor((L-1)/bptt) windows of exactly
 * bptt steps, as TensorFlow's reader (epoch_size = (L-1) // num_steps). Windows are visited in order.
 *
 *     lp_ptb_corpus c;
 *     if (lp_ptb_corpus_load(&c, "data/ptb", 0) != LP_OK) ... lp_last_error() ...
 *     lp_ptb_batcher bt;
 *     lp_ptb_batcher_init(&bt, c.ids[LP_PTB_TRAIN], c.n[LP_PTB_TRAIN], 20, 35, 0);
 *     for (int w = 0; w < bt.windows; w++) {
 *         int t = lp_ptb_batcher_window(&bt, w, x, y);   // x, y: [B, t] row-major, room for B*bptt
 *         ...
 *     }
 *     lp_ptb_corpus_free(&c);
 */
#ifndef LP_PTB_H
#define LP_PTB_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define LP_PTB_UNK "<unk>"
#define LP_PTB_EOS "<eos>"

/* Limits on what a file can make the reader allocate: a text file of more than LP_PTB_MAX_FILE_BYTES
 * (PTB's training file is 5 MB) and a vocabulary of more than LP_PTB_MAX_VOCAB distinct words (PTB has
 * 10,000) are refused with LP_ERR_FORMAT naming the limit; the ids of a file take at most twice its size. */
#define LP_PTB_MAX_FILE_BYTES ((size_t)32 << 20)
#define LP_PTB_MAX_VOCAB (1 << 20)

/* ---- vocabulary ---- */

typedef struct {
    int size;        /* number of words; ids are 0 .. size-1 */
    char **words;    /* id -> NUL-terminated word (points into `pool`) */
    int64_t *counts; /* id -> occurrences in the training file (0 for an added `<unk>`) */
    int unk, eos;    /* ids of `<unk>` and `<eos>` */
    char *pool;      /* storage of the words */
    int *slots;      /* open-addressing hash table: id + 1, 0 = empty; n_slots a power of two */
    size_t n_slots;
} lp_ptb_vocab;

/* Build the vocabulary from `train_path` (ordering above). max_words = 0 keeps every word; otherwise it
 * must be >= 2 (room for `<unk>` and `<eos>`). Errors: LP_ERR_IO (cannot open/read, names the file),
 * LP_ERR_FORMAT (empty file, NUL byte or invalid UTF-8: file, line, byte offset), LP_ERR_ARG (max_words),
 * LP_ERR_NOMEM. On failure `v` holds nothing to free (lp_ptb_vocab_free is still safe). */
lp_status lp_ptb_vocab_build(lp_ptb_vocab *v, const char *train_path, int max_words);

/* Id of `word`, or -1 when it is not in the vocabulary. */
int lp_ptb_vocab_id(const lp_ptb_vocab *v, const char *word);

/* Word of `id` (0 <= id < size; checked). */
const char *lp_ptb_vocab_word(const lp_ptb_vocab *v, int id);

/* Digest of the id -> word map: FNV-1a 64 over the words in id order joined with '\n' (never 0). Two
 * vocabularies of the same size but other words, or the same words in another order, differ; an LM
 * checkpoint stores it (model.vocab_digest, lm/lm.h) so that a model is not scored on data whose ids mean
 * other words. 0 for a vocabulary without a word list (ids alone, as some tests build). */
uint64_t lp_ptb_vocab_digest(const lp_ptb_vocab *v);

void lp_ptb_vocab_free(lp_ptb_vocab *v);

/* ---- token ids ---- */

/* The token ids of a whole file: *ids (caller frees with lp_free) gets *n ids, `<eos>` after every line,
 * unknown words as `<unk>`. *n_oov (may be NULL) gets the number of words that were not in the
 * vocabulary. Errors as for lp_ptb_vocab_build; on failure *ids is NULL and *n is 0. */
lp_status lp_ptb_tokens_load(const lp_ptb_vocab *v, const char *path, int32_t **ids, size_t *n,
                             size_t *n_oov);

/* ---- the three standard files ---- */

enum { LP_PTB_TRAIN = 0, LP_PTB_VALID = 1, LP_PTB_TEST = 2, LP_PTB_SPLITS = 3 };

typedef struct {
    lp_ptb_vocab vocab;
    int32_t *ids[LP_PTB_SPLITS];  /* token ids of train, valid, test */
    size_t n[LP_PTB_SPLITS];      /* their counts */
    size_t n_oov[LP_PTB_SPLITS];  /* words mapped to `<unk>` because they were not in the vocabulary */
} lp_ptb_corpus;

/* "train", "valid", "test". */
const char *lp_ptb_split_name(int split);

/* Load DIR/ptb.train.txt (vocabulary, max_words as above), DIR/ptb.valid.txt and DIR/ptb.test.txt.
 * On failure nothing is held (lp_ptb_corpus_free is still safe) and the message names the file. */
lp_status lp_ptb_corpus_load(lp_ptb_corpus *c, const char *dir, int max_words);
void lp_ptb_corpus_free(lp_ptb_corpus *c);

/* ---- truncated-BPTT windows ---- */

typedef struct {
    const int32_t *ids;  /* the token stream (not owned: must outlive the batcher) */
    int batch;           /* B streams */
    int bptt;            /* steps per full window */
    int drop_last;       /* 1: only full windows (TensorFlow's reader) */
    size_t stream_len;   /* L = n / B */
    int windows;         /* number of windows in an epoch */
} lp_ptb_batcher;

/* Set up batching of ids[0..n) into `batch` streams and windows of `bptt` steps. No allocation (nothing
 * to free). LP_ERR_ARG when batch < 1, bptt < 1, or the streams are too short for one window
 * (L < 2, or L - 1 < bptt with drop_last), with a message giving n, B and L. */
lp_status lp_ptb_batcher_init(lp_ptb_batcher *bt, const int32_t *ids, size_t n, int batch, int bptt,
                              int drop_last);

/* Window w (0 <= w < windows; checked): writes inputs x [B, t] and targets y [B, t] (row-major, row b =
 * stream b; both need room for B*bptt ids) and returns t, the window's number of steps (bptt, or less for
 * the last window when drop_last = 0). */
int lp_ptb_batcher_window(const lp_ptb_batcher *bt, int w, int32_t *x, int32_t *y);

/* First position (within each stream) of window w: w * bptt. */
size_t lp_ptb_batcher_offset(const lp_ptb_batcher *bt, int w);

/* Targets in a whole epoch: B * (sum of the windows' lengths); the denominator of the perplexity. */
size_t lp_ptb_batcher_targets(const lp_ptb_batcher *bt);

#endif

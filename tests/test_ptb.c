/* test_ptb: the Penn Treebank data path (lm/ptb.h) — vocabulary, token ids, truncated-BPTT windows and
 * errors, on the real files in ../shared/data/ptb and on small files written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/status.h"
#include "lm/ptb.h"
#include "tests/common/refdata.h"
#include "tests/common/scratch.h"

/* ---- helpers ---- */

/* Writes <scratch>/name; the returned path is lp_test_scratch_path's (valid for the next 7 calls). */
static const char *tmp_file(const char *name, const char *content, size_t len) {
    const char *path = lp_test_scratch_path(name);
    assert_int_equal(lp_file_write_all(path, content, len), LP_OK);
    return path;
}

static int setup_dir(void **state) {
    (void)state;
    return lp_test_scratch_make("ptb");
}

/* ---- the real PTB files ---- */

/* An independent tokenizer (strtok on whitespace, one line at a time) to compare the ids against. */
static void check_ids_against_text(const lp_ptb_vocab *v, const char *path, const int32_t *ids, size_t n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char line[65536];
    size_t k = 0;
    int mismatches = 0;
    while (fgets(line, sizeof line, f)) {
        char *save = NULL;
        for (char *w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
            assert_true(k < n);
            int want = lp_ptb_vocab_id(v, w);
            if (want < 0) want = v->unk;
            mismatches += ids[k++] != want;
        }
        assert_true(k < n);
        mismatches += ids[k++] != v->eos;
    }
    fclose(f);
    assert_int_equal(k, n);
    assert_int_equal(mismatches, 0);
}

static void test_real_corpus(void **state) {
    (void)state;
    lp_ptb_corpus c;
    const char *dir = lp_ref_path("data/ptb");
    char dir_copy[1024];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    lp_status s = lp_ptb_corpus_load(&c, dir_copy, 0);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    /* The facts the issue names (data/README.md): 10,000 words, 929,589 / 73,760 / 82,430 tokens. */
    assert_int_equal(c.vocab.size, 10000);
    assert_int_equal(c.n[LP_PTB_TRAIN], 929589);
    assert_int_equal(c.n[LP_PTB_VALID], 73760);
    assert_int_equal(c.n[LP_PTB_TEST], 82430);
    /* Mikolov's preprocessing already mapped rare words to <unk>: nothing in valid/test is unknown. */
    assert_int_equal(c.n_oov[LP_PTB_TRAIN], 0);
    assert_int_equal(c.n_oov[LP_PTB_VALID], 0);
    assert_int_equal(c.n_oov[LP_PTB_TEST], 0);
    /* <eos> once per line: the README's 42,068 training lines. */
    assert_int_equal(c.vocab.counts[c.vocab.eos], 42068);
    assert_string_equal(lp_ptb_vocab_word(&c.vocab, c.vocab.unk), "<unk>");
    assert_string_equal(lp_ptb_vocab_word(&c.vocab, c.vocab.eos), "<eos>");
    /* TensorFlow's reader gives the=0, <unk>=1, <eos>=2 (counts 50,770 > 45,020 > 42,068). */
    assert_string_equal(lp_ptb_vocab_word(&c.vocab, 0), "the");
    assert_int_equal(c.vocab.unk, 1);
    assert_int_equal(c.vocab.eos, 2);
    /* The documented order (TensorFlow's reader): count descending, then byte order; ids round-trip. */
    int64_t total = 0;
    for (int i = 0; i < c.vocab.size; i++) {
        total += c.vocab.counts[i];
        assert_int_equal(lp_ptb_vocab_id(&c.vocab, lp_ptb_vocab_word(&c.vocab, i)), i);
        if (i > 0) {
            int64_t a = c.vocab.counts[i - 1], b = c.vocab.counts[i];
            assert_true(a > b || (a == b && strcmp(c.vocab.words[i - 1], c.vocab.words[i]) < 0));
        }
    }
    assert_int_equal(total, 929589);
    assert_int_equal(lp_ptb_vocab_id(&c.vocab, "no-such-word-in-ptb"), -1);
    /* Every id of every file equals an independent re-tokenisation of the text. */
    for (int sp = 0; sp < LP_PTB_SPLITS; sp++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/ptb.%s.txt", dir_copy, lp_ptb_split_name(sp));
        check_ids_against_text(&c.vocab, path, c.ids[sp], c.n[sp]);
    }
    /* Zaremba's small setup: B 20, bptt 35 -> L = 46,479 and 1,327 full windows (TensorFlow's epoch_size),
     * 1,328 with the short tail window. */
    lp_ptb_batcher bt;
    assert_int_equal(lp_ptb_batcher_init(&bt, c.ids[LP_PTB_TRAIN], c.n[LP_PTB_TRAIN], 20, 35, 1), LP_OK);
    assert_int_equal(bt.stream_len, 929589 / 20);
    assert_int_equal(bt.windows, (929589 / 20 - 1) / 35);
    assert_int_equal(lp_ptb_batcher_init(&bt, c.ids[LP_PTB_TRAIN], c.n[LP_PTB_TRAIN], 20, 35, 0), LP_OK);
    assert_int_equal(bt.windows, (929589 / 20 - 1) / 35 + 1);
    assert_int_equal(lp_ptb_batcher_targets(&bt), (size_t)20 * (929589 / 20 - 1));
    lp_ptb_corpus_free(&c);
}

/* ---- small files ---- */

static void test_vocab_order_ties_and_cap(void **state) {
    (void)state;
    /* counts: b 3, a 2, c 2, <eos> 2, zz 1, y 1 -> order b, <eos>, a, c, y, zz ("<" = 0x3c sorts before
     * letters). Tabs, CRLF, repeated spaces and a last line without '\n' are all handled. */
    const char *text = " b a  c b\t\r\n zz y\tb a c";
    char path[600];
    snprintf(path, sizeof path, "%s", tmp_file("train.txt", text, strlen(text)));
    lp_ptb_vocab v;
    assert_int_equal(lp_ptb_vocab_build(&v, path, 0), LP_OK);
    const char *want[] = {"b", "<eos>", "a", "c", "y", "zz", "<unk>"};
    const int64_t want_count[] = {3, 2, 2, 2, 1, 1, 0};
    assert_int_equal(v.size, 7); /* <unk> absent from the text: added last with count 0 */
    for (int i = 0; i < 7; i++) {
        assert_string_equal(lp_ptb_vocab_word(&v, i), want[i]);
        assert_int_equal(v.counts[i], want_count[i]);
    }
    assert_int_equal(v.unk, 6);
    assert_int_equal(v.eos, 1);

    /* Ids of another file: unknown words -> <unk>, counted. */
    const char *other = "a q b\n\nzz r\n";
    const char *opath = tmp_file("valid.txt", other, strlen(other));
    int32_t *ids;
    size_t n, oov;
    assert_int_equal(lp_ptb_tokens_load(&v, opath, &ids, &n, &oov), LP_OK);
    const int32_t want_ids[] = {2, 6, 0, 1, 1, 5, 6, 1}; /* a q b <eos> | <eos> | zz r <eos> */
    assert_int_equal(n, 8);
    assert_int_equal(oov, 2);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], want_ids[i]);
    lp_free(ids);
    lp_ptb_vocab_free(&v);

    /* Cap at 4: b, <eos>, a, and <unk> takes the last place; c, y, zz become <unk>. */
    assert_int_equal(lp_ptb_vocab_build(&v, path, 4), LP_OK);
    assert_int_equal(v.size, 4);
    assert_string_equal(lp_ptb_vocab_word(&v, 3), "<unk>");
    assert_int_equal(lp_ptb_vocab_id(&v, "c"), -1);
    assert_int_equal(lp_ptb_tokens_load(&v, path, &ids, &n, &oov), LP_OK);
    assert_int_equal(n, 11);
    assert_int_equal(oov, 4); /* c, zz, y, c */
    lp_free(ids);
    lp_ptb_vocab_free(&v);

    /* When <unk> is frequent it keeps its place by count and nothing is appended. */
    const char *t2 = "<unk> <unk> x\n";
    snprintf(path, sizeof path, "%s", tmp_file("train2.txt", t2, strlen(t2)));
    assert_int_equal(lp_ptb_vocab_build(&v, path, 0), LP_OK);
    assert_int_equal(v.size, 3);
    assert_int_equal(v.unk, 0);
    lp_ptb_vocab_free(&v);
}

static void test_errors(void **state) {
    (void)state;
    lp_ptb_vocab v;
    char missing[600];
    snprintf(missing, sizeof missing, "%s", lp_test_scratch_path("does-not-exist.txt"));
    assert_int_equal(lp_ptb_vocab_build(&v, missing, 0), LP_ERR_IO);
    assert_non_null(strstr(lp_last_error(), "does-not-exist.txt"));
    assert_null(v.words);
    lp_ptb_vocab_free(&v); /* safe after a failure */

    const char *p = tmp_file("empty.txt", "", 0);
    assert_int_equal(lp_ptb_vocab_build(&v, p, 0), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "empty.txt"));

    /* A NUL byte on line 3 (a binary file): file, line and byte offset are named. */
    const char bin[] = "a b\nc d\ne \0 f\n";
    p = tmp_file("binary.txt", bin, sizeof bin - 1);
    assert_int_equal(lp_ptb_vocab_build(&v, p, 0), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "binary.txt: line 3, byte offset 10: NUL byte"));

    const char bad_utf8[] = "ok\nok \xc3\x28 no\n";
    p = tmp_file("latin.txt", bad_utf8, sizeof bad_utf8 - 1);
    assert_int_equal(lp_ptb_vocab_build(&v, p, 0), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "latin.txt: line 2, byte offset 6: invalid UTF-8"));
    /* Valid multi-byte UTF-8 is text. */
    const char utf8[] = "caf\xc3\xa9 \xe2\x82\xac\n";
    p = tmp_file("utf8.txt", utf8, sizeof utf8 - 1);
    assert_int_equal(lp_ptb_vocab_build(&v, p, 0), LP_OK);
    assert_true(lp_ptb_vocab_id(&v, "caf\xc3\xa9") >= 0);

    /* Token loading reports the same kinds of errors, naming its own file. */
    int32_t *ids = (int32_t *)&v; /* must be reset to NULL */
    size_t n = 99;
    assert_int_equal(lp_ptb_tokens_load(&v, missing, &ids, &n, NULL), LP_ERR_IO);
    assert_null(ids);
    assert_int_equal(n, 0);
    p = tmp_file("binary2.txt", bin, sizeof bin - 1);
    assert_int_equal(lp_ptb_tokens_load(&v, p, &ids, &n, NULL), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "binary2.txt: line 3"));
    /* A directory is not readable as a file. */
    assert_int_equal(lp_ptb_tokens_load(&v, lp_test_scratch_dir(), &ids, &n, NULL), LP_ERR_IO);
    lp_ptb_vocab_free(&v);

    assert_int_equal(lp_ptb_vocab_build(&v, lp_ref_path("data/ptb/ptb.valid.txt"), 1), LP_ERR_ARG);
    assert_int_equal(lp_ptb_vocab_build(&v, lp_ref_path("data/ptb/ptb.valid.txt"), -5), LP_ERR_ARG);

    /* A corpus directory without the files names the missing one. */
    lp_ptb_corpus c;
    assert_int_equal(lp_ptb_corpus_load(&c, lp_test_scratch_dir(), 0), LP_ERR_IO);
    assert_non_null(strstr(lp_last_error(), "ptb.train.txt"));
    lp_ptb_corpus_free(&c);
}

/* ---- batching ---- */

static void test_batching_streams_and_windows(void **state) {
    (void)state;
    /* ids[i] = i, so every value tells where it came from. B 3, L 17 (two tokens dropped), bptt 5:
     * 16 targets per stream -> windows of 5, 5, 5, 1. */
    enum { B = 3, L = 17, N = B * L + 2, BPTT = 5 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = i;
    lp_ptb_batcher bt;
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, N, B, BPTT, 0), LP_OK);
    assert_int_equal(bt.stream_len, L);
    assert_int_equal(bt.windows, 4);
    assert_int_equal(lp_ptb_batcher_targets(&bt), B * (L - 1));
    int32_t x[B * BPTT], y[B * BPTT];
    int seen[N] = {0};
    int32_t last_x[B];
    for (int w = 0; w < bt.windows; w++) {
        int t = lp_ptb_batcher_window(&bt, w, x, y);
        assert_int_equal(t, w < 3 ? BPTT : 1);
        assert_int_equal(lp_ptb_batcher_offset(&bt, w), (size_t)w * BPTT);
        for (int b = 0; b < B; b++) {
            /* stream b is the contiguous block ids[b*L .. b*L+L) */
            assert_int_equal(x[b * t], b * L + w * BPTT);
            /* contiguous across windows: this window starts right after the previous one's last input */
            if (w > 0) assert_int_equal(x[b * t], last_x[b] + 1);
            for (int k = 0; k < t; k++) {
                assert_int_equal(y[b * t + k], x[b * t + k] + 1); /* targets = inputs shifted by one */
                if (k + 1 < t) assert_int_equal(x[b * t + k + 1], y[b * t + k]);
                seen[y[b * t + k]]++;
            }
            last_x[b] = x[b * t + t - 1];
        }
    }
    /* Every target of every stream exactly once: tokens 1..L-1 of each stream, not the dropped tail. */
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], (i < B * L && i % L != 0) ? 1 : 0);

    /* drop_last: only the three full windows. */
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, N, B, BPTT, 1), LP_OK);
    assert_int_equal(bt.windows, 3);
    assert_int_equal(lp_ptb_batcher_targets(&bt), B * 3 * BPTT);
    assert_int_equal(lp_ptb_batcher_window(&bt, 2, x, y), BPTT);
    /* Exactly divisible: no short window either way. */
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, 3 * 16, 3, 5, 0), LP_OK); /* L 16: 15 targets */
    assert_int_equal(bt.windows, 3);
    assert_int_equal(lp_ptb_batcher_window(&bt, 2, x, y), 5);

    /* Errors. */
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, N, 0, BPTT, 0), LP_ERR_ARG);
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, N, B, 0, 0), LP_ERR_ARG);
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, 5, 3, 4, 0), LP_ERR_ARG); /* L 1: nothing to predict */
    assert_non_null(strstr(lp_last_error(), "5 tokens in 3 streams give 1 tokens per stream"));
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, 6, 3, 1, 0), LP_OK);      /* L 2: one step */
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, 12, 3, 4, 1), LP_ERR_ARG); /* L 4: 3 < bptt */
    assert_int_equal(lp_ptb_batcher_init(&bt, ids, 12, 3, 4, 0), LP_OK);
    assert_int_equal(bt.windows, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_corpus),
        cmocka_unit_test(test_vocab_order_ties_and_cap),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_batching_streams_and_windows),
    };
    return cmocka_run_group_tests(tests, setup_dir, lp_test_scratch_teardown);
}

/* markov_corpus: see markov_corpus.h. */
#include "tests/common/markov_corpus.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/rng.h"

char *lp_test_markov_text(int sentences, uint64_t seed, size_t *len_out) {
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_TEST);
    size_t cap = (size_t)sentences * 12 * 5 + 1, len = 0;
    char *text = lp_malloc(cap, 1);
    assert_non_null(text);
    for (int s = 0; s < sentences; s++) {
        int n = 4 + (int)lp_rng_below(&r, 8), w = (int)lp_rng_below(&r, 30);
        for (int i = 0; i < n; i++) {
            len += (size_t)snprintf(text + len, cap - len, i ? " w%d" : "w%d", w);
            w = lp_rng_uniform(&r) < 0.8 ? (7 * w + 3) % 30 : (int)lp_rng_below(&r, 30);
        }
        text[len++] = '\n';
    }
    *len_out = len;
    return text;
}

static void write_split(const char *dir, const char *name, int sentences, uint64_t seed) {
    size_t len;
    char *text = lp_test_markov_text(sentences, seed, &len);
    char path[512];
    snprintf(path, sizeof path, "%s/ptb.%s.txt", dir, name);
    assert_int_equal(lp_file_write_all(path, text, len), LP_OK);
    lp_free(text);
}

void lp_test_markov_write_ptb(const char *dir, int train_sentences, uint64_t seed) {
    write_split(dir, "train", train_sentences, seed);
    write_split(dir, "valid", 60, seed + 1);
    write_split(dir, "test", 60, seed + 2);
}

/* markov_corpus: the tiny corpus in Penn Treebank layout that the language-model tests train on.
 *
 * 30 words w0..w29; each line is a sentence of 4..11 words from a Markov chain that mostly (p = 0.8)
 * follows w -> (7w + 3) mod 30 and otherwise jumps to a uniformly drawn word, so a small LSTM learns
 * something within an epoch or two, and the same seed gives the same text. */
#ifndef LP_TEST_MARKOV_CORPUS_H
#define LP_TEST_MARKOV_CORPUS_H
#include <stddef.h>
#include <stdint.h>

/* `sentences` lines of the chain's text (lp_free it); *len_out is its length in bytes. */
char *lp_test_markov_text(int sentences, uint64_t seed, size_t *len_out);

/* Write <dir>/ptb.train.txt (train_sentences lines from `seed`), ptb.valid.txt and ptb.test.txt (60
 * lines each, from seed + 1 and seed + 2): a corpus lm/ptb.h loads. */
void lp_test_markov_write_ptb(const char *dir, int train_sentences, uint64_t seed);

#endif

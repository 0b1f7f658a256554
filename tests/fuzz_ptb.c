/* fuzz_ptb: libFuzzer target for the Penn Treebank reader (lm/ptb.h): the vocabulary built from a text
 * file, the token ids of the same file and the BPTT windows over them. The first byte sets max_words
 * (0 = every word, else 2 + byte % 32); the rest is the file.
 *
 * A bug: a crash, leak or sanitizer report, or a result that breaks the header's contract: a word whose
 * id does not map back to it, counts not in descending order, `<unk>`/`<eos>` missing, an id outside
 * the vocabulary, out-of-vocabulary words when every word was kept, fewer ids than `<eos>` tokens, a
 * window reading outside the stream. Refusals (NUL bytes, invalid UTF-8, empty file) are fine.
 * Run with `make fuzz`; seeds in tests/fuzz/ptb/ (docs/FUZZING.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "lm/ptb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_ptb_%d.txt", (int)getpid());
    if (size < 1) return 0;
    int max_words = data[0] ? 2 + data[0] % 32 : 0;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    lp_ptb_vocab v;
    if (lp_ptb_vocab_build(&v, path, max_words) != LP_OK) goto out;
    if (v.size < 2 || (max_words && v.size > max_words) || v.unk < 0 || v.unk >= v.size || v.eos < 0 ||
        v.eos >= v.size || strcmp(lp_ptb_vocab_word(&v, v.unk), LP_PTB_UNK) || strcmp(lp_ptb_vocab_word(&v, v.eos), LP_PTB_EOS))
        abort();
    for (int i = 0; i < v.size; i++) {
        if (lp_ptb_vocab_id(&v, lp_ptb_vocab_word(&v, i)) != i) abort();
        if (i > 0 && v.counts[i] > v.counts[i - 1] && i != v.unk) abort();
    }
    int32_t *ids;
    size_t n, oov, eos = 0;
    if (lp_ptb_tokens_load(&v, path, &ids, &n, &oov) == LP_OK) {
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= v.size) abort();
            eos += ids[i] == v.eos;
        }
        if ((!max_words && oov) || eos == 0 || eos != (size_t)v.counts[v.eos]) abort();
        lp_ptb_batcher bt;
        int32_t x[2 * 3], y[2 * 3];
        if (lp_ptb_batcher_init(&bt, ids, n, 2, 3, 0) == LP_OK)
            for (int w = 0; w < bt.windows; w++) {
                int t = lp_ptb_batcher_window(&bt, w, x, y);
                if (t < 1 || t > 3) abort();
            }
        lp_free(ids);
    }
out:
    lp_ptb_vocab_free(&v);
    unlink(path);
    return 0;
}

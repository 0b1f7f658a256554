/* char_lstm: a character-level LSTM language model built from the primitive ops of the tape, trained
 * with Adam on a short text, then asked to write one line.
 *
 * What it teaches: a whole training loop in one page — the graph written step by step from primitive
 * ops (autograd derives BPTT by itself), the loss falling from ln V (a uniform guess over the V
 * characters) as the model learns the text, and sampling from the trained model. The model, for a
 * window of T characters x_1..x_T and its targets x_2..x_{T+1}, B windows at once:
 *
 *     e_t      = E[x_t]                               E [V,D]    lp_op_embedding (lm/lm_ops.h)  [B,D]
 *     h_t, c_t = LSTM(e_t, h_{t-1}, c_{t-1})                     lp_lstm_cell_step               [B,H]
 *                (layers/lstm_cell.h: a = e W_ihᵀ + h W_hhᵀ + b, gates i, f, g, o, c = f⊙c + i⊙g,
 *                 h = o⊙tanh c — about 15 primitive ops per step; docs/METHOD.md "LSTM forward")
 *     z_t      = h_t W_outᵀ + b_out                   W_out [V,H] lp_op_matmul, lp_op_bias_add     [B,V]
 *     loss_t   = mean_b −log softmax(z_t)[x_{t+1}]               lp_op_softmax_xent (lm/lm_ops.h)
 *
 * The objective differentiated is Σ_t loss_t (as the project's word-level LM: Zaremba's convention);
 * the printed loss is its mean per character, loss = Σ_t loss_t / T. Each window starts from h = c = 0.
 *
 * The text is the Gettysburg Address (examples/data/gettysburg.txt; Abraham Lincoln, 1863, the Bliss
 * copy, public domain), or the first MAX_CHARS characters of any file given, e.g. Penn Treebank:
 *     build/examples/char_lstm ../shared/data/ptb/ptb.train.txt
 * Every random number comes from core/rng.h with a fixed seed (one stream each for the weights, the
 * windows and the sample), so a run prints the same on the same machine and BLAS kernels.
 *
 * Build and run, from the repository root after `make`:
 *     make examples && build/examples/char_lstm [TEXT [STEPS]]
 * or by hand:
 *     cc -std=c11 -O2 examples/char_lstm.c $(pkg-config --cflags --libs build/lstmprune.pc) -o char_lstm */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ops.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/tape.h"
#include "layers/lstm.h"
#include "layers/lstm_cell.h"
#include "lm/lm_ops.h"
#include "optim/optim.h"

enum { MAX_CHARS = 20000, D = 16, H = 64, B = 16, T = 32, STEPS = 300, LOG_EVERY = 25, SAMPLE_LEN = 100 };
static const float LR = 0.01f, CLIP = 5.0f, TEMPERATURE = 0.7f;
static const uint64_t SEED = 1;

typedef struct {
    lp_tensor *emb, *out_w, *out_b;
    lp_lstm_weights lstm;
} model;

static int fail(void) {
    fprintf(stderr, "char_lstm: %s\n", lp_last_error());
    return 1;
}

/* Read at most MAX_CHARS bytes of path into text (a static buffer); the length, or -1. */
static long read_text(const char *path, unsigned char *text) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lp_errorf(LP_ERR_IO, "cannot open %s (run from the repository root, or give the text's path)", path);
        return -1;
    }
    size_t n = fread(text, 1, MAX_CHARS, f);
    fclose(f);
    if (n < T + 2) {
        lp_errorf(LP_ERR_FORMAT, "%s: %zu characters, at least %d needed", path, n, T + 2);
        return -1;
    }
    return (long)n;
}

/* The loss of B windows starting at off[b]; ids [B,T] are the window's characters, tgt [T][B] the next
 * ones (the softmax op wants the targets of one step contiguous). Returns Σ_t loss_t, or NULL. */
static lp_tensor *forward(lp_tape *tp, const model *m, const int32_t *ids, const int32_t *tgt) {
    lp_tensor *e = lp_op_embedding(tp, m->emb, ids, B, T); // [B,T,D]
    lp_tensor *h = lp_tape_tensor(tp, 2, (const int[]){B, H}, 0), *c = lp_tape_tensor(tp, 2, (const int[]){B, H}, 0);
    if (!e || !h || !c) return NULL;
    for (size_t k = 0; k < (size_t)B * H; k++) h->data[k] = c->data[k] = 0.0f;
    lp_tensor *total = NULL;
    for (int t = 0; t < T; t++) {
        lp_tensor *hn, *cn;
        if (lp_lstm_cell_step(tp, lp_op_slice_t(tp, e, t), h, c, &m->lstm, &hn, &cn) != LP_OK) return NULL;
        h = hn, c = cn;
        lp_tensor *z = lp_op_bias_add(tp, lp_op_matmul(tp, h, m->out_w, 0, 1), m->out_b); // [B,V]
        lp_tensor *loss_t = lp_op_softmax_xent(tp, z, tgt + (size_t)t * B);
        total = total ? lp_op_add(tp, total, loss_t) : loss_t;
    }
    return total;
}

/* Feed one character through the trained model without gradients: updates h, c [1,H] (caller memory)
 * and writes the next character's probabilities p [V] at the given temperature. */
static lp_status next_probs(lp_tape *tp, const model *m, int32_t ch, float *h, float *c, int V, double *p) {
    lp_tape_reset(tp);
    lp_tensor *e = lp_op_slice_t(tp, lp_op_embedding(tp, m->emb, &ch, 1, 1), 0);
    lp_tensor *th = lp_tape_view(tp, h, NULL, 2, (const int[]){1, H}), *tc = lp_tape_view(tp, c, NULL, 2, (const int[]){1, H});
    lp_tensor *hn, *cn;
    LP_TRY(lp_lstm_cell_step(tp, e, th, tc, &m->lstm, &hn, &cn));
    lp_tensor *z = lp_op_bias_add(tp, lp_op_matmul(tp, hn, m->out_w, 0, 1), m->out_b);
    if (!z) return LP_ERR_NOMEM;
    for (int j = 0; j < H; j++) h[j] = hn->data[j], c[j] = cn->data[j];
    double zmax = z->data[0], sum = 0;
    for (int v = 1; v < V; v++) zmax = fmax(zmax, z->data[v]);
    for (int v = 0; v < V; v++) sum += p[v] = exp((z->data[v] - zmax) / TEMPERATURE);
    for (int v = 0; v < V; v++) p[v] /= sum;
    return LP_OK;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "examples/data/gettysburg.txt";
    const long steps = argc > 2 ? strtol(argv[2], NULL, 10) : STEPS;
    if (steps < 1) {
        fprintf(stderr, "usage: char_lstm [TEXT [STEPS]]  (STEPS >= 1)\n");
        return 2;
    }
    static unsigned char text[MAX_CHARS];
    const long n = read_text(path, text);
    if (n < 0) return fail();

    // The vocabulary: the distinct bytes of the text, in byte order; id[byte] is a character's index.
    int id[256], V = 0;
    unsigned char chars[256];
    for (int k = 0; k < 256; k++) id[k] = -1;
    for (long k = 0; k < n; k++) id[text[k]] = 0;
    for (int k = 0; k < 256; k++)
        if (id[k] == 0) chars[V] = (unsigned char)k, id[k] = V++;

    // Parameters: one contiguous block (core/params.h), so Adam is one loop over it.
    lp_params ps;
    lp_params_init(&ps);
    if (lp_params_declare(&ps, "emb", 2, (const int[]){V, D}) < 0 || lp_lstm_declare(&ps, "lstm", H, D) != 0 ||
        lp_params_declare(&ps, "out.w", 2, (const int[]){V, H}) < 0 ||
        lp_params_declare(&ps, "out.b", 1, (const int[]){V}) < 0 || lp_params_finalize(&ps) != LP_OK)
        return fail();
    model m = {lp_params_find(&ps, "emb"), lp_params_find(&ps, "out.w"), lp_params_find(&ps, "out.b"),
               lp_lstm_find(&ps, "lstm")};
    lp_rng init, windows, sampler;
    lp_rng_init(&init, SEED, LP_RNG_STREAM_INIT);
    lp_rng_init(&windows, SEED, LP_RNG_STREAM_SHUFFLE);
    lp_rng_init(&sampler, SEED, LP_RNG_STREAM_SYNTH);
    const float bound = 1.0f / sqrtf((float)H); // PyTorch's nn.LSTM and nn.Linear initialisation
    lp_tensor_fill_uniform(m.emb, 1.0f, &init);
    lp_tensor_fill_uniform(m.lstm.w_ih, bound, &init);
    lp_tensor_fill_uniform(m.lstm.w_hh, bound, &init);
    lp_tensor_fill_uniform(m.lstm.b, bound, &init);
    lp_tensor_fill_uniform(m.out_w, bound, &init);
    lp_tensor_fill_uniform(m.out_b, bound, &init);

    lp_optim opt;
    const lp_optim_config oc = lp_optim_defaults(LP_OPTIM_ADAM);
    lp_tape tape;
    if (lp_optim_init(&opt, ps.numel, &oc) != LP_OK || lp_tape_init(&tape, 1 << 24) != LP_OK) return fail();

    printf("text: %s, %ld characters, vocabulary V = %d (ln V = %.4f: the loss of a uniform guess)\n", path, n, V,
           log(V));
    printf("model: embedding %d, LSTM %d units from primitive ops, output %d; %zu parameters\n", D, H, V, ps.numel);
    printf("training: %ld steps of Adam (lr %g, gradient norm clipped at %g), %d windows of %d characters each\n",
           steps, LR, CLIP, B, T);
    int32_t ids[B * T], tgt[T * B];
    double sum = 0;
    for (long step = 1; step <= steps; step++) {
        for (int bi = 0; bi < B; bi++) { // a random window of T + 1 characters
            const long off = (long)lp_rng_below(&windows, (uint32_t)(n - T));
            for (int t = 0; t < T; t++) {
                ids[bi * T + t] = id[text[off + t]];
                tgt[t * B + bi] = id[text[off + t + 1]];
            }
        }
        lp_tape_reset(&tape);
        lp_tensor *objective = forward(&tape, &m, ids, tgt);
        lp_params_zero_grad(&ps);
        double norm;
        if (lp_tape_backward(&tape, objective) != LP_OK ||
            lp_optim_clip_grad_norm(ps.grad, ps.numel, CLIP, &norm) != LP_OK ||
            lp_optim_step(&opt, ps.data, ps.grad, LR) != LP_OK)
            return fail();
        const double loss = objective->data[0] / T;
        sum += loss;
        if (step == 1) printf("step %4ld  loss %.4f  (the first batch, before any update)\n", step, loss);
        if (step % LOG_EVERY == 0 || step == steps) {
            const long from = step - (step % LOG_EVERY ? step % LOG_EVERY : LOG_EVERY) + 1;
            printf("step %4ld  loss %.4f  (mean over steps %ld-%ld)\n", step, sum / (double)(step - from + 1), from,
                   step);
            sum = 0;
        }
    }

    // Sampling: prime the state with the text's first characters, then draw each next character from
    // softmax(z / temperature) and feed it back.
    lp_tape_set_grad(&tape, 0);
    float h[H] = {0}, c[H] = {0};
    double p[256];
    const int prime = 4;
    printf("sample (temperature %g, primed with \"%.*s\"): %.*s", TEMPERATURE, prime, (const char *)text, prime,
           (const char *)text);
    int32_t ch = id[text[0]];
    for (int k = 0; k < prime + SAMPLE_LEN - 1; k++) {
        if (next_probs(&tape, &m, ch, h, c, V, p) != LP_OK) return fail();
        if (k + 1 < prime) { // still reading the prime
            ch = id[text[k + 1]];
            continue;
        }
        double u = lp_rng_uniform(&sampler), acc = 0;
        ch = V - 1;
        for (int v = 0; v < V; v++)
            if ((acc += p[v]) > u) {
                ch = v;
                break;
            }
        putchar(chars[ch] == '\n' ? ' ' : chars[ch]); // one line
    }
    putchar('\n');
    lp_tape_free(&tape);
    lp_optim_free(&opt);
    lp_params_free(&ps);
    return 0;
}

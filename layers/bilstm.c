/* bilstm: see bilstm.h. Both directions are one fused tape op (`bilstm`) so that forward and
 * backward can run the two directions at the same time ("Threads" in bilstm.h); the per-direction
 * work is the sequence code of layers/lstm (the kernels the `lstm` op runs, in the same order per
 * direction). The concatenation is an ordinary lp_op_concat after the op. */
#include "layers/bilstm.h"

#include <cblas.h>
#include <string.h>

#include "core/ops.h"
#include "core/par.h"
#include "core/status.h"

enum { DIR_FW = 0, DIR_BW = 1 };

/* One direction: its weights, outputs and saved state. */
typedef struct {
    lp_tensor *w_ih, *w_hh, *b;
    lp_lstm_out o;         /* h_seq [B,T,H], h_last, c_last [B,H] */
    int H, reverse;
    float *gates;          /* [B,T,4H]: x·W_ih^T, then the activated gates, then (backward) dG */
    float *cs;             /* [B,T,H] c_t, saved for backward (NULL in inference) */
    float *dh, *dc, *work; /* backward scratch: [B,H], [B,H], [B,5H] */
} dir_state;

/* How the two directions share OpenBLAS's n threads (see plan() and bilstm.h, "Threads"). */
typedef enum {
    PLAN_SEQUENTIAL, /* one direction after the other, as two `lstm` nodes */
    PLAN_WHOLE,      /* n = 2: each direction's whole sequence in its own single-threaded stream */
    PLAN_RECURRENCE, /* n > 2: the recurrences at once on n/2 threads each, the big GEMMs in turn on n */
} plan_kind;

typedef struct {
    int B, T, F;
    int *lengths;    /* [B] copy, or NULL */
    lp_tensor *x;
    dir_state d[2];  /* DIR_FW, DIR_BW */
    plan_kind plan;  /* of the pass that is running (forward and backward each decide) */
    int parts[2];    /* row split of each direction's recurrence, for PLAN_RECURRENCE */
    int used;        /* backward ran (the gates now hold dG) */
} bilstm_ctx;

/* The plan for n = OpenBLAS's thread count; sets k->plan and k->parts.
 * n = 2: two single-threaded streams that meet once per pass replace every multi-threaded GEMM of the
 * layer, the per-step ones included (whose row split packs W_hh once per part and step).
 * n > 2: one single-threaded GEMM per direction would leave cores idle in the big GEMMs, so only the
 * recurrences run at once, the forward direction on ceil(n/2) threads and the reverse one on
 * floor(n/2), each splitting its batch rows over its share as layers/lstm.h ("Threads") describes; if
 * a direction cannot use its share (in fp32 a per-step product too large for a row split, which
 * layers/lstm leaves to OpenBLAS's own threads, or fewer rows than threads), the sequential order keeps every core
 * busy instead. */
static void plan(bilstm_ctx *k, int n) {
    k->plan = n == 2 ? PLAN_WHOLE : n > 2 ? PLAN_RECURRENCE : PLAN_SEQUENTIAL;
    k->parts[DIR_FW] = k->parts[DIR_BW] = 1;
    if (k->plan != PLAN_RECURRENCE) return;
    const int share[2] = {(n + 1) / 2, n / 2};
    for (int d = 0; d < 2; d++) {
        k->parts[d] = lp_lstm_recur_parts(k->B, k->d[d].H, share[d]);
        if (k->parts[d] < share[d]) k->plan = PLAN_SEQUENTIAL;
    }
}

typedef struct {
    bilstm_ctx *k;
    int dir;
} dir_job;

/* One direction's forward (in its own thread for the concurrent plans). */
static void *dir_forward(void *arg) {
    const dir_job *j = arg;
    bilstm_ctx *k = j->k;
    dir_state *d = &k->d[j->dir];
    if (k->plan == PLAN_WHOLE) lp_lstm_input_proj(d->gates, k->x->data, d->w_ih->data, k->B * k->T, k->F, d->H);
    lp_lstm_recur_forward(d->o.h_seq->data, d->o.h_last->data, d->o.c_last->data, d->gates, d->cs, d->w_hh->data,
                          d->b ? d->b->data : NULL, k->lengths, d->reverse, k->B, k->T, d->H, k->parts[j->dir]);
    return NULL;
}

/* The weight gradients of one direction (dX when `dx`, else the parameters), accumulated. */
static void dir_weight_grads(bilstm_ctx *k, int dir, int dx) {
    dir_state *d = &k->d[dir];
    if (dx)
        lp_lstm_weight_backward(k->x->grad, NULL, NULL, NULL, NULL, d->gates, k->x->data, d->o.h_seq->data, NULL,
                                d->w_ih->data, k->lengths, d->reverse, k->B, k->T, k->F, d->H);
    else
        lp_lstm_weight_backward(NULL, d->w_ih->grad, d->w_hh->grad, d->b ? d->b->grad : NULL, d->work, d->gates,
                                k->x->data, d->o.h_seq->data, NULL, d->w_ih->data, k->lengths, d->reverse, k->B, k->T,
                                k->F, d->H);
}

/* One direction's backward for the concurrent plans: BPTT (dG into its gates), and with PLAN_WHOLE its
 * parameter gradients. dX is left to the caller: both directions add into it. */
static void *dir_backward(void *arg) {
    const dir_job *j = arg;
    bilstm_ctx *k = j->k;
    dir_state *d = &k->d[j->dir];
    lp_lstm_recur_backward(d->gates, d->dh, d->dc, d->o.h_seq->grad, d->cs, NULL, d->w_hh->data, k->lengths,
                           d->reverse, k->B, k->T, d->H, k->parts[j->dir]);
    if (k->plan == PLAN_WHOLE) dir_weight_grads(k, j->dir, 0);
    return NULL;
}

/* fn on both directions at once: the reverse one in a new thread, the forward one in this thread,
 * OpenBLAS set to one thread meanwhile (restored after). The two write disjoint buffers. */
static void run_both(void *(*fn)(void *), bilstm_ctx *k) {
    dir_job jobs[2] = {{k, DIR_FW}, {k, DIR_BW}};
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    lp_par_run(fn, jobs, sizeof jobs[0], 2); /* jobs[DIR_FW] here, jobs[DIR_BW] in a new thread */
    openblas_set_num_threads(saved);
}

static void bilstm_backward(lp_node *node) {
    bilstm_ctx *k = node->ctx;
    LP_CHECK(!k->used); /* the saved gates were consumed by a previous backward */
    k->used = 1;
    lp_tensor *x = k->x;
    for (int i = 0; i < 2; i++) {
        dir_state *d = &k->d[i];
        size_t nBH = (size_t)k->B * d->H;
        memcpy(d->dh, d->o.h_last->grad, nBH * sizeof *d->dh);
        memcpy(d->dc, d->o.c_last->grad, nBH * sizeof *d->dc);
    }
    /* Every gradient GEMM of one direction comes after its BPTT, reverse direction first: the order in
     * which the tape ran the two `lstm` nodes of the former composition, so dX (both directions add
     * into it) is summed in the same order whatever the plan. */
    plan(k, openblas_get_num_threads());
    if (k->plan == PLAN_SEQUENTIAL) {
        for (int i = DIR_BW; i >= DIR_FW; i--) {
            dir_state *d = &k->d[i];
            lp_lstm_backward_seq(x->grad, d->w_ih->grad, d->w_hh->grad, d->b ? d->b->grad : NULL, d->dh, d->dc,
                                 d->gates, d->work, d->o.h_seq->grad, x->data, d->o.h_seq->data, d->cs, NULL, NULL,
                                 d->w_ih->data, d->w_hh->data, k->lengths, d->reverse, k->B, k->T, k->F, d->H);
        }
        return;
    }
    run_both(dir_backward, k);
    for (int i = DIR_BW; i >= DIR_FW; i--) { /* the GEMMs left: all of OpenBLAS's threads, one at a time */
        if (k->plan == PLAN_RECURRENCE) dir_weight_grads(k, i, 0);
        if (x->grad) dir_weight_grads(k, i, 1);
    }
    /* the initial states are zeros, not inputs: their gradients (left in dh, dc) go nowhere */
}

static const lp_op_desc bilstm_op = {"bilstm", bilstm_backward};

/* Shapes of one direction's weights against x [B,T,F] (w_ih [4H,F], w_hh [4H,H], b [4H]); returns H. */
static int check_dir(const lp_lstm_weights *w, int F) {
    LP_CHECK(w->w_ih->ndim == 2 && w->w_hh->ndim == 2);
    const int H = w->w_hh->dims[1];
    LP_CHECK(H > 0 && w->w_ih->dims[0] == 4 * H && w->w_ih->dims[1] == F && w->w_hh->dims[0] == 4 * H);
    LP_CHECK(!w->b || (w->b->ndim == 1 && w->b->dims[0] == 4 * H));
    return H;
}

lp_bilstm_out lp_bilstm(lp_tape *tp, lp_tensor *x, const lp_lstm_weights *fw, const lp_lstm_weights *bw,
                        const int *lengths) {
    lp_bilstm_out r;
    memset(&r, 0, sizeof r);
    if (!x || !fw->w_ih || !fw->w_hh || !bw->w_ih || !bw->w_hh) return r;
    LP_CHECK(x->ndim == 3);
    const int B = x->dims[0], T = x->dims[1], F = x->dims[2];
    LP_CHECK(B > 0 && T > 0);
    const int H[2] = {check_dir(fw, F), check_dir(bw, F)};
    if (lengths)
        for (int i = 0; i < B; i++)
            if (lengths[i] < 0 || lengths[i] > T) {
                lp_errorf(LP_ERR_ARG, "bilstm: length %d of sequence %d is outside [0, %d]", lengths[i], i, T);
                return r;
            }

    lp_tensor *in[7] = {x, fw->w_ih, fw->w_hh, fw->b, bw->w_ih, bw->w_hh, bw->b};
    const int need = lp_tape_wants_grad(tp, in, 7);
    bilstm_ctx *k = lp_tape_alloc(tp, 1, sizeof *k);
    if (!k) return r;
    memset(k, 0, sizeof *k);
    k->B = B, k->T = T, k->F = F, k->x = x;
    for (int i = 0; i < 2; i++) {
        const lp_lstm_weights *w = i == DIR_FW ? fw : bw;
        dir_state *d = &k->d[i];
        const size_t nBH = (size_t)B * H[i], nBTH = (size_t)B * T * H[i];
        d->w_ih = w->w_ih, d->w_hh = w->w_hh, d->b = w->b;
        d->H = H[i], d->reverse = i == DIR_BW;
        d->o.h_seq = lp_tape_tensor(tp, 3, (int[]){B, T, H[i]}, need);
        d->o.h_last = lp_tape_tensor(tp, 2, (int[]){B, H[i]}, need);
        d->o.c_last = lp_tape_tensor(tp, 2, (int[]){B, H[i]}, need);
        d->gates = lp_tape_alloc(tp, nBTH * 4, sizeof(float));
        if (!d->o.h_seq || !d->o.h_last || !d->o.c_last || !d->gates) return r;
        if (need) {
            d->cs = lp_tape_alloc(tp, nBTH, sizeof(float));
            d->dh = lp_tape_alloc(tp, nBH, sizeof(float));
            d->dc = lp_tape_alloc(tp, nBH, sizeof(float));
            d->work = lp_tape_alloc(tp, 5 * nBH, sizeof(float));
            if (!d->cs || !d->dh || !d->dc || !d->work) return r;
        }
        /* h_last/c_last are the running state, starting from zeros */
        memset(d->o.h_last->data, 0, nBH * sizeof(float));
        memset(d->o.c_last->data, 0, nBH * sizeof(float));
    }
    if (lengths) {
        k->lengths = lp_tape_alloc(tp, (size_t)B, sizeof(int));
        if (!k->lengths) return r;
        memcpy(k->lengths, lengths, (size_t)B * sizeof(int));
    }

    plan(k, openblas_get_num_threads());
    if (k->plan == PLAN_SEQUENTIAL) { /* as two `lstm` ops would */
        for (int i = DIR_FW; i <= DIR_BW; i++) {
            dir_state *d = &k->d[i];
            lp_lstm_forward_seq(d->o.h_seq->data, d->o.h_last->data, d->o.c_last->data, d->gates, d->cs, x->data,
                                d->w_ih->data, d->w_hh->data, d->b ? d->b->data : NULL, k->lengths, d->reverse, B,
                                T, F, d->H);
        }
    } else {
        if (k->plan == PLAN_RECURRENCE) /* big GEMMs: all of OpenBLAS's threads, one at a time */
            for (int i = DIR_FW; i <= DIR_BW; i++)
                lp_lstm_input_proj(k->d[i].gates, x->data, k->d[i].w_ih->data, B * T, F, k->d[i].H);
        run_both(dir_forward, k);
    }

    if (need) {
        /* A node lists at most LP_NODE_MAX_OUT outputs: it names the two sequences; the backward reaches
         * all six outputs (and their grads) through the context. */
        lp_tensor *outs[2] = {k->d[DIR_FW].o.h_seq, k->d[DIR_BW].o.h_seq};
        lp_node *node = lp_tape_record(tp, &bilstm_op, in, 7, outs, 2);
        if (!node) return r;
        node->ctx = k;
    }
    lp_tensor *both[2] = {k->d[DIR_FW].o.h_seq, k->d[DIR_BW].o.h_seq};
    r.out = lp_op_concat(tp, both, 2); // [B,T,Hf] ++ [B,T,Hb] -> [B,T,Hf+Hb]
    if (!r.out) return r;
    r.fw = k->d[DIR_FW].o;
    r.bw = k->d[DIR_BW].o;
    return r;
}

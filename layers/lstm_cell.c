/* lstm_cell: the LSTM from primitive ops, see lstm_cell.h and docs/METHOD.md ("LSTM forward"). */
#include "layers/lstm_cell.h"


#include "core/ops.h"

lp_status lp_lstm_cell_step(lp_tape *tp, lp_tensor *x_t, lp_tensor *h, lp_tensor *c, const lp_lstm_weights *w,
                            lp_tensor **h_new, lp_tensor **c_new) {
    *h_new = *c_new = NULL;
    if (!x_t || !h || !c || !w->w_ih || !w->w_hh) return LP_ERR_ARG;
    const int H = w->w_hh->dims[1];
    // pre [B,4H] = x_t [B,F]·W_ih^T + h [B,H]·W_hh^T + b
    lp_tensor *pre = lp_op_add(tp, lp_op_matmul(tp, x_t, w->w_ih, 0, 1), lp_op_matmul(tp, h, w->w_hh, 0, 1));
    if (w->b) pre = lp_op_bias_add(tp, pre, w->b);
    lp_tensor *gate[4];
    lp_status st = lp_op_split(tp, pre, 4, (const int[]){H, H, H, H}, gate);
    if (st != LP_OK) return st;
    lp_tensor *i = lp_op_sigmoid(tp, gate[0]);
    lp_tensor *f = lp_op_sigmoid(tp, gate[1]);
    lp_tensor *g = lp_op_tanh(tp, gate[2]);
    lp_tensor *o = lp_op_sigmoid(tp, gate[3]);
    lp_tensor *cn = lp_op_add(tp, lp_op_mul(tp, f, c), lp_op_mul(tp, i, g)); // c' = f⊙c + i⊙g
    lp_tensor *hn = lp_op_mul(tp, o, lp_op_tanh(tp, cn));                     // h' = o⊙tanh(c')
    if (!cn || !hn) return LP_ERR_NOMEM;
    *h_new = hn;
    *c_new = cn;
    return LP_OK;
}

/* A constant [B,H] tensor (no gradient) filled with `v`. */
static lp_tensor *constant(lp_tape *tp, int B, int H, float v) {
    lp_tensor *t = lp_tape_tensor(tp, 2, (const int[]){B, H}, 0);
    if (t)
        for (size_t k = 0; k < (size_t)B * H; k++) t->data[k] = v;
    return t;
}

/* Stack n tensors [B,H] along time into [B,T,H]: concatenating along the feature axis gives
 * [B, T*H], which has exactly the memory layout of [B,T,H]; concat takes at most LP_NODE_MAX_IN
 * inputs, so it is applied as a tree. The result is a reshaped view sharing data and grad. */
static lp_tensor *stack_time(lp_tape *tp, lp_tensor **ys, int n) {
    const int B = ys[0]->dims[0], H = ys[0]->dims[1];
    int count = n;
    while (count > 1) {
        int m = 0;
        for (int k = 0; k < count; k += LP_NODE_MAX_IN) {
            int len = count - k < LP_NODE_MAX_IN ? count - k : LP_NODE_MAX_IN;
            ys[m++] = len == 1 ? ys[k] : lp_op_concat(tp, ys + k, len);
            if (!ys[m - 1]) return NULL;
        }
        count = m;
    }
    lp_tensor *v = lp_tape_alloc(tp, 1, sizeof *v);
    if (!v) return NULL;
    *v = *ys[0];
    v->ndim = 3;
    v->dims[0] = B, v->dims[1] = n, v->dims[2] = H;
    return v;
}

lp_lstm_out lp_lstm_cell_seq(lp_tape *tp, lp_tensor *x, const lp_lstm_weights *w, lp_tensor *h0, lp_tensor *c0,
                             const int *lengths, int reverse) {
    lp_lstm_out out = {NULL, NULL, NULL};
    if (!x || !w->w_ih || !w->w_hh) return out;
    LP_CHECK(x->ndim == 3);
    const int B = x->dims[0], T = x->dims[1], H = w->w_hh->dims[1];
    if (lengths)
        for (int b = 0; b < B; b++)
            if (lengths[b] < 0 || lengths[b] > T) {
                lp_errorf(LP_ERR_ARG, "lstm_cell: length %d of sequence %d is outside [0, %d]", lengths[b], b, T);
                return out;
            }
    lp_tensor *h = h0 ? h0 : constant(tp, B, H, 0.0f);
    lp_tensor *c = c0 ? c0 : constant(tp, B, H, 0.0f);
    lp_tensor **ys = lp_tape_alloc(tp, (size_t)T, sizeof *ys);
    if (!h || !c || !ys) return out;
    for (int s = 0; s < T; s++) {
        const int t = reverse ? T - 1 - s : s;
        lp_tensor *hn, *cn;
        if (lp_lstm_cell_step(tp, lp_op_slice_t(tp, x, t), h, c, w, &hn, &cn) != LP_OK) return out;
        int n_valid = B;
        if (lengths) {
            n_valid = 0;
            for (int b = 0; b < B; b++) n_valid += t < lengths[b];
        }
        if (n_valid == B) { /* every row advances: no mask needed */
            h = hn, c = cn, ys[t] = hn;
            continue;
        }
        lp_tensor *m = constant(tp, B, H, 0.0f), *keep = constant(tp, B, H, 0.0f);
        if (!m || !keep) return out;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++) {
                m->data[(size_t)b * H + j] = t < lengths[b] ? 1.0f : 0.0f;
                keep->data[(size_t)b * H + j] = t < lengths[b] ? 0.0f : 1.0f;
            }
        ys[t] = lp_op_mul(tp, m, hn);                       // output: h' on valid rows, 0 on padding
        h = lp_op_add(tp, ys[t], lp_op_mul(tp, keep, h));   // state: advances only on valid rows
        c = lp_op_add(tp, lp_op_mul(tp, m, cn), lp_op_mul(tp, keep, c));
        if (!h || !c) return out;
    }
    out.h_seq = stack_time(tp, ys, T);
    if (!out.h_seq) return out;
    out.h_last = h;
    out.c_last = c;
    return out;
}

/* bilstm: see bilstm.h. */
#include "layers/bilstm.h"

#include <string.h>

#include "core/ops.h"

lp_bilstm_out lp_bilstm(lp_tape *tp, lp_tensor *x, const lp_lstm_weights *fw, const lp_lstm_weights *bw,
                        const int *lengths) {
    lp_bilstm_out r;
    memset(&r, 0, sizeof r);
    lp_lstm_out f = lp_lstm(tp, x, fw->w_ih, fw->w_hh, fw->b, NULL, NULL, lengths, 0);
    lp_lstm_out b = lp_lstm(tp, x, bw->w_ih, bw->w_hh, bw->b, NULL, NULL, lengths, 1);
    if (!f.h_seq || !b.h_seq) return r;
    lp_tensor *both[2] = {f.h_seq, b.h_seq};
    r.out = lp_op_concat(tp, both, 2); // [B,T,Hf] ++ [B,T,Hb] -> [B,T,Hf+Hb]
    if (!r.out) return r;
    r.fw = f;
    r.bw = b;
    return r;
}

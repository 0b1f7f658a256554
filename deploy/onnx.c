/* onnx: checkpoints as ONNX models (see onnx.h and docs/FORMATS.md, "ONNX export").
 *
 * Layout of this file: a small graph builder over the generated protobuf-c structs (every allocation in
 * one arena, freed at once), the LSTM layer as ONNX nodes, the two video heads, the video and language
 * model graphs, and the model wrapper that is packed and written. */
#include "deploy/onnx.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/params.h"
#include "layers/moe.h"
#include "lm/lm.h"
#include "model/model.h"
#include "onnx/onnx.pb-c.h"

/* ---- graph builder ---------------------------------------------------------------------------------- */

#define MAX_NODES 1024
#define MAX_INITS 256
#define MAX_IO 64

typedef struct {
    lp_arena a;
    Onnx__NodeProto *node[MAX_NODES];
    Onnx__TensorProto *init[MAX_INITS];
    Onnx__ValueInfoProto *in[MAX_IO], *out[MAX_IO];
    int n_node, n_init, n_in, n_out;
    size_t params;  /* floats in the initializers */
    int failed;     /* a capacity or allocation failure: reported once, at the end */
    int serial;     /* for fresh value names */
} gb;

static void *gb_alloc(gb *b, size_t n, size_t size) {
    void *p = lp_arena_zalloc(&b->a, n ? n : 1, size);
    if (!p) b->failed = 1;
    return p;
}

static char *gb_strf(gb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = gb_alloc(b, (size_t)n + 1, 1);
    if (!s) return (char *)"";
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A fresh value name "<stem>_<k>". */
static const char *gb_value(gb *b, const char *stem) { return gb_strf(b, "%s_%d", stem, b->serial++); }

/* A node op_type(inputs) -> outputs; "" is an omitted optional input. */
static Onnx__NodeProto *gb_node(gb *b, const char *op, int n_in, const char *const *in, int n_out,
                                const char *const *out) {
    Onnx__NodeProto *n = gb_alloc(b, 1, sizeof *n);
    char **ins = gb_alloc(b, (size_t)n_in, sizeof *ins), **outs = gb_alloc(b, (size_t)n_out, sizeof *outs);
    if (!n || !ins || !outs || b->n_node == MAX_NODES) {
        b->failed = 1;
        static Onnx__NodeProto dummy;
        onnx__node_proto__init(&dummy);
        return &dummy;
    }
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = gb_strf(b, "%s_%d", op, b->n_node);
    for (int k = 0; k < n_in; k++) ins[k] = (char *)in[k];
    for (int k = 0; k < n_out; k++) outs[k] = (char *)out[k];
    n->n_input = (size_t)n_in, n->input = ins;
    n->n_output = (size_t)n_out, n->output = outs;
    b->node[b->n_node++] = n;
    return n;
}

/* One-output node: returns the output's fresh name. */
static const char *gb_op(gb *b, const char *op, int n_in, const char *const *in) {
    const char *y = gb_value(b, op);
    gb_node(b, op, n_in, in, 1, &y);
    return y;
}

static Onnx__AttributeProto *gb_attr(gb *b, Onnx__NodeProto *n, const char *name) {
    Onnx__AttributeProto *a = gb_alloc(b, 1, sizeof *a);
    Onnx__AttributeProto **all = gb_alloc(b, n->n_attribute + 1, sizeof *all);
    if (!a || !all) return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    for (size_t k = 0; k < n->n_attribute; k++) all[k] = n->attribute[k];
    all[n->n_attribute] = a;
    n->attribute = all;
    n->n_attribute++;
    return a;
}

static void attr_int(gb *b, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = gb_attr(b, n, name);
    if (!a) return;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1, a->i = v;
}

static void attr_ints(gb *b, Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    Onnx__AttributeProto *a = gb_attr(b, n, name);
    int64_t *copy = gb_alloc(b, (size_t)count, sizeof *copy);
    if (!a || !copy) return;
    memcpy(copy, v, (size_t)count * sizeof *copy);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)count, a->ints = copy;
}

static void attr_string(gb *b, Onnx__NodeProto *n, const char *name, const char *s) {
    Onnx__AttributeProto *a = gb_attr(b, n, name);
    if (!a) return;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    a->has_s = 1, a->s.data = (uint8_t *)s, a->s.len = strlen(s);
}

/* An initializer `name` of `type` with dims[ndim], its little-endian bytes copied from data. */
static const char *gb_init(gb *b, const char *name, int32_t type, int ndim, const int64_t *dims, const void *data,
                           size_t elem_size) {
    Onnx__TensorProto *t = gb_alloc(b, 1, sizeof *t);
    int64_t *d = gb_alloc(b, (size_t)ndim, sizeof *d);
    size_t n = 1;
    for (int k = 0; k < ndim; k++) n *= (size_t)dims[k];
    uint8_t *raw = gb_alloc(b, n * elem_size, 1);
    if (!t || !d || !raw || b->n_init == MAX_INITS) {
        b->failed = 1;
        return name;
    }
    onnx__tensor_proto__init(t);
    if (ndim > 0) memcpy(d, dims, (size_t)ndim * sizeof *d); /* a scalar has no dims (dims may be NULL) */
    memcpy(raw, data, n * elem_size); /* the project is little-endian only (core/ckpt.h), as raw_data */
    t->name = (char *)name;
    t->n_dims = (size_t)ndim, t->dims = d;
    t->has_data_type = 1, t->data_type = type;
    t->has_raw_data = 1, t->raw_data.data = raw, t->raw_data.len = n * elem_size;
    b->init[b->n_init++] = t;
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) b->params += n;
    return name;
}

static const char *init_float(gb *b, const char *name, int ndim, const int64_t *dims, const float *data) {
    return gb_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims, data, sizeof(float));
}

/* A constant int64 vector (axes, shapes, slice bounds). */
static const char *const_ints(gb *b, const char *stem, int n, const int64_t *v) {
    return gb_init(b, gb_value(b, stem), ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, (const int64_t[]){n}, v,
                   sizeof(int64_t));
}

/* A graph input or output: elem_type with dims; a dim of 0 is the symbolic `sym[k]`. */
static void gb_io(gb *b, int output, const char *name, int32_t type, int ndim, const int64_t *dims,
                  const char *const *sym) {
    Onnx__ValueInfoProto *v = gb_alloc(b, 1, sizeof *v);
    Onnx__TypeProto *tp = gb_alloc(b, 1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = gb_alloc(b, 1, sizeof *tt);
    Onnx__TensorShapeProto *sh = gb_alloc(b, 1, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dd = gb_alloc(b, (size_t)ndim, sizeof *dd);
    if (!v || !tp || !tt || !sh || !dd || (output ? b->n_out : b->n_in) == MAX_IO) {
        b->failed = 1;
        return;
    }
    for (int k = 0; k < ndim; k++) {
        if (!(dd[k] = gb_alloc(b, 1, sizeof *dd[k]))) return;
        onnx__tensor_shape_proto__dimension__init(dd[k]);
        if (dims[k] > 0) {
            dd[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dd[k]->dim_value = dims[k];
        } else {
            dd[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dd[k]->dim_param = (char *)sym[k];
        }
    }
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)ndim, sh->dim = dd;
    tt->has_elem_type = 1, tt->elem_type = type, tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp->tensor_type = tt;
    v->name = (char *)name, v->type = tp;
    if (output) b->out[b->n_out++] = v;
    else b->in[b->n_in++] = v;
}

/* ---- the LSTM layer ----------------------------------------------------------------------------------- */

/* Copy one direction's weights into ONNX's layout: rows in gate order i, o, f, c (ours: i, f, g, o). w is
 * [4H, cols]; dst gets [4H, cols] reordered. */
static void reorder_gates(float *dst, const float *w, int H, int cols) {
    static const int ours[4] = {0, 3, 1, 2}; /* ONNX block k is our block ours[k] */
    for (int k = 0; k < 4; k++)
        memcpy(dst + (size_t)k * H * cols, w + (size_t)ours[k] * H * cols, (size_t)H * cols * sizeof *dst);
}

/* One LSTM node over x [T, B, F] for 1 or 2 directions of H units each (groups g[0..n_dir-1]);
 * `direction` "forward", "reverse" or "bidirectional". seq_lens, h0, c0: names or "". Names of Y
 * [T, n_dir, B, H], Y_h and Y_c [n_dir, B, H] are returned. */
static void add_lstm(gb *b, const char *direction, const lp_unit_group *const *g, int n_dir, const char *x,
                     const char *seq_lens, const char *h0, const char *c0, const char **y, const char **y_h,
                     const char **y_c) {
    *y = *y_h = *y_c = ""; /* until the node exists (a failure is reported once, at the end) */
    const int H = g[0]->units, F = g[0]->input_dim;
    const size_t nw = (size_t)4 * H * F, nr = (size_t)4 * H * H;
    float *W = gb_alloc(b, n_dir * nw, sizeof(float)), *R = gb_alloc(b, n_dir * nr, sizeof(float));
    float *Bi = gb_alloc(b, (size_t)n_dir * 8 * H, sizeof(float)); /* zeroed: the R-bias half stays 0 */
    if (!W || !R || !Bi) return;
    for (int d = 0; d < n_dir; d++) {
        reorder_gates(W + d * nw, g[d]->w_ih->data, H, F);
        reorder_gates(R + d * nr, g[d]->w_hh->data, H, H);
        if (g[d]->b) reorder_gates(Bi + (size_t)d * 8 * H, g[d]->b->data, H, 1);
    }
    const char *stem = n_dir == 2 ? "bilstm" : g[0]->name;
    const char *w = init_float(b, gb_strf(b, "%s.W", stem), 3, (const int64_t[]){n_dir, 4 * H, F}, W);
    const char *r = init_float(b, gb_strf(b, "%s.R", stem), 3, (const int64_t[]){n_dir, 4 * H, H}, R);
    const char *bias = init_float(b, gb_strf(b, "%s.B", stem), 2, (const int64_t[]){n_dir, 8 * H}, Bi);
    *y = gb_value(b, "Y"), *y_h = gb_value(b, "Y_h"), *y_c = gb_value(b, "Y_c");
    const char *in[7] = {x, w, r, bias, seq_lens, h0, c0};
    const char *out[3] = {*y, *y_h, *y_c};
    Onnx__NodeProto *n = gb_node(b, "LSTM", 7, in, 3, out);
    attr_int(b, n, "hidden_size", H);
    attr_string(b, n, "direction", direction);
}

/* Y [T, 1, B, H] of a one-direction node -> [T, B, H]. */
static const char *squeeze_dir(gb *b, const char *y) {
    return gb_op(b, "Squeeze", 2, (const char *[]){y, const_ints(b, "axis1", 1, (const int64_t[]){1})});
}

/* ---- video models ------------------------------------------------------------------------------------ */

/* The BiLSTM layer on x [T,B,F]: [T, B, Hf+Hb] (forward outputs first). */
static const char *add_bilstm(gb *b, const lp_unit_group *fw, const lp_unit_group *bw, const char *x,
                              const char *lens) {
    const char *y, *yh, *yc;
    if (fw->units == bw->units) { /* one bidirectional node: Y [T,2,B,H] -> [T,B,2,H] -> [T,B,2H] */
        add_lstm(b, "bidirectional", (const lp_unit_group *[]){fw, bw}, 2, x, lens, "", "", &y, &yh, &yc);
        const char *t = gb_value(b, "Transpose");
        attr_ints(b, gb_node(b, "Transpose", 1, &y, 1, &t), "perm", 4, (const int64_t[]){0, 2, 1, 3});
        return gb_op(b, "Reshape", 2, (const char *[]){t, const_ints(b, "shape", 3, (const int64_t[]){0, 0, -1})});
    }
    const char *yf, *yb; /* pruned to different sizes: two nodes, outputs concatenated */
    add_lstm(b, "forward", &fw, 1, x, lens, "", "", &yf, &yh, &yc);
    add_lstm(b, "reverse", &bw, 1, x, lens, "", "", &yb, &yh, &yc);
    const char *cat = gb_value(b, "Concat");
    attr_int(b, gb_node(b, "Concat", 2, (const char *[]){squeeze_dir(b, yf), squeeze_dir(b, yb)}, 1, &cat), "axis",
             2);
    return cat;
}

/* The mixture-of-experts head on z [B, C(2E+1)] (layers/moe.h): probabilities [B, C]. */
static const char *add_moe_mix(gb *b, const char *z, int C, int E) {
    const int64_t G = (int64_t)C * (E + 1), K = (int64_t)C * (2 * E + 1);
    const char *axis1 = const_ints(b, "axis1", 1, (const int64_t[]){1});
    const char *gates = gb_op(b, "Slice", 4, (const char *[]){z, const_ints(b, "start", 1, (const int64_t[]){0}),
                                                              const_ints(b, "end", 1, &G), axis1});
    const char *experts = gb_op(b, "Slice", 4, (const char *[]){z, const_ints(b, "start", 1, &G),
                                                                const_ints(b, "end", 1, &K), axis1});
    gates = gb_op(b, "Reshape", 2, (const char *[]){gates, const_ints(b, "shape", 3, (const int64_t[]){0, C, E + 1})});
    const char *s = gb_value(b, "Softmax");
    attr_int(b, gb_node(b, "Softmax", 1, &gates, 1, &s), "axis", 2); /* over the E+1 gates of a class */
    s = gb_op(b, "Slice", 4, (const char *[]){s, const_ints(b, "start", 1, (const int64_t[]){0}),
                                              const_ints(b, "end", 1, (const int64_t[]){E}),
                                              const_ints(b, "axis2", 1, (const int64_t[]){2})}); /* no dummy */
    experts = gb_op(b, "Reshape", 2, (const char *[]){experts, const_ints(b, "shape", 3, (const int64_t[]){0, C, E})});
    const char *p = gb_op(b, "Mul", 2, (const char *[]){s, gb_op(b, "Sigmoid", 1, &experts)});
    const char *sum = "probabilities";
    attr_int(b, gb_node(b, "ReduceSum", 2, (const char *[]){p, const_ints(b, "axis2", 1, (const int64_t[]){2})}, 1, &sum),
             "keepdims", 0);
    return sum;
}

/* x / sqrt(max(Σx², 1e-12)) over the features of each frame, as the batcher (tf.nn.l2_normalize). */
static const char *add_l2norm(gb *b, const char *x) {
    const char *ss = gb_value(b, "ReduceSumSquare");
    Onnx__NodeProto *n = gb_node(b, "ReduceSumSquare", 1, &x, 1, &ss);
    attr_ints(b, n, "axes", 1, (const int64_t[]){2});
    attr_int(b, n, "keepdims", 1);
    const float eps = 1e-12f;
    const char *e = init_float(b, "l2norm.eps", 0, NULL, &eps);
    const char *norm = gb_op(b, "Sqrt", 1, (const char *[]){gb_op(b, "Max", 2, (const char *[]){ss, e})});
    return gb_op(b, "Div", 2, (const char *[]){x, norm});
}

static void video_graph(gb *b, const lp_model *m, int l2norm) {
    static const char *const sym[3] = {"batch", "time", ""};
    gb_io(b, 0, "frames", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, (const int64_t[]){0, 0, m->input_dim}, sym);
    gb_io(b, 0, "lengths", ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, (const int64_t[]){0}, sym);
    const char *x = l2norm ? add_l2norm(b, "frames") : "frames";
    const char *t = gb_value(b, "Transpose"); /* [B,T,F] -> [T,B,F], the layout of ONNX's LSTM */
    attr_ints(b, gb_node(b, "Transpose", 1, &x, 1, &t), "perm", 3, (const int64_t[]){1, 0, 2});
    x = t;
    int g0 = 0;
    if (m->kind == LP_MODEL_PAPER) {
        x = add_bilstm(b, &m->groups[LP_PAPER_GROUP_FW], &m->groups[LP_PAPER_GROUP_BW], x, "lengths");
        g0 = 2;
    }
    const char *y = x, *yh = NULL, *yc;
    for (int k = g0; k < m->n_groups; k++) {
        const lp_unit_group *g = &m->groups[k];
        add_lstm(b, "forward", &g, 1, x, "lengths", "", "", &y, &yh, &yc);
        x = squeeze_dir(b, y);
    }
    /* the last layer's state after each video's last valid step: Y_h [1,B,H] -> [B,H] */
    const char *h = gb_op(b, "Squeeze", 2, (const char *[]){yh, const_ints(b, "axis0", 1, (const int64_t[]){0})});
    const int C = m->classes;
    if (m->kind == LP_MODEL_PAPER) {
        const lp_paper *p = &m->paper;
        const int HL = (int)p->out_w->dims[1];
        const char *w = init_float(b, "out.w", 2, (const int64_t[]){C, HL}, p->out_w->data);
        const char *bias = init_float(b, "out.b", 1, (const int64_t[]){C}, p->out_b->data);
        const char *z = gb_value(b, "Gemm");
        attr_int(b, gb_node(b, "Gemm", 3, (const char *[]){h, w, bias}, 1, &z), "transB", 1);
        const char *prob = "probabilities";
        gb_node(b, "Sigmoid", 1, &z, 1, &prob);
    } else {
        const lp_lstm_moe *l = &m->lstm;
        const int R = (int)l->moe_w->dims[0], HL = (int)l->moe_w->dims[1];
        const char *w = init_float(b, "moe.w", 2, (const int64_t[]){R, HL}, l->moe_w->data);
        const char *bias = init_float(b, "moe.b", 1, (const int64_t[]){R}, l->moe_b->data);
        const char *z = gb_value(b, "Gemm");
        attr_int(b, gb_node(b, "Gemm", 3, (const char *[]){h, w, bias}, 1, &z), "transB", 1);
        add_moe_mix(b, z, C, l->cfg.experts);
    }
    gb_io(b, 1, "probabilities", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, (const int64_t[]){0, C}, sym);
}

/* ---- the language model ------------------------------------------------------------------------------- */

static void lm_graph(gb *b, lp_lm *m) {
    static const char *const sym[3] = {"batch", "time", ""}, *const sym_state[3] = {"", "batch", ""};
    const lp_lm_config *cfg = &m->cfg;
    const int V = cfg->vocab, E = cfg->embed, L = cfg->layers, HL = cfg->hidden[L - 1];
    gb_io(b, 0, "ids", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, (const int64_t[]){0, 0}, sym);
    const lp_tensor *emb = lp_params_find(&m->params, "embed.w");
    const char *table = init_float(b, "embed.w", 2, (const int64_t[]){V, E}, emb->data);
    const char *x = gb_op(b, "Gather", 2, (const char *[]){table, "ids"}); /* [B,T,E] */
    const char *t = gb_value(b, "Transpose");
    attr_ints(b, gb_node(b, "Transpose", 1, &x, 1, &t), "perm", 3, (const int64_t[]){1, 0, 2});
    x = t;
    for (int l = 0; l < L; l++) {
        const lp_unit_group *g = &m->groups[l];
        const int64_t sd[3] = {1, 0, cfg->hidden[l]};
        const char *h0 = gb_strf(b, "h0_%d", l + 1), *c0 = gb_strf(b, "c0_%d", l + 1);
        gb_io(b, 0, h0, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, sd, sym_state);
        gb_io(b, 0, c0, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, sd, sym_state);
        const char *y, *yh, *yc;
        add_lstm(b, "forward", &g, 1, x, "", h0, c0, &y, &yh, &yc);
        const char *hn = gb_strf(b, "h_%d", l + 1), *cn = gb_strf(b, "c_%d", l + 1);
        gb_node(b, "Identity", 1, &yh, 1, &hn);
        gb_node(b, "Identity", 1, &yc, 1, &cn);
        x = squeeze_dir(b, y);
    }
    t = gb_value(b, "Transpose"); /* [T,B,H] -> [B,T,H] */
    attr_ints(b, gb_node(b, "Transpose", 1, &x, 1, &t), "perm", 3, (const int64_t[]){1, 0, 2});
    const lp_tensor *ow = lp_params_find(&m->params, "out.w"), *ob = lp_params_find(&m->params, "out.b");
    const char *wt; /* the softmax weight as [H, V] */
    if (cfg->tied) {
        wt = gb_value(b, "Transpose");
        attr_ints(b, gb_node(b, "Transpose", 1, &table, 1, &wt), "perm", 2, (const int64_t[]){1, 0});
    } else {
        float *tr = gb_alloc(b, (size_t)V * HL, sizeof(float));
        if (!tr) return;
        for (int v = 0; v < V; v++)
            for (int j = 0; j < HL; j++) tr[(size_t)j * V + v] = ow->data[(size_t)v * HL + j];
        wt = init_float(b, "out.w_t", 2, (const int64_t[]){HL, V}, tr);
    }
    const char *bias = init_float(b, "out.b", 1, (const int64_t[]){V}, ob->data);
    const char *z = gb_op(b, "Add", 2, (const char *[]){gb_op(b, "MatMul", 2, (const char *[]){t, wt}), bias});
    const char *prob = "probabilities";
    attr_int(b, gb_node(b, "Softmax", 1, &z, 1, &prob), "axis", -1);
    gb_io(b, 1, "probabilities", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, (const int64_t[]){0, 0, V}, sym);
    for (int l = 0; l < L; l++) {
        const int64_t sd[3] = {1, 0, cfg->hidden[l]};
        gb_io(b, 1, gb_strf(b, "h_%d", l + 1), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, sd, sym_state);
        gb_io(b, 1, gb_strf(b, "c_%d", l + 1), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, sd, sym_state);
    }
}

/* ---- the model ----------------------------------------------------------------------------------------- */

typedef struct {
    const char *key, *value;
} meta_entry;

/* What the caller must do to the data before the graph, in the model's own metadata. */
static int video_meta(gb *b, const lp_kv *meta, meta_entry *e, int l2norm) {
    const char *ff = lp_kv_get(meta, "data.frame_features"), *mf = lp_kv_get(meta, "data.max_frames");
    const char *pad = lp_kv_get(meta, "data.padding");
    int n = 0;
    e[n++] = (meta_entry){"lstmprune.inputs",
                          "frames [batch,time,features] float: dequantised frame features, "
                          "q*4/255 + 4/512 - 2 for YouTube-8M's uint8 q; lengths [batch] int32 in 1..time"};
    e[n++] = (meta_entry){"lstmprune.frame_features", ff ? ff : "?"};
    e[n++] = (meta_entry){"lstmprune.max_frames", gb_strf(b, "%s: the first max_frames frames of a video count",
                                                          mf ? mf : "?")};
    e[n++] = (meta_entry){"lstmprune.padding",
                          pad && !strcmp(pad, "repeat")
                              ? "repeat: the model was trained on videos repeated to max_frames; pass them so, "
                                "with lengths = max_frames"
                              : "mask: frames after a video's length are ignored (any value)"};
    e[n++] = (meta_entry){"lstmprune.l2norm", l2norm ? "in the graph: x / sqrt(max(sum x^2, 1e-12)) per frame"
                                                     : "none (the model was trained without it)"};
    return n;
}

static lp_status build(gb *b, const lp_ckpt *c, const char *path, lp_onnx_info *info, meta_entry *meta,
                       int *n_meta) {
    const char *kind = lp_kv_get(&c->meta, "model.kind");
    if (kind && !strcmp(kind, "lm")) {
        lp_lm m;
        LP_TRY(lp_lm_from_ckpt(&m, c, path));
        lm_graph(b, &m);
        snprintf(info->kind, sizeof info->kind, "lm");
        meta[(*n_meta)++] = (meta_entry){"lstmprune.inputs", "ids [batch,time] int64: word ids of the vocabulary "
                                                             "of the PTB training text (lstmprune's order); "
                                                             "h0_l, c0_l: the carried state (zeros to start)"};
        lp_lm_free(&m);
        return LP_OK;
    }
    lp_model m;
    LP_TRY(lp_model_from_ckpt(&m, c, path));
    const int l2norm = lp_kv_get_int_or(&c->meta, "data.l2norm", 1) != 0;
    video_graph(b, &m, l2norm);
    snprintf(info->kind, sizeof info->kind, "%s", lp_model_kind_name(m.kind));
    *n_meta += video_meta(b, &c->meta, meta + *n_meta, l2norm);
    lp_model_free(&m);
    return LP_OK;
}

/* Pack the model into one buffer and write it atomically. */
static lp_status write_model(gb *b, const char *out_path, const char *source, const meta_entry *meta, int n_meta,
                             lp_onnx_info *info) {
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = (char *)"lstmprune";
    g.n_node = (size_t)b->n_node, g.node = b->node;
    g.n_initializer = (size_t)b->n_init, g.initializer = b->init;
    g.n_input = (size_t)b->n_in, g.input = b->in;
    g.n_output = (size_t)b->n_out, g.output = b->out;
    Onnx__OperatorSetIdProto opset, *opsets[1] = {&opset};
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = (char *)"";
    opset.has_version = 1, opset.version = LP_ONNX_OPSET;
    Onnx__StringStringEntryProto props[16], *pp[16];
    int np = 0;
    props[np] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    props[np].key = (char *)"lstmprune.source", props[np].value = (char *)source, np++;
    for (int k = 0; k < n_meta && np < 16; k++, np++) {
        props[np] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        props[np].key = (char *)meta[k].key, props[np].value = (char *)meta[k].value;
    }
    for (int k = 0; k < np; k++) pp[k] = &props[k];
    Onnx__ModelProto model;
    onnx__model_proto__init(&model);
    model.has_ir_version = 1, model.ir_version = 8; /* what onnx.h promises, whatever onnx.proto's newest is */
    model.n_opset_import = 1, model.opset_import = opsets;
    model.producer_name = (char *)"lstmprune";
    model.producer_version = (char *)"1";
    model.doc_string = (char *)"An LSTM model exported by lstmprune (docs/FORMATS.md, \"ONNX export\").";
    model.graph = &g;
    model.n_metadata_props = (size_t)np, model.metadata_props = pp;
    size_t len = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = gb_alloc(b, len, 1);
    if (!buf) return lp_errorf(LP_ERR_NOMEM, "export: out of memory for a %zu-byte model", len);
    onnx__model_proto__pack(&model, buf);
    LP_TRY(lp_file_write_all(out_path, buf, len));
    info->bytes = len;
    return LP_OK;
}

lp_status lp_onnx_export(const char *ckpt_path, const char *out_path, lp_onnx_info *info) {
    lp_onnx_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, ckpt_path));
    gb b;
    memset(&b, 0, sizeof b);
    lp_arena_init(&b.a, (size_t)1 << 20);
    meta_entry meta[8];
    int n_meta = 0;
    lp_status st = build(&b, &c, ckpt_path, info, meta, &n_meta);
    if (st == LP_OK && b.failed)
        st = lp_errorf(LP_ERR_NOMEM, "export: out of memory building the graph (or over its limits: %d nodes, %d weight "
                                     "tensors, %d inputs or outputs)", MAX_NODES, MAX_INITS, MAX_IO);
    if (st == LP_OK) st = write_model(&b, out_path, ckpt_path, meta, n_meta, info);
    info->nodes = b.n_node, info->initializers = b.n_init, info->params = b.params;
    lp_arena_free(&b.a);
    lp_ckpt_free(&c);
    return st;
}

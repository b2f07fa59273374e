#include "net/conv_onednn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

#ifndef DPTRAIN_HAVE_ONEDNN

int conv_onednn_enabled(void) { return 0; }
void conv_onednn_force(int on) { (void)on; }
int conv_onednn_forward(float *z, const float *x, const float *w, const float *b, const struct conv_geometry *g,
                        int64_t rows, int relu)
{
    (void)z, (void)x, (void)w, (void)b, (void)g, (void)rows, (void)relu;
    return -1;
}
int conv_onednn_backward(float *dx, float *dw, float *db, const float *dz, const float *x, const float *w,
                         const struct conv_geometry *g, int64_t rows, int accumulate)
{
    (void)dx, (void)dw, (void)db, (void)dz, (void)x, (void)w, (void)g, (void)rows, (void)accumulate;
    return -1;
}
void conv_onednn_describe(char *out, size_t len) { snprintf(out, len, "none (not built with oneDNN)"); }
int onednn_sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta;
    (void)c, (void)ldc;
    return -1;
}
void conv_onednn_release(void) {}

#else

#include <dnnl.h>

/* Every oneDNN call is checked; a failure that is not "unsupported" is an internal error, named */
#define DNNL_CHECK(call)                                                                             \
    do {                                                                                             \
        dnnl_status_t st_ = (call);                                                                  \
        if (st_ != dnnl_success)                                                                     \
            dp_die(DP_EXIT_INTERNAL, "oneDNN: %s failed (status %d) at %s:%d", #call, (int)st_,     \
                   __FILE__, __LINE__);                                                              \
    } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* One shape's primitives, memory objects (their data pointers set per call) and formats */
struct conv_entry {
    struct conv_geometry g;
    int64_t rows;
    int relu, bias;
    int broken; /* oneDNN refused it: im2col from now on */
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    dnnl_primitive_t w_to_fwd, w_to_bwd, dw_to_user; /* weight reorders (NULL: same format) */
    dnnl_memory_t user_w, fwd_w, bwd_w, user_dw, prim_dw; /* weights: Keras' layout and the primitives' */
    dnnl_memory_t src, dst, bias_m, diff_src, diff_dst, diff_bias, scratch;
    void *scratch_buf, *fwd_w_buf, *bwd_w_buf, *prim_dw_buf;
    float *dw_tmp, *db_tmp; /* accumulate */
};

#define CACHE_MAX 64
static struct conv_entry cache[CACHE_MAX];
static int ncache;

static int enabled = -1;

int conv_onednn_enabled(void)
{
    if (enabled < 0) {
        const char *v = getenv("DPTRAIN_CONV");
        enabled = !(v && !strcmp(v, "im2col"));
    }
    return enabled;
}

void conv_onednn_force(int on)
{
    enabled = on;
}

static void start(void)
{
    if (engine)
        return;
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
}

static void md(dnnl_memory_desc_t *d, int n, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(d, n, dims, dnnl_f32, tag));
}

static dnnl_memory_t mem(const dnnl_memory_desc_t *d, void *handle)
{
    dnnl_memory_t m;
    DNNL_CHECK(dnnl_memory_create(&m, d, engine, handle));
    return m;
}

static void *alloc_for(const dnnl_memory_desc_t *d)
{
    size_t bytes = dnnl_memory_desc_get_size(d);
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        dp_die(DP_EXIT_INTERNAL, "out of memory for oneDNN buffers (%zu bytes)", bytes);
    return p;
}

static dnnl_primitive_t make(dnnl_primitive_desc_t pd)
{
    dnnl_primitive_t p;
    DNNL_CHECK(dnnl_primitive_create(&p, pd));
    return p;
}

/* A reorder from one weight layout to another, or NULL when they are the same */
static dnnl_primitive_t reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to)
{
    if (dnnl_memory_desc_equal(from, to))
        return NULL;
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL));
    dnnl_primitive_t p = make(pd);
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static void run(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args)
{
    DNNL_CHECK(dnnl_primitive_execute(p, stream, n, args));
    DNNL_CHECK(dnnl_stream_wait(stream));
}

static void reorder_run(dnnl_primitive_t p, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    run(p, 2, args);
}

/* The scratchpad the backend owns: one per shape, as large as its largest primitive asks */
static void grow_scratch(dnnl_primitive_desc_t pd, size_t *most)
{
    const dnnl_memory_desc_t *s = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (s && dnnl_memory_desc_get_size(s) > *most)
        *most = dnnl_memory_desc_get_size(s);
}

/* Builds the entry's primitives; -1 (entry marked broken) when oneDNN has no implementation */
static int build(struct conv_entry *e)
{
    const struct conv_geometry *g = &e->g;
    dnnl_dims_t src_dims = {e->rows, g->in_c, g->in_h, g->in_w};
    dnnl_dims_t dst_dims = {e->rows, g->out_c, g->out_h, g->out_w};
    dnnl_dims_t w_dims = {g->out_c, g->in_c, g->k_h, g->k_w};
    dnnl_dims_t b_dims = {g->out_c};
    dnnl_dims_t strides = {g->stride_h, g->stride_w};
    dnnl_dims_t pad_l = {g->pad_top, g->pad_left};
    dnnl_dims_t pad_r = {(g->out_h - 1) * g->stride_h + g->k_h - g->in_h - g->pad_top,
                           (g->out_w - 1) * g->stride_w + g->k_w - g->in_w - g->pad_left};
    for (int i = 0; i < 2; i++)
        pad_r[i] = pad_r[i] > 0 ? pad_r[i] : 0;
    dnnl_memory_desc_t src_md, dst_md, user_w_md, any_w_md, b_md;
    md(&src_md, 4, src_dims, dnnl_nhwc);
    md(&dst_md, 4, dst_dims, dnnl_nhwc);
    md(&user_w_md, 4, w_dims, dnnl_hwio); /* Keras' (kh, kw, in, out) */
    md(&any_w_md, 4, w_dims, dnnl_format_tag_any);
    md(&b_md, 1, b_dims, dnnl_x);

    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_primitive_attr_t fwd_attr;
    DNNL_CHECK(dnnl_primitive_attr_clone(&fwd_attr, attr));
    if (e->relu) {
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_post_ops_create(&po));
        DNNL_CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(fwd_attr, po));
        dnnl_post_ops_destroy(po);
    }
    dnnl_convolution_desc_t fd, bdd, bwd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src_md,
                                                  &any_w_md, &b_md, &dst_md, strides, pad_l, pad_r));
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &src_md, &any_w_md, &dst_md,
                                                        strides, pad_l, pad_r));
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &src_md, &any_w_md,
                                                           e->bias ? &b_md : NULL, &dst_md, strides, pad_l, pad_r));
    dnnl_primitive_desc_t fpd = NULL, bdpd = NULL, bwpd = NULL;
    int ok = dnnl_primitive_desc_create(&fpd, &fd, fwd_attr, engine, NULL) == dnnl_success &&
             dnnl_primitive_desc_create(&bdpd, &bdd, attr, engine, fpd) == dnnl_success &&
             dnnl_primitive_desc_create(&bwpd, &bwd, attr, engine, fpd) == dnnl_success;
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_attr_destroy(fwd_attr);
    if (!ok) {
        if (fpd)
            dnnl_primitive_desc_destroy(fpd);
        if (bdpd)
            dnnl_primitive_desc_destroy(bdpd);
        e->broken = 1;
        return -1;
    }
    const dnnl_memory_desc_t *fwd_w_md = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *bwd_w_md = dnnl_primitive_desc_query_md(bdpd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dw_md = dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_weights_md, 0);
    e->fwd = make(fpd);
    e->bwd_data = make(bdpd);
    e->bwd_weights = make(bwpd);
    e->user_w = mem(&user_w_md, DNNL_MEMORY_NONE);
    e->user_dw = mem(&user_w_md, DNNL_MEMORY_NONE);
    e->w_to_fwd = reorder(&user_w_md, fwd_w_md);
    e->w_to_bwd = reorder(&user_w_md, bwd_w_md);
    e->dw_to_user = reorder(dw_md, &user_w_md);
    e->fwd_w = e->w_to_fwd ? mem(fwd_w_md, e->fwd_w_buf = alloc_for(fwd_w_md)) : NULL;
    e->bwd_w = e->w_to_bwd ? mem(bwd_w_md, e->bwd_w_buf = alloc_for(bwd_w_md)) : NULL;
    e->prim_dw = e->dw_to_user ? mem(dw_md, e->prim_dw_buf = alloc_for(dw_md)) : NULL;
    e->src = mem(&src_md, DNNL_MEMORY_NONE);
    e->dst = mem(&dst_md, DNNL_MEMORY_NONE);
    e->bias_m = mem(&b_md, DNNL_MEMORY_NONE);
    e->diff_src = mem(&src_md, DNNL_MEMORY_NONE);
    e->diff_dst = mem(&dst_md, DNNL_MEMORY_NONE);
    e->diff_bias = mem(&b_md, DNNL_MEMORY_NONE);
    size_t most = 0;
    grow_scratch(fpd, &most);
    grow_scratch(bdpd, &most);
    grow_scratch(bwpd, &most);
    dnnl_memory_desc_t scratch_md;
    dnnl_dims_t scratch_dims = {(dnnl_dim_t)(most ? most : 1)};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&scratch_md, 1, scratch_dims, dnnl_u8, dnnl_x));
    e->scratch = mem(&scratch_md, e->scratch_buf = alloc_for(&scratch_md));
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bdpd);
    dnnl_primitive_desc_destroy(bwpd);
    return 0;
}

static struct conv_entry *entry(const struct conv_geometry *g, int64_t rows, int relu, int bias)
{
    for (int i = 0; i < ncache; i++)
        if (!memcmp(&cache[i].g, g, sizeof *g) && cache[i].rows == rows && cache[i].relu == relu && cache[i].bias == bias)
            return cache[i].broken ? NULL : &cache[i];
    if (ncache == CACHE_MAX) /* many batch sizes: start over (evaluate's last batch, a resumed epoch) */
        conv_onednn_release();
    start();
    struct conv_entry *e = &cache[ncache++];
    memset(e, 0, sizeof *e);
    e->g = *g, e->rows = rows, e->relu = relu, e->bias = bias;
    return build(e) == 0 ? e : NULL;
}

static void set(dnnl_memory_t m, const void *p)
{
    DNNL_CHECK(dnnl_memory_set_data_handle(m, (void *)p));
}

/* The weights in the layout primitive p wants: reordered from Keras' into `own`, or Keras' own */
static dnnl_memory_t weights_for(dnnl_primitive_t to, dnnl_memory_t user, dnnl_memory_t own, const float *w)
{
    set(user, w);
    if (!to)
        return user;
    reorder_run(to, user, own);
    return own;
}

int conv_onednn_forward(float *z, const float *x, const float *w, const float *b, const struct conv_geometry *g,
                        int64_t rows, int relu)
{
    struct conv_entry *e = conv_onednn_enabled() && rows > 0 ? entry(g, rows, relu, 1) : NULL;
    if (!e)
        return -1;
    dnnl_memory_t wm = weights_for(e->w_to_fwd, e->user_w, e->fwd_w, w);
    set(e->src, x);
    set(e->bias_m, b);
    set(e->dst, z);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, e->bias_m},
                               {DNNL_ARG_DST, e->dst}, {DNNL_ARG_SCRATCHPAD, e->scratch}};
    run(e->fwd, 5, args);
    return 0;
}

int conv_onednn_backward(float *dx, float *dw, float *db, const float *dz, const float *x, const float *w,
                         const struct conv_geometry *g, int64_t rows, int accumulate)
{
    struct conv_entry *e = conv_onednn_enabled() && rows > 0 ? entry(g, rows, 0, db != NULL) : NULL;
    if (!e)
        return -1;
    set(e->diff_dst, dz);
    if (!dw) /* the input gradient alone */
        goto data;
    size_t wn = (size_t)(g->k_h * g->k_w * g->in_c * g->out_c);
    if (accumulate && !e->dw_tmp) {
        e->dw_tmp = dp_malloc(wn * sizeof(float), "conv2d weight gradient");
        e->db_tmp = dp_malloc((size_t)g->out_c * sizeof(float), "conv2d bias gradient");
    }
    float *dw_out = accumulate ? e->dw_tmp : dw, *db_out = accumulate ? e->db_tmp : db;
    set(e->src, x);
    set(e->diff_dst, dz);
    set(e->user_dw, dw_out);
    dnnl_memory_t dwm = e->dw_to_user ? e->prim_dw : e->user_dw;
    int n = 0;
    dnnl_exec_arg_t args[5];
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, e->diff_dst};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, dwm};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    if (db) {
        set(e->diff_bias, db_out);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, e->diff_bias};
    }
    run(e->bwd_weights, n, args);
    if (e->dw_to_user)
        reorder_run(e->dw_to_user, e->prim_dw, e->user_dw);
    if (accumulate) {
        for (size_t i = 0; i < wn; i++)
            dw[i] += e->dw_tmp[i];
        for (int64_t j = 0; db && j < g->out_c; j++)
            db[j] += e->db_tmp[j];
    }
data:
    if (dx) {
        dnnl_memory_t wm = weights_for(e->w_to_bwd, e->user_w, e->bwd_w, w);
        set(e->diff_src, dx);
        dnnl_exec_arg_t bargs[4] = {{DNNL_ARG_DIFF_DST, e->diff_dst}, {DNNL_ARG_WEIGHTS, wm},
                                    {DNNL_ARG_DIFF_SRC, e->diff_src}, {DNNL_ARG_SCRATCHPAD, e->scratch}};
        run(e->bwd_data, 4, bargs);
    }
    return 0;
}

int onednn_sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    static int use = -1;
    if (use < 0) {
        const char *v = getenv("DPTRAIN_GEMM");
        use = !(v && !strcmp(v, "openblas"));
    }
    if (!use || m == 0 || n == 0)
        return -1;
    DNNL_CHECK(dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
    return 0;
}

void conv_onednn_describe(char *out, size_t len)
{
    const dnnl_version_t *v = dnnl_version();
    static const char *const isas[] = {[dnnl_cpu_isa_all] = "all", [dnnl_cpu_isa_sse41] = "sse41",
                                       [dnnl_cpu_isa_avx] = "avx", [dnnl_cpu_isa_avx2] = "avx2"};
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *name = (size_t)isa < sizeof isas / sizeof isas[0] && isas[isa] ? isas[isa] : NULL;
    char code[32];
    if (!name) {
        snprintf(code, sizeof code, "0x%x", (unsigned)isa);
        name = isa == dnnl_cpu_isa_avx512_core ? "avx512_core" : isa == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
               : isa == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16" : isa == dnnl_cpu_isa_avx512_core_amx ? "avx512_core_amx"
               : code;
    }
    snprintf(out, len, "oneDNN %d.%d.%d (instructions up to %s)%s", v->major, v->minor, v->patch, name,
             conv_onednn_enabled() ? "" : ", off (DPTRAIN_CONV=im2col)");
}

static void destroy_prim(dnnl_primitive_t p)
{
    if (p)
        dnnl_primitive_destroy(p);
}

static void destroy_mem(dnnl_memory_t m)
{
    if (m)
        dnnl_memory_destroy(m);
}

void conv_onednn_release(void)
{
    for (int i = 0; i < ncache; i++) {
        struct conv_entry *e = &cache[i];
        destroy_prim(e->fwd), destroy_prim(e->bwd_data), destroy_prim(e->bwd_weights);
        destroy_prim(e->w_to_fwd), destroy_prim(e->w_to_bwd), destroy_prim(e->dw_to_user);
        destroy_mem(e->user_w), destroy_mem(e->fwd_w), destroy_mem(e->bwd_w), destroy_mem(e->user_dw);
        destroy_mem(e->prim_dw), destroy_mem(e->src), destroy_mem(e->dst), destroy_mem(e->bias_m);
        destroy_mem(e->diff_src), destroy_mem(e->diff_dst), destroy_mem(e->diff_bias), destroy_mem(e->scratch);
        free(e->scratch_buf), free(e->fwd_w_buf), free(e->bwd_w_buf), free(e->prim_dw_buf);
        free(e->dw_tmp), free(e->db_tmp);
    }
    ncache = 0;
}

#endif

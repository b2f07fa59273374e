/* The CPU backend's two convolutions against each other on fresh random inputs: oneDNN's
 * primitives (forward with bias and relu, backward data; backward weights and bias, accumulating,
 * called directly since the backend keeps the GEMM for them) and im2col + GEMM (itself checked by finite differences in unit_gradients), over odd
 * sizes, strides, "same" and "valid" padding, one and several channels. Skips where the build has
 * no oneDNN (it says so). */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "net/backend.h"
#include "net/conv_onednn.h"
#include "net/layers.h"
#include "test_util.h"

static float *random_array(int64_t n, uint64_t seed, uint32_t which)
{
    float *v = malloc((size_t)n * sizeof(float));
    rng_uniform_fill(v, (uint64_t)n, seed, 77, which, 0);
    for (int64_t i = 0; i < n; i++)
        v[i] = v[i] * 2 - 1;
    return v;
}

static double max_rel(const float *a, const float *b, int64_t n)
{
    double worst = 0, scale = 1e-3;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / scale);
    return worst;
}

struct shape_case {
    int64_t h, w, c, kh, kw, sh, sw, same, out_c, rows;
};

START_TEST(onednn_equals_im2col)
{
    conv_onednn_force(1);
    if (!conv_onednn_enabled()) {
        /* CI builds with libdnnl-dev (tools/setup.sh): there, its absence is a failure */
        const char *ci = getenv("CI");
        ck_assert_msg(!(ci && !strcmp(ci, "true")), "CI=true but this build has no oneDNN");
        printf("no oneDNN in this build: nothing to compare\n");
        return;
    }
    static const struct shape_case cases[] = {
        {28, 28, 1, 3, 3, 1, 1, 0, 32, 5},  {13, 13, 32, 3, 3, 1, 1, 0, 64, 3}, {9, 7, 3, 3, 3, 2, 2, 1, 5, 4},
        {9, 7, 3, 2, 2, 2, 2, 0, 5, 4},     {8, 8, 4, 5, 5, 1, 1, 1, 7, 2},     {6, 11, 2, 1, 3, 1, 2, 1, 3, 6},
        {28, 28, 1, 3, 3, 1, 1, 1, 16, 7},
    };
    uint64_t seed = test_seed();
    const struct backend *be = &backend_cpu;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const struct shape_case *k = &cases[t];
        struct conv_geometry g;
        struct dp_error err;
        struct shape in = {3, {k->h, k->w, k->c}};
        ck_assert(conv_geometry_make(&g, &in, k->kh, k->kw, k->sh, k->sw, (int)k->same, k->out_c, "conv2d", "t", 0,
                                     &err) == 0);
        int64_t nx = k->rows * k->h * k->w * k->c, nz = k->rows * g.out_h * g.out_w * k->out_c;
        int64_t nw = k->kh * k->kw * k->c * k->out_c, ncols = k->rows * g.out_h * g.out_w * k->kh * k->kw * k->c;
        float *x = random_array(nx, seed, (uint32_t)t * 8), *w = random_array(nw, seed, (uint32_t)t * 8 + 1);
        float *b = random_array(k->out_c, seed, (uint32_t)t * 8 + 2), *dz = random_array(nz, seed, (uint32_t)t * 8 + 3);
        float *cols = malloc((size_t)ncols * 4), *dcols = malloc((size_t)ncols * 4);
        float *z[2], *dx[2], *dw[2], *db[2];
        for (int method = 0; method < 2; method++) { /* 0: im2col, 1: oneDNN */
            conv_onednn_force(method);
            z[method] = malloc((size_t)nz * 4), dx[method] = malloc((size_t)nx * 4);
            dw[method] = random_array(nw, seed, (uint32_t)t * 8 + 4); /* accumulate onto the same start */
            db[method] = random_array(k->out_c, seed, (uint32_t)t * 8 + 5);
            for (int relu = 0; relu < 2; relu++)
                be->conv2d_forward(z[method], method ? NULL : cols, x, w, b, &g, k->rows, relu);
            be->conv2d_backward(dx[method], method ? NULL : dcols, dw[method], db[method], dz, method ? NULL : cols, x, w,
                                &g, k->rows, 1);
        }
        /* oneDNN's own weight gradient (the backend keeps the GEMM for it: its sums' order would
         * depend on the rows a rank has), against im2col's */
        float *dw_own = random_array(nw, seed, (uint32_t)t * 8 + 4), *db_own = random_array(k->out_c, seed, (uint32_t)t * 8 + 5);
        conv_onednn_force(1);
        ck_assert(conv_onednn_backward(NULL, dw_own, db_own, dz, x, w, &g, k->rows, 1) == 0);
        double ez = max_rel(z[1], z[0], nz), ex = max_rel(dx[1], dx[0], nx), ew = max_rel(dw_own, dw[0], nw),
               eb = max_rel(db_own, db[0], k->out_c);
        free(dw_own), free(db_own);
        printf("conv %lldx%lldx%lld k%lldx%lld s%lld %s -> %lld, %lld rows: z %.2g dx %.2g dw %.2g db %.2g\n",
               (long long)k->h, (long long)k->w, (long long)k->c, (long long)k->kh, (long long)k->kw, (long long)k->sh,
               k->same ? "same" : "valid", (long long)k->out_c, (long long)k->rows, ez, ex, ew, eb);
        ck_assert_msg(ez < 1e-5 && ex < 1e-5 && ew < 1e-5 && eb < 1e-5, "case %zu: oneDNN and im2col disagree", t);
        for (int m = 0; m < 2; m++)
            free(z[m]), free(dx[m]), free(dw[m]), free(db[m]);
        free(x), free(w), free(b), free(dz), free(cols), free(dcols);
    }
    conv_onednn_release();
}
END_TEST

/* oneDNN's sgemm, which dense layers use for large products, against OpenBLAS's in each transposition
 * dense layers ask for, with beta 0 and 1 */
START_TEST(onednn_sgemm_equals_openblas)
{
    uint64_t seed = test_seed();
    const int64_t m = 67, n = 93, k = 1029;
    float *a = random_array(m * k, seed, 100), *b = random_array(k * n, seed, 101);
    static const char *const trans[] = {"NN", "TN", "NT"};
    for (int t = 0; t < 3; t++)
        for (int beta = 0; beta < 2; beta++) {
            char ta = trans[t][0], tb = trans[t][1];
            int64_t lda = ta == 'N' ? k : m, ldb = tb == 'N' ? n : k;
            float *c1 = random_array(m * n, seed, 102), *c2 = random_array(m * n, seed, 102);
            if (onednn_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, (float)beta, c1, n) != 0) {
                printf("no oneDNN sgemm in this build: nothing to compare\n");
                free(c1), free(c2);
                free(a), free(b);
                return;
            }
            cblas_sgemm(CblasRowMajor, ta == 'N' ? CblasNoTrans : CblasTrans, tb == 'N' ? CblasNoTrans : CblasTrans,
                        (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb, (float)beta, c2, (int)n);
            double e = max_rel(c1, c2, m * n);
            printf("sgemm %c%c beta %d: oneDNN vs OpenBLAS %.2g\n", ta, tb, beta, e);
            ck_assert_msg(e < 1e-5, "sgemm %c%c beta %d differs by %g", ta, tb, beta, e);
            free(c1), free(c2);
        }
    free(a), free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, onednn_equals_im2col);
    tcase_add_test(tc, onednn_sgemm_equals_openblas);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}

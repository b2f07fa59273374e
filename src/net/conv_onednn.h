/* Conv2D on the CPU through oneDNN (Intel's deep-learning primitives library, Debian's libdnnl):
 * forward (with bias and a fused relu), backward-data and backward-weights primitives over
 * channels-last (NHWC) data with the kernel in Keras' (kh, kw, in, out) layout, created once per
 * shape and batch size and reused; oneDNN picks the kernels for this CPU (AVX2, AVX-512, AMX). The
 * CPU backend calls it where it is faster than im2col + GEMM (backend_cpu.c says where); without
 * oneDNN at build time (DPTRAIN_HAVE_ONEDNN unset) every call answers "not done".
 *
 * Each primitive computes every sample on its own and sums over the rank's rows, as im2col + GEMM
 * does; the sums' order differs from im2col's, so results agree with it to rounding (unit_data's
 * comparison), not bit for bit, and a run keeps one method throughout (it never switches by timing). */
#ifndef DPTRAIN_CONV_ONEDNN_H
#define DPTRAIN_CONV_ONEDNN_H

#include <stdint.h>

#include "net/backend.h"

/* 1 when this build has oneDNN and DPTRAIN_CONV is not "im2col" */
int conv_onednn_enabled(void);
/* Tests: on (1) or off (0) from now on, whatever DPTRAIN_CONV says (no effect without oneDNN) */
void conv_onednn_force(int on);

/* z = conv(x, w) + b (then max(z, 0) with relu); 0 when done, -1 when oneDNN is not there or
 * refuses the shape (the caller falls back). */
int conv_onednn_forward(float *z, const float *x, const float *w, const float *b, const struct conv_geometry *g,
                        int64_t rows, int relu);

/* dw (+)= conv's weight gradient from x and dz, db (+)= the column sums of dz (db NULL: none),
 * dx = the input gradient unless dx is NULL; dw NULL: the input gradient alone. 0 when done, -1
 * as above. */
int conv_onednn_backward(float *dx, float *dw, float *db, const float *dz, const float *x, const float *w,
                         const struct conv_geometry *g, int64_t rows, int accumulate);

/* C = alpha op(A) op(B) + beta C, row-major, ta/tb 'N' or 'T', by oneDNN's sgemm; 0 when done, -1
 * without oneDNN or with DPTRAIN_GEMM=openblas (the caller uses OpenBLAS) */
int onednn_sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* "oneDNN 2.6.3 (cpu_isa avx512_core)" or "none", for the benchmark's header */
void conv_onednn_describe(char *out, size_t len);

/* Frees every cached primitive (end of process; tests). */
void conv_onednn_release(void);

#endif

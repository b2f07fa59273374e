/* Every CUDA backend operation against the CPU backend on fresh random inputs (fp32: relative
 * error under 1e-5 in the max norm, scaled by the reference's largest value). Skips (exit 77)
 * where no GPU is visible. Without the CUDA backend the same file also runs against a CPU
 * emulation of the runtime (tests/cuda_emulation/, unit_cuda_emulated): the kernels' logic, not
 * the GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "fast_divide.h"
#include "net/layers.h"
#include "base/rng.h"
#include "test_util.h"

static const struct backend *gpu = &backend_cuda, *cpu = &backend_cpu;
static int failures;
static uint64_t counter;

static float *random_host(size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof(float));
    rng_uniform_fill(p, n, test_seed(), 77, 0, counter);
    counter += n;
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * p[i];
    return p;
}

static float *to_gpu(const float *h, size_t n)
{
    float *d = gpu->alloc(n * sizeof(float), "test");
    gpu->upload(d, h, n * sizeof(float));
    return d;
}

/* Values a previous step left: an operation that writes gradients must not add to them. */
static void fill_stale(float *dev, size_t n)
{
    float *h = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        h[i] = 1000.0f;
    gpu->upload(dev, h, n * sizeof(float));
    free(h);
}

/* One value each side, relative to the reference's own size (a count of right answers off by one
 * shows, however large the loss sum beside it). */
static void compare_scalar(const char *what, double ref, double got, double tol)
{
    double err = fabs(got - ref) / fmax(fabs(ref), 1e-30);
    if (isnan(got))
        err = INFINITY;
    printf("%-28s %.9g vs %.9g%s\n", what, got, ref, err <= tol ? "" : "  FAIL");
    failures += !(err <= tol);
}

/* The largest difference between ref and got relative to the largest |ref|, printed and counted
 * as a failure above tol; ref and got as doubles. */
static double report_worst(const char *what, const double *ref, const double *got, size_t n, double tol)
{
    double worst = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, isnan(got[i]) ? INFINITY : fabs(got[i] - ref[i]) / scale);
    printf("%-28s max relative error %.3g%s\n", what, worst, worst <= tol ? "" : "  FAIL");
    failures += !(worst <= tol);
    return worst;
}

static double compare(const char *what, const float *ref, const float *dev, size_t n, double tol)
{
    float *got = malloc(n * sizeof(float));
    double *r = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double));
    gpu->download(got, dev, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        r[i] = ref[i], g[i] = got[i];
    double worst = report_worst(what, r, g, n, tol);
    free(got), free(r), free(g);
    return worst;
}

static void compare_f64(const char *what, const double *ref, const double *dev, size_t n, double tol)
{
    double *got = malloc(n * sizeof(double));
    gpu->download(got, dev, n * sizeof(double));
    report_worst(what, ref, got, n, tol);
    free(got);
}

/* The Dense products at a size where cuBLASLt picks tensor-core kernels, in each precision, against
 * the fp32 CPU backend: fp32 within 1e-5, tf32 within 1e-2, bf16 within 3e-2 (relative to the
 * largest value). */
static void dense_in_precisions(void)
{
    static const char *const names[] = {"fp32", "tf32", "bf16"};
    static const double tols[] = {1e-5, 1e-2, 3e-2};
    double forward_error[3] = {0};
    const int64_t rows = 256, in = 320, out = 192;
    float *x = random_host(rows * in, -1, 1), *w = random_host(in * out, -0.2f, 0.2f), *b = random_host(out, -1, 1);
    float *dz = random_host(rows * out, -1, 1);
    float *z = malloc(rows * out * 4), *dx = malloc(rows * in * 4), *dw = calloc(in * out, 4), *db = calloc(out, 4);
    float *zr = malloc(rows * out * 4);
    cpu->dense_forward(z, x, w, b, rows, in, out, 0);
    cpu->activation_forward(zr, z, rows, out, ACTIVATION_RELU, 0.0f); /* the unfused way, for the relu epilogue */
    cpu->dense_backward(dx, dw, db, dz, x, w, rows, in, out, 0);
    float *gx = to_gpu(x, rows * in), *gw = to_gpu(w, in * out), *gb = to_gpu(b, out), *gdz = to_gpu(dz, rows * out);
    for (int p = 0; p < 3; p++) {
        const char *got = gpu->set_precision(p);
        if (strcmp(got, names[p])) {
            printf("precision %s: backend reports %s  FAIL\n", names[p], got);
            failures++;
        }
        float *gz = gpu->alloc(rows * out * 4, "t"), *gdx = gpu->alloc(rows * in * 4, "t"),
              *gdw = gpu->alloc(in * out * 4, "t"), *gdb = gpu->alloc(out * 4, "t");
        gpu->dense_forward(gz, gx, gw, gb, rows, in, out, 1);
        char label[64];
        snprintf(label, sizeof label, "%s dense+relu forward", names[p]);
        compare(label, zr, gz, rows * out, tols[p]);
        gpu->dense_forward(gz, gx, gw, gb, rows, in, out, 0);
        fill_stale(gdw, in * out), fill_stale(gdb, out);
        gpu->dense_backward(gdx, gdw, gdb, gdz, gx, gw, rows, in, out, 0);
        snprintf(label, sizeof label, "%s dense forward 256x320x192", names[p]);
        forward_error[p] = compare(label, z, gz, rows * out, tols[p]);
        snprintf(label, sizeof label, "%s dense dx", names[p]);
        compare(label, dx, gdx, rows * in, tols[p]);
        snprintf(label, sizeof label, "%s dense dw", names[p]);
        compare(label, dw, gdw, in * out, tols[p]);
        snprintf(label, sizeof label, "%s dense db", names[p]);
        compare(label, db, gdb, out, tols[p]);
        gpu->free(gz);
        gpu->free(gdx);
        gpu->free(gdw);
        gpu->free(gdb);
    }
    /* The tolerances above also pass a product that ignores the precision asked for: the rounding
     * must show. Inputs rounded to tf32 (10 mantissa bits) put the largest error of these 49,152
     * sums of 320 products near 5e-4 of the largest output, bf16 (7 bits) about 8 times that;
     * fp32 stays near 1e-6. */
    int rounded = forward_error[1] > 1e-4 && forward_error[2] > 3 * forward_error[1] && forward_error[0] < 1e-5;
    printf("%-28s fp32 %.2g, tf32 %.2g, bf16 %.2g%s\n", "precision shows in rounding", forward_error[0],
           forward_error[1], forward_error[2], rounded ? "" : "  FAIL (tf32 > 1e-4 and bf16 > 3 x tf32 expected)");
    failures += !rounded;
    gpu->set_precision(0); /* the rest of the test is fp32 */
    gpu->free(gx);
    gpu->free(gw);
    gpu->free(gb);
    gpu->free(gdz);
    free(x), free(w), free(b), free(dz), free(z), free(zr), free(dx), free(dw), free(db);
}

/* A Dense relu layer under a Dense, fused (cuBLASLt RELU_AUX_BIAS keeps the relu mask, the layer
 * above's DRELU_BGRAD product applies it and sums the bias gradient), against the CPU's unfused
 * passes: dx of the layer above times [y > 0] of the GPU's own forward (so a value rounded to
 * either side of 0 in tf32 or bf16 is judged as the GPU judged it), and the bias gradient added to
 * what was there. 200 outputs: the mask's rows are padded to 256 bits. */
static void relu_gradient_fused(void)
{
    static const char *const names[] = {"fp32", "tf32", "bf16"};
    static const double tols[] = {1e-5, 1e-2, 3e-2};
    const int64_t rows = 256, in = 96, mid = 200, out = 72;
    float *x = random_host(rows * in, -1, 1), *w1 = random_host(in * mid, -0.3f, 0.3f), *b1 = random_host(mid, -0.5f, 0.5f);
    float *w2 = random_host(mid * out, -0.3f, 0.3f), *dz2 = random_host(rows * out, -1, 1), *db1 = random_host(mid, -1, 1);
    float *y1 = malloc(rows * mid * 4), *y1_gpu = malloc(rows * mid * 4), *dy1 = malloc(rows * mid * 4);
    float *dz1 = malloc(rows * mid * 4), *dw2 = calloc(mid * out, 4), *db1_ref = malloc(mid * 4);
    cpu->dense_forward(y1, x, w1, b1, rows, in, mid, 1);
    float *gx = to_gpu(x, rows * in), *gw1 = to_gpu(w1, in * mid), *gb1 = to_gpu(b1, mid), *gw2 = to_gpu(w2, mid * out);
    float *gdz2 = to_gpu(dz2, rows * out), *gy1 = gpu->alloc(rows * mid * 4, "t"), *gdx2 = gpu->alloc(rows * mid * 4, "t");
    void *gmask = gpu->alloc(gpu->relu_mask_bytes(rows, mid), "t");
    for (int p = 0; p < 3; p++) {
        gpu->set_precision(p);
        char label[64];
        if (!gpu->dense_forward_relu_mask(gy1, gmask, gx, gw1, gb1, rows, in, mid)) {
            printf("%s relu mask: not offered by cuBLASLt here (the unfused path runs)\n", names[p]);
            continue;
        }
        snprintf(label, sizeof label, "%s dense+relu keeping mask", names[p]);
        compare(label, y1, gy1, rows * mid, tols[p]);
        gpu->download(y1_gpu, gy1, rows * mid * 4);
        float *gdb1 = to_gpu(db1, mid);
        int accumulate = p == 1; /* tf32 adds to the bias gradient there; fp32 and bf16 overwrite */
        if (!accumulate)
            fill_stale(gdb1, mid);
        if (!gpu->dense_input_grad_relu(gdx2, gdb1, gdz2, gw2, gmask, rows, mid, out, accumulate)) {
            printf("%s fused relu gradient: not offered by cuBLASLt here (the unfused path runs)\n", names[p]);
            gpu->free(gdb1);
            continue;
        }
        cpu->dense_backward(dy1, dw2, NULL, dz2, y1_gpu, w2, rows, mid, out, 0);
        cpu->activation_backward(dz1, dy1, y1_gpu, y1_gpu, rows, mid, ACTIVATION_RELU, 0.0f);
        for (int64_t j = 0; j < mid; j++)
            db1_ref[j] = accumulate ? db1[j] : 0.0f;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < mid; j++)
                db1_ref[j] += dz1[r * mid + j];
        snprintf(label, sizeof label, "%s fused relu gradient dz", names[p]);
        compare(label, dz1, gdx2, rows * mid, tols[p]);
        snprintf(label, sizeof label, "%s fused relu bias gradient (%s)", names[p], accumulate ? "+=" : "=");
        compare(label, db1_ref, gdb1, mid, tols[p]);
        gpu->free(gdb1);
    }
    gpu->set_precision(0);
    gpu->free(gx), gpu->free(gw1), gpu->free(gb1), gpu->free(gw2), gpu->free(gdz2), gpu->free(gy1), gpu->free(gdx2);
    gpu->free(gmask);
    free(x), free(w1), free(b1), free(w2), free(dz2), free(db1), free(y1), free(y1_gpu), free(dy1), free(dz1);
    free(dw2), free(db1_ref);
}

/* Every loss x output activation x metric x target form the job schema allows (job_target_mode:
 * labels only for the categorical losses; a single output only where the loss allows it), at 1, 3
 * and 10 outputs: the gradient with respect to the logits and the three sums (added to what the
 * accumulators held), each against the CPU backend. */
static void losses_and_metrics(void)
{
    const int64_t rows = 67; /* not a multiple of the kernel's 64 threads */
    static const int64_t ks[] = {1, 3, 10};
    int combos = 0;
    for (int loss = 0; loss < LOSS_COUNT; loss++)
        for (int a = 0; a < ACTIVATION_COUNT; a++) {
            enum activation need = loss_required_activation((enum loss_kind)loss);
            if (need != ACTIVATION_COUNT && a != (int)need)
                continue;
            for (int metric = 0; metric < METRIC_COUNT; metric++) {
                if (metric != METRIC_MAE && metric != METRIC_NONE && loss == LOSS_MSE)
                    continue; /* refused by the schema */
                for (int ki = 0; ki < 3; ki++) {
                    int64_t k = ks[ki];
                    int categorical = loss == LOSS_CATEGORICAL_CROSSENTROPY || loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
                    if (categorical && k < 2)
                        continue;
                    for (int with_labels = 0; with_labels < 2; with_labels++) {
                        /* labels: the categorical losses only; float values: all but the sparse one */
                        if (with_labels ? !categorical : loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
                            continue;
                        size_t n = (size_t)(rows * k);
                        float *z = random_host(n, -3, 3), *t = random_host(n, -1, 1);
                        float *y = malloc(n * 4), *dz = malloc(n * 4);
                        int32_t labels[67];
                        float *draw = random_host(rows, 0, 1);
                        for (int64_t r = 0; r < rows; r++) {
                            labels[r] = (int32_t)fmin(k - 1, floor(draw[r] * k));
                            for (int64_t j = 0; j < k; j++) {
                                if (loss == LOSS_BINARY_CROSSENTROPY)
                                    t[r * k + j] = t[r * k + j] > 0; /* 0/1 targets */
                                else if (loss == LOSS_CATEGORICAL_CROSSENTROPY)
                                    t[r * k + j] = j == labels[r]; /* one-hot */
                            }
                        }
                        float *gz = to_gpu(z, n), *gt = to_gpu(t, n), *gy = gpu->alloc(n * 4, "t");
                        float *gdz = gpu->alloc(n * 4, "t");
                        int32_t *glabels = gpu->alloc(sizeof labels, "t");
                        gpu->upload(glabels, labels, sizeof labels);
                        float param = activation_default_param((enum activation)a);
                        cpu->activation_forward(y, z, rows, k, (enum activation)a, param);
                        gpu->activation_forward(gy, gz, rows, k, (enum activation)a, param);
                        double acc[LOSS_ACC_COUNT] = {1.5, 2.5, 3.0, 0.5}, gacc_host[LOSS_ACC_COUNT];
                        double *gacc = gpu->alloc(sizeof acc, "t");
                        gpu->upload(gacc, acc, sizeof acc);
                        struct loss_params lp = {.loss = (enum loss_kind)loss, .metric = (enum metric_kind)metric,
                                                 .metric_k = 2, .output_activation = (enum activation)a};
                        struct loss_targets tc = {with_labels ? labels : NULL, with_labels ? NULL : t};
                        struct loss_targets tg = {with_labels ? glabels : NULL, with_labels ? NULL : gt};
                        fill_stale(gdz, n);
                        cpu->loss_forward_backward(acc, dz, z, y, tc, rows, k, lp, 1.0f / rows);
                        gpu->loss_forward_backward(gacc, gdz, gz, gy, tg, rows, k, lp, 1.0f / rows);
                        gpu->download(gacc_host, gacc, sizeof gacc_host);
                        char label[96];
                        snprintf(label, sizeof label, "%s/%s/%s k=%lld %s: dz", loss_names[loss], activation_names[a],
                                 metric_names[metric], (long long)k, with_labels ? "labels" : "values");
                        compare(label, dz, gdz, n, 1e-5);
                        static const char *const sums[] = {"loss sum", "metric sum", "rows", "metric denominator"};
                        for (int i = 0; i < LOSS_ACC_COUNT; i++) {
                            snprintf(label, sizeof label, "  %s", sums[i]);
                            compare_scalar(label, acc[i], gacc_host[i], 1e-6);
                        }
                        combos++;
                        free(z), free(t), free(y), free(dz), free(draw);
                        gpu->free(gz), gpu->free(gt), gpu->free(gy), gpu->free(gdz), gpu->free(glabels), gpu->free(gacc);
                    }
                }
            }
        }
    printf("%-28s %d combinations compared\n", "losses and metrics", combos);
}

/* A recorded step (dropout, then an Adam update) replayed for later steps: the step number and the
 * optimizer's rate come from the device scalars set before each replay, not from the values the
 * recording saw, so every replay matches the CPU at that step. */
static void graph_replay_reads_step_scalars(void)
{
    const int64_t rows = 37, cols = 29, n = rows * cols;
    float *x = random_host(n, -1, 1), *g = random_host(n, -1, 1), *w = random_host(n, -1, 1);
    float *s0 = calloc(n, 4), *s1 = calloc(n, 4), *y = malloc(n * 4);
    uint8_t *mask = malloc(n);
    int64_t ids[37];
    for (int i = 0; i < rows; i++)
        ids[i] = 500 + 7 * i;
    float *gx = to_gpu(x, n), *gg = to_gpu(g, n), *gw = to_gpu(w, n), *gs0 = to_gpu(s0, n), *gs1 = to_gpu(s1, n);
    float *gy = gpu->alloc(n * 4, "t");
    uint8_t *gmask = gpu->alloc(n, "t");
    int64_t *gids = gpu->alloc(sizeof ids, "t");
    gpu->upload(gids, ids, sizeof ids);
    struct optimizer_config oc;
    optimizer_config_defaults(&oc, OPTIMIZER_ADAM);
    struct optimizer_step_params p;
    struct dropout_key key = {test_seed(), 2, 0};
    /* the ordinary first step, then the recording at step 1 */
    void *graph = NULL;
    for (uint32_t step = 0; step < 5; step++) {
        optimizer_step_params_make(&p, &oc, step);
        gpu->set_step_scalars(step, &p, (int)(step & 1));
        key.step = step;
        cpu->dropout_forward(y, mask, x, ids, rows, cols, 0.3f, key);
        cpu->optimizer_step(w, g, s0, s1, NULL, n, p);
        if (step == 1) {
            if (gpu->graph_begin() != 0) {
                printf("graph recording not available  FAIL\n");
                failures++;
                return;
            }
        }
        if (step <= 1 || !graph) {
            gpu->dropout_forward(gy, gmask, gx, gids, rows, cols, 0.3f, key);
            gpu->optimizer_step(gw, gg, gs0, gs1, NULL, n, p);
        }
        if (step == 1)
            graph = gpu->graph_end();
        if (step >= 1)
            gpu->graph_launch(graph);
        char label[64];
        snprintf(label, sizeof label, "graph replay step %u dropout", step);
        compare(label, y, gy, n, 1e-6);
        snprintf(label, sizeof label, "graph replay step %u adam", step);
        compare(label, w, gw, n, 1e-5);
    }
    gpu->graph_free(graph);
    free(x), free(g), free(w), free(s0), free(s1), free(y), free(mask);
}

/* Batch uploads through both host slots, as the trainer makes them (staging buffers that grow, an
 * empty copy): each step's kernel reads that step's batch, never the one before or after. Under
 * the emulator's deferred schedule the copy stream runs only when something waits for it, so a
 * missing wait between it and the kernels' stream shows here. */
static void batch_uploads_in_order(void)
{
    enum { STEPS = 7, MAX = 3 * 701 };
    float *host[2], *expect[STEPS], *out[STEPS];
    int64_t *host_ids[2];
    for (int s = 0; s < 2; s++) {
        host[s] = gpu->host_alloc(MAX * sizeof(float), "test batch");
        host_ids[s] = gpu->host_alloc(64 * sizeof(int64_t), "test ids");
    }
    float *input = gpu->alloc(MAX * sizeof(float), "t");
    int64_t *ids = gpu->alloc(64 * sizeof(int64_t), "t");
    for (int step = 0; step < STEPS; step++) {
        int slot = step & 1;
        int64_t n = (step % 3 + 1) * 701;
        gpu->host_fence_wait(slot);
        expect[step] = random_host(n, -1, 1);
        memcpy(host[slot], expect[step], n * sizeof(float));
        struct host_copy copies[2] = {{input, host[slot], n * sizeof(float)},
                                      {ids, host_ids[slot], step == 3 ? 0 : 64 * sizeof(int64_t)}};
        gpu->upload_batch_async(slot, copies, 2);
        gpu->host_fence_record(slot);
        out[step] = gpu->alloc(n * sizeof(float), "t");
        gpu->activation_forward(out[step], input, 1, n, ACTIVATION_RELU, 0.0f);
    }
    for (int step = 0; step < STEPS; step++) {
        int64_t n = (step % 3 + 1) * 701;
        cpu->activation_forward(expect[step], expect[step], 1, n, ACTIVATION_RELU, 0.0f);
        char label[64];
        snprintf(label, sizeof label, "batch upload step %d (slot %d)", step, step & 1);
        compare(label, expect[step], out[step], n, 0);
        gpu->free(out[step]);
        free(expect[step]);
    }
    for (int s = 0; s < 2; s++)
        gpu->host_free(host[s]), gpu->host_free(host_ids[s]);
    gpu->free(input), gpu->free(ids);
}

/* fast_divisor (the kernels' index arithmetic) against the / and % of C: every divisor up to 4096
 * and random ones up to 2^31 - 1, with dividends at the multiples' edges and at random below 2^31. */
static void fast_division_exact(void)
{
    uint64_t state = test_seed() | 1, wrong = 0, checked = 0;
    for (int t = 0; t < 6096; t++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t d = t < 4096 ? (uint32_t)t + 1 : (uint32_t)(state >> 33) % 0x7fffffffu + 1;
        struct fast_divisor f = fast_divisor_make(d);
        uint32_t top = 0x7fffffffu / d * d; /* the largest multiple of d below 2^31 */
        uint32_t edges[] = {0, 1, d - 1, d, d + 1, top - 1, top, 0x7fffffffu - 1, 0x7fffffffu};
        for (int k = 0; k < 9 + 64; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t n = k < 9 ? edges[k] : (uint32_t)(state >> 33);
            if (n > 0x7fffffffu)
                continue;
            uint32_t q, r = fast_divmod(n, f, &q);
            wrong += q != n / d || r != n % d;
            checked++;
        }
    }
    printf("%-28s %llu of %llu quotients wrong%s\n", "fast division", (unsigned long long)wrong,
           (unsigned long long)checked, wrong ? "  FAIL" : "");
    failures += wrong != 0;
}

/* conv2d and maxpool against the CPU: odd sizes, strides, "same" and "valid" padding. */
static void conv_and_pool(void)
{
    struct dp_error err;
    /* conv2d and maxpool: odd sizes, stride 2, same padding */
    struct conv_geometry g;
    struct shape img = {3, {9, 7, 3}};
    conv_geometry_make(&g, &img, 3, 3, 2, 2, 1, 5, "conv2d", "test", 0, &err);
    int64_t n_in = 4 * 9 * 7 * 3, n_out = 4 * g.out_h * g.out_w * 5, n_cols = 4 * g.out_h * g.out_w * 27;
    float *cx = random_host(n_in, -1, 1), *cw = random_host(27 * 5, -1, 1), *cb = random_host(5, -1, 1);
    float *cz = malloc(n_out * 4), *cols = malloc(n_cols * 4), *dcols = malloc(n_cols * 4), *cdx = malloc(n_in * 4);
    float *cdw = calloc(27 * 5, 4), *cdb = calloc(5, 4), *cdz = random_host(n_out, -1, 1);
    float *gcx = to_gpu(cx, n_in), *gcw = to_gpu(cw, 27 * 5), *gcb = to_gpu(cb, 5), *gcdz = to_gpu(cdz, n_out);
    float *gcz = gpu->alloc(n_out * 4, "t"), *gcols = gpu->alloc(n_cols * 4, "t"), *gdcols = gpu->alloc(n_cols * 4, "t");
    float *gcdx = gpu->alloc(n_in * 4, "t"), *gcdw = gpu->alloc(27 * 20, "t"), *gcdb = gpu->alloc(20, "t");
    cpu->conv2d_forward(cz, cols, cx, cw, cb, &g, 4, 0);
    cpu->activation_forward(cz, cz, 4 * g.out_h * g.out_w, 5, ACTIVATION_RELU, 0.0f);
    gpu->conv2d_forward(gcz, gcols, gcx, gcw, gcb, &g, 4, 1);
    compare("conv2d+relu forward", cz, gcz, n_out, 1e-5);
    cpu->conv2d_forward(cz, cols, cx, cw, cb, &g, 4, 0);
    gpu->conv2d_forward(gcz, gcols, gcx, gcw, gcb, &g, 4, 0);
    compare("conv2d forward", cz, gcz, n_out, 1e-5);
    cpu->conv2d_backward(cdx, dcols, cdw, cdb, cdz, cols, cx, cw, &g, 4, 0);
    fill_stale(gcdw, 27 * 5), fill_stale(gcdb, 5);
    gpu->conv2d_backward(gcdx, gdcols, gcdw, gcdb, gcdz, gcols, gcx, gcw, &g, 4, 0);
    compare("conv2d backward dx", cdx, gcdx, n_in, 1e-5);
    compare("conv2d backward dw", cdw, gcdw, 27 * 5, 1e-5);
    compare("conv2d backward db", cdb, gcdb, 5, 1e-5);
    {
        /* 2x2 stride 2 "valid" over 9x7: the last row and column are in no window */
        struct conv_geometry v;
        conv_geometry_make(&v, &img, 2, 2, 2, 2, 0, 5, "conv2d", "test", 0, &err);
        int64_t v_out = 4 * v.out_h * v.out_w * 5, v_cols = 4 * v.out_h * v.out_w * 12;
        float *vdz = random_host(v_out, -1, 1), *gvdz = to_gpu(vdz, v_out), *gvcols = gpu->alloc(v_cols * 4, "t");
        float *gvz = gpu->alloc(v_out * 4, "t"), *vz = malloc(v_out * 4);
        fill_stale(gcdw, 12 * 5), fill_stale(gcdb, 5);
        cpu->conv2d_forward(vz, cols, cx, cw, cb, &v, 4, 0);
        gpu->conv2d_forward(gvz, gvcols, gcx, gcw, gcb, &v, 4, 0);
        compare("conv2d 2x2/2 valid forward", vz, gvz, v_out, 1e-5);
        cpu->conv2d_backward(cdx, dcols, cdw, cdb, vdz, cols, cx, cw, &v, 4, 0);
        gpu->conv2d_backward(gcdx, gdcols, gcdw, gcdb, gvdz, gvcols, gcx, gcw, &v, 4, 0);
        compare("conv2d 2x2/2 valid backward dx", cdx, gcdx, n_in, 1e-5);
        compare("conv2d 2x2/2 valid backward dw", cdw, gcdw, 12 * 5, 1e-5);
        compare("conv2d 2x2/2 valid backward db", cdb, gcdb, 5, 1e-5);
        free(vdz), free(vz);
        gpu->free(gvdz), gpu->free(gvcols), gpu->free(gvz);
    }
    /* pooling: 2x2 stride 2 "valid" (windows apart, the last row and column in none), 3x3 stride 1
     * "valid" and 3x3 stride 2 "same" (windows overlap: an input value gets gradient from
     * several); the backward sums in the CPU's order, so exactly */
    static const int64_t pools[4][3] = {{2, 2, 0}, {3, 1, 0}, {3, 2, 1}, {0, 0, 0}}; /* size, stride, same */
    for (int k = 0; k < 4; k++) {
        struct conv_geometry pg;
        const int64_t *pool = pools[k];
        if (k == 3) /* global pooling: one window over the whole plane */
            conv_geometry_make(&pg, &img, img.dims[0], img.dims[1], img.dims[0], img.dims[1], 0, 0, "global", "test", 0, &err);
        else
            conv_geometry_make(&pg, &img, pool[0], pool[0], pool[1], pool[1], (int)pool[2], 0, "maxpool2d", "test", 0, &err);
        int64_t p_out = 4 * pg.out_h * pg.out_w * 3;
        float *py = malloc(p_out * 4), *pdy = random_host(p_out, -1, 1), *pdx = malloc(n_in * 4);
        int32_t *arg = malloc(p_out * 4), *garg = gpu->alloc(p_out * 4, "t");
        float *gpy = gpu->alloc(p_out * 4, "t"), *gpdy = to_gpu(pdy, p_out), *gpdx = gpu->alloc(n_in * 4, "t");
        char label[64];
        cpu->maxpool_forward(py, arg, cx, &pg, 4);
        gpu->maxpool_forward(gpy, garg, gcx, &pg, 4);
        snprintf(label, sizeof label, "maxpool %lldx%lld/%lld forward", (long long)pg.k_h, (long long)pg.k_w,
                 (long long)pg.stride_h);
        compare(label, py, gpy, p_out, 0);
        cpu->maxpool_backward(pdx, pdy, arg, &pg, 4);
        gpu->maxpool_backward(gpdx, gpdy, garg, &pg, 4);
        snprintf(label, sizeof label, "maxpool %lldx%lld/%lld backward", (long long)pg.k_h, (long long)pg.k_w,
                 (long long)pg.stride_h);
        compare(label, pdx, gpdx, n_in, 0);
        /* average pooling: the same windows, padding not counted; the backward gathers in the
         * CPU's order, so exactly too */
        cpu->avgpool_forward(py, cx, &pg, 4);
        gpu->avgpool_forward(gpy, gcx, &pg, 4);
        snprintf(label, sizeof label, "avgpool %lldx%lld/%lld forward", (long long)pg.k_h, (long long)pg.k_w,
                 (long long)pg.stride_h);
        compare(label, py, gpy, p_out, 0);
        cpu->avgpool_backward(pdx, pdy, &pg, 4);
        gpu->avgpool_backward(gpdx, gpdy, &pg, 4);
        snprintf(label, sizeof label, "avgpool %lldx%lld/%lld backward", (long long)pg.k_h, (long long)pg.k_w,
                 (long long)pg.stride_h);
        compare(label, pdx, gpdx, n_in, 0);
        free(py), free(pdy), free(pdx), free(arg);
        gpu->free(garg), gpu->free(gpy), gpu->free(gpdy), gpu->free(gpdx);
    }
}

/* BatchNormalization's six operations against the CPU on random (n, c) values with a channel
 * mean away from zero: sums, the training forward with its moving statistics, inference, the
 * backward sums, parameter gradients and the input gradient; once with gamma and beta, once
 * without. */
static void batchnorm_ops(void)
{
    const int64_t n = 1000, c = 7;
    float *x = random_host(n * c, 1, 3), *dy = random_host(n * c, -1, 1);
    float *gamma = random_host(c, 0.5f, 1.5f), *beta = random_host(c, -0.5f, 0.5f);
    float *mm = random_host(c, -0.2f, 0.2f), *mv = random_host(c, 0.5f, 2);
    float *gx = to_gpu(x, n * c), *gdy = to_gpu(dy, n * c), *ggamma = to_gpu(gamma, c), *gbeta = to_gpu(beta, c);
    for (int affine = 1; affine >= 0; affine--) {
        float *gm = to_gpu(mm, c), *gv = to_gpu(mv, c);
        float *cm = malloc(c * 4), *cv = malloc(c * 4);
        memcpy(cm, mm, c * 4), memcpy(cv, mv, c * 4);
        double *sums = malloc(2 * c * 8), *gsums = gpu->alloc(2 * c * 8, "t");
        float *y = malloc(n * c * 4), *stat = malloc(2 * c * 4), *dx = malloc(n * c * 4), *dg = malloc(c * 4),
              *dbt = malloc(c * 4);
        float *gy = gpu->alloc(n * c * 4, "t"), *gstat = gpu->alloc(2 * c * 4, "t"), *gdx = gpu->alloc(n * c * 4, "t"),
              *gdg = gpu->alloc(c * 4, "t"), *gdbt = gpu->alloc(c * 4, "t");
        const float *cg = affine ? gamma : NULL, *cb = affine ? beta : NULL;
        const float *dg_g = affine ? ggamma : NULL, *dg_b = affine ? gbeta : NULL;
        cpu->batchnorm_sums(sums, x, n, c);
        gpu->batchnorm_sums(gsums, gx, n, c);
        compare_f64("batchnorm sums", sums, gsums, 2 * c, 1e-12);
        cpu->batchnorm_forward_train(y, stat, cm, cv, x, sums, (double)n, cg, cb, 0.9f, 1e-3f, n, c);
        gpu->batchnorm_forward_train(gy, gstat, gm, gv, gx, gsums, (double)n, dg_g, dg_b, 0.9f, 1e-3f, n, c);
        compare("batchnorm forward (training)", y, gy, n * c, 1e-6);
        compare("batchnorm batch statistics", stat, gstat, 2 * c, 1e-6);
        compare("batchnorm moving mean", cm, gm, c, 1e-6);
        compare("batchnorm moving variance", cv, gv, c, 1e-6);
        cpu->batchnorm_forward_infer(y, x, cm, cv, cg, cb, 1e-3f, n, c);
        gpu->batchnorm_forward_infer(gy, gx, gm, gv, dg_g, dg_b, 1e-3f, n, c);
        compare("batchnorm forward (inference)", y, gy, n * c, 1e-6);
        cpu->batchnorm_backward_sums(sums, dy, x, stat, n, c);
        gpu->batchnorm_backward_sums(gsums, gdy, gx, gstat, n, c);
        compare_f64("batchnorm backward sums", sums, gsums, 2 * c, 1e-6);
        fill_stale(gdg, c), fill_stale(gdbt, c);
        cpu->batchnorm_param_grads(dg, dbt, sums, c);
        gpu->batchnorm_param_grads(gdg, gdbt, gsums, c);
        compare("batchnorm dgamma", dg, gdg, c, 1e-6);
        compare("batchnorm dbeta", dbt, gdbt, c, 1e-6);
        cpu->batchnorm_backward_dx(dx, dy, x, stat, cg, sums, (double)n, n, c);
        gpu->batchnorm_backward_dx(gdx, gdy, gx, gstat, dg_g, gsums, (double)n, n, c);
        compare(affine ? "batchnorm dx" : "batchnorm dx (no gamma)", dx, gdx, n * c, 1e-5);
        free(cm), free(cv), free(sums), free(y), free(stat), free(dx), free(dg), free(dbt);
        gpu->free(gm), gpu->free(gv), gpu->free(gsums), gpu->free(gy), gpu->free(gstat), gpu->free(gdx);
        gpu->free(gdg), gpu->free(gdbt);
    }
    free(x), free(dy), free(gamma), free(beta), free(mm), free(mv);
    gpu->free(gx), gpu->free(gdy), gpu->free(ggamma), gpu->free(gbeta);
}

int main(void)
{
    fast_division_exact();
    if (backend_cuda_device_count() < 1) {
        printf("SKIP: no CUDA device visible\n");
        return 77;
    }
    char name[256], bus[64];
    struct dp_error err;
    if (backend_cuda_init(0, name, sizeof name, bus, sizeof bus, &err) != 0)
        dp_die_error(&err);
    printf("GPU: %s (%s)\n", name, bus);
    gpu->set_precision(0); /* fp32 unless a test says otherwise */
    const int64_t rows = 67, in = 45, out = 33;
    float *x = random_host(rows * in, -1, 1), *w = random_host(in * out, -1, 1), *b = random_host(out, -1, 1);
    float *z = malloc(rows * out * 4), *dz = random_host(rows * out, -1, 1);
    float *dw = calloc(in * out, 4), *db = calloc(out, 4), *dx = malloc(rows * in * 4);
    float *gx = to_gpu(x, rows * in), *gw = to_gpu(w, in * out), *gb = to_gpu(b, out), *gdz = to_gpu(dz, rows * out);
    float *gz = gpu->alloc(rows * out * 4, "t"), *gdw = gpu->alloc(in * out * 4, "t"), *gdb = gpu->alloc(out * 4, "t"),
          *gdx = gpu->alloc(rows * in * 4, "t");
    float *zr = malloc(rows * out * 4);
    cpu->dense_forward(zr, x, w, b, rows, in, out, 0);
    cpu->activation_forward(zr, zr, rows, out, ACTIVATION_RELU, 0.0f);
    gpu->dense_forward(gz, gx, gw, gb, rows, in, out, 1); /* odd sizes: the plain GEMM and relu kernel */
    compare("dense+relu forward", zr, gz, rows * out, 1e-5);
    free(zr);
    cpu->dense_forward(z, x, w, b, rows, in, out, 0);
    gpu->dense_forward(gz, gx, gw, gb, rows, in, out, 0);
    compare("dense forward", z, gz, rows * out, 1e-5);
    cpu->dense_backward(dx, dw, db, dz, x, w, rows, in, out, 0);
    fill_stale(gdw, in * out), fill_stale(gdb, out);
    gpu->dense_backward(gdx, gdw, gdb, gdz, gx, gw, rows, in, out, 0);
    compare("dense backward dx", dx, gdx, rows * in, 1e-5);
    compare("dense backward dw", dw, gdw, in * out, 1e-5);
    compare("dense backward db", db, gdb, out, 1e-5);
    /* With accumulate, a second backward adds the same again. */
    cpu->dense_backward(dx, dw, db, dz, x, w, rows, in, out, 1);
    gpu->dense_backward(gdx, gdw, gdb, gdz, gx, gw, rows, in, out, 1);
    compare("dense backward dw (+=)", dw, gdw, in * out, 1e-5);
    compare("dense backward db (+=)", db, gdb, out, 1e-5);
    dense_in_precisions();
    /* Every activation at its default parameter, and the three parameters at another value. */
    for (int a = 0; a < ACTIVATION_COUNT + 3; a++) {
        enum activation act = a < ACTIVATION_COUNT ? (enum activation)a
                              : (enum activation[]){ACTIVATION_LEAKY_RELU, ACTIVATION_ELU, ACTIVATION_GELU}[a - ACTIVATION_COUNT];
        float param = a < ACTIVATION_COUNT ? activation_default_param(act)
                      : (float[]){0.05f, 0.7f, 1.0f}[a - ACTIVATION_COUNT];
        float *y = malloc(rows * out * 4), *g = malloc(rows * out * 4);
        float *gy = gpu->alloc(rows * out * 4, "t"), *gg = gpu->alloc(rows * out * 4, "t");
        cpu->activation_forward(y, z, rows, out, act, param);
        gpu->activation_forward(gy, gz, rows, out, act, param);
        char label[64];
        snprintf(label, sizeof label, "%s(%g) forward", activation_names[act], param);
        compare(label, y, gy, rows * out, 1e-5);
        cpu->activation_backward(g, dz, z, y, rows, out, act, param);
        gpu->activation_backward(gg, gdz, gz, gy, rows, out, act, param);
        snprintf(label, sizeof label, "%s(%g) backward", activation_names[act], param);
        compare(label, g, gg, rows * out, 1e-5);
        free(y);
        free(g);
        gpu->free(gy);
        gpu->free(gg);
    }
    int64_t ids[67];
    for (int i = 0; i < rows; i++)
        ids[i] = 1000 + 3 * i;
    int64_t *gids = gpu->alloc(sizeof ids, "t");
    gpu->upload(gids, ids, sizeof ids);
    uint8_t *mask = malloc(rows * out), *gmask = gpu->alloc(rows * out, "t");
    float *y = malloc(rows * out * 4), *gy = gpu->alloc(rows * out * 4, "t");
    struct dropout_key key = {test_seed(), 3, 11};
    cpu->dropout_forward(y, mask, z, ids, rows, out, 0.4f, key);
    gpu->dropout_forward(gy, gmask, gz, gids, rows, out, 0.4f, key);
    compare("dropout forward (same masks)", y, gy, rows * out, 1e-6);
    /* loss: softmax outputs with labels */
    int32_t labels[67];
    for (int i = 0; i < rows; i++)
        labels[i] = (int32_t)(ids[i] % out);
    int32_t *glabels = gpu->alloc(sizeof labels, "t");
    gpu->upload(glabels, labels, sizeof labels);
    cpu->activation_forward(y, z, rows, out, ACTIVATION_SOFTMAX, 0.0f);
    gpu->activation_forward(gy, gz, rows, out, ACTIVATION_SOFTMAX, 0.0f);
    double acc[LOSS_ACC_COUNT] = {0};
    double *gacc = gpu->alloc(sizeof acc, "t");
    struct loss_params lp = {.loss = LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, .metric = METRIC_ACCURACY,
                             .output_activation = ACTIVATION_SOFTMAX};
    struct loss_targets tc = {labels, NULL}, tg = {glabels, NULL};
    float *gl = malloc(rows * out * 4), *ggl = gpu->alloc(rows * out * 4, "t");
    cpu->loss_forward_backward(acc, gl, z, y, tc, rows, out, lp, 1.0f / rows);
    gpu->loss_forward_backward(gacc, ggl, gz, gy, tg, rows, out, lp, 1.0f / rows);
    compare("cross-entropy gradient", gl, ggl, rows * out, 1e-5);
    double gaccs[LOSS_ACC_COUNT];
    gpu->download(gaccs, gacc, sizeof gaccs);
    float accf[3] = {(float)acc[0], (float)acc[1], (float)acc[2]};
    float *gaccf = to_gpu((float[]){(float)gaccs[0], (float)gaccs[1], (float)gaccs[2]}, 3);
    compare("loss, metric and row sums", accf, gaccf, 3, 1e-5);
    /* optimizers */
    for (int k = 0; k < OPTIMIZER_COUNT + 1; k++) { /* the last: adam with amsgrad */
        struct optimizer_config oc;
        optimizer_config_defaults(&oc, k < OPTIMIZER_COUNT ? (enum optimizer_kind)k : OPTIMIZER_ADAM);
        oc.amsgrad = k == OPTIMIZER_COUNT;
        oc.momentum = k == OPTIMIZER_SGD ? 0.9 : 0.0;
        oc.nesterov = k == OPTIMIZER_SGD;
        oc.weight_decay = k == OPTIMIZER_ADAMW ? oc.weight_decay : 0.01; /* Keras 3's extras on every kind */
        oc.clipvalue = 0.05;
        struct optimizer_step_params p;
        optimizer_step_params_make(&p, &oc, 3);
        float *w2 = malloc(in * out * 4), *s0 = random_host(in * out, 0, 1), *s1 = random_host(in * out, 0, 1);
        float *s2 = random_host(in * out, 0, 1);
        memcpy(w2, w, in * out * 4);
        float *gw2 = to_gpu(w2, in * out), *gs0 = to_gpu(s0, in * out), *gs1 = to_gpu(s1, in * out);
        float *gs2 = to_gpu(s2, in * out);
        cpu->optimizer_step(w2, dw, s0, s1, s2, in * out, p);
        gpu->optimizer_step(gw2, gdw, gs0, gs1, gs2, in * out, p);
        char label[64];
        snprintf(label, sizeof label, "%s step", k < OPTIMIZER_COUNT ? optimizer_names[k] : "adam amsgrad");
        compare(label, w2, gw2, in * out, 1e-5);
        free(w2); free(s0); free(s1); free(s2);
        gpu->free(gw2); gpu->free(gs0); gpu->free(gs1); gpu->free(gs2);
    }
    /* the L1/L2 penalty: gradient and loss sum */
    {
        float *g1 = random_host(in * out, -1, 1), *gg1 = to_gpu(g1, in * out);
        double cacc[LOSS_ACC_COUNT] = {0.5, 0, 0}, *gracc = gpu->alloc(sizeof cacc, "t");
        gpu->upload(gracc, cacc, sizeof cacc);
        cpu->regularize(g1, w, in * out, 0.01f, 0.003f, cacc, 7.0);
        gpu->regularize(gg1, gw, in * out, 0.01f, 0.003f, gracc, 7.0);
        compare("regularizer gradient", g1, gg1, in * out, 1e-6);
        double gotacc[LOSS_ACC_COUNT];
        gpu->download(gotacc, gracc, sizeof gotacc);
        compare_scalar("regularizer penalty", cacc[LOSS_ACC_LOSS], gotacc[LOSS_ACC_LOSS], 1e-12);
        /* clipping by norm: the sum of squares over two tensors, then each scaled */
        double csum[1], gsum_host[1], *gsum = gpu->alloc(sizeof(double), "t");
        cpu->sum_squares(csum, g1, in * out, 0);
        cpu->sum_squares(csum, b, out, 1);
        gpu->sum_squares(gsum, gg1, in * out, 0);
        gpu->sum_squares(gsum, gb, out, 1);
        gpu->download(gsum_host, gsum, sizeof gsum_host);
        compare_scalar("sum of squares", csum[0], gsum_host[0], 1e-12);
        double before = 0, after = 0;
        for (int64_t i = 0; i < in * out; i++)
            before += (double)g1[i] * g1[i];
        cpu->clip_by_norm(g1, in * out, csum, 0.5f);
        gpu->clip_by_norm(gg1, in * out, gsum, 0.5f);
        compare("clip by norm", g1, gg1, in * out, 1e-6);
        for (int64_t i = 0; i < in * out; i++)
            after += (double)g1[i] * g1[i];
        /* the joint norm (of g1 and b) becomes 0.5: g1's share scales by 0.5 / that norm */
        compare_scalar("clipped norm", sqrt(before) * 0.5 / sqrt(csum[0]), sqrt(after), 1e-6);
        free(g1), gpu->free(gg1), gpu->free(gracc), gpu->free(gsum);
    }
    conv_and_pool();
    batchnorm_ops();
    losses_and_metrics();
    relu_gradient_fused();
    graph_replay_reads_step_scalars();
    batch_uploads_in_order();
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}

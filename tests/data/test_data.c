/* HDF5 round trips (data sets, shards, checkpoints in Keras' layout), the batch reader's epoch
 * order, normalization, CSV parsing, and the errors bad files produce. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/backend.h"
#include "data/batch_prefetch.h"
#include "data/batch_reader.h"
#include "dist/comm.h"
#include "data/csv.h"
#include "data/dataset_writer.h"
#include "base/h5io.h"
#include "net/model.h"
#include "data/normalize.h"
#include "base/rng.h"
#include "test_util.h"
#include "train/weights_file.h"

static char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

/* rows of x (rows, 2, 3) float and int labels 0..4, keyed by the test seed and first_row */
static void make_rows(float *x, int32_t *y, int64_t rows, int64_t first_row)
{
    for (int64_t r = 0; r < rows; r++) {
        rng_uniform_fill(x + r * 6, 6, test_seed(), RNG_DOMAIN_SYNTH_X, 0, (uint64_t)(first_row + r) * 2);
        uint32_t w[4];
        rng_block(w, test_seed(), RNG_DOMAIN_SYNTH_Y, 0, (uint64_t)(first_row + r));
        y[r] = (int32_t)(w[0] % 5);
    }
}

static void write_file(const char *path, int64_t rows, int64_t first_row)
{
    float *x = malloc(sizeof(float) * (size_t)rows * 6);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)rows);
    make_rows(x, y, rows, first_row);
    struct dataset_writer w;
    struct dp_error err;
    ck_assert(dataset_writer_open(&w, path, &err) == 0);
    struct split_writer s;
    struct shape shape = {2, {2, 3}};
    dataset_writer_split(&w, &s, "train", rows, &shape, X_DTYPE_FLOAT32, 1, 1);
    /* in uneven pieces */
    for (int64_t done = 0; done < rows;) {
        int64_t n = rows - done < 777 ? rows - done : 777;
        split_writer_append(&s, x + done * 6, y + done, n, path);
        done += n;
    }
    split_writer_close(&s);
    ck_assert(dataset_writer_commit(&w, &err) == 0);
    free(x);
    free(y);
}

START_TEST(dataset_round_trip_and_shards)
{
    char *a = tmp_path("a.h5"), *b = tmp_path("b.h5");
    write_file(a, 3000, 0);
    write_file(b, 1234, 3000);
    char *paths[2] = {a, b};
    struct row_source s;
    struct dp_error err;
    ck_assert_msg(row_source_open_files(&s, paths, 2, "train", &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.rows, 4234);
    ck_assert_int_eq(s.x_shape.rank, 2);
    ck_assert_int_eq(s.x_cols, 6);
    ck_assert(s.y_labels);
    float x[500 * 6], ex[500 * 6];
    int32_t y[500], ey[500];
    /* a range that crosses from the first shard into the second */
    ck_assert(row_source_read(&s, 2800, 500, x, y, &err) == 0);
    make_rows(ex, ey, 500, 2800);
    ck_assert(memcmp(x, ex, sizeof x) == 0);
    ck_assert(memcmp(y, ey, sizeof y) == 0);
    row_source_close(&s);
}
END_TEST

/* Writes `rows` rows to NAME in the test directory and opens them as a row source, unnormalized. */
static char *open_written(const char *name, int64_t rows, struct row_source *s, struct normalizer *n)
{
    char *path = tmp_path(name);
    write_file(path, rows, 0);
    char *paths[1] = {path};
    struct dp_error err;
    ck_assert_msg(row_source_open_files(s, paths, 1, "train", &err) == 0, "%s", err.msg);
    normalizer_init_none(n, s->x_cols);
    return path;
}

START_TEST(epoch_order_is_a_permutation_with_bounded_windows)
{
    /* 150,000 rows of 28 stored bytes (6 floats and a label) are 4.2 MB: with 1 MB of buffer (in
     * whole blocks of chunks), at least 4 windows */
    const int64_t rows = 150000, row_bytes = 6 * 4 + 4;
    struct row_source s;
    struct normalizer n;
    open_written("perm.h5", rows, &s, &n);
    struct dp_error err;
    struct batch_reader r;
    ck_assert(batch_reader_init(&r, &s, &n, 0, rows, 1, test_seed(), 1, 1, 5, 5, &err) == 0);
    ck_assert_msg(r.nwindows >= 4, "windows %lld", (long long)r.nwindows);
    /* a window holds whole HDF5 chunks: at most the buffer, or one chunk where a chunk is larger */
    int64_t most = (1 << 20) / row_bytes > s.chunk_rows ? (1 << 20) / row_bytes : s.chunk_rows;
    for (int64_t w = 0; w < r.nwindows; w++) {
        int64_t size = batch_reader_window_start(&r, w + 1) - batch_reader_window_start(&r, w);
        ck_assert_msg(size > 0 && size <= most, "window %lld: %lld rows (chunks of %lld)", (long long)w,
                      (long long)size, (long long)s.chunk_rows);
    }
    ck_assert_msg(rows % r.block_rows != 0, "the test needs a shorter last block");
    struct host_batch hb;
    host_batch_alloc(&hb, 333, s.x_cols, 5, 1);
    int64_t *first_epoch = malloc(sizeof(int64_t) * rows), *cur = malloc(sizeof(int64_t) * rows);
    char *seen = calloc((size_t)rows, 1);
    float ex[6];
    int32_t ey;
    /* the chunk (block) each window starts with, per epoch: windows must not keep the same rows
     * every epoch (a shuffle within windows only); 4 epochs alike by chance: (1/24)^3 */
    enum { EPOCHS = 4, MAXW = 64 };
    int64_t first_chunk[EPOCHS][MAXW];
    ck_assert(r.nwindows <= MAXW);
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        memset(seen, 0, (size_t)rows);
        batch_reader_begin_epoch(&r, epoch);
        int64_t same = 0;
        for (int64_t pos = 0; pos < rows; pos += 333) {
            int64_t cnt = rows - pos < 333 ? rows - pos : 333;
            ck_assert(batch_reader_read(&r, pos, cnt, &hb, &err) == 0);
            for (int64_t i = 0; i < cnt; i++) {
                int64_t id = hb.sample_ids[i];
                ck_assert(id >= 0 && id < rows && !seen[id]);
                seen[id] = 1;
                make_rows(ex, &ey, 1, id);
                ck_assert(memcmp(hb.x + i * 6, ex, sizeof ex) == 0);
                ck_assert(hb.labels[i] == ey);
                cur[pos + i] = id;
                if (epoch == 0)
                    first_epoch[pos + i] = id;
                else
                    same += first_epoch[pos + i] == id;
            }
        }
        if (epoch > 0)
            ck_assert_msg(same < rows / 50, "epochs 0 and %d share %lld positions", epoch, (long long)same);
        for (int64_t w = 0; w < r.nwindows; w++)
            first_chunk[epoch][w] = cur[batch_reader_window_start(&r, w)] / s.chunk_rows;
    }
    /* Positions asked for out of order (last batch first) give the same rows: windows are found
     * from the position, not from the previous read. */
    for (int64_t pos = (rows - 1) / 333 * 333; pos >= 0; pos -= 333) {
        int64_t cnt = rows - pos < 333 ? rows - pos : 333;
        ck_assert(batch_reader_read(&r, pos, cnt, &hb, &err) == 0);
        for (int64_t i = 0; i < cnt; i++)
            ck_assert(hb.sample_ids[i] == cur[pos + i]);
    }
    int moved = 0;
    for (int epoch = 1; epoch < EPOCHS; epoch++)
        moved |= memcmp(first_chunk[epoch], first_chunk[0], sizeof(int64_t) * (size_t)r.nwindows) != 0;
    ck_assert_msg(moved, "in %d epochs, every window held the same chunks", EPOCHS);
    /* Deterministic: a fresh reader gives epoch 1's order again. */
    struct batch_reader r2;
    ck_assert(batch_reader_init(&r2, &s, &n, 0, rows, 1, test_seed(), 1, 1, 5, 5, &err) == 0);
    batch_reader_begin_epoch(&r2, 0);
    ck_assert(batch_reader_read(&r2, 0, 333, &hb, &err) == 0);
    for (int i = 0; i < 333; i++)
        ck_assert(hb.sample_ids[i] == first_epoch[i]);
    batch_reader_free(&r2);
    /* Labels beyond the output layer are refused, naming the file and row. */
    struct batch_reader r3;
    ck_assert(batch_reader_init(&r3, &s, &n, 0, rows, 0, 0, 1, 1, 3, 3, &err) == 0);
    ck_assert(batch_reader_read(&r3, 0, 333, &hb, &err) != 0);
    ck_assert_msg(strstr(err.msg, "perm.h5") && strstr(err.msg, "label") && strstr(err.msg, "row"), "%s", err.msg);
    ck_assert_int_eq(err.code, DP_EXIT_INPUT);
    batch_reader_free(&r3);
    free(first_epoch);
    free(cur);
    free(seen);
    host_batch_free(&hb);
    batch_reader_free(&r);
    row_source_close(&s);
}
END_TEST

/* The reader thread, run as the training loop runs it (batch i+1 asked for before step i), gives
 * the rows a reader on the calling thread gives, streaming windows included; quiesce() in between
 * changes nothing; a bad row found on the thread comes back from wait() with its message. */
START_TEST(prefetch_gives_the_same_batches)
{
    const int64_t rows = 60000, batch = 700;
    struct row_source s;
    struct normalizer n;
    open_written("prefetch.h5", rows, &s, &n);
    struct dp_error err;
    for (int threaded = 0; threaded < 2; threaded++) {
        struct batch_reader direct, ahead;
        ck_assert(batch_reader_init(&direct, &s, &n, 0, rows, 1, test_seed(), 1, 1, 5, 5, &err) == 0);
        ck_assert(batch_reader_init(&ahead, &s, &n, 0, rows, 1, test_seed(), 1, 1, 5, 5, &err) == 0);
        ck_assert(direct.nwindows > 1);
        struct host_batch want, hb[2];
        host_batch_alloc(&want, batch, s.x_cols, 5, 1);
        for (int i = 0; i < 2; i++)
            host_batch_alloc(&hb[i], batch, s.x_cols, 5, 1);
        struct batch_prefetch p;
        ck_assert(batch_prefetch_start(&p, &ahead, &backend_cpu, hb, threaded, &err) == 0);
        ck_assert_int_eq(p.threaded, threaded);
        int64_t steps = (rows + batch - 1) / batch;
        for (int epoch = 0; epoch < 2; epoch++) {
            batch_reader_begin_epoch(&direct, epoch);
            batch_reader_begin_epoch(&ahead, epoch);
            for (int64_t step = 0; step < steps; step++) {
                int64_t pos = step * batch, cnt = rows - pos < batch ? rows - pos : batch;
                if (!batch_prefetch_pending(&p))
                    batch_prefetch_request(&p, (int)(step & 1), pos, cnt);
                ck_assert(batch_prefetch_wait(&p, &err) == 0);
                if (step + 1 < steps) {
                    int64_t next = pos + batch;
                    batch_prefetch_request(&p, (int)((step + 1) & 1), next, rows - next < batch ? rows - next : batch);
                }
                if (step % 7 == 3)
                    batch_prefetch_quiesce(&p);
                ck_assert(batch_reader_read(&direct, pos, cnt, &want, &err) == 0);
                const struct host_batch *got = &hb[step & 1];
                ck_assert(memcmp(got->sample_ids, want.sample_ids, sizeof(int64_t) * (size_t)cnt) == 0);
                ck_assert(memcmp(got->x, want.x, sizeof(float) * (size_t)(cnt * s.x_cols)) == 0);
                ck_assert(memcmp(got->labels, want.labels, sizeof(int32_t) * (size_t)cnt) == 0);
            }
            ck_assert(!batch_prefetch_pending(&p));
        }
        batch_prefetch_stop(&p);
        /* Labels 0..4 against 3 classes: the error comes back from the thread. */
        struct batch_reader bad;
        ck_assert(batch_reader_init(&bad, &s, &n, 0, rows, 1, test_seed(), 1, 1, 3, 3, &err) == 0);
        ck_assert(batch_prefetch_start(&p, &bad, &backend_cpu, hb, threaded, &err) == 0);
        batch_reader_begin_epoch(&bad, 0);
        batch_prefetch_request(&p, 0, 0, batch);
        memset(&err, 0, sizeof err);
        ck_assert(batch_prefetch_wait(&p, &err) != 0);
        ck_assert_msg(strstr(err.msg, "prefetch.h5") && strstr(err.msg, "label"), "%s", err.msg);
        ck_assert_int_eq(err.code, DP_EXIT_INPUT);
        batch_prefetch_stop(&p);
        batch_reader_free(&bad);
        for (int i = 0; i < 2; i++)
            host_batch_free(&hb[i]);
        host_batch_free(&want);
        batch_reader_free(&direct);
        batch_reader_free(&ahead);
    }
    row_source_close(&s);
}
END_TEST

/* Two ranks side by side: their slices of every global batch partition it, the union over an
 * epoch is the same order one rank sees, and each rank reads about half of the rows. */
START_TEST(rank_slices_partition_batches)
{
    const int64_t rows = 9000, batch = 101;
    struct row_source s;
    struct normalizer n;
    open_written("slices.h5", rows, &s, &n);
    struct dp_error err;
    struct batch_reader one, r[2];
    ck_assert(batch_reader_init(&one, &s, &n, 0, rows, 1, test_seed(), 1, 1, 5, 5, &err) == 0);
    for (int k = 0; k < 2; k++) {
        ck_assert(batch_reader_init(&r[k], &s, &n, 0, rows, 1, test_seed(), 1, 1, 5, 5, &err) == 0);
        batch_reader_set_slice(&r[k], batch, k, 2);
    }
    struct host_batch h1, hk;
    host_batch_alloc(&h1, batch, s.x_cols, 5, 1);
    host_batch_alloc(&hk, batch, s.x_cols, 5, 1);
    for (int epoch = 0; epoch < 2; epoch++) {
        batch_reader_begin_epoch(&one, epoch);
        batch_reader_begin_epoch(&r[0], epoch);
        batch_reader_begin_epoch(&r[1], epoch);
        for (int64_t pos = 0; pos < rows; pos += batch) {
            int64_t cnt = rows - pos < batch ? rows - pos : batch;
            ck_assert(batch_reader_read(&one, pos, cnt, &h1, &err) == 0);
            for (int k = 0; k < 2; k++) {
                int64_t lo, hi;
                batch_slice(cnt, k, 2, &lo, &hi);
                ck_assert(batch_reader_read(&r[k], pos + lo, hi - lo, &hk, &err) == 0);
                for (int64_t i = 0; i < hi - lo; i++) {
                    ck_assert(hk.sample_ids[i] == h1.sample_ids[lo + i]);
                    ck_assert(memcmp(hk.x + i * 6, h1.x + (lo + i) * 6, 6 * sizeof(float)) == 0);
                }
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        double frac = (double)r[k].rows_read / (2.0 * rows);
        ck_assert_msg(frac > 0.45 && frac < 0.55, "rank %d read %.3f of the rows", k, frac);
        batch_reader_free(&r[k]);
    }
    host_batch_free(&h1);
    host_batch_free(&hk);
    batch_reader_free(&one);
    row_source_close(&s);
}
END_TEST

START_TEST(nan_features_are_refused)
{
    char *p = tmp_path("nan.h5");
    float x[10 * 6];
    int32_t y[10] = {0};
    for (int i = 0; i < 60; i++)
        x[i] = (float)i;
    x[4 * 6 + 2] = NAN;
    struct dataset_writer w;
    struct dp_error err;
    ck_assert(dataset_writer_open(&w, p, &err) == 0);
    struct split_writer s;
    struct shape shape = {1, {6}};
    dataset_writer_split(&w, &s, "train", 10, &shape, X_DTYPE_FLOAT32, 1, 1);
    split_writer_append(&s, x, y, 10, p);
    split_writer_close(&s);
    ck_assert(dataset_writer_commit(&w, &err) == 0);
    char *paths[1] = {p};
    struct row_source src;
    ck_assert(row_source_open_files(&src, paths, 1, "train", &err) == 0);
    struct normalizer n;
    normalizer_init_none(&n, 6);
    struct batch_reader r;
    ck_assert(batch_reader_init(&r, &src, &n, 0, 10, 0, 0, 1, 1, 2, 2, &err) == 0);
    struct host_batch hb;
    host_batch_alloc(&hb, 10, 6, 2, 1);
    ck_assert(batch_reader_read(&r, 0, 10, &hb, &err) != 0);
    ck_assert_msg(strstr(err.msg, "nan.h5 /train row 4") && strstr(err.msg, "NaN"), "%s", err.msg);
    host_batch_free(&hb);
    batch_reader_free(&r);
    row_source_close(&src);
}
END_TEST

START_TEST(normalizer_statistics)
{
    char *a = tmp_path("norm.h5");
    write_file(a, 2500, 0);
    char *paths[1] = {a};
    struct row_source s;
    struct dp_error err;
    ck_assert(row_source_open_files(&s, paths, 1, "train", &err) == 0);
    struct normalizer n;
    ck_assert(normalizer_fit(&n, &s, 2000, &err) == 0);
    float *x = malloc(sizeof(float) * 2000 * 6);
    int32_t *y = malloc(sizeof(int32_t) * 2000);
    make_rows(x, y, 2000, 0);
    for (int j = 0; j < 6; j++) {
        double m = 0, v = 0;
        for (int r = 0; r < 2000; r++)
            m += x[r * 6 + j];
        m /= 2000;
        for (int r = 0; r < 2000; r++)
            v += (x[r * 6 + j] - m) * (x[r * 6 + j] - m);
        v /= 2000;
        ck_assert(fabs(n.mean[j] - m) < 1e-9);
        ck_assert(fabs(n.std[j] - sqrt(v)) < 1e-9);
    }
    float out[6];
    normalizer_apply(&n, out, x, X_DTYPE_FLOAT32, 1);
    ck_assert(fabs(out[3] - (x[3] - n.mean[3]) / n.std[3]) < 1e-6);
    uint8_t raw[6] = {0, 51, 255, 1, 2, 3};
    struct normalizer none;
    normalizer_init_none(&none, 6);
    normalizer_apply(&none, out, raw, X_DTYPE_UINT8, 1);
    ck_assert(out[0] == 0.0f && fabsf(out[1] - 0.2f) < 1e-7f && out[2] == 1.0f);
    free(x);
    free(y);
    normalizer_free(&n);
    row_source_close(&s);
}
END_TEST

#define DENSE(units_, a) {.kind = LAYER_KIND_DENSE, .line = 1, .u.dense = {units_, ACTIVATION_##a}}

static void build(struct model *m, const struct layer_spec *specs, int n, int64_t in)
{
    struct shape s = {1, {in}};
    struct dp_error err;
    ck_assert(model_build(m, specs, n, &s, "test", &err) == 0);
    model_allocate(m, &backend_cpu, 4);
}

/* The parameters of every layer are the same in two arenas (the alignment gaps between them are
 * not stored). */
static int same_parameters(const struct model *m, const float *a, const float *b)
{
    for (int i = 0; i < m->nlayers; i++)
        for (int p = 0; p < m->layers[i].nparams; p++) {
            size_t at = m->layers[i].param_offsets[p], n = shape_size(&m->layers[i].param_shapes[p]);
            if (memcmp(a + at, b + at, n * sizeof(float)))
                return 0;
        }
    return 1;
}

/* Everything checkpoint_write stored besides the weights reads back as it was written. */
static void check_state_read_back(const char *path, const struct model *m2, const struct train_position *pos_in,
                                  float *const state[2], const float *es_best, const struct history *hist_in,
                                  const struct normalizer *norm, const char *job_text)
{
    struct dp_error err;
    const struct train_position pos = *pos_in;
    const struct history hist = *hist_in;
    const double *mean = norm->mean, *std = norm->std;
    size_t norm_bytes = (size_t)norm->cols * sizeof(double);
    struct checkpoint_state st;
    ck_assert_msg(checkpoint_read_state(path, m2, &st, &err) == 0, "%s", err.msg);
    ck_assert((st.pos.epoch == pos.epoch && st.pos.step_in_epoch == pos.step_in_epoch &&
              st.pos.iterations == pos.iterations && st.pos.seed == pos.seed && st.pos.best == pos.best &&
              st.pos.best_epoch == pos.best_epoch && st.pos.wait == pos.wait && st.pos.lr == pos.lr &&
              st.pos.es_best == pos.es_best && st.pos.epoch_loss_sum == pos.epoch_loss_sum &&
              st.pos.epoch_metric_sum == pos.epoch_metric_sum && st.pos.epoch_rows == pos.epoch_rows &&
              st.pos.train_seconds == pos.train_seconds && st.pos.samples == pos.samples));
    ck_assert_str_eq(st.job_text, job_text);
    ck_assert_str_eq(st.optimizer, "adam");
    ck_assert_int_eq(st.nopt_state, 2);
    ck_assert(st.es_best_weights);
    for (int i = 0; i < 2; i++)
        ck_assert(same_parameters(m2, st.opt_state[i], state[i]));
    ck_assert(same_parameters(m2, st.es_best_weights, es_best));
    ck_assert_int_eq(st.history.rows, 3);
    for (int64_t i = 0; i < 3 * HISTORY_COLUMNS; i++)
        ck_assert(st.history.v[i] == hist.v[i] || (isnan(st.history.v[i]) && isnan(hist.v[i])));
    ck_assert_int_eq(st.norm.kind, NORMALIZE_STANDARD);
    ck_assert_int_eq(st.norm.cols, 5);
    ck_assert(memcmp(st.norm.mean, mean, norm_bytes) == 0 && memcmp(st.norm.std, std, norm_bytes) == 0);
    checkpoint_state_free(&st);
    struct normalizer n2;
    ck_assert_msg(checkpoint_read_normalizer(path, &n2, 5, &err) == 0, "%s", err.msg);
    ck_assert(n2.kind == NORMALIZE_STANDARD && memcmp(n2.mean, mean, norm_bytes) == 0 &&
              memcmp(n2.std, std, norm_bytes) == 0);
    normalizer_free(&n2);
    char *text;
    ck_assert(checkpoint_read_job_text(path, &text, &err) == 0);
    ck_assert_str_eq(text, job_text);
    free(text);
}

START_TEST(checkpoint_round_trip_keras_layout)
{
    const struct layer_spec specs[] = {DENSE(7, RELU), {.kind = LAYER_KIND_DROPOUT, .u.dropout = {0.5}},
                                       DENSE(7, RELU), DENSE(3, SOFTMAX)};
    struct model m, m2;
    build(&m, specs, 4, 5);
    model_init_weights(&m, test_seed());
    for (int j = 0; j < 7; j++)
        m.layers[0].b[j] = (float)j * 0.5f;
    char *path = tmp_path("ck.h5");
    /* Every field the checkpoint holds, each with a value of its own, so a field written to or
     * read from the wrong place shows. */
    struct train_position pos = {.epoch = 3, .step_in_epoch = 17, .iterations = 42, .seed = 0x123456789abcdef1ull,
                                 .best = 0.9, .best_epoch = 2, .wait = 1, .lr = 0.01, .es_best = 0.25,
                                 .epoch_loss_sum = 12.5, .epoch_metric_sum = 7.75, .epoch_rows = 99,
                                 .train_seconds = 3.5, .samples = 4242};
    struct optimizer_config oc;
    optimizer_config_defaults(&oc, OPTIMIZER_ADAM);
    float *state[2] = {backend_cpu.alloc(m.arena_floats * 4, "s"), backend_cpu.alloc(m.arena_floats * 4, "s")};
    float *es_best = malloc(m.arena_floats * 4);
    rng_uniform_fill(state[0], m.arena_floats, test_seed(), RNG_DOMAIN_INIT, 91, 0);
    rng_uniform_fill(state[1], m.arena_floats, test_seed(), RNG_DOMAIN_INIT, 92, 0);
    rng_uniform_fill(es_best, m.arena_floats, test_seed(), RNG_DOMAIN_INIT, 93, 0);
    double mean[5] = {0.5, -1, 2, 3.25, 1e-3}, std[5] = {1, 2, 0.5, 4, 1e3};
    struct normalizer norm = {NORMALIZE_STANDARD, 5, mean, std};
    struct history hist = {0};
    for (int e = 0; e < 3; e++) {
        double row[HISTORY_COLUMNS] = {e + 1, 1.0 / (e + 1), 0.5 + e * 0.1, 1.5 / (e + 1), NAN, 0.25 * e, 0.01};
        history_append(&hist, row);
    }
    const char *job_text = "name = \"x\";\ndata = { file = \"a b.h5\"; };";
    struct checkpoint_contents c = {.model = &m, .job_text = job_text, .norm = &norm, .opt = &oc,
                                    .opt_state = state, .nopt_state = 2, .pos = &pos, .history = &hist,
                                    .es_best_weights = es_best};
    struct dp_error err;
    ck_assert_msg(checkpoint_write(path, &c, &err) == 0, "%s", err.msg);

    build(&m2, specs, 4, 5);
    ck_assert_msg(weights_load(&m2, path, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(m.params, m2.params, m.arena_floats * sizeof(float)) == 0);
    check_state_read_back(path, &m2, &pos, state, es_best, &hist, &norm, job_text);

    /* The layout Keras' legacy loader reads. */
    hid_t f = h5io_open_read(path, &err);
    char **names;
    int n;
    ck_assert(h5io_read_attr_strings(f, "layer_names", &names, &n, path, &err) == 0);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(names[0], "dense");
    ck_assert_str_eq(names[1], "dropout");
    ck_assert_str_eq(names[2], "dense_1");
    ck_assert_str_eq(names[3], "dense_2");
    h5io_strings_free(names);
    hid_t g = H5Gopen2(f, "dense_1", H5P_DEFAULT);
    ck_assert(h5io_read_attr_strings(g, "weight_names", &names, &n, path, &err) == 0);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(names[0], "dense_1/kernel:0");
    ck_assert_str_eq(names[1], "dense_1/bias:0");
    int rank;
    int64_t dims[4];
    ck_assert(h5io_dataset_shape(g, names[0], &rank, dims, 4, path, &err) == 0);
    ck_assert(rank == 2 && dims[0] == 7 && dims[1] == 7);
    h5io_strings_free(names);
    H5Gclose(g);
    g = H5Gopen2(f, "dropout", H5P_DEFAULT);
    ck_assert(h5io_read_attr_strings(g, "weight_names", &names, &n, path, &err) == 0);
    ck_assert_int_eq(n, 0);
    h5io_strings_free(names);
    H5Gclose(g);
    int64_t it;
    ck_assert(h5io_read_attr_i64(f, "/dptrain", &it, path, &err) != 0); /* not an attribute */
    hid_t d = H5Gopen2(f, "dptrain", H5P_DEFAULT);
    ck_assert(h5io_read_attr_i64(d, "iterations", &it, path, &err) == 0 && it == 42);
    ck_assert(h5io_exists(d, "optimizer"));
    H5Gclose(d);
    H5Fclose(f);

    /* A model of another shape is refused with the difference named. */
    const struct layer_spec other[] = {DENSE(7, RELU), DENSE(8, RELU), DENSE(3, SOFTMAX)};
    struct model m3;
    build(&m3, other, 3, 5);
    ck_assert(weights_load(&m3, path, &err) != 0);
    ck_assert_msg(strstr(err.msg, "shape (7, 7), expected (7, 8)"), "%s", err.msg);
    model_free(&m3);

    /* NaN weights are never written; the previous file stays intact. */
    m.layers[2].w[3] = NAN;
    ck_assert(checkpoint_write(path, &c, &err) != 0);
    ck_assert(strstr(err.msg, "non-finite"));
    ck_assert(weights_load(&m2, path, &err) == 0);
    backend_cpu.free(state[0]);
    backend_cpu.free(state[1]);
    free(es_best);
    history_free(&hist);
    model_free(&m);
    model_free(&m2);
}
END_TEST

START_TEST(bad_files_are_input_errors)
{
    struct dp_error err;
    char *p = tmp_path("not.h5");
    FILE *f = fopen(p, "w");
    fputs("this is not hdf5\n", f);
    fclose(f);
    ck_assert(h5io_open_read(p, &err) < 0);
    ck_assert(err.code == DP_EXIT_INPUT && strstr(err.msg, "not.h5"));
    /* truncated */
    char *good = tmp_path("full.h5"), *cut = tmp_path("cut.h5");
    write_file(good, 5000, 0);
    FILE *in = fopen(good, "rb"), *out = fopen(cut, "wb");
    char buf[4096];
    size_t total = 0, n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0 && total < 20000) {
        fwrite(buf, 1, n, out);
        total += n;
    }
    fclose(in);
    fclose(out);
    char *paths[1] = {cut};
    struct row_source s;
    int rc = row_source_open_files(&s, paths, 1, "train", &err);
    if (rc == 0) {
        float x[5000 * 6];
        int32_t y[5000];
        rc = row_source_read(&s, 0, 5000, x, y, &err);
        row_source_close(&s);
    }
    ck_assert(rc != 0 && err.code == DP_EXIT_INPUT && strstr(err.msg, "cut.h5"));
    ck_assert(h5io_open_read(tmp_path("missing.h5"), &err) < 0 && strstr(err.msg, "missing.h5"));
}
END_TEST

static void csv_expect(const char *text, const char *needle)
{
    char *p = tmp_path("t.csv");
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    double *v;
    int64_t r, c;
    struct dp_error err;
    ck_assert(csv_read(p, &v, &r, &c, &err) != 0);
    ck_assert_msg(strstr(err.msg, needle) && strstr(err.msg, "t.csv"), "'%s' lacks '%s'", err.msg, needle);
}

START_TEST(csv_parsing)
{
    char *p = tmp_path("ok.csv");
    FILE *f = fopen(p, "w");
    fputs("1,2.5,-3e2\n4, 5 ,6\n\n", f);
    fclose(f);
    double *v;
    int64_t r, c;
    struct dp_error err;
    ck_assert(csv_read(p, &v, &r, &c, &err) == 0);
    ck_assert(r == 2 && c == 3 && v[2] == -300 && v[4] == 5);
    free(v);
    csv_expect("1,2,3\n4,5\n", "t.csv:2: 2 fields, but line 1 has 3");
    csv_expect("1,2,3\n4,x5,6\n", "t.csv:2: field 2: 'x5' is not a number");
    csv_expect("1,,3\n", "t.csv:1: field 2");
    csv_expect("1,2\n\n3,4\n", "blank line");
    csv_expect("1,nan\n", "not finite");
}
END_TEST

int main(void)
{
    h5io_init();
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, dataset_round_trip_and_shards);
    tcase_add_test(tc, epoch_order_is_a_permutation_with_bounded_windows);
    tcase_add_test(tc, rank_slices_partition_batches);
    tcase_add_test(tc, prefetch_gives_the_same_batches);
    tcase_add_test(tc, nan_features_are_refused);
    tcase_add_test(tc, normalizer_statistics);
    tcase_add_test(tc, checkpoint_round_trip_keras_layout);
    tcase_add_test(tc, bad_files_are_input_errors);
    tcase_add_test(tc, csv_parsing);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}

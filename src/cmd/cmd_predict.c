#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "cmd/cli.h"
#include "data/csv.h"
#include "train/evaluator.h"
#include "base/h5io.h"
#include "train/trainer.h"
#include "train/weights_file.h"

static const char help[] =
    "usage: dptrain predict JOB --weights W --data F -o OUT [--set KEY=VALUE ...]\n"
    "       dptrain predict CHECKPOINT --data F -o OUT\n"
    "\n"
    "Runs the model of JOB with weights W on the features of F and writes the model's outputs. A\n"
    "checkpoint (best.h5, last.h5) alone will do: the job it was trained with is stored in it.\n"
    "F: an HDF5 data set (its /test group, else /train) or a CSV file of features (no header).\n"
    "OUT: .csv (one row per sample: the outputs, then the predicted class for classification),\n"
    "- (the same CSV on standard output) or .h5 (/predictions float32 (rows, outputs) and, for\n"
    "classification, /classes int32).\n"
    "The normalization stored in W is applied, as in training.\n";

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

struct predict_options {
    const char *job_path, *weights, *data, *out;
    const char **sets;
    int nsets;
};

/* 1 when --help was asked (and printed) */
static int parse_predict_options(int argc, char **argv, struct predict_options *o)
{
    *o = (struct predict_options){0};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 1;
        } else if (cli_collect_set(argc, argv, &i, &o->sets, &o->nsets)) {
        } else if (!strcmp(argv[i], "--weights")) {
            o->weights = cli_value(argc, argv, &i, "--weights");
        } else if (!strcmp(argv[i], "--data")) {
            o->data = cli_value(argc, argv, &i, "--data");
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            o->out = cli_value(argc, argv, &i, "-o");
        } else if (argv[i][0] != '-' && !o->job_path) {
            o->job_path = argv[i];
        } else {
            cli_unknown("predict", argv[i]);
        }
    }
    if (!o->job_path || !o->data || !o->out)
        dp_die(DP_EXIT_INPUT, "predict: needs JOB --weights W (or a checkpoint alone), --data F and -o OUT (see "
               "'dptrain predict --help')");
    if (strcmp(o->out, "-") != 0 && !ends_with(o->out, ".csv") && !ends_with(o->out, ".h5") &&
        !ends_with(o->out, ".hdf5"))
        dp_die(DP_EXIT_INPUT, "predict: -o %s: the name must end in .csv or .h5 (or be -, for standard output)", o->out);
    return 0;
}

/* The features to predict from, as stored: a CSV file (float) or an HDF5 split (/test, else /train). */
struct features {
    int from_csv;
    double *csv;
    struct row_source src;
    int64_t rows, cols;
    struct shape shape;
};

static void open_features(struct features *x, const char *data, struct dp_error *err)
{
    memset(x, 0, sizeof *x);
    x->from_csv = ends_with(data, ".csv");
    if (x->from_csv) {
        if (csv_read(data, &x->csv, &x->rows, &x->cols, err) != 0)
            dp_die_error(err);
        x->shape = (struct shape){1, {x->cols}};
        return;
    }
    char *paths[1] = {(char *)data};
    const char *group = row_source_files_have_group(paths, 1, "test") ? "test" : "train";
    if (row_source_open_files(&x->src, paths, 1, group, err) != 0)
        dp_die_error(err);
    x->rows = x->src.rows;
    x->cols = x->src.x_cols;
    x->shape = x->src.x_shape;
}

/* The model's outputs for every row (rows x k), normalized as in training, in batches of `batch`. */
static float *predict_rows(struct model *m, struct features *x, const struct normalizer *norm, int64_t batch,
                           struct dp_error *err)
{
    int64_t k = m->output_size, cols = x->cols;
    float *pred = dp_malloc((size_t)(x->rows * k) * sizeof(float), "predictions");
    float *xb = dp_malloc((size_t)(batch * cols) * sizeof(float), "a batch");
    void *stored = dp_malloc((size_t)(batch * cols) * sizeof(float), "a batch");
    void *ystore = x->from_csv ? NULL : dp_malloc((size_t)batch * row_source_y_row_bytes(&x->src), "a batch");
    const struct layer *last = &m->layers[m->nlayers - 1];
    for (int64_t start = 0; start < x->rows; start += batch) {
        int64_t n = x->rows - start < batch ? x->rows - start : batch;
        enum x_dtype dt = X_DTYPE_FLOAT32;
        if (x->from_csv) {
            for (int64_t i = 0; i < n * cols; i++)
                ((float *)stored)[i] = (float)x->csv[start * cols + i];
        } else {
            if (row_source_read(&x->src, start, n, stored, ystore, err) != 0)
                dp_die_error(err);
            dt = x->src.x_dtype;
        }
        normalizer_apply(norm, xb, stored, dt, n);
        m->be->upload(m->input, xb, (size_t)(n * cols) * sizeof(float));
        struct pass_context c = {m->be, n, 0, 0, 0, NULL};
        model_forward(m, &c);
        m->be->download(pred + start * k, last->y, (size_t)(n * k) * sizeof(float));
    }
    free(xb);
    free(stored);
    free(ystore);
    return pred;
}

/* The name of class c, or NULL (no names, or fewer than the model's classes) */
static const char *class_name(char *const *names, int64_t c)
{
    for (int64_t i = 0; names && i <= c; i++)
        if (!names[i])
            return NULL;
    return names ? names[c] : NULL;
}

static void csv_quoted(FILE *f, const char *s)
{
    fputs(",\"", f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv_rows(FILE *f, const float *pred, int64_t rows, int64_t k, int classify, char *const *names)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *p = pred + r * k;
        for (int64_t j = 0; j < k; j++)
            fprintf(f, "%s%.7g", j ? "," : "", p[j]);
        if (classify) {
            int64_t c = predicted_class(p, k);
            fprintf(f, ",%lld", (long long)c);
            if (class_name(names, c)) /* quoted, as CSV wants a name with a comma or quote */
                csv_quoted(f, class_name(names, c));
        }
        fputc('\n', f);
    }
}

/* OUT written whole or not at all: CSV rows (outputs, then the class), or HDF5 datasets; "-": the
 * CSV rows on standard output. */
static void write_predictions(const char *out, const float *pred, int64_t rows, int64_t k, int classify,
                              char *const *names, struct dp_error *err)
{
    if (!strcmp(out, "-")) {
        write_csv_rows(stdout, pred, rows, k, classify, names);
        if (fflush(stdout) != 0 || ferror(stdout))
            dp_die(DP_EXIT_INTERNAL, "predict: writing to standard output failed");
        return;
    }
    if (ends_with(out, ".csv")) {
        struct atomic_file csv_out;
        if (atomic_file_open(&csv_out, out, err) != 0)
            dp_die_error(err);
        write_csv_rows(csv_out.f, pred, rows, k, classify, names);
        if (atomic_file_commit(&csv_out, err) != 0)
            dp_die_error(err);
        return;
    }
    char tmp[4200];
    hid_t f = h5io_create_temp(out, tmp, sizeof tmp, err);
    if (f < 0)
        dp_die_error(err);
    int64_t dims[2] = {rows, k};
    h5io_write_f32(f, "predictions", 2, dims, pred, out);
    if (classify) {
        int64_t *cls = dp_malloc((size_t)rows * sizeof(int64_t), "classes");
        for (int64_t r = 0; r < rows; r++)
            cls[r] = predicted_class(pred + r * k, k);
        h5io_write_i64(f, "classes", 1, &rows, cls, out);
        free(cls);
        int n = 0;
        while (names && names[n])
            n++;
        if (n > 0)
            h5io_attr_strings(f, "class_names", (const char *const *)names, n, out);
    }
    if (h5io_commit_temp(f, tmp, out, 0, err) != 0)
        dp_die_error(err);
}

int cmd_predict(int argc, char **argv)
{
    struct predict_options o;
    if (parse_predict_options(argc, argv, &o))
        return 0;
    struct job job;
    struct dp_error err = {0};
    const char *inputs[3] = {o.job_path, o.weights ? o.weights : o.job_path, o.data};
    int to_stdout = !strcmp(o.out, "-");
    if (!to_stdout && (file_check_not_input(o.out, inputs, 3, &err) != 0 || file_check_output(o.out, &err) != 0))
        dp_die_error(&err);
    cli_load_job_or_checkpoint("predict", o.job_path, &o.weights, o.sets, o.nsets, &job);
    struct features x;
    open_features(&x, o.data, &err);
    struct model m;
    struct normalizer norm;
    if (job_build_model(&job, &x.shape, &m, &err) != 0)
        dp_die_error(&err);
    int64_t batch = 4096, k = m.output_size;
    /* A file of the wrong width would show up as a weight shape: say it in the data's terms */
    for (int i = 0; i < m.nlayers; i++) {
        const struct layer *l = &m.layers[i];
        if (l->nparams == 0)
            continue;
        int64_t width = l->spec.kind == LAYER_KIND_DENSE && l->in_size == m.input_size ?
                        weights_dense_input_width(o.weights, l->name) : 0;
        if (width > 0 && width != x.cols)
            dp_die(DP_EXIT_INPUT, "%s has %lld features per row, but the model in %s takes %lld", o.data,
                   (long long)x.cols, o.weights, (long long)width);
        break;
    }
    if (job_load_checkpoint(&job, &m, &backend_cpu, batch, o.weights, x.cols, &norm, &err) != 0)
        dp_die_error(&err);
    float *pred = predict_rows(&m, &x, &norm, batch, &err);
    /* the class names the model was trained with, else the data's */
    char **names = file_class_names(o.weights);
    if (!names && !x.from_csv)
        names = file_class_names(o.data);
    write_predictions(o.out, pred, x.rows, k, job.fit.loss != LOSS_MSE, names, &err);
    h5io_strings_free(names);
    fprintf(to_stdout ? stderr : stdout, "%s: %lld predictions of %lld outputs\n", to_stdout ? "standard output" : o.out,
            (long long)x.rows, (long long)k);
    free(pred);
    free(x.csv);
    if (!x.from_csv)
        row_source_close(&x.src);
    normalizer_free(&norm);
    model_free(&m);
    job_free(&job);
    return 0;
}

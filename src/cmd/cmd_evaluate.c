#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_out.h"
#include "cmd/cli.h"
#include "train/evaluator.h"
#include "base/h5io.h"
#include "base/zip_archive.h"
#include "train/trainer.h"
#include "train/class_report.h"
#include "train/score_pairs.h"
#include "train/weights_file.h"

static const char help[] =
    "usage: dptrain evaluate JOB --weights W [--data FILE] [--json] [--set KEY=VALUE ...]\n"
    "       dptrain evaluate CHECKPOINT [--data FILE] [--json]\n"
    "\n"
    "Evaluates weights file W (best.h5, last.h5) with the model of JOB on the /test group of the\n"
    "job's data file (or of FILE), applying the normalization stored in W; a checkpoint alone\n"
    "brings the job it was trained with. Prints loss, the\n"
    "metric and, for classification, the confusion matrix (rows: true class, columns: predicted).\n"
    "  --json   one JSON object: {\"loss\", \"accuracy\" or \"mae\", \"rows\", \"confusion_matrix\"}\n";

/* --data FILE: the job's data replaced by FILE. */
static void use_data_file(struct job *job, const char *data)
{
    for (int i = 0; i < job->data.nfiles; i++)
        free(job->data.files[i]);
    free(job->data.files);
    job->data.files = dp_calloc(1, sizeof(char *), "data files");
    job->data.files[0] = dp_strdup(data);
    job->data.nfiles = 1;
    job->data.source = DATA_SOURCE_FILE;
}

/* The loss, the metric and the confusion matrix (dim x dim, NULL for regression): one JSON object
 * with --json, else lines for people. */
static void print_report(const struct job *job, int64_t rows, const double *acc, double auc, const int64_t *confusion,
                         int64_t dim, char *const *class_names, int json)
{
    struct class_report cr = {0};
    if (confusion)
        class_report_make(&cr, confusion, dim);
    const char *metric_name = job->fit.metric != METRIC_NONE ? metric_names[job->fit.metric] : NULL;
    double loss = acc[LOSS_ACC_LOSS] / acc[LOSS_ACC_ROWS];
    double metric = job->fit.metric == METRIC_AUC ? auc : metric_value(job->fit.metric, acc);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "loss", json_num(loss));
        if (metric_name)
            json_object_set_new(o, metric_name, json_num(metric));
        json_object_set_new(o, "rows", json_integer(rows));
        if (confusion) {
            json_t *matrix = json_array();
            for (int64_t a = 0; a < dim; a++) {
                json_t *row = json_array();
                for (int64_t b = 0; b < dim; b++)
                    json_array_append_new(row, json_integer(confusion[a * dim + b]));
                json_array_append_new(matrix, row);
            }
            json_object_set_new(o, "confusion_matrix", matrix);
            json_object_set_new(o, "classification_report", class_report_json(&cr, class_names));
        }
        json_write_object(stdout, o, 0);
        json_decref(o);
    } else {
        printf("%lld rows - loss: %.4f", (long long)rows, loss);
        if (metric_name)
            printf(" - %s: %.4f", metric_name, metric);
        printf("\n");
        if (confusion) {
            printf("confusion matrix (rows: true class, columns: predicted):\n");
            for (int64_t a = 0; a < dim; a++) {
                for (int64_t b = 0; b < dim; b++)
                    printf(" %7lld", (long long)confusion[a * dim + b]);
                printf("\n");
            }
            printf("\n");
            class_report_print(stdout, &cr, class_names);
        }
    }
    class_report_free(&cr);
}

int cmd_evaluate(int argc, char **argv)
{
    const char *job_path = NULL, *weights = NULL, *data = NULL;
    const char **sets = NULL;
    int nsets = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (cli_collect_set(argc, argv, &i, &sets, &nsets)) {
        } else if (!strcmp(argv[i], "--weights")) {
            weights = cli_value(argc, argv, &i, "--weights");
        } else if (!strcmp(argv[i], "--data")) {
            data = cli_value(argc, argv, &i, "--data");
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] != '-' && !job_path) {
            job_path = argv[i];
        } else {
            cli_unknown("evaluate", argv[i]);
        }
    }
    if (!job_path)
        dp_die(DP_EXIT_INPUT, "evaluate: needs JOB and --weights W, or a checkpoint alone (see 'dptrain evaluate --help')");
    struct job job;
    struct dp_error err = {0};
    cli_load_job_or_checkpoint("evaluate", job_path, &weights, sets, nsets, &job);
    if (data)
        use_data_file(&job, data);
    if (!zip_archive_is_zip(weights)) { /* say so first when the weights file is bad */
        hid_t probe = h5io_open_read(weights, &err);
        if (probe < 0)
            dp_die_error(&err);
        H5Fclose(probe);
    }
    struct row_source src;
    struct model m;
    struct target_mode tm;
    struct normalizer norm;
    if (job_open_model(&job, "test", &src, &m, &tm, &err) != 0)
        dp_die_error(&err);
    int64_t batch = job.fit.batch_size < 4096 ? 4096 : job.fit.batch_size;
    if (batch > src.rows && src.rows > 0)
        batch = src.rows;
    if (job_load_checkpoint(&job, &m, &backend_cpu, batch, weights, src.x_cols, &norm, &err) != 0)
        dp_die_error(&err);
    struct batch_reader r;
    struct host_batch hb;
    struct device_batch db;
    if (batch_reader_init(&r, &src, &norm, 0, src.rows, 0, 0, job.data.shuffle_buffer_mb, tm.want_labels,
                          tm.classes, tm.k, &err) != 0)
        dp_die_error(&err);
    host_batch_alloc(&hb, batch, src.x_cols, tm.k, tm.want_labels);
    device_batch_alloc(&db, m.be, batch, tm.k);
    int classify = job.fit.loss != LOSS_MSE;
    int64_t dim = tm.k == 1 ? 2 : tm.k;
    int64_t *confusion = classify ? dp_calloc((size_t)(dim * dim), sizeof(int64_t), "confusion matrix") : NULL;
    double acc[LOSS_ACC_COUNT];
    struct loss_params lp = job_loss_params(&job, &m);
    struct score_pairs scores = {0};
    int auc = job.fit.metric == METRIC_AUC;
    if (auc && tm.k > 2)
        dp_die(DP_EXIT_INPUT, "%s: metric auc needs a binary problem: one sigmoid output or two softmax outputs (this "
               "model has %lld)", job.path, (long long)tm.k);
    if (evaluate_rows(&m, &r, src.rows, batch, lp, &db, &hb, acc, confusion, auc ? score_sink_fn : NULL,
                      &(struct score_sink){&scores, tm.k}, &err) != 0)
        dp_die_error(&err);
    print_report(&job, src.rows, acc, auc ? score_pairs_auc(&scores) : NAN, confusion, dim, src.class_names, json);
    score_pairs_free(&scores);
    free(confusion);
    device_batch_free(&db, m.be);
    host_batch_free(&hb);
    batch_reader_free(&r);
    normalizer_free(&norm);
    model_free(&m);
    row_source_close(&src);
    job_free(&job);
    return 0;
}

/* Job files: good ones load with the values and defaults expected; bad ones fail with one
 * message that names the file and the line (or the --set that caused it). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "job/jobfile.h"
#include "test_util.h"

static const char *write_job(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char good[] =
    "name = \"t\";\n"                                          /* 1 */
    "data = { file = \"d.h5\"; validation_split = 0.25; };\n"  /* 2 */
    "model = (\n"                                              /* 3 */
    "  { type = \"dense\"; units = 8; activation = \"relu\"; },\n" /* 4 */
    "  { type = \"dropout\"; rate = 0.5; },\n"                /* 5 */
    "  { type = \"dense\"; units = 3; activation = \"softmax\"; }\n" /* 6 */
    ");\n"                                                     /* 7 */
    "fit = {\n"                                                /* 8 */
    "  epochs = 4;\n"                                          /* 9 */
    "  batch_size = 16;\n"                                     /* 10 */
    "  loss = \"sparse_categorical_crossentropy\";\n"          /* 11 */
    "  metrics = [\"accuracy\"];\n"                            /* 12 */
    "  optimizer = { name = \"sgd\"; lr = 0.1; momentum = 0.9; };\n" /* 13 */
    "};\n";

/* Replaces the first occurrence of from in good by to and loads it; returns the error text. */
static const char *load_variant(const char *from, const char *to, const char *const *sets, int nsets, int *rc)
{
    static char text[4096];
    static struct dp_error err;
    const char *at = strstr(good, from);
    ck_assert_msg(at != NULL, "test bug: '%s' not in job", from);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    struct job job;
    memset(&err, 0, sizeof err);
    *rc = job_load(&job, write_job("variant.cfg", text), sets, nsets, &err);
    if (*rc == 0)
        job_free(&job);
    return err.msg;
}

static void expect_error(const char *from, const char *to, const char *needle)
{
    int rc;
    const char *msg = load_variant(from, to, NULL, 0, &rc);
    ck_assert_msg(rc != 0, "variant '%s' -> '%s' was accepted", from, to);
    ck_assert_msg(strstr(msg, needle) != NULL, "message '%s' lacks '%s'", msg, needle);
    ck_assert_msg(strstr(msg, "variant.cfg") != NULL, "message '%s' does not name the file", msg);
}

START_TEST(good_job_loads_with_defaults)
{
    struct job job;
    struct dp_error err = {0};
    ck_assert_msg(job_load(&job, write_job("good.cfg", good), NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(job.name, "t");
    ck_assert_int_eq(job.nlayers, 3);
    ck_assert_int_eq(job.fit.precision, PRECISION_AUTO);
    ck_assert_int_eq(job.fit.allreduce, ALLREDUCE_AUTO);
    ck_assert_int_eq(job.fit.readback_steps, 0);
    ck_assert(job.fit.nccl_timeout == 600);
    ck_assert_int_eq(job.layers[0].u.dense.units, 8);
    ck_assert_int_eq(job.layers[1].line, 5);
    ck_assert(job.layers[1].u.dropout.rate == 0.5);
    ck_assert_int_eq(job.fit.epochs, 4);
    ck_assert_int_eq(job.fit.optimizer.kind, OPTIMIZER_SGD);
    ck_assert(job.fit.optimizer.momentum == 0.9);
    ck_assert(job.data.validation_split == 0.25);
    ck_assert_int_eq(job.data.shuffle, 1);
    ck_assert_int_eq(job.fit.seed, 1);
    ck_assert_str_eq(job.fit.checkpoint.m.monitor, "val_loss");
    ck_assert_int_eq(job.fit.checkpoint.m.mode, MONITOR_MODE_MIN);
    ck_assert(strstr(job.resolved_text, "batch_size = 16") != NULL);
    job_free(&job);
}
END_TEST

/* Keras' compile(optimizer="rmsprop"): the name alone gives that optimizer with its defaults. */
START_TEST(optimizer_by_name_alone)
{
    static const char *const group = "optimizer = { name = \"sgd\"; lr = 0.1; momentum = 0.9; };";
    int rc;
    const char *msg = load_variant(group, "optimizer = \"rmsprop\";", NULL, 0, &rc);
    ck_assert_msg(rc == 0, "%s", msg);
    struct job job;
    struct dp_error err = {0};
    char text[sizeof good + 64];
    const char *at = strstr(good, group);
    snprintf(text, sizeof text, "%.*soptimizer = \"sgd\";%s", (int)(at - good), good, at + strlen(group));
    ck_assert_msg(job_load(&job, write_job("named.cfg", text), NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(job.fit.optimizer.kind, OPTIMIZER_SGD);
    ck_assert(job.fit.optimizer.lr == 0.01 && job.fit.optimizer.momentum == 0.0);
    job_free(&job);
    const char *sets[] = {"fit.optimizer=\"adam\""};
    ck_assert_msg(job_load(&job, write_job("named.cfg", text), sets, 1, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(job.fit.optimizer.kind, OPTIMIZER_ADAM);
    ck_assert(job.fit.optimizer.lr == 0.001 && job.fit.optimizer.epsilon == 1e-7);
    job_free(&job);
    expect_error(group, "optimizer = \"lamb\";", "variant.cfg:13: fit.optimizer: \"lamb\" is not one of");
    expect_error(group, "optimizer = 3;", "variant.cfg:13: fit.optimizer: expected an optimizer name");
}
END_TEST

/* Keras' spellings of names (class names, snake_case function names) are accepted as ours. */
START_TEST(keras_spellings_of_names)
{
    static const char text[] =
        "data = { file = \"d.h5\"; };\n"
        "model = ( { type = \"Conv2D\"; filters = 4; kernel_size = 3; activation = \"ReLU\";\n"
        "            input_shape = [28, 28, 1]; },\n"
        "          { type = \"MaxPooling2D\"; pool_size = 2; padding = \"Same\"; }, { type = \"max_pooling2d\"; },\n"
        "          { type = \"Flatten\"; }, { type = \"Dense\"; units = 10; activation = \"Softmax\"; } );\n"
        "fit = { loss = \"SparseCategoricalCrossentropy\"; optimizer = { name = \"RMSprop\"; }; };\n";
    struct job job;
    struct dp_error err = {0};
    ck_assert_msg(job_load(&job, write_job("keras.cfg", text), NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(job.nlayers, 5);
    static const enum layer_kind kinds[] = {LAYER_KIND_CONV2D, LAYER_KIND_MAXPOOL2D, LAYER_KIND_MAXPOOL2D,
                                            LAYER_KIND_FLATTEN, LAYER_KIND_DENSE};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(job.layers[i].kind, kinds[i]);
    ck_assert_int_eq(job.layers[0].u.conv2d.activation, ACTIVATION_RELU);
    ck_assert_int_eq(job.layers[0].input_shape.rank, 3);
    ck_assert(job.layers[0].input_shape.dims[0] == 28 && job.layers[0].input_shape.dims[2] == 1);
    ck_assert_int_eq(job.layers[1].input_shape.rank, 0);
    ck_assert_int_eq(job.layers[1].u.pool2d.same, 1);
    ck_assert_int_eq(job.layers[4].u.dense.activation, ACTIVATION_SOFTMAX);
    ck_assert_int_eq(job.fit.loss, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    ck_assert_int_eq(job.fit.optimizer.kind, OPTIMIZER_RMSPROP);
    job_free(&job);
    static const char regression[] =
        "data = { file = \"d.h5\"; };\nmodel = ( { type = \"dense\"; units = 1; } );\n"
        "fit = { loss = \"mean_squared_error\"; metrics = [\"MeanAbsoluteError\"]; };\n";
    ck_assert_msg(job_load(&job, write_job("keras_mse.cfg", regression), NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(job.fit.loss, LOSS_MSE);
    ck_assert_int_eq(job.fit.metric, METRIC_MAE);
    job_free(&job);
    expect_error("rate = 0.5;", "rate = 0.5; input_shape = [8];",
                 "variant.cfg:5: model.[1].input_shape: belongs on the first layer");
    expect_error("units = 8;", "units = 8; input_shape = [0, 3];",
                 "variant.cfg:4: model.[0].input_shape: expected the shape");
    expect_error("type = \"dense\"; units = 8;", "type = \"Dence\"; units = 8;",
                 "variant.cfg:4: model.[0].type: \"Dence\" is not one of \"dense\"");
}
END_TEST

/* Keras 2.3 and later: learning_rate for lr. */
START_TEST(learning_rate_as_keras_names_it)
{
    static const char *const group = "optimizer = { name = \"sgd\"; lr = 0.1; momentum = 0.9; };";
    static const char *const keras = "optimizer = { name = \"sgd\"; learning_rate = 0.25; momentum = 0.9; };";
    char text[sizeof good + 64];
    const char *at = strstr(good, group);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, keras, at + strlen(group));
    struct job job;
    struct dp_error err = {0};
    ck_assert_msg(job_load(&job, write_job("lr.cfg", text), NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert(job.fit.optimizer.lr == 0.25);
    job_free(&job);
    const char *sets[] = {"fit.optimizer.lr=0.5"}; /* a --set of the other name wins over the file */
    ck_assert_msg(job_load(&job, write_job("lr.cfg", text), sets, 1, &err) == 0, "%s", err.msg);
    ck_assert(job.fit.optimizer.lr == 0.5);
    job_free(&job);
    expect_error("lr = 0.1;", "lr = 0.1; learning_rate = 0.2;",
                 "variant.cfg:13: fit.optimizer.learning_rate: give lr or learning_rate, not both");
}
END_TEST

START_TEST(overrides_apply_and_are_validated)
{
    const char *sets[] = {"fit.epochs=3", "fit.optimizer.lr=0.5", "model.[0].units=12", "name=renamed",
                          "fit.seed=9"};
    struct job job;
    struct dp_error err = {0};
    ck_assert_msg(job_load(&job, write_job("good.cfg", good), sets, 5, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(job.fit.epochs, 3);
    ck_assert(job.fit.optimizer.lr == 0.5);
    ck_assert_int_eq(job.layers[0].u.dense.units, 12);
    ck_assert_str_eq(job.name, "renamed");
    ck_assert_int_eq(job.fit.seed, 9);
    ck_assert(strstr(job.resolved_text, "epochs = 3") != NULL);
    job_free(&job);

    int rc;
    const char *bad1[] = {"fit.epochs=three"};
    const char *msg = load_variant("x", "x", bad1, 1, &rc);
    ck_assert(rc != 0 && strstr(msg, "--set fit.epochs") && strstr(msg, "integer"));
    const char *bad2[] = {"fit.epochs=-1"};
    msg = load_variant("x", "x", bad2, 1, &rc);
    ck_assert_msg(rc != 0 && strstr(msg, "--set fit.epochs") && strstr(msg, "out of range"), "%s", msg);
    const char *bad3[] = {"fit.optimizr.lr=1"};
    msg = load_variant("x", "x", bad3, 1, &rc);
    ck_assert_msg(rc != 0 && strstr(msg, "optimizr"), "%s", msg);
    const char *bad4[] = {"fit.warmup=5"};
    msg = load_variant("x", "x", bad4, 1, &rc);
    ck_assert_msg(rc != 0 && strstr(msg, "--set fit.warmup") && strstr(msg, "unknown key"), "%s", msg);
    const char *bad5[] = {"fit"};
    msg = load_variant("x", "x", bad5, 1, &rc);
    ck_assert_msg(rc != 0 && strstr(msg, "KEY=VALUE"), "%s", msg);
}
END_TEST

START_TEST(errors_name_file_and_line)
{
    expect_error("  epochs = 4;", "  epochs = 4;\n  epochz = 5;", "variant.cfg:10: fit.epochz: unknown key");
    /* Keras' fit(shuffle=...) and a bare lr: the message says where they belong */
    expect_error("  epochs = 4;", "  epochs = 4;\n  shuffle = false;",
                 "variant.cfg:10: fit.shuffle: unknown key 'shuffle' here; it belongs in data");
    expect_error("  epochs = 4;", "  epochs = 4;\n  lr = 0.1;",
                 "fit.lr: unknown key 'lr' here; it belongs in fit.optimizer");
    expect_error("units = 8;", "units = \"8\";", "variant.cfg:4:");
    expect_error("batch_size = 16;", "batch_size = 16.5;", "variant.cfg:10: fit.batch_size: expected an integer");
    expect_error("batch_size = 16;", "batch_size = 0;", "variant.cfg:10: fit.batch_size: 0 is out of range");
    expect_error("rate = 0.5;", "rate = 1.5;", "variant.cfg:5:");
    expect_error("activation = \"relu\"", "activation = \"rleu\"", "variant.cfg:4:");
    expect_error("type = \"dropout\"", "type = \"dropuot\"", "variant.cfg:5:");
    expect_error("lr = 0.1;", "lr = -0.1;", "variant.cfg:13: fit.optimizer.lr");
}
END_TEST

START_TEST(syntax_and_structure_errors)
{
    expect_error("units = 8;", "units = ;", "variant.cfg:4: syntax error");
    expect_error("epochs = 4;", "epochs = = 4;", "variant.cfg:9: syntax error");
    int rc;
    struct job job;
    struct dp_error err = {0};
    rc = job_load(&job, write_job("nofit.cfg", "data = { file = \"x.h5\"; };\nmodel = ({ type = \"dense\"; units = 1; });\n"),
                  NULL, 0, &err);
    ck_assert(rc != 0 && strstr(err.msg, "nofit.cfg") && strstr(err.msg, "missing section 'fit'"));
    rc = job_load(&job, write_job("nomodel.cfg", "data = { file = \"x.h5\"; };\nfit = { loss = \"mse\"; };\n"),
                  NULL, 0, &err);
    ck_assert(rc != 0 && strstr(err.msg, "missing section 'model'"));
    rc = job_load(&job, "/nonexistent/job.cfg", NULL, 0, &err);
    ck_assert(rc != 0 && strstr(err.msg, "/nonexistent/job.cfg") && err.code == DP_EXIT_INPUT);
    expect_error("loss = \"sparse_categorical_crossentropy\";", "loss = \"binary_crossentropy\";",
                 "needs a sigmoid output layer");
    expect_error("metrics = [\"accuracy\"];", "metrics = [\"f1_score\"];", "variant.cfg:12:"); /* not a metric dptrain has */
    expect_error("  epochs = 4;", "  epochs = 4;\n  precision = \"fp16\";", "variant.cfg:10: fit.precision");
    expect_error("  epochs = 4;", "  epochs = 4;\n  allreduce = \"gloo\";", "variant.cfg:10: fit.allreduce");
    expect_error("  epochs = 4;", "  epochs = 4;\n  nccl_timeout = 0;", "variant.cfg:10: fit.nccl_timeout");
    expect_error("  epochs = 4;", "  epochs = 4;\n  early_stopping = { monitor = \"val_mae\"; };",
                 "does not compute it");
    expect_error("momentum = 0.9; };", "momentum = 0.9; };\n  seed = { a = 1; };", "variant.cfg:14: fit.seed: expected an integer");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jobfile");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, good_job_loads_with_defaults);
    tcase_add_test(tc, optimizer_by_name_alone);
    tcase_add_test(tc, keras_spellings_of_names);
    tcase_add_test(tc, learning_rate_as_keras_names_it);
    tcase_add_test(tc, overrides_apply_and_are_validated);
    tcase_add_test(tc, errors_name_file_and_line);
    tcase_add_test(tc, syntax_and_structure_errors);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}

/* dptrain import keras MODEL -o JOB.cfg: a Keras model's configuration as a job file
 * (job/keras_import.c), from Keras 3's config.json or a legacy whole-model .h5. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "base/h5io.h"
#include "base/zip_archive.h"
#include "cmd/cli.h"
#include "job/jobfile.h"
#include "keras/keras_import.h"

const char keras_import_help[] =
    "usage: dptrain import keras MODEL -o JOB.cfg\n"
    "\n"
    "Writes the job file of a Keras Sequential model: its layers with their options, and the\n"
    "optimizer, loss and metric it was compiled with; the data section is left for you. MODEL is\n"
    "a .keras file (model.save(\"x.keras\")), its config.json, or a legacy whole-model .h5\n"
    "(model.save(\"x.h5\")). Its weights load with --weights or fit.initial_weights.\n"
    "What dptrain cannot train (a layer kind, an option) is refused, naming the layer and option.\n";

static char *read_text(const char *path, struct dp_error *err)
{
    if (file_check_input(path, err) != 0)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, n;
    char *s = dp_malloc(cap, "the model configuration");
    while ((n = fread(s + len, 1, cap - len - 1, f)) > 0)
        if ((len += n) + 1 == cap)
            s = dp_realloc(s, cap *= 2, "the model configuration");
    s[len] = 0;
    fclose(f);
    return s;
}

/* The job text from MODEL: a legacy .h5's model_config and training_config, or a JSON file */
static char *model_job(const char *model, struct dp_error *err)
{
    if (file_check_input(model, err) != 0)
        return NULL;
    if (zip_archive_is_zip(model)) { /* a .keras file: its config.json holds compile_config too */
        char *config = NULL;
        size_t len = 0;
        if (zip_archive_read(model, "config.json", &config, &len, err) != 0)
            return NULL;
        char *job = keras_config_to_job(config, NULL, model, err);
        free(config);
        return job;
    }
    if (H5Fis_hdf5(model) > 0) {
        hid_t f = h5io_open_read(model, err);
        if (f < 0)
            return NULL;
        char *config = NULL, *training = NULL, *job = NULL;
        if (H5Aexists(f, "model_config") <= 0)
            dp_error_set(err, DP_EXIT_INPUT, "%s: no model_config attribute (a weights file, not a whole model saved "
                         "with model.save)", model);
        else if (h5io_read_attr_string(f, "model_config", &config, model, err) == 0 &&
                 (H5Aexists(f, "training_config") <= 0 ||
                  h5io_read_attr_string(f, "training_config", &training, model, err) == 0))
            job = keras_config_to_job(config, training, model, err);
        free(config);
        free(training);
        H5Fclose(f);
        return job;
    }
    char *text = read_text(model, err);
    char *job = text ? keras_config_to_job(text, NULL, model, err) : NULL;
    free(text);
    return job;
}

int cmd_import_keras(int argc, char **argv)
{
    const char *model = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(keras_import_help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            out = cli_value(argc, argv, &i, "-o");
        } else if (argv[i][0] != '-' && !model) {
            model = argv[i];
        } else {
            cli_unknown("import keras", argv[i]);
        }
    }
    if (!model || !out)
        dp_die(DP_EXIT_INPUT, "import keras: needs MODEL and -o JOB.cfg (see 'dptrain import keras --help')");
    struct dp_error err = {0};
    const char *inputs[1] = {model};
    if (file_check_not_input(out, inputs, 1, &err) != 0 || file_check_output(out, &err) != 0)
        dp_die_error(&err);
    char *text = model_job(model, &err);
    if (!text)
        dp_die_error(&err);
    /* What was written must be a job dptrain takes, or it is not written */
    struct job job;
    if (job_load_text(&job, model, text, &err) != 0)
        dp_die(DP_EXIT_INPUT, "%s: the job made from it is refused: %s", model, err.msg);
    struct atomic_file f;
    if (atomic_file_open(&f, out, &err) != 0)
        dp_die_error(&err);
    fputs(text, f.f);
    if (atomic_file_commit(&f, &err) != 0)
        dp_die_error(&err);
    printf("%s: %d layers, loss %s, optimizer %s (from %s)\n", out, job.nlayers, loss_names[job.fit.loss],
           optimizer_names[job.fit.optimizer.kind], model);
    job_free(&job);
    free(text);
    return 0;
}

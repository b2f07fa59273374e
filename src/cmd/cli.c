#include "cmd/cli.h"

#include "base/zip_archive.h"
#include "keras/keras_import.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/file_checks.h"
#include "base/h5io.h"
#include "train/weights_file.h"
#include "job/jobfile.h"
#include "net/backend.h"

const char *cli_value(int argc, char **argv, int *i, const char *opt)
{
    if (*i + 1 >= argc)
        dp_die(DP_EXIT_INPUT, "%s needs a value", opt);
    return argv[++*i];
}

int64_t cli_int64(const char *opt, const char *text, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        dp_die(DP_EXIT_INPUT, "%s: '%s' is not an integer", opt, text);
    if (v < min || v > max)
        dp_die(DP_EXIT_INPUT, "%s: %lld is out of range [%lld, %lld]", opt, v, (long long)min, (long long)max);
    return v;
}

double cli_double(const char *opt, const char *text, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end)
        dp_die(DP_EXIT_INPUT, "%s: '%s' is not a number", opt, text);
    if (!(v >= min && v <= max))
        dp_die(DP_EXIT_INPUT, "%s: %g is out of range [%g, %g]", opt, v, min, max);
    return v;
}

int cli_is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

void cli_unknown(const char *cmd, const char *arg)
{
    dp_die(DP_EXIT_INPUT, "%s: unknown option or extra argument '%s' (see 'dptrain %s --help')", cmd, arg, cmd);
}

/* Collects --set values; shared by fit, evaluate, predict and bench. */
int cli_collect_set(int argc, char **argv, int *i, const char ***sets, int *nsets)
{
    if (strcmp(argv[*i], "--set") && strncmp(argv[*i], "--set=", 6))
        return 0;
    const char *v = argv[*i][5] == '=' ? argv[*i] + 6 : cli_value(argc, argv, i, "--set");
    *sets = dp_realloc(*sets, (size_t)(*nsets + 1) * sizeof(char *), "overrides");
    (*sets)[(*nsets)++] = v;
    return 1;
}

void cli_load_job_or_checkpoint(const char *cmd, const char *path, const char **weights, const char **sets, int nsets,
                                struct job *job)
{
    if (*weights) {
        cli_load_job(path, sets, nsets, job);
        return;
    }
    struct dp_error err = {0};
    char *text = NULL;
    if (file_check_input(path, &err) != 0)
        dp_die_error(&err);
    int keras = zip_archive_is_zip(path);
    if (!keras && H5Fis_hdf5(path) <= 0) /* neither: a job file given without --weights */
        dp_die(DP_EXIT_INPUT, "%s: needs JOB and --weights W, or a checkpoint (best.h5, last.h5) or .keras file alone "
               "(see 'dptrain %s --help')", cmd, cmd);
    if (nsets > 0)
        dp_die(DP_EXIT_INPUT, "%s: --set needs the job file: give JOB --weights %s", cmd, path);
    if (keras) { /* the job made from the model's config.json, as 'dptrain import keras' writes it */
        char *config = NULL;
        size_t len = 0;
        if (zip_archive_read(path, "config.json", &config, &len, &err) != 0 ||
            !(text = keras_config_to_job(config, NULL, path, &err)))
            dp_die_error(&err);
        free(config);
    } else if (checkpoint_read_job_text(path, &text, &err) != 0) {
        dp_die_error(&err);
    }
    if (job_load_text(job, path, text, &err) != 0)
        dp_die_error(&err);
    free(text);
    free(sets);
    *weights = path;
    backend_set_threads(job->fit.threads);
}

void cli_load_job(const char *path, const char **sets, int nsets, struct job *job)
{
    struct dp_error err = {0};
    if (job_load(job, path, sets, nsets, &err) != 0)
        dp_die_error(&err);
    free(sets);
    backend_set_threads(job->fit.threads);
}

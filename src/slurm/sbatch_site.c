#include "slurm/sbatch_site.h"

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <string.h>

static const struct sbatch_site presets[] = {
    /* name, partition, gpu_type, constraint, cpu_partition, launcher, srun_mpi, module, signal,
     * gpus_per_node, cpus_per_task, account_required, signal_minutes */
    {"generic", "gpu", "", "", "", "srun", "pmix", "dptrain", "USR1", 8, 4, 0, 5},
    {"uva-gpupod", "gpu", "a100", "gpupod", "standard", "srun", "pmix", "dptrain", "USR1", 8, 4, 0, 5},
    {"nersc-perlmutter", "", "", "gpu", "", "srun", "pmix", "dptrain", "USR1", 4, 32, 1, 5},
};

const char *sbatch_site_names(void) { return "generic, uva-gpupod, nersc-perlmutter"; }

static int is_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 4 && !strcmp(s + n - 4, ".cfg"));
}

static int read_string(config_t *cfg, const char *path, const char *key, char *out, size_t len,
                       struct dp_error *err)
{
    config_setting_t *s = config_lookup(cfg, key);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: %s: expected a string", path, config_setting_source_line(s),
                            key);
    const char *v = config_setting_get_string(s);
    if (strlen(v) >= len)
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: %s: longer than %zu characters", path,
                            config_setting_source_line(s), key, len - 1);
    snprintf(out, len, "%s", v);
    return 0;
}

static int read_int(config_t *cfg, const char *path, const char *key, int *out, int min, int max,
                    struct dp_error *err)
{
    config_setting_t *s = config_lookup(cfg, key);
    if (!s)
        return 0;
    int t = config_setting_type(s);
    long long v = min - 1LL; /* out of range unless the type fits */
    if (t == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    else if (t == CONFIG_TYPE_INT64)
        v = config_setting_get_int64(s);
    else if (t == CONFIG_TYPE_BOOL)
        v = config_setting_get_bool(s);
    if (v < min || v > max)
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: %s: expected %s from %d to %d", path,
                            config_setting_source_line(s), key, t == CONFIG_TYPE_BOOL ? "true/false" : "an integer",
                            min, max);
    *out = (int)v;
    return 0;
}

static int load_file(struct sbatch_site *site, const char *path, struct dp_error *err)
{
    static const char *const keys[] = {"name", "partition", "gpu_type", "gpus_per_node", "constraint",
                                       "cpus_per_task", "account_required", "cpu_partition", "launcher",
                                       "srun_mpi", "module", "signal", "signal_minutes", NULL};
    FILE *f = fopen(path, "r");
    if (!f)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open site file: %s", path, strerror(errno));
    config_t cfg;
    config_init(&cfg);
    int rc = 0;
    if (config_read(&cfg, f) != CONFIG_TRUE) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%d: syntax error: %s", path, config_error_line(&cfg),
                          config_error_text(&cfg));
        goto done;
    }
    config_setting_t *root = config_root_setting(&cfg);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        int known = 0;
        for (int k = 0; keys[k]; k++)
            known |= !strcmp(keys[k], config_setting_name(s));
        if (!known) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%d: unknown key '%s' in site file", path,
                              config_setting_source_line(s), config_setting_name(s));
            goto done;
        }
    }
    *site = presets[0];
    snprintf(site->name, sizeof site->name, "%s", path);
    if (read_string(&cfg, path, "name", site->name, sizeof site->name, err) ||
        read_string(&cfg, path, "partition", site->partition, sizeof site->partition, err) ||
        read_string(&cfg, path, "gpu_type", site->gpu_type, sizeof site->gpu_type, err) ||
        read_string(&cfg, path, "constraint", site->constraint, sizeof site->constraint, err) ||
        read_string(&cfg, path, "cpu_partition", site->cpu_partition, sizeof site->cpu_partition, err) ||
        read_string(&cfg, path, "launcher", site->launcher, sizeof site->launcher, err) ||
        read_string(&cfg, path, "srun_mpi", site->srun_mpi, sizeof site->srun_mpi, err) ||
        read_string(&cfg, path, "module", site->module, sizeof site->module, err) ||
        read_string(&cfg, path, "signal", site->signal, sizeof site->signal, err) ||
        read_int(&cfg, path, "gpus_per_node", &site->gpus_per_node, 1, 64, err) ||
        read_int(&cfg, path, "cpus_per_task", &site->cpus_per_task, 1, 1024, err) ||
        read_int(&cfg, path, "account_required", &site->account_required, 0, 1, err) ||
        read_int(&cfg, path, "signal_minutes", &site->signal_minutes, 1, 600, err))
        rc = -1;
done:
    config_destroy(&cfg);
    fclose(f);
    return rc;
}

int sbatch_site_load(struct sbatch_site *site, const char *name_or_path, struct dp_error *err)
{
    if (is_path(name_or_path))
        return load_file(site, name_or_path, err);
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name_or_path)) {
            *site = presets[i];
            return 0;
        }
    return dp_error_set(err, DP_EXIT_INPUT, "--site %s: unknown site (presets: %s; or give a site file path)",
                        name_or_path, sbatch_site_names());
}

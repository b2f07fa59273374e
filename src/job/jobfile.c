/* Reading a job file, applying --set overrides, writing the resolved text. Validation of the
 * contents lives in jobfile_schema.c. */
#include "job/jobfile.h"
#include "base/file_checks.h"

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/jobfile_schema.h"

/* Parses value for setting s, keeping its type. */
static int override_set_existing(config_setting_t *s, const char *key, const char *value,
                                 struct dp_error *err)
{
    char *end = NULL;
    errno = 0;
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: {
        long long v = strtoll(value, &end, 0);
        if (errno || end == value || *end)
            return dp_error_set(err, DP_EXIT_INPUT, "--set %s=%s: expected an integer", key, value);
        if (config_setting_type(s) == CONFIG_TYPE_INT && (v > INT32_MAX || v < INT32_MIN)) {
            /* a 32-bit setting in the file: made a 64-bit one, so the value given is what the
             * schema checks (libconfig would keep only its low 32 bits) */
            config_setting_t *parent = config_setting_parent(s);
            const char *name = config_setting_name(s);
            if (!parent || !name)
                return dp_error_set(err, DP_EXIT_INPUT, "--set %s=%s: out of range", key, value);
            char *leaf = dp_strdup(name);
            config_setting_remove(parent, leaf);
            s = config_setting_add(parent, leaf, CONFIG_TYPE_INT64);
            free(leaf);
            if (!s)
                return dp_error_set(err, DP_EXIT_INPUT, "--set %s=%s: out of range", key, value);
        }
        return config_setting_set_int64(s, v) == CONFIG_TRUE ? 0 : -1;
    }
    case CONFIG_TYPE_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end)
            return dp_error_set(err, DP_EXIT_INPUT, "--set %s=%s: expected a number", key, value);
        config_setting_set_float(s, v);
        return 0;
    }
    case CONFIG_TYPE_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1"))
            config_setting_set_bool(s, 1);
        else if (!strcmp(value, "false") || !strcmp(value, "0"))
            config_setting_set_bool(s, 0);
        else
            return dp_error_set(err, DP_EXIT_INPUT, "--set %s=%s: expected true or false", key, value);
        return 0;
    case CONFIG_TYPE_STRING: {
        size_t n = strlen(value);
        if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
            char *copy = dp_strdup(value + 1);
            copy[n - 2] = 0;
            config_setting_set_string(s, copy);
            free(copy);
        } else {
            config_setting_set_string(s, value);
        }
        return 0;
    }
    default:
        return dp_error_set(err, DP_EXIT_INPUT,
                            "--set %s: only scalar settings can be overridden (this one is a group "
                            "or list)", key);
    }
}

/* Adds a new scalar to an existing group, its type guessed from the text. Unknown keys are then
 * refused by the schema like any other. */
static int override_add_new(config_t *cfg, const char *key, const char *value, struct dp_error *err)
{
    const char *dot = strrchr(key, '.');
    config_setting_t *parent;
    const char *leaf = key;
    if (dot) {
        char *parent_path = dp_strdup(key);
        parent_path[dot - key] = 0;
        parent = config_lookup(cfg, parent_path);
        free(parent_path);
        leaf = dot + 1;
        if (!parent || !config_setting_is_group(parent))
            return dp_error_set(err, DP_EXIT_INPUT, "--set %s: there is no group '%.*s' in the job",
                                key, (int)(dot - key), key);
    } else {
        parent = config_root_setting(cfg);
    }
    char *end = NULL;
    int type;
    errno = 0;
    strtoll(value, &end, 0);
    if (!errno && end != value && !*end) {
        type = CONFIG_TYPE_INT64;
    } else {
        errno = 0;
        strtod(value, &end);
        if (!errno && end != value && !*end)
            type = CONFIG_TYPE_FLOAT;
        else if (!strcmp(value, "true") || !strcmp(value, "false"))
            type = CONFIG_TYPE_BOOL;
        else
            type = CONFIG_TYPE_STRING;
    }
    config_setting_t *s = config_setting_add(parent, leaf, type);
    if (!s)
        return dp_error_set(err, DP_EXIT_INPUT, "--set %s: '%s' is not a valid setting name", key, leaf);
    return override_set_existing(s, key, value, err);
}

static int apply_overrides(config_t *cfg, const char *const *overrides, int n, struct dp_error *err)
{
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq || eq == overrides[i])
            return dp_error_set(err, DP_EXIT_INPUT, "--set '%s': expected KEY=VALUE", overrides[i]);
        char *key = dp_strdup(overrides[i]);
        key[eq - overrides[i]] = 0;
        const char *value = eq + 1;
        config_setting_t *s = config_lookup(cfg, key);
        int rc = s ? override_set_existing(s, key, value, err) : override_add_new(cfg, key, value, err);
        if (rc == 0) {
            /* Mark the setting so that schema errors say "--set KEY" instead of a file line. */
            s = config_lookup(cfg, key);
            if (s)
                config_setting_set_hook(s, (void *)&job_override_marker);
        }
        free(key);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static char *config_to_text(config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        dp_die(DP_EXIT_INTERNAL, "open_memstream failed");
    config_write(cfg, f);
    fclose(f);
    return buf;
}

static int job_from_config(struct job *job, config_t *cfg, const char *path,
                           const char *const *overrides, int noverrides, struct dp_error *err)
{
    if (apply_overrides(cfg, overrides, noverrides, err) != 0)
        return -1;
    if (job_schema_read(job, cfg, path, err) != 0)
        return -1;
    job->path = dp_strdup(path);
    job->resolved_text = config_to_text(cfg);
    return 0;
}

/* libconfig reads a C string, so a NUL byte would end the job file there (what follows silently
 * ignored), and it drops a \x00 escape from a string: both are refused, naming the line. */
static int refuse_nul(const char *t, size_t len, size_t at, int escape, const char *path, struct dp_error *err)
{
    int line = 1;
    for (size_t i = 0; i < at && i < len; i++)
        line += t[i] == '\n';
    return dp_error_set(err, DP_EXIT_INPUT, escape ? "%s:%d: a string holds \\x00 (a NUL character), which "
                        "strings cannot hold" : "%s:%d: a NUL byte (binary data in the job file?)", path, line);
}

static int is_nul_escape(const char *t, size_t len, size_t r)
{
    return r + 3 < len && t[r] == '\\' && (t[r + 1] == 'x' || t[r + 1] == 'X') && t[r + 2] == '0' && t[r + 3] == '0';
}

/* The job file's text with its comments (#, // and C-style blocks) left out but their newlines kept, so
 * line numbers stay true: libconfig's scanner takes time quadratic in a token's length, and one
 * comment line of megabytes took minutes to parse. Strings are copied as they are. */
static char *read_without_comments(FILE *f, const char *path, struct dp_error *err)
{
    size_t cap = 1 << 16, len = 0;
    char *t = dp_malloc(cap, "the job file");
    size_t n;
    while ((n = fread(t + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap)
            t = dp_realloc(t, cap *= 2, "the job file");
    }
    t[len] = 0;
    const char *nul = memchr(t, 0, len);
    if (nul) {
        refuse_nul(t, len, (size_t)(nul - t), 0, path, err);
        free(t);
        return NULL;
    }
    size_t w = 0;
    for (size_t r = 0; r < len;) {
        if (t[r] == '"') { /* a string, escapes included */
            t[w++] = t[r++];
            while (r < len && t[r] != '"') {
                if (is_nul_escape(t, len, r)) {
                    refuse_nul(t, len, r, 1, path, err);
                    free(t);
                    return NULL;
                }
                if (t[r] == '\\' && r + 1 < len)
                    t[w++] = t[r++];
                t[w++] = t[r++];
            }
            if (r < len)
                t[w++] = t[r++];
        } else if (t[r] == '#' || (t[r] == '/' && r + 1 < len && t[r + 1] == '/')) {
            while (r < len && t[r] != '\n')
                r++;
        } else if (t[r] == '/' && r + 1 < len && t[r + 1] == '*') {
            for (r += 2; r < len && !(t[r] == '*' && r + 1 < len && t[r + 1] == '/'); r++)
                if (t[r] == '\n')
                    t[w++] = '\n';
            r = r + 2 <= len ? r + 2 : len;
        } else {
            t[w++] = t[r++];
        }
    }
    t[w] = 0;
    return t;
}

int job_load(struct job *job, const char *path, const char *const *overrides, int noverrides,
             struct dp_error *err)
{
    memset(job, 0, sizeof *job);
    if (file_check_input(path, err) != 0)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open job file: %s", path, strerror(errno));
    char *text = read_without_comments(f, path, err);
    fclose(f);
    if (!text)
        return -1;
    config_t cfg;
    config_init(&cfg);
    int ok = config_read_string(&cfg, text);
    free(text);
    if (ok != CONFIG_TRUE) {
        dp_error_set(err, DP_EXIT_INPUT, "%s:%d: syntax error: %s", path, config_error_line(&cfg),
                     config_error_text(&cfg));
        config_destroy(&cfg);
        return -1;
    }
    int rc = job_from_config(job, &cfg, path, overrides, noverrides, err);
    config_destroy(&cfg);
    if (rc != 0)
        job_free(job);
    return rc;
}

int job_load_text(struct job *job, const char *name, const char *text, struct dp_error *err)
{
    memset(job, 0, sizeof *job);
    config_t cfg;
    config_init(&cfg);
    if (config_read_string(&cfg, text) != CONFIG_TRUE) {
        dp_error_set(err, DP_EXIT_INPUT, "%s:%d: syntax error in stored job: %s", name,
                     config_error_line(&cfg), config_error_text(&cfg));
        config_destroy(&cfg);
        return -1;
    }
    int rc = job_from_config(job, &cfg, name, NULL, 0, err);
    config_destroy(&cfg);
    if (rc != 0)
        job_free(job);
    return rc;
}

void job_free(struct job *job)
{
    free(job->path);
    free(job->name);
    for (int i = 0; i < job->data.nfiles; i++)
        free(job->data.files[i]);
    free(job->data.files);
    free(job->data.validation_file);
    free(job->augment);
    free(job->layers);
    free(job->fit.initial_weights);
    free(job->resolved_text);
    memset(job, 0, sizeof *job);
}

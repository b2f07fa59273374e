#include "data/csv.h"
#include "base/file_checks.h"

#include <ctype.h>
#include <float.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The values read so far, growing as lines come. */
struct csv_values {
    double *data;
    size_t used, alloc;
};

/* One line's comma-separated numbers appended to v; returns how many, or -1 with err set naming
 * the file, line and field. */
static int64_t parse_line(char *line, struct csv_values *v, const char *path, int64_t lineno, struct dp_error *err)
{
    int64_t field = 0;
    char *p = line;
    for (;;) {
        char *end;
        errno = 0;
        while (*p == ' ' || *p == '\t')
            p++;
        double x = strtod(p, &end);
        char *after = end;
        while (*after == ' ' || *after == '\t')
            after++;
        if (end == p || errno == ERANGE || (*after != ',' && *after != 0)) {
            char tok[48];
            size_t n = strcspn(p, ",");
            snprintf(tok, sizeof tok, "%.*s", (int)(n < 40 ? n : 40), p);
            return dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: field %lld: '%s' is not a number", path,
                                (long long)lineno, (long long)field + 1, tok);
        }
        if (!isfinite(x))
            return dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: field %lld is not finite", path, (long long)lineno,
                                (long long)field + 1);
        if (fabs(x) > FLT_MAX) { /* stored as float32, where it would become infinite */
            char tok[48];
            snprintf(tok, sizeof tok, "%.*s", (int)(end - p < 40 ? end - p : 40), p);
            return dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: field %lld: %s is beyond the float32 range", path,
                                (long long)lineno, (long long)field + 1, tok);
        }
        if (v->used == v->alloc) {
            v->alloc = v->alloc ? v->alloc * 2 : 4096;
            v->data = dp_realloc(v->data, v->alloc * sizeof(double), "CSV values");
        }
        v->data[v->used++] = x;
        field++;
        if (*after == 0)
            return field;
        p = after + 1;
    }
}

/* Whether a line (its end-of-line characters removed) holds only white space. */
static int blank_line(char *line, ssize_t *len)
{
    while (*len > 0 && (line[*len - 1] == '\n' || line[*len - 1] == '\r'))
        line[--*len] = 0;
    for (ssize_t i = 0; i < *len; i++)
        if (!isspace((unsigned char)line[i]))
            return 0;
    return 1;
}

int csv_read(const char *path, double **out, int64_t *rows, int64_t *cols, struct dp_error *err)
{
    *out = NULL;
    *rows = *cols = 0;
    if (file_check_input(path, err) != 0)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0, ncols = -1, nrows = 0, blank_after = 0;
    struct csv_values v = {0};
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (blank_line(line, &len)) {
            if (!blank_after)
                blank_after = lineno;
            continue;
        }
        if (blank_after) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: blank line inside the data", path, (long long)blank_after);
            break;
        }
        int64_t fields = parse_line(line, &v, path, lineno, err);
        if (fields < 0) {
            rc = -1;
            break;
        }
        if (ncols < 0) {
            ncols = fields;
        } else if (fields != ncols) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: %lld fields, but line 1 has %lld", path,
                              (long long)lineno, (long long)fields, (long long)ncols);
            break;
        }
        nrows++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && nrows == 0)
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: no data rows", path);
    if (rc) {
        free(v.data);
        return -1;
    }
    *out = v.data;
    *rows = nrows;
    *cols = ncols;
    return 0;
}

#include "data/csv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int csv_read(const char *path, double **out, int64_t *rows, int64_t *cols, struct dp_error *err)
{
    *out = NULL;
    *rows = *cols = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, used = 0, alloc = 0;
    ssize_t len;
    int64_t lineno = 0, ncols = -1, nrows = 0, blank_after = 0;
    double *data = NULL;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        int blank = 1;
        for (ssize_t i = 0; i < len; i++)
            blank &= isspace((unsigned char)line[i]) != 0;
        if (blank) {
            if (!blank_after)
                blank_after = lineno;
            continue;
        }
        if (blank_after) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: blank line inside the data", path, (long long)blank_after);
            break;
        }
        int64_t field = 0;
        char *p = line;
        for (;;) {
            char *end;
            errno = 0;
            while (*p == ' ' || *p == '\t')
                p++;
            double v = strtod(p, &end);
            char *after = end;
            while (*after == ' ' || *after == '\t')
                after++;
            if (end == p || errno == ERANGE || (*after != ',' && *after != 0)) {
                char tok[48];
                size_t n = strcspn(p, ",");
                snprintf(tok, sizeof tok, "%.*s", (int)(n < 40 ? n : 40), p);
                rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: field %lld: '%s' is not a number", path,
                                  (long long)lineno, (long long)field + 1, tok);
                break;
            }
            if (!isfinite(v)) {
                rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: field %lld is not finite", path,
                                  (long long)lineno, (long long)field + 1);
                break;
            }
            if (used == alloc) {
                alloc = alloc ? alloc * 2 : 4096;
                data = dp_realloc(data, alloc * sizeof(double), "CSV values");
            }
            data[used++] = v;
            field++;
            if (*after == 0)
                break;
            p = after + 1;
        }
        if (rc)
            break;
        if (ncols < 0) {
            ncols = field;
        } else if (field != ncols) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s:%lld: %lld fields, but line 1 has %lld", path,
                              (long long)lineno, (long long)field, (long long)ncols);
            break;
        }
        nrows++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && nrows == 0)
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: no data rows", path);
    if (rc) {
        free(data);
        return -1;
    }
    *out = data;
    *rows = nrows;
    *cols = ncols;
    return 0;
}

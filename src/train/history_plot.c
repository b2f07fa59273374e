#include "train/history_plot.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/gnuplot.h"

enum { COL_EPOCH, COL_LOSS, COL_METRIC, COL_VAL_LOSS, COL_VAL_METRIC, COL_LR, NCOLS };

struct run_history {
    char title[256];
    char metric[64];   /* the metric's name, "" when the run had none */
    int64_t rows;
    double *v;         /* (rows, NCOLS), NaN where empty */
};

/* history.csv as fit writes it: a header naming the columns, numbers or empty fields */
static int read_history_csv(struct run_history *r, const char *run_dir, struct dp_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/history.csv", run_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open: %s (is %s a run directory of dptrain fit?)", path,
                            strerror(errno), run_dir);
    char line[4096];
    int where[NCOLS], ncol = 0;
    for (int c = 0; c < NCOLS; c++)
        where[c] = -1;
    if (!fgets(line, sizeof line, f) || strncmp(line, "epoch,", 6)) {
        fclose(f);
        return dp_error_set(err, DP_EXIT_INPUT, "%s: not a history.csv of dptrain fit (no epoch,... header)", path);
    }
    for (char *save = NULL, *tok = strtok_r(line, ",\r\n", &save); tok; tok = strtok_r(NULL, ",\r\n", &save), ncol++) {
        if (!strcmp(tok, "epoch"))
            where[COL_EPOCH] = ncol;
        else if (!strcmp(tok, "loss"))
            where[COL_LOSS] = ncol;
        else if (!strcmp(tok, "val_loss"))
            where[COL_VAL_LOSS] = ncol;
        else if (!strcmp(tok, "lr"))
            where[COL_LR] = ncol;
        else if (!strncmp(tok, "val_", 4))
            where[COL_VAL_METRIC] = ncol;
        else if (strcmp(tok, "seconds")) {
            where[COL_METRIC] = ncol;
            snprintf(r->metric, sizeof r->metric, "%s", tok);
        }
    }
    int64_t cap = 64;
    r->v = dp_malloc((size_t)cap * NCOLS * sizeof(double), "a history");
    while (fgets(line, sizeof line, f)) {
        if (r->rows == cap)
            r->v = dp_realloc(r->v, (size_t)(cap *= 2) * NCOLS * sizeof(double), "a history");
        double fields[32];
        int n = 0;
        for (char *p = line; n < 32;) {
            char *end;
            double v = strtod(p, &end);
            fields[n++] = end == p ? NAN : v;
            p = strchr(end, ',');
            if (!p)
                break;
            p++;
        }
        for (int c = 0; c < NCOLS; c++)
            r->v[r->rows * NCOLS + c] = where[c] >= 0 && where[c] < n ? fields[where[c]] : NAN;
        r->rows++;
    }
    fclose(f);
    if (r->rows == 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: no epochs yet", path);
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", run_dir);
    size_t len = strlen(copy);
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = 0;
    gnuplot_title(r->title, sizeof r->title, basename(copy));
    return 0;
}

static int column_has_values(const struct run_history *r, int col)
{
    for (int64_t i = 0; i < r->rows; i++)
        if (!isnan(r->v[i * NCOLS + col]))
            return 1;
    return 0;
}

/* The rate moved by more than 0.1% (SGD's decay of 1e-6 a step does not count) */
static int lr_changed(const struct run_history *r)
{
    for (int64_t i = 1; i < r->rows; i++)
        if (fabs(r->v[i * NCOLS + COL_LR] - r->v[COL_LR]) > 1e-3 * fabs(r->v[COL_LR]))
            return 1;
    return 0;
}

/* One panel: for each run, train (solid) and validation (dashed) of the column pair */
static void panel(FILE *gp, const struct run_history *runs, int nruns, int col, int val_col, const char *ylabel,
                  int log_y)
{
    fprintf(gp, "set ylabel '%s'\n%sset logscale y\n", ylabel, log_y ? "" : "un");
    fprintf(gp, "plot ");
    int first = 1;
    for (int i = 0; i < nruns; i++) {
        const char *name = col == COL_METRIC ? runs[i].metric : col == COL_LR ? "learning rate" : "loss";
        if (!column_has_values(&runs[i], col))
            continue;
        fprintf(gp, "%s$run%d using 1:%d with linespoints lw 2 pt 7 ps 0.6 lc %d title '%s %s'", first ? "" : ", ", i,
                col + 1, i + 1, runs[i].title, name);
        first = 0;
        if (val_col >= 0 && column_has_values(&runs[i], val_col))
            fprintf(gp, ", $run%d using 1:%d with linespoints lw 2 dt 2 pt 6 ps 0.6 lc %d title '%s val_%s'", i,
                    val_col + 1, i + 1, runs[i].title, name);
    }
    fprintf(gp, "\n");
}

int history_plot(char *const *run_dirs, int nruns, const char *png, struct dp_error *err)
{
    struct run_history *runs = dp_calloc((size_t)nruns, sizeof *runs, "histories");
    int rc = 0;
    for (int i = 0; i < nruns && rc == 0; i++)
        rc = read_history_csv(&runs[i], run_dirs[i], err);
    int with_metric = 0, with_lr = 0, same_metric = 1;
    for (int i = 0; i < nruns && rc == 0; i++) {
        with_metric |= column_has_values(&runs[i], COL_METRIC);
        with_lr |= lr_changed(&runs[i]);
        same_metric &= !strcmp(runs[i].metric, runs[0].metric);
    }
    char dir[4200], tmp[4300];
    snprintf(dir, sizeof dir, "%s", png);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : png;
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", base, (long)getpid());
    pid_t pid = -1;
    FILE *gp = rc == 0 ? gnuplot_start(dir, &pid) : NULL;
    if (rc == 0 && !gp)
        rc = 1;
    if (gp) {
        int panels = 1 + with_metric + with_lr;
        fprintf(gp, "set terminal pngcairo size %d,%d noenhanced\nset output '%s'\n", 460 * panels + 40,
                420 + 20 * nruns, tmp);
        for (int i = 0; i < nruns; i++) {
            fprintf(gp, "$run%d << EOD\n", i);
            for (int64_t r = 0; r < runs[i].rows; r++) {
                for (int c = 0; c < NCOLS; c++)
                    fprintf(gp, "%s%.9g", c ? " " : "", runs[i].v[r * NCOLS + c]);
                fprintf(gp, "\n");
            }
            fprintf(gp, "EOD\n");
        }
        fprintf(gp, "set multiplot layout 1,%d title 'learning curves'\nset grid\nset key outside below\n"
                    "set xlabel 'epoch'\nset xtics nomirror\nset mxtics\n", panels);
        panel(gp, runs, nruns, COL_LOSS, COL_VAL_LOSS, "loss", 0);
        if (with_metric)
            panel(gp, runs, nruns, COL_METRIC, COL_VAL_METRIC, same_metric ? runs[0].metric : "metric", 0);
        if (with_lr)
            panel(gp, runs, nruns, COL_LR, -1, "learning rate", 1);
        fprintf(gp, "unset multiplot\nset output\n");
        if (gnuplot_finish(gp, pid, dir) != 0) {
            rc = 1;
        } else {
            char from[8600], to[4200];
            snprintf(from, sizeof from, "%s/%s", dir, tmp);
            snprintf(to, sizeof to, "%s", png);
            if (rename(from, to) != 0)
                rc = dp_error_set(err, DP_EXIT_INTERNAL, "%s: cannot rename the plot into place: %s", png, strerror(errno));
        }
        if (rc != 0) {
            char from[8600];
            snprintf(from, sizeof from, "%s/%s", dir, tmp);
            unlink(from);
        }
    }
    for (int i = 0; i < nruns; i++)
        free(runs[i].v);
    free(runs);
    return rc;
}

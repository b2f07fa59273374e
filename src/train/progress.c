#include "train/progress.h"

#include <math.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/timeutil.h"

#define BAR_WIDTH 30

void progress_begin(struct progress *p, int64_t epoch, int64_t epochs, int64_t total_steps,
                    const char *metric_name, int tty)
{
    p->tty = tty;
    p->total_steps = total_steps;
    p->epoch = epoch;
    p->epochs = epochs;
    p->start = time_now();
    p->last_draw = 0.0;
    p->metric_name = metric_name;
    p->tail[0] = 0;
    p->lr = NAN;
    p->every = 0;
    if (tty) {
        printf("Epoch %lld/%lld\n", (long long)epoch + 1, (long long)epochs);
        fflush(stdout);
    }
}

static void format_duration(char *buf, size_t len, double s)
{
    if (s >= 3600)
        snprintf(buf, len, "%d:%02d:%02d", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
    else if (s >= 60)
        snprintf(buf, len, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, len, "%ds", (int)s);
}

static void draw_bar_of(int64_t step, int64_t total, int width)
{
    int filled = total > 0 ? (int)(width * step / total) : width;
    printf("%lld/%lld [", (long long)step, (long long)total);
    for (int i = 0; i < width; i++)
        putchar(i < filled ? '=' : (i == filled && step < total ? '>' : '.'));
    printf("]");
}

static void draw_bar(int64_t step, int64_t total) { draw_bar_of(step, total, BAR_WIDTH); }

/* The terminal's width (80 when it cannot be told) */
static int terminal_columns(void)
{
    struct winsize ws;
    return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

/* Lines mode: the epoch so far, as a line of its own, so a log shows life within a long epoch */
static void progress_line(struct progress *p, int64_t step, double loss, double metric, double now)
{
    char eta[32];
    double elapsed = now - p->start;
    format_duration(eta, sizeof eta, step > 0 ? elapsed / (double)step * (double)(p->total_steps - step) : 0);
    printf("Epoch %lld/%lld - %lld/%lld - ETA: %s - loss: %.4f", (long long)p->epoch + 1, (long long)p->epochs,
           (long long)step, (long long)p->total_steps, eta, loss);
    if (p->metric_name && !isnan(metric)) /* auc: known at the epoch's end only */
        printf(" - %s: %.4f", p->metric_name, metric);
    printf("\n");
    fflush(stdout);
}

void progress_update(struct progress *p, int64_t step, double loss, double metric)
{
    double now = time_now();
    if (!p->tty) {
        if (p->every > 0 && step < p->total_steps && now - (p->last_draw > 0 ? p->last_draw : p->start) >= p->every) {
            p->last_draw = now;
            progress_line(p, step, loss, metric, now);
        }
        return;
    }
    if (now - p->last_draw < 0.1 && step < p->total_steps)
        return;
    p->last_draw = now;
    double elapsed = now - p->start;
    char eta[32];
    format_duration(eta, sizeof eta, step > 0 ? elapsed / (double)step * (double)(p->total_steps - step) : 0);
    /* The live line must fit the terminal, or every redraw wraps and scrolls: the bar narrows
     * first, then the figures are cut. */
    char counts[48], rest[160];
    int nc = snprintf(counts, sizeof counts, "%lld/%lld []", (long long)step, (long long)p->total_steps);
    int nr = snprintf(rest, sizeof rest, " - ETA: %s - loss: %.4f", eta, loss);
    if (p->metric_name && !isnan(metric) && nr > 0 && (size_t)nr < sizeof rest)
        nr += snprintf(rest + nr, sizeof rest - (size_t)nr, " - %s: %.4f", p->metric_name, metric);
    int cols = terminal_columns() - 1, width = cols - nc - nr;
    width = width > BAR_WIDTH ? BAR_WIDTH : width < 0 ? 0 : width;
    if (nc + width + nr > cols && cols - nc - width >= 0 && (size_t)(cols - nc - width) < sizeof rest)
        rest[cols - nc - width] = 0;
    printf("\r");
    draw_bar_of(step, p->total_steps, width);
    printf("%s\033[K", rest);
    fflush(stdout);
}

void progress_end(struct progress *p, int64_t steps, double loss, double metric, double val_loss,
                  double val_metric)
{
    double elapsed = time_now() - p->start;
    double per_step = steps > 0 ? elapsed / (double)steps : 0.0;
    char total[32], step_time[32];
    format_duration(total, sizeof total, elapsed);
    if (per_step >= 1.0)
        snprintf(step_time, sizeof step_time, "%.1fs/step", per_step);
    else if (per_step >= 1e-3)
        snprintf(step_time, sizeof step_time, "%.0fms/step", per_step * 1e3);
    else
        snprintf(step_time, sizeof step_time, "%.0fus/step", per_step * 1e6);
    if (p->tty) {
        printf("\r");
        draw_bar(steps, p->total_steps);
    } else {
        printf("Epoch %lld/%lld - %lld/%lld", (long long)p->epoch + 1, (long long)p->epochs,
               (long long)steps, (long long)p->total_steps);
    }
    printf(" - %s %s - loss: %.4f", total, step_time, loss);
    if (p->metric_name && !isnan(metric)) /* auc: known at the epoch's end only */
        printf(" - %s: %.4f", p->metric_name, metric);
    if (!isnan(val_loss)) {
        printf(" - val_loss: %.4f", val_loss);
        if (p->metric_name)
            printf(" - val_%s: %.4f", p->metric_name, val_metric);
    }
    if (!isnan(p->lr))
        printf(" - learning_rate: %.4g", p->lr);
    fputs(p->tail, stdout);
    if (p->tty)
        printf("\033[K");
    printf("\n");
    fflush(stdout);
}

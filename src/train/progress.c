#include "train/progress.h"

#include <math.h>
#include <stdio.h>

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

static void draw_bar(int64_t step, int64_t total)
{
    int filled = total > 0 ? (int)(BAR_WIDTH * step / total) : BAR_WIDTH;
    printf("%lld/%lld [", (long long)step, (long long)total);
    for (int i = 0; i < BAR_WIDTH; i++)
        putchar(i < filled ? '=' : (i == filled && step < total ? '>' : '.'));
    printf("]");
}

/* Lines mode: the epoch so far, as a line of its own, so a log shows life within a long epoch */
static void progress_line(struct progress *p, int64_t step, double loss, double metric, double now)
{
    char eta[32];
    double elapsed = now - p->start;
    format_duration(eta, sizeof eta, step > 0 ? elapsed / (double)step * (double)(p->total_steps - step) : 0);
    printf("Epoch %lld/%lld - %lld/%lld - ETA: %s - loss: %.4f", (long long)p->epoch + 1, (long long)p->epochs,
           (long long)step, (long long)p->total_steps, eta, loss);
    if (p->metric_name)
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
    printf("\r");
    draw_bar(step, p->total_steps);
    printf(" - ETA: %s - loss: %.4f", eta, loss);
    if (p->metric_name)
        printf(" - %s: %.4f", p->metric_name, metric);
    printf("\033[K");
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
    if (p->metric_name)
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

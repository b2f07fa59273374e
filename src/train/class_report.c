#include "train/class_report.h"

#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0.0;
}

void class_report_make(struct class_report *r, const int64_t *confusion, int64_t classes)
{
    memset(r, 0, sizeof *r);
    r->classes = classes;
    r->per_class = dp_calloc((size_t)classes, sizeof *r->per_class, "a classification report");
    int64_t correct = 0;
    for (int64_t c = 0; c < classes; c++) {
        int64_t tp = confusion[c * classes + c], actual = 0, predicted = 0;
        for (int64_t o = 0; o < classes; o++) {
            actual += confusion[c * classes + o];
            predicted += confusion[o * classes + c];
        }
        struct class_scores *s = &r->per_class[c];
        s->precision = ratio((double)tp, (double)predicted);
        s->recall = ratio((double)tp, (double)actual);
        s->f1 = ratio(2 * s->precision * s->recall, s->precision + s->recall);
        s->support = actual;
        correct += tp;
        r->total += actual;
    }
    r->accuracy = ratio((double)correct, (double)r->total);
    for (int64_t c = 0; c < classes; c++) {
        const struct class_scores *s = &r->per_class[c];
        double w = ratio((double)s->support, (double)r->total);
        r->macro.precision += s->precision / (double)classes;
        r->macro.recall += s->recall / (double)classes;
        r->macro.f1 += s->f1 / (double)classes;
        r->weighted.precision += s->precision * w;
        r->weighted.recall += s->recall * w;
        r->weighted.f1 += s->f1 * w;
    }
    r->macro.support = r->weighted.support = r->total;
}

void class_report_free(struct class_report *r)
{
    free(r->per_class);
    r->per_class = NULL;
}

static void class_name(char *out, size_t len, int64_t c, char *const *names)
{
    if (names && names[c])
        snprintf(out, len, "%s", names[c]);
    else
        snprintf(out, len, "%lld", (long long)c);
}

void class_report_print(FILE *out, const struct class_report *r, char *const *names)
{
    int width = 12;
    char name[256];
    for (int64_t c = 0; c < r->classes; c++) {
        class_name(name, sizeof name, c, names);
        width = (int)strlen(name) > width ? (int)strlen(name) : width;
    }
    fprintf(out, "%*s %9s %9s %9s %9s\n\n", width, "", "precision", "recall", "f1-score", "support");
    for (int64_t c = 0; c < r->classes; c++) {
        const struct class_scores *s = &r->per_class[c];
        class_name(name, sizeof name, c, names);
        fprintf(out, "%*s %9.4f %9.4f %9.4f %9lld\n", width, name, s->precision, s->recall, s->f1,
                (long long)s->support);
    }
    fprintf(out, "\n%*s %9s %9s %9.4f %9lld\n", width, "accuracy", "", "", r->accuracy, (long long)r->total);
    fprintf(out, "%*s %9.4f %9.4f %9.4f %9lld\n", width, "macro avg", r->macro.precision, r->macro.recall, r->macro.f1,
            (long long)r->total);
    fprintf(out, "%*s %9.4f %9.4f %9.4f %9lld\n", width, "weighted avg", r->weighted.precision, r->weighted.recall,
            r->weighted.f1, (long long)r->total);
}

static json_t *scores_json(const struct class_scores *s)
{
    return json_pack("{s:f, s:f, s:f, s:I}", "precision", s->precision, "recall", s->recall, "f1-score", s->f1,
                     "support", (json_int_t)s->support);
}

json_t *class_report_json(const struct class_report *r, char *const *names)
{
    json_t *o = json_object();
    char name[256];
    for (int64_t c = 0; c < r->classes; c++) {
        class_name(name, sizeof name, c, names);
        json_object_set_new(o, name, scores_json(&r->per_class[c]));
    }
    json_object_set_new(o, "accuracy", json_real(r->accuracy));
    json_object_set_new(o, "macro avg", scores_json(&r->macro));
    json_object_set_new(o, "weighted avg", scores_json(&r->weighted));
    return o;
}

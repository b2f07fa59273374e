/* scikit-learn's classification_report from a confusion matrix: per class precision, recall, F1
 * and support, then accuracy, the macro and the support-weighted averages. A class never
 * predicted has precision 0, one never present recall 0 (scikit-learn's zero_division
 * default, without its warning). */
#ifndef DPTRAIN_CLASS_REPORT_H
#define DPTRAIN_CLASS_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

struct class_scores {
    double precision, recall, f1;
    int64_t support;
};

struct class_report {
    int64_t classes;
    struct class_scores *per_class;   /* (classes) */
    struct class_scores macro, weighted;
    double accuracy;
    int64_t total;
};

/* confusion: (classes x classes), rows the true class, columns the predicted one */
void class_report_make(struct class_report *r, const int64_t *confusion, int64_t classes);
void class_report_free(struct class_report *r);

/* The table as scikit-learn prints it; names: class names (NULL: the class numbers) */
void class_report_print(FILE *out, const struct class_report *r, char *const *names);
/* {"<class>": {"precision", "recall", "f1-score", "support"}, ..., "accuracy", "macro avg",
 * "weighted avg"}: the keys of scikit-learn's output_dict */
json_t *class_report_json(const struct class_report *r, char *const *names);

#endif

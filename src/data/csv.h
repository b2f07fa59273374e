/* Numeric CSV files: comma-separated numbers, one row per line, no header. */
#ifndef DPTRAIN_CSV_H
#define DPTRAIN_CSV_H

#include <stdint.h>

#include "base/errors.h"

/* Reads the whole file into a row-major (rows, cols) matrix. A ragged row, an empty field or a
 * field that is not a number is bad input naming file, line and field. Blank lines at the end are
 * ignored. */
int csv_read(const char *path, double **out, int64_t *rows, int64_t *cols, struct dp_error *err);

#endif

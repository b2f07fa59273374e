/* JSON written through jansson: strings escaped, numbers with 9 significant digits (NaN and
 * infinities as null), in the layout dptrain's files have always had: one top-level key per line
 * (summary.json) or the whole object on one line (evaluate --json, bench), so that line tools
 * such as grep keep working on them and any JSON parser reads them. */
#ifndef DPTRAIN_JSON_OUT_H
#define DPTRAIN_JSON_OUT_H

#include <jansson.h>
#include <stdio.h>

/* A number, or null when not finite. */
json_t *json_num(double v);
/* A string; bytes that are not valid UTF-8 become '?' (JSON text is UTF-8). */
json_t *json_str(const char *s);
/* Writes the object `obj` (not consumed) to f, one key per line when multiline, else on one line,
 * and a newline. Returns 0, or -1 when f failed. */
int json_write_object(FILE *f, const json_t *obj, int multiline);

#endif

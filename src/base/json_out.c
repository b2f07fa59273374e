#include "base/json_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *json_str(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    /* not UTF-8: keep ASCII, mark the rest */
    char *clean = strdup(s);
    for (char *p = clean; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(clean);
    free(clean);
    return j;
}

static const size_t VALUE_FLAGS = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9);

/* One value as JSON text, with ", " between array items as the files always had. */
static int write_value(FILE *f, const json_t *v)
{
    if (json_is_array(v)) {
        if (fputc('[', f) == EOF)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i && fputs(", ", f) == EOF) || write_value(f, json_array_get(v, i)) != 0)
                return -1;
        return fputc(']', f) == EOF ? -1 : 0;
    }
    return json_dumpf(v, f, VALUE_FLAGS);
}

int json_write_object(FILE *f, const json_t *obj, int multiline)
{
    const char *key;
    json_t *value;
    int first = 1;
    if (fputc('{', f) == EOF)
        return -1;
    json_object_foreach((json_t *)obj, key, value) {
        json_t *k = json_string(key);
        int bad = fputs(first ? (multiline ? "\n  " : "") : (multiline ? ",\n  " : ", "), f) == EOF ||
                  json_dumpf(k, f, JSON_ENCODE_ANY) != 0 || fputs(": ", f) == EOF || write_value(f, value) != 0;
        json_decref(k);
        if (bad)
            return -1;
        first = 0;
    }
    return fputs(multiline ? "\n}\n" : "}\n", f) == EOF ? -1 : 0;
}

/* Validation of a parsed job against the schema, filling struct job. */
#ifndef DPTRAIN_JOBFILE_SCHEMA_H
#define DPTRAIN_JOBFILE_SCHEMA_H

#include <libconfig.h>

#include "job/jobfile.h"

/* Settings given by --set carry this address as their libconfig hook. */
extern const int job_override_marker;

int job_schema_read(struct job *job, config_t *cfg, const char *path, struct dp_error *err);

#endif

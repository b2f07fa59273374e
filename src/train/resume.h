/* Checks that a checkpoint fits the job being resumed: the model must be the same (layer types,
 * sizes, activations, rates); a changed epoch count or learning rate is allowed and said; other
 * changes are allowed with a warning that the run will not match an uninterrupted one. */
#ifndef DPTRAIN_RESUME_H
#define DPTRAIN_RESUME_H

#include "job/jobfile.h"

int resume_check_job(const struct job *now, const char *checkpoint_job_text, const char *checkpoint_path,
                     struct dp_error *err);

#endif

/* Weights and training state in one HDF5 file.
 *
 * The weights use the layout of Keras 2 `model.save_weights("x.h5")` (the legacy format Keras 2
 * and 3 `load_weights` read from a file ending in .h5):
 *   /                    attrs layer_names (every layer), backend, keras_version (fixed-length strings)
 *   /dense               attr weight_names = ["dense/kernel:0", "dense/bias:0"] (empty for weightless)
 *   /dense/dense/kernel:0  float32 (in, out)      /dense/dense/bias:0  float32 (out)
 * Everything else is under /dptrain: format name and version, dptrain version, the resolved job
 * text, training position, normalization statistics, optimizer state, history. */
#ifndef DPTRAIN_WEIGHTS_FILE_H
#define DPTRAIN_WEIGHTS_FILE_H

#include <stdint.h>

#include "train/history.h"
#include "net/model.h"
#include "data/normalize.h"
#include "net/optimizer.h"

#define CHECKPOINT_FORMAT "dptrain-checkpoint"
#define CHECKPOINT_FORMAT_VERSION 1

struct train_position {
    int64_t epoch;          /* epochs completed */
    int64_t step_in_epoch;  /* steps done in the epoch in progress */
    int64_t iterations;     /* optimizer updates so far */
    uint64_t seed;
    double best;            /* best monitored value so far (NaN: none) */
    int64_t best_epoch;
    int64_t wait;           /* epochs without improvement (early stopping) */
    double lr;              /* learning rate in effect */
    double es_best;         /* early stopping's best value (NaN: none) */
    /* sums of the epoch in progress, so a mid-epoch resume prints the same epoch line */
    double epoch_loss_sum, epoch_metric_sum, epoch_rows;
    double epoch_metric_den; /* precision's predicted positives, recall's actual ones */
    double train_seconds;   /* training time so far (for samples/s) */
    int64_t samples;        /* rows trained so far */
    /* ReduceLROnPlateau: the rate it set (NaN: the job's), its best value (NaN: none), epochs
     * without improvement, cooldown epochs left */
    double plateau_lr, plateau_best;
    int64_t plateau_wait, plateau_cooldown;
};

struct checkpoint_contents {
    const struct model *model;      /* weights (backend memory; downloaded here) */
    const char *job_text;
    const struct normalizer *norm;
    const struct optimizer_config *opt;
    float *const *opt_state;        /* optimizer_state_arrays() arrays in arena layout, backend memory */
    int nopt_state;
    const struct train_position *pos;
    const struct history *history;
    const float *es_best_weights;   /* host, arena layout; NULL when none */
    int input_uint8;                /* the data's features are uint8 (scaled by 1/255 on the way in) */
    char *const *class_names;       /* the training data's (NULL-terminated), or NULL */
    const double *epoch_scores;     /* mid-epoch with the auc metric: (n_epoch_scores, 2) score and 0/1 label */
    int64_t n_epoch_scores;
};

/* State read back for resuming (host memory; arrays in arena layout, NULL when absent). */
struct checkpoint_state {
    struct train_position pos;
    struct history history;
    char *job_text;
    char *optimizer;                /* optimizer name stored */
    float *opt_state[OPTIMIZER_MAX_STATE];
    int nopt_state;
    float *es_best_weights;
    struct normalizer norm;
    double *epoch_scores;           /* (n_epoch_scores, 2), or NULL */
    int64_t n_epoch_scores;
};

/* Reads everything a resume needs. The weights themselves go through weights_load. */
int checkpoint_read_state(const char *path, const struct model *m, struct checkpoint_state *st,
                          struct dp_error *err);
void checkpoint_state_free(struct checkpoint_state *st);

/* Reads only the job text stored in a checkpoint. */
int checkpoint_read_job_text(const char *path, char **text, struct dp_error *err);

/* Writes path atomically: temporary file in the same directory, fsync, rename. Refuses (returns -1
 * with err) weights that are not all finite, leaving any previous file untouched. */
int checkpoint_write(const char *path, const struct checkpoint_contents *c, struct dp_error *err);

/* Loads weights into m (already built and allocated) after checking that every layer's name and
 * every weight's shape match; differences are named. */
int weights_load(struct model *m, const char *path, struct dp_error *err);
/* The features per row the weights in path take, when the model's first layer with weights is a
 * Dense kernel named `layer` (its rows); 0 when that cannot be told from the file. */
int64_t weights_dense_input_width(const char *path, const char *layer);

/* What a checkpoint says about the model's input, for rebuilding its model without the data:
 * the sample shape (has_shape 0 in older checkpoints, which did not store it),
 * whether the data is uint8, and the optimizer's steps so far. */
struct checkpoint_input {
    struct shape shape;
    int has_shape;
    int uint8;
    int64_t iterations;
};
int checkpoint_read_input(const char *path, struct checkpoint_input *in, struct dp_error *err);

/* The class names a checkpoint (or an HDF5 data set) holds: NULL-terminated, or NULL when none
 * (or path is not HDF5). Free with h5io_strings_free. */
char **file_class_names(const char *path);

/* Reads the normalization stored in a checkpoint (kind NONE when there is none). */
int checkpoint_read_normalizer(const char *path, struct normalizer *n, int64_t cols, struct dp_error *err);

#endif

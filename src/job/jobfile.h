/* Job files (libconfig syntax): sections data, model (a list of layers) and fit, plus name.
 * Every key is validated; errors name the file and line (or the --set that gave the value). */
#ifndef DPTRAIN_JOBFILE_H
#define DPTRAIN_JOBFILE_H

#include <stdint.h>

#include "base/errors.h"
#include "data/augment.h"
#include "data/normalize.h"
#include "net/layers.h"
#include "net/loss.h"
#include "net/optimizer.h"

enum data_source { DATA_SOURCE_FILE, DATA_SOURCE_SYNTHETIC };
enum monitor_mode { MONITOR_MODE_AUTO, MONITOR_MODE_MIN, MONITOR_MODE_MAX };

struct job_data {
    enum data_source source;
    char **files;             /* data.file: one path or a list (shards); relative to the job file's dir */
    int nfiles;
    int64_t synthetic_rows;   /* data.synthetic: rows, features, targets, test_rows */
    int64_t synthetic_features;
    int64_t synthetic_targets;
    int64_t synthetic_test_rows;
    double validation_split;
    char *validation_file;     /* Keras' validation_data: validate on this file's rows instead (NULL: none) */
    char validation_group[16]; /* ... of its /train (default) or /test */
    int shuffle;
    enum normalize_kind normalize;
    int normalize_all_rows;    /* normalize_from = "all": statistics of every /train row, the validation
                                  split's too (the tutorial's StandardScaler), not only the rows fit trains on */
    int64_t shuffle_buffer_mb; /* rows held for shuffling a dataset that streams from disk */
    int reader_thread;         /* read batch i+1 on a second thread while step i runs */
};

struct job_monitor {
    char monitor[32];         /* "val_accuracy", "val_loss", "loss", ... */
    enum monitor_mode mode;   /* resolved to MIN or MAX */
};

struct job_checkpoint {
    struct job_monitor m;
    int save_best_only;
    int64_t every_epochs;   /* last.h5 at the end of every N-th epoch */
    int64_t every_steps;    /* and every N optimizer steps (0: off) */
    double every_seconds;   /* and when this much time passed since the last one (0: off) */
    int64_t keep;           /* older last.h5 files kept as last-eEEEEEE-sSSSSSSSS.h5 */
};

struct job_early_stopping {
    int enabled;
    struct job_monitor m;
    int64_t patience;
    double min_delta;
    int restore_best_weights;
};

/* Keras' ReduceLROnPlateau: the rate times factor when the monitor has not improved by min_delta
 * for patience epochs, then cooldown epochs without counting, never below min_lr. */
struct job_reduce_lr {
    int enabled;
    struct job_monitor m;
    double factor;
    int64_t patience;
    double min_delta;
    int64_t cooldown;
    double min_lr;
};

/* How gradients are summed across ranks: NCCL on GPUs (auto), MPI always possible (and the only
 * path on CPU, or for several ranks sharing one GPU). */
enum allreduce_kind { ALLREDUCE_AUTO, ALLREDUCE_NCCL, ALLREDUCE_MPI };
/* GEMM precision on GPU: auto = tf32 (as TensorFlow); bf16 keeps fp32 master weights. CPU: fp32. */
enum precision_kind { PRECISION_AUTO, PRECISION_FP32, PRECISION_TF32, PRECISION_BF16 };
extern const char *const allreduce_names[]; /* by enum value, NULL-terminated */
/* The backend's precision code (0 fp32, 1 tf32, 2 bf16); auto is tf32. */
static inline int precision_code(enum precision_kind p) { return p == PRECISION_FP32 ? 0 : p == PRECISION_BF16 ? 2 : 1; }
extern const char *const precision_names[];

struct job_fit {
    uint64_t seed;
    int64_t epochs;
    int64_t batch_size;
    int64_t steps_per_epoch; /* 0: the whole training set */
    enum loss_kind loss;
    enum metric_kind metric;
    int64_t metric_k;        /* top_k_categorical_accuracy's k */
    struct optimizer_config optimizer;
    struct job_checkpoint checkpoint;
    struct job_early_stopping early_stopping;
    struct job_reduce_lr reduce_lr;       /* fit.reduce_lr_on_plateau */
    int64_t threads;         /* 0: all cores */
    enum allreduce_kind allreduce;
    enum precision_kind precision;
    double nccl_timeout;     /* seconds an NCCL collective may take before the job ends */
    double collective_timeout; /* seconds any wait on the other ranks may take (MPI and NCCL) */
    double allreduce_bucket_mb; /* start sums of this size during backward (0: one after backward) */
    int64_t readback_steps;  /* loss sums come to the host every N steps (0: 1 on CPU, 50 on GPU) */
    char *initial_weights;   /* a fresh fit starts from these weights (dptrain's or Keras'), not at random */
};

struct job {
    char *path;
    char *name;
    struct job_data data;
    int nlayers;
    struct layer_spec *layers;
    int naugment;                  /* the model's leading random_flip/translation/zoom/rotation */
    struct augment_spec *augment;  /* entries: training-time transforms of the input images */
    struct job_fit fit;
    char *resolved_text; /* the job after overrides, in libconfig syntax */
};

/* Loads path, applies overrides ("key=value" strings), validates. Returns 0, or -1 with err set
 * (code DP_EXIT_INPUT for anything the user wrote). */
int job_load(struct job *job, const char *path, const char *const *overrides, int noverrides,
             struct dp_error *err);

/* Parses job text (as stored in a checkpoint); name is used in messages. */
int job_load_text(struct job *job, const char *name, const char *text, struct dp_error *err);

void job_free(struct job *job);

#endif

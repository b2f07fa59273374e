/* Small helpers for command-line parsing; every failure is bad input (exit 2) naming the option. */
#ifndef DPTRAIN_CLI_H
#define DPTRAIN_CLI_H

#include <stdint.h>

/* Returns argv[i + 1] and advances i, or dies saying that opt needs a value. */
const char *cli_value(int argc, char **argv, int *i, const char *opt);
int64_t cli_int64(const char *opt, const char *text, int64_t min, int64_t max);
double cli_double(const char *opt, const char *text, double min, double max);
int cli_is_help(const char *arg);
/* Dies with "CMD: unknown option ARG (see dptrain CMD --help)". */
void cli_unknown(const char *cmd, const char *arg);

struct job;
/* Collects a --set KEY=VALUE (or --set=KEY=VALUE) at argv[*i]; returns 1 when it was one. */
int cli_collect_set(int argc, char **argv, int *i, const char ***sets, int *nsets);
/* Loads the job with the overrides or dies with its error; frees sets; applies fit.threads. */
void cli_load_job(const char *path, const char **sets, int nsets, struct job *job);
/* evaluate and predict: JOB --weights W, or a checkpoint alone (the job it was trained with is stored
 * in it, and it is the weights). *weights is set to the file the weights come from. */
void cli_load_job_or_checkpoint(const char *cmd, const char *path, const char **weights, const char **sets, int nsets,
                                struct job *job);

/* 1 when word names a dptrain command (fit, evaluate, ...). */
int cli_is_command(const char *word);

/* Commands */
int cmd_fit(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_shard(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_sbatch(int argc, char **argv);
int cmd_mpirun(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_augment(int argc, char **argv);
/* import keras (cmd_import_keras.c), and its usage */
int cmd_import_keras(int argc, char **argv);
extern const char keras_import_help[];
/* import npy (cmd_import_npy.c), and its usage */
int cmd_import_npy(int argc, char **argv);
extern const char npy_import_help[];
/* import images (cmd_import_images.c), and its usage */
int cmd_import_images(int argc, char **argv);
extern const char images_import_help[];

#endif

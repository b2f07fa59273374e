/* Checked HDF5 helpers. HDF5's own error stack printing is turned off (h5io_init); every failure
 * becomes one message naming the file and the object. */
#ifndef DPTRAIN_H5IO_H
#define DPTRAIN_H5IO_H

#include <hdf5.h>
#include <stdint.h>

#include "base/errors.h"

/* The first HDF5 call of the process: turns HDF5's own error-stack printing off (see
 * h5io_init_thread) and its clean-up at exit, which h5io_finish does instead. An error exit
 * (dp_die) skips it: HDF5 1.10 crashes closing a file whose writes failed (a full disk), and the
 * files open then are temporaries that dp_die deletes anyway. */
void h5io_init(void);

/* Turns HDF5's error-stack printing off for the calling thread (thread-safe HDF5 keeps it per
 * thread): failures become our one-line messages. */
void h5io_init_thread(void);

/* Closes whatever HDF5 still holds; once, on the way out of a run that did not fail. */
void h5io_finish(void);

/* Opens an existing HDF5 file read-only; a missing, unreadable or non-HDF5 file is bad input. */
hid_t h5io_open_read(const char *path, struct dp_error *err);

/* HDF5 files in memory (a member of a zip, such as a .keras file's model.weights.h5): opened
 * read-only from an image (name for messages; err when it is not HDF5), or created, written as any
 * file, then turned into an image (malloc'd, *len bytes) by h5io_memory_image, which closes f. */
hid_t h5io_open_image(const void *image, size_t len, const char *name, struct dp_error *err);
hid_t h5io_create_in_memory(const char *name);
void *h5io_memory_image(hid_t f, size_t *len, const char *name);

/* Output files appear whole or not at all (as atomic_file.h's text files): h5io_create_temp creates
 * path's temporary (its name into tmp) in the HDF5 1.10 file format, whose metadata is checksummed,
 * < 0 when it cannot; a failed write then ends in dp_die, which deletes the temporary.
 * h5io_commit_temp flushes and closes the file and renames it over path (durable: fsyncs the file
 * first and the directory after, as checkpoints need); when that fails the temporary is deleted,
 * path is untouched, and err names path. h5io_discard_temp closes and deletes it. */
hid_t h5io_create_temp(const char *path, char *tmp, size_t tmp_size, struct dp_error *err);
int h5io_commit_temp(hid_t f, const char *tmp, const char *path, int durable, struct dp_error *err);
void h5io_discard_temp(hid_t f, const char *tmp);

/* 1 when loc has a link called name (a direct child). */
int h5io_exists(hid_t loc, const char *name);

/* Writing (failures are internal errors: disk full, permissions; they name path). Datasets are
 * written in chunks with Fletcher32 checksums, so a flipped bit (a bad disk, a torn copy) is an
 * error when the file is read, not a wrong weight or sample. */
void h5io_write_f32(hid_t loc, const char *name, int rank, const int64_t *dims, const float *data,
                    const char *path);
void h5io_write_f64(hid_t loc, const char *name, int rank, const int64_t *dims, const double *data,
                    const char *path);
void h5io_write_i64(hid_t loc, const char *name, int rank, const int64_t *dims, const int64_t *data,
                    const char *path);
/* A scalar dataset of type (H5T_STD_I32LE, H5T_IEEE_F32LE, ...), value in that type. */
void h5io_write_scalar(hid_t loc, const char *name, hid_t type, const void *value, const char *path);
/* Attributes: an array of fixed-length ASCII strings (what Keras' legacy format uses). */
void h5io_attr_strings(hid_t loc, const char *name, const char *const *strs, int n, const char *path);
void h5io_attr_string(hid_t loc, const char *name, const char *value, const char *path);
void h5io_attr_i64(hid_t loc, const char *name, int64_t value, const char *path);
void h5io_attr_f64(hid_t loc, const char *name, double value, const char *path);
hid_t h5io_group_create(hid_t loc, const char *name, const char *path);

/* Reading (failures are bad input naming path and object). */
int h5io_read_attr_string(hid_t loc, const char *name, char **out, const char *path, struct dp_error *err);
/* Reads a string-array attribute (fixed or variable length); *out is a NULL-terminated array. */
int h5io_read_attr_strings(hid_t loc, const char *name, char ***out, int *n, const char *path,
                           struct dp_error *err);
int h5io_read_attr_i64(hid_t loc, const char *name, int64_t *out, const char *path, struct dp_error *err);
int h5io_read_attr_f64(hid_t loc, const char *name, double *out, const char *path, struct dp_error *err);
/* Reads a whole float dataset whose shape must be exactly dims (rank entries). */
int h5io_read_f32_exact(hid_t loc, const char *name, int rank, const int64_t *dims, float *out,
                        const char *path, struct dp_error *err);
int h5io_read_f64_exact(hid_t loc, const char *name, int64_t count, double *out, const char *path,
                        struct dp_error *err);
int h5io_read_i64_exact(hid_t loc, const char *name, int64_t count, int64_t *out, const char *path,
                        struct dp_error *err);
/* Shape of a dataset; rank <= max_rank. */
int h5io_dataset_shape(hid_t loc, const char *name, int *rank, int64_t *dims, int max_rank,
                       const char *path, struct dp_error *err);
void h5io_strings_free(char **strs);

#endif

/* Zip archives through libzip, in memory: Keras 3's .keras file is a zip of metadata.json,
 * config.json and model.weights.h5. Reading takes one member out whole; writing builds the archive
 * in memory and hands it to an atomic_file, so a .keras file appears whole or not at all. */
#ifndef DPTRAIN_ZIP_ARCHIVE_H
#define DPTRAIN_ZIP_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

/* 1 when path starts with a zip's local-file signature (PK\3\4), 0 otherwise (or unreadable). */
int zip_archive_is_zip(const char *path);

/* Member `name` of the zip at path into *data (malloc'd, NUL-terminated beyond *len). A file that
 * is not a zip, a damaged archive or member (its CRC is checked), or a missing member: -1 with err
 * (DP_EXIT_INPUT) naming path and the member. */
int zip_archive_read(const char *path, const char *name, char **data, size_t *len, struct dp_error *err);

/* One member read in pieces (a large array in an .npz): zip_archive_stream_read returns the bytes
 * read, short only at the end (the CRC is checked there); -1 with err when the member is damaged.
 * seek works on stored (uncompressed) members only: -1 with err otherwise. */
struct zip_stream;
struct zip_stream *zip_archive_stream_open(const char *path, const char *name, struct dp_error *err);
int64_t zip_archive_stream_read(struct zip_stream *s, void *buf, size_t n, struct dp_error *err);
int zip_archive_stream_seek(struct zip_stream *s, uint64_t offset, struct dp_error *err);
int zip_archive_stream_seekable(const struct zip_stream *s);
void zip_archive_stream_close(struct zip_stream *s);
/* The names of the archive's members, comma-separated, into out (for messages). */
void zip_archive_list(const char *path, char *out, size_t len);

struct zip_member {
    const char *name;
    const void *data;
    size_t len;
};

/* Writes the members, deflated, as a new zip at path (through a temporary renamed into place);
 * -1 with err naming path when it cannot. */
int zip_archive_write(const char *path, const struct zip_member *members, int n, struct dp_error *err);

#endif

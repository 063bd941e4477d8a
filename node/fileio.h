/* fileio.h: whole-file reads with a size bound, and crash-safe file writes.
 *
 * A write goes to PATH.tmp, is fsynced, renamed over PATH, and the directory
 * is fsynced, so after a crash PATH holds either the old or the new bytes,
 * never a mix (the lesson of CometBFT issue 6031). */
#ifndef MN_FILEIO_H
#define MN_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mn.h"

/* Reads all of path into a new buffer (NUL-terminated, *len excludes the
 * NUL) that the caller frees with free(). Refuses files larger than
 * max_bytes. Returns MN_OK, MN_EIO (cannot open/read; err names the path),
 * MN_ETOOBIG or MN_ENOMEM. On failure *out is NULL. */
int mn_file_read(const char *path, size_t max_bytes, char **out, size_t *len,
                 char *err, size_t err_len) MN_WARN_UNUSED;

/* Writes data[0..len) to path atomically with the given mode (e.g. 0644,
 * 0600): tmp file, fsync, rename, fsync of the directory. Overwrites an
 * existing file. Returns MN_OK or MN_EIO (err names the path and step). */
int mn_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         char *err, size_t err_len) MN_WARN_UNUSED;

/* Creates a directory and its missing parents with mode (existing ones are
 * fine). Returns MN_OK or MN_EIO. */
int mn_mkdir_p(const char *path, mode_t mode, char *err, size_t err_len) MN_WARN_UNUSED;

/* fsyncs a directory so that a rename or create inside it is durable.
 * Returns MN_OK or MN_EIO. */
int mn_fsync_dir(const char *dir, char *err, size_t err_len) MN_WARN_UNUSED;

/* Bytes of the regular files in dir and its subdirectories (a node's data
 * directory holds the chain database in one: its footprint as `du -b`
 * counts file sizes), symbolic links not followed; 0 when dir cannot be
 * read. */
uint64_t mn_dir_file_bytes(const char *dir);

/* True when path exists (any type). */
bool mn_path_exists(const char *path);

#endif

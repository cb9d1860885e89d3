/* fsutil.h — durable file operations (DESIGN.md §2: temp file, fsync, rename, fsync dir) with errors mapped to KL_E* and logged. */
#ifndef KEEL_FSUTIL_H
#define KEEL_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#define FSUTIL_PATH_MAX 4096
#define FSUTIL_TMP_SUFFIX ".tmp" /* write_atomic writes ".<name>.tmp" first */

/* Every function that fails on a system call logs one ERROR line naming the
 * operation, the path and strerror, and returns KL_ENOSPACE for ENOSPC/EDQUOT,
 * KL_ENOENT where noted, KL_EIO otherwise. */

/* Logs "<op> <path>: <strerror(errnum)>" and returns the mapped KL_E* code. */
int fsutil_error(const char *op, const char *path, int errnum);

/* dir + "/" + name into out; KL_ETOOBIG if it does not fit in cap. */
int fsutil_join(char *out, size_t cap, const char *dir, const char *name);

/* Replaces dir/name with data so that after a crash the file holds either the
 * old or the new content: write ".<name>.tmp", fsync, rename, fsync dir. */
int fsutil_write_atomic(const char *dir, const char *name, const void *data, size_t len);
int fsutil_fsync_dir(const char *dir);
/* mkdir -p with mode 0755; KL_EIO if a component exists and is not a directory. */
int fsutil_mkdirs(const char *path);
/* Whole file into a malloc'd buffer (one NUL byte past len so text can be
 * parsed in place). KL_ENOENT if absent, KL_ETOOBIG if larger than max. */
int fsutil_read_file(const char *path, size_t max, uint8_t **data, size_t *len);
/* rm -rf for tests and tools; a missing path is success. */
int fsutil_rm_rf(const char *path);
/* Removes a file; a missing file is success. */
int fsutil_unlink(const char *path);

/* Lists the names in dir (not "." or ".."), calling fn for each until it
 * returns non-zero, which is then returned. KL_ENOENT if dir is absent. */
int fsutil_list_dir(const char *dir, int (*fn)(const char *name, void *arg), void *arg);

/* fd helpers: loop over EINTR and short transfers; `path` is for the log line. */
int fsutil_open(const char *path, int flags, int *fd); /* mode 0644; KL_ENOENT if absent */
int fsutil_pwrite_all(int fd, const void *p, size_t n, uint64_t off, const char *path);
/* Reads exactly n bytes; an early end of file is KL_EIO (logged). */
int fsutil_pread_all(int fd, void *p, size_t n, uint64_t off, const char *path);
int fsutil_fsync(int fd, const char *path);
int fsutil_truncate(int fd, uint64_t size, const char *path);
int fsutil_size(int fd, const char *path, uint64_t *size);
void fsutil_close(int fd);

#endif

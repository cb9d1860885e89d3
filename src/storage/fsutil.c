/* fsutil.c — POSIX file I/O that survives EINTR and short transfers and makes replacements crash-atomic. */
#include "keel/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/err.h"
#include "keel/log.h"

#define FSUTIL_NFTW_FDS 16 /* directory fds nftw may hold open */

int fsutil_error(const char *op, const char *path, int errnum)
{
    KL_ERROR("storage", "%s %s: %s", op, path, strerror(errnum));
    return (errnum == ENOSPC || errnum == EDQUOT) ? KL_ENOSPACE : KL_EIO;
}

int fsutil_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        KL_ERROR("storage", "path too long: %s/%s", dir, name);
        return KL_ETOOBIG;
    }
    return 0;
}

int fsutil_open(const char *path, int flags, int *fd)
{
    do {
        *fd = open(path, flags | O_CLOEXEC, 0644);
    } while (*fd < 0 && errno == EINTR);
    if (*fd >= 0) return 0;
    if (errno == ENOENT) return KL_ENOENT;
    return fsutil_error("open", path, errno);
}

void fsutil_close(int fd)
{
    /* Linux releases the fd even when close reports EINTR: never retry. */
    if (fd >= 0) (void)close(fd);
}

int fsutil_pwrite_all(int fd, const void *p, size_t n, uint64_t off, const char *path)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, q, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return fsutil_error("write", path, errno);
        }
        q += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return 0;
}

int fsutil_pread_all(int fd, void *p, size_t n, uint64_t off, const char *path)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t r = pread(fd, q, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return fsutil_error("read", path, errno);
        }
        if (r == 0) {
            KL_ERROR("storage", "read %s: unexpected end of file at %llu", path,
                     (unsigned long long)off);
            return KL_EIO;
        }
        q += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return 0;
}

int fsutil_fsync(int fd, const char *path)
{
    int rc;
    do {
        rc = fsync(fd);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? fsutil_error("fsync", path, errno) : 0;
}

int fsutil_truncate(int fd, uint64_t size, const char *path)
{
    int rc;
    do {
        rc = ftruncate(fd, (off_t)size);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? fsutil_error("truncate", path, errno) : 0;
}

int fsutil_size(int fd, const char *path, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return fsutil_error("stat", path, errno);
    *size = (uint64_t)st.st_size;
    return 0;
}

int fsutil_fsync_dir(const char *dir)
{
    int fd;
    int rc = fsutil_open(dir, O_RDONLY | O_DIRECTORY, &fd);
    if (rc == KL_ENOENT) return fsutil_error("open", dir, ENOENT);
    if (rc < 0) return rc;
    rc = fsutil_fsync(fd, dir);
    fsutil_close(fd);
    return rc;
}

int fsutil_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char path[FSUTIL_PATH_MAX], tmp_name[FSUTIL_PATH_MAX], tmp[FSUTIL_PATH_MAX];
    int n = snprintf(tmp_name, sizeof tmp_name, ".%s" FSUTIL_TMP_SUFFIX, name);
    if (n < 0 || (size_t)n >= sizeof tmp_name) return KL_ETOOBIG;
    int rc = fsutil_join(path, sizeof path, dir, name);
    if (rc == 0) rc = fsutil_join(tmp, sizeof tmp, dir, tmp_name);
    if (rc < 0) return rc;

    int fd;
    rc = fsutil_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, &fd);
    if (rc == KL_ENOENT) return fsutil_error("create", tmp, ENOENT); /* dir is missing */
    if (rc < 0) return rc;
    rc = fsutil_pwrite_all(fd, data, len, 0, tmp);
    if (rc == 0) rc = fsutil_fsync(fd, tmp);
    fsutil_close(fd);
    if (rc == 0 && rename(tmp, path) < 0) rc = fsutil_error("rename", tmp, errno);
    if (rc < 0) {
        (void)unlink(tmp);
        return rc;
    }
    /* The rename is durable only once the directory is. */
    return fsutil_fsync_dir(dir);
}

int fsutil_mkdirs(const char *path)
{
    char p[FSUTIL_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0) return KL_EINVAL;
    if (n >= sizeof p) return KL_ETOOBIG;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) return fsutil_error("mkdir", p, errno);
        p[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) < 0) return fsutil_error("stat", path, errno);
    if (!S_ISDIR(st.st_mode)) return fsutil_error("mkdir", path, ENOTDIR);
    return 0;
}

int fsutil_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd;
    int rc = fsutil_open(path, O_RDONLY, &fd);
    if (rc < 0) return rc;
    uint64_t size;
    rc = fsutil_size(fd, path, &size);
    if (rc == 0 && size > max) {
        KL_ERROR("storage", "read %s: %llu bytes is over the %zu byte limit", path,
                 (unsigned long long)size, max);
        rc = KL_ETOOBIG;
    }
    uint8_t *buf = NULL;
    if (rc == 0 && !(buf = malloc((size_t)size + 1))) rc = KL_ENOMEM;
    if (rc == 0) rc = fsutil_pread_all(fd, buf, (size_t)size, 0, path);
    fsutil_close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    return 0;
}

int fsutil_unlink(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT) return fsutil_error("unlink", path, errno);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) < 0 && errno != ENOENT) return fsutil_error("remove", path, errno);
    return 0;
}

int fsutil_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : fsutil_error("stat", path, errno);
    /* Depth first so directories are empty when removed; never follow links. */
    int rc = nftw(path, rm_one, FSUTIL_NFTW_FDS, FTW_DEPTH | FTW_PHYS);
    /* rm_one stops the walk with KL_EIO or KL_ENOSPACE; -1 is nftw's own failure. */
    if (rc == -1) return fsutil_error("walk", path, errno);
    return rc;
}

int fsutil_list_dir(const char *dir, int (*fn)(const char *name, void *arg), void *arg)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? KL_ENOENT : fsutil_error("opendir", dir, errno);
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) rc = fsutil_error("readdir", dir, errno);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if ((rc = fn(e->d_name, arg)) != 0) break;
    }
    closedir(d);
    return rc;
}

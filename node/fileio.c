/* fileio.c: bounded whole-file reads and atomic, durable file writes. */
#include "fileio.h"

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mn_file_read(const char *path, size_t max_bytes, char **out, size_t *len, char *err, size_t err_len) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return MN_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, err_len, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return MN_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s is not a regular file", path);
        close(fd);
        return MN_EIO;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        snprintf(err, err_len, "%s is %lld bytes, more than the %zu allowed", path, (long long)st.st_size,
                 max_bytes);
        close(fd);
        return MN_ETOOBIG;
    }
    /* The file may grow between fstat and read: read at most max_bytes + 1
     * to notice. */
    size_t cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        snprintf(err, err_len, "out of memory reading %s", path);
        return MN_ENOMEM;
    }
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) break;
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                snprintf(err, err_len, "out of memory reading %s", path);
                return MN_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return MN_EIO;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max_bytes) {
        snprintf(err, err_len, "%s is more than the %zu bytes allowed", path, max_bytes);
        free(buf);
        return MN_ETOOBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MN_OK;
}

static void dir_of(char *dir, size_t dir_len, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, dir_len, ".");
    } else if (slash == path) {
        snprintf(dir, dir_len, "/");
    } else {
        snprintf(dir, dir_len, "%.*s", (int)(slash - path), path);
    }
}

int mn_fsync_dir(const char *dir, char *err, size_t err_len) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open directory %s: %s", dir, strerror(errno));
        return MN_EIO;
    }
    if (fsync(fd) != 0) {
        snprintf(err, err_len, "cannot fsync directory %s: %s", dir, strerror(errno));
        close(fd);
        return MN_EIO;
    }
    close(fd);
    return MN_OK;
}

int mn_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                         size_t err_len) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, err_len, "path too long: %s", path);
        return MN_EIO;
    }
    (void)unlink(tmp); /* a stale tmp of an earlier crash, whatever its mode */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create %s: %s", tmp, strerror(errno));
        return MN_EIO;
    }
    /* The umask may have narrowed the mode; a key file must never be wider,
     * and a public file should be exactly what was asked. */
    if (fchmod(fd, mode) != 0) {
        snprintf(err, err_len, "cannot chmod %s: %s", tmp, strerror(errno));
        goto fail;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            snprintf(err, err_len, "cannot write %s: %s", tmp, strerror(errno));
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        snprintf(err, err_len, "cannot fsync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, err_len, "cannot close %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, err_len, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    char dir[PATH_MAX];
    dir_of(dir, sizeof dir, path);
    return mn_fsync_dir(dir, err, err_len);
fail:
    if (fd >= 0) close(fd);
    (void)unlink(tmp);
    return MN_EIO;
}

int mn_mkdir_p(const char *path, mode_t mode, char *err, size_t err_len) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        snprintf(err, err_len, "bad directory path \"%s\"", path);
        return MN_EIO;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) {
            snprintf(err, err_len, "cannot create directory %s: %s", buf, strerror(errno));
            return MN_EIO;
        }
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "%s is not a directory", path);
        return MN_EIO;
    }
    return MN_OK;
}

bool mn_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Directories below dir are counted to this depth (a data directory has
 * one level: the chain database). */
#define DIR_BYTES_DEPTH 4

static uint64_t dir_bytes(const char *dir, int depth) {
    uint64_t total = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char p[4096];
        if (de->d_name[0] == '.') continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p) continue;
        struct stat st;
        if (lstat(p, &st) != 0) continue;
        if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
        else if (S_ISDIR(st.st_mode) && depth > 0)
            total += dir_bytes(p, depth - 1);
    }
    closedir(d);
    return total;
}

uint64_t mn_dir_file_bytes(const char *dir) { return dir_bytes(dir, DIR_BYTES_DEPTH); }

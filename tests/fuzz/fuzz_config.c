/* Fuzz target: node configuration loading (mn_config_load).
 *
 * The input is written as HOME/config.json in a temporary home made once
 * per process, and loaded. A config that loads must write back
 * (mn_config_write) and load again. */
#include "fuzz_common.h"

#include <fcntl.h>

#include "config.h"

static char home[128];

static void rm_home(void) {
    if (home[0]) lf_rmrf(home);
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    if (close(fd) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    if (!home[0]) {
        snprintf(home, sizeof home, "/tmp/mn-fuzz-config-XXXXXX");
        if (!mkdtemp(home)) abort();
        atexit(rm_home);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", home);
    write_file(path, data, size);
    mn_config cfg;
    char err[256];
    if (mn_config_load(&cfg, home, err, sizeof err) != MN_OK) return 0;
    if (mn_config_write(&cfg, err, sizeof err) != MN_OK) abort();
    mn_config cfg2;
    if (mn_config_load(&cfg2, home, err, sizeof err) != MN_OK) abort();
    return 0;
}

/* log.c: line-oriented structured logging to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int mn_log_threshold = MN_LOG_INFO;

int mn_log_set_level(const char *name) {
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(name, names[i]) == 0) {
            mn_log_threshold = i;
            return MN_OK;
        }
    }
    return MN_EINVAL;
}

void mn_log_write(int level, const char *event, const char *fmt, ...) {
    static const char *labels[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < MN_LOG_DEBUG || level > MN_LOG_ERROR) return;
    struct timespec ts;
    struct tm tm;
    char when[32] = "?";
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && gmtime_r(&ts.tv_sec, &tm)) {
        size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    }
    char line[2048];
    int n = snprintf(line, sizeof line, "%s %s %s", when, labels[level], event);
    if (n < 0) return;
    if ((size_t)n < sizeof line && fmt && fmt[0]) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0) n += m;
    }
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    line[n] = '\0';
    fputs(line, stderr);
}

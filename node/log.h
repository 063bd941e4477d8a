/* log.h: one event a line on stderr: "ts level event key=value ...".
 *
 * The level is checked before the arguments are evaluated, so a disabled
 * debug line costs one comparison. Never log a secret key. Thread-safe
 * (one fprintf per line). */
#ifndef MN_LOG_H
#define MN_LOG_H

#include "mn.h"

enum mn_log_level { MN_LOG_DEBUG = 0, MN_LOG_INFO = 1, MN_LOG_WARN = 2, MN_LOG_ERROR = 3, MN_LOG_OFF = 4 };

extern int mn_log_threshold;

/* Parses "debug", "info", "warn", "error" or "off". Returns MN_OK or MN_EINVAL. */
int mn_log_set_level(const char *name) MN_WARN_UNUSED;

/* Writes one line: "2026-11-22T10:00:00.123Z INFO event k=v ...". fmt holds
 * the key=value fields and may be "". Use the macros below. */
void mn_log_write(int level, const char *event, const char *fmt, ...) MN_PRINTF(3, 4);

#define MN_LOG(level, event, ...) \
    do { \
        if ((level) >= mn_log_threshold) mn_log_write((level), (event), __VA_ARGS__); \
    } while (0)
#define LOG_DEBUG(event, ...) MN_LOG(MN_LOG_DEBUG, event, __VA_ARGS__)
#define LOG_INFO(event, ...) MN_LOG(MN_LOG_INFO, event, __VA_ARGS__)
#define LOG_WARN(event, ...) MN_LOG(MN_LOG_WARN, event, __VA_ARGS__)
#define LOG_ERROR(event, ...) MN_LOG(MN_LOG_ERROR, event, __VA_ARGS__)

#endif

/* jsonf.c: typed field readers over jansson objects, naming bad fields. */
#include "jsonf.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

void mn_jf_path(char *out, size_t out_len, const char *prefix, const char *key) {
    if (prefix && *prefix)
        snprintf(out, out_len, "%s.%s", prefix, key);
    else
        snprintf(out, out_len, "%s", key);
}

int mn_jf_string(const json_t *obj, const char *prefix, const char *key, bool required, char *out,
                 size_t max_len, char *err, size_t err_len) {
    char path[160];
    mn_jf_path(path, sizeof path, prefix, key);
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (!required) return MN_OK;
        snprintf(err, err_len, "%s: missing", path);
        return MN_EINVAL;
    }
    if (!json_is_string(v)) {
        snprintf(err, err_len, "%s: expected a string", path);
        return MN_EINVAL;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > max_len || strlen(s) != n) {
        snprintf(err, err_len, "%s: expected 1 to %zu characters", path, max_len);
        return MN_EINVAL;
    }
    memcpy(out, s, n + 1);
    return MN_OK;
}

int mn_jf_int(const json_t *obj, const char *prefix, const char *key, bool required, int64_t min,
              int64_t max, int64_t *out, char *err, size_t err_len) {
    char path[160];
    mn_jf_path(path, sizeof path, prefix, key);
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (!required) return MN_OK;
        snprintf(err, err_len, "%s: missing", path);
        return MN_EINVAL;
    }
    if (!json_is_integer(v)) {
        snprintf(err, err_len, "%s: expected an integer", path);
        return MN_EINVAL;
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        snprintf(err, err_len, "%s: expected an integer from %lld to %lld", path, (long long)min,
                 (long long)max);
        return MN_EINVAL;
    }
    *out = (int64_t)x;
    return MN_OK;
}

int mn_jf_hex(const json_t *obj, const char *prefix, const char *key, bool required, uint8_t *out,
              size_t len, bool *present, char *err, size_t err_len) {
    char path[160];
    mn_jf_path(path, sizeof path, prefix, key);
    if (present) *present = false;
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (!required) return MN_OK;
        snprintf(err, err_len, "%s: missing", path);
        return MN_EINVAL;
    }
    if (!json_is_string(v) || mn_hex_decode(out, len, json_string_value(v)) != MN_OK) {
        snprintf(err, err_len, "%s: expected %zu hex characters", path, 2 * len);
        return MN_EINVAL;
    }
    if (present) *present = true;
    return MN_OK;
}

int mn_jf_only(const json_t *obj, const char *prefix, const char *const *allowed, char *err,
               size_t err_len) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        (void)v;
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0) ok = true;
        if (!ok) {
            char path[160];
            mn_jf_path(path, sizeof path, prefix, key);
            snprintf(err, err_len, "%s: unknown field", path);
            return MN_EINVAL;
        }
    }
    return MN_OK;
}

/* jsonf.h: typed field readers over jansson objects for the set-up files
 * (genesis.json, config.json). Each reader names the offending field, with
 * its path prefix, in err: "members[2].tx_key: expected 66 hex characters".
 * They borrow the json_t they are given; nothing here allocates. */
#ifndef MN_JSONF_H
#define MN_JSONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mn.h"

/* A string of 1..max_len bytes. required=false: absent leaves out untouched
 * and returns MN_OK. Returns MN_OK or MN_EINVAL. */
int mn_jf_string(const json_t *obj, const char *prefix, const char *key, bool required, char *out,
                 size_t max_len, char *err, size_t err_len);

/* An integer in [min, max]. required=false: absent leaves *out untouched. */
int mn_jf_int(const json_t *obj, const char *prefix, const char *key, bool required, int64_t min,
              int64_t max, int64_t *out, char *err, size_t err_len);

/* Exactly len bytes as 2*len hex characters. */
int mn_jf_hex(const json_t *obj, const char *prefix, const char *key, bool required, uint8_t *out,
              size_t len, bool *present, char *err, size_t err_len);

/* Refuses keys of obj not in the NULL-terminated list allowed. */
int mn_jf_only(const json_t *obj, const char *prefix, const char *const *allowed, char *err,
               size_t err_len);

/* "prefix.key" or "key" when prefix is empty. */
void mn_jf_path(char *out, size_t out_len, const char *prefix, const char *key);

#endif

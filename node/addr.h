/* addr.h: "host:port" strings as used in genesis.json, config.json and on
 * the command line. host is an IPv4 address, a host name, or an IPv6
 * address in brackets ("[::1]:26600"); port is 1..65535. */
#ifndef MN_ADDR_H
#define MN_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "mn.h"

#define MN_HOST_MAX 100

typedef struct mn_addr {
    char host[MN_HOST_MAX + 1]; /* without brackets */
    uint16_t port;
} mn_addr;

/* Parses s. Returns MN_OK or MN_EINVAL (err says what is wrong with s). */
int mn_addr_parse(mn_addr *out, const char *s, char *err, size_t err_len) MN_WARN_UNUSED;

/* Formats "host:port" (brackets around an IPv6 host) into out.
 * Returns MN_OK or MN_ETOOBIG when out is too small. */
int mn_addr_format(char *out, size_t out_len, const char *host, uint16_t port) MN_WARN_UNUSED;

#endif

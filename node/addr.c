/* addr.c: parsing and formatting of "host:port". */
#include "addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mn_addr_parse(mn_addr *out, const char *s, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    if (!s || !*s) {
        snprintf(err, err_len, "empty address: expected host:port");
        return MN_EINVAL;
    }
    const char *host = s, *host_end, *port_str;
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':') {
            snprintf(err, err_len, "\"%s\": expected [ipv6]:port", s);
            return MN_EINVAL;
        }
        port_str = host_end + 2;
    } else {
        host_end = strrchr(s, ':');
        if (!host_end) {
            snprintf(err, err_len, "\"%s\": expected host:port", s);
            return MN_EINVAL;
        }
        if (memchr(s, ':', (size_t)(host_end - s))) {
            snprintf(err, err_len, "\"%s\": put an IPv6 address in brackets, [::1]:port", s);
            return MN_EINVAL;
        }
        port_str = host_end + 1;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl > MN_HOST_MAX) {
        snprintf(err, err_len, "\"%s\": host must be 1 to %d characters", s, MN_HOST_MAX);
        return MN_EINVAL;
    }
    for (size_t i = 0; i < hl; i++) {
        char c = host[i];
        if (c <= ' ' || c == '/' || c == '[' || c == ']' || (unsigned char)c >= 0x7f) {
            snprintf(err, err_len, "\"%s\": bad character in host", s);
            return MN_EINVAL;
        }
    }
    if (*port_str == '\0' || strlen(port_str) > 5) {
        snprintf(err, err_len, "\"%s\": port must be a number 1..65535", s);
        return MN_EINVAL;
    }
    unsigned long port = 0;
    for (const char *p = port_str; *p; p++) {
        if (*p < '0' || *p > '9') {
            snprintf(err, err_len, "\"%s\": port must be a number 1..65535", s);
            return MN_EINVAL;
        }
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535) {
        snprintf(err, err_len, "\"%s\": port must be a number 1..65535", s);
        return MN_EINVAL;
    }
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    out->port = (uint16_t)port;
    return MN_OK;
}

int mn_addr_format(char *out, size_t out_len, const char *host, uint16_t port) {
    int n = strchr(host, ':') ? snprintf(out, out_len, "[%s]:%u", host, (unsigned)port)
                              : snprintf(out, out_len, "%s:%u", host, (unsigned)port);
    if (n < 0 || (size_t)n >= out_len) return MN_ETOOBIG;
    return MN_OK;
}

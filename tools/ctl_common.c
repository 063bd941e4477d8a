/* ctl_common.c: what every midctl command shares: failure reporting (text
 * or JSON), JSON printing, connecting, hex and time formatting. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "ctl.h"

static void vreport(const char *code, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (mn_ctl.json) {
        json_t *o = json_pack("{s:s, s:s}", "error", msg, "code", code);
        if (o) (void)mn_ctl_print_json(o);
    }
    fprintf(stderr, "midctl: %s\n", msg);
}

int mn_ctl_fail(const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(code, fmt, ap);
    va_end(ap);
    return MN_CTL_EXIT_FAIL;
}

int mn_ctl_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("USAGE", fmt, ap);
    va_end(ap);
    return MN_CTL_EXIT_USAGE;
}

int mn_ctl_rpc_fail(const mn_client *c, int rc, const char *what) {
    const mn_client_result *r = c ? mn_client_last(c) : NULL;
    if (!r || r->code < 0)
        return mn_ctl_fail(rc == MN_EIO ? "UNAVAILABLE" : mn_strerror(rc), "%s: %s", what,
                           r && r->message[0] ? r->message : mn_strerror(rc));
    if (r->code == MIDNODE__RPC_CODE__RPC_TX_REJECTED)
        return mn_ctl_fail(mn_tx_code_name(r->tx_code), "%s: rejected (%s): %s", what, mn_tx_code_name(r->tx_code),
                           r->message);
    if (r->code == MIDNODE__RPC_CODE__RPC_OK) /* answered OK but the payload was bad */
        return mn_ctl_fail(mn_strerror(rc), "%s: %s", what, r->message[0] ? r->message : mn_strerror(rc));
    return mn_ctl_fail(mn_rpc_code_name(r->code), "%s: %s: %s", what, mn_rpc_code_name(r->code), r->message);
}

int mn_ctl_print_json(json_t *obj) {
    if (!obj) return MN_CTL_EXIT_FAIL;
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s) return MN_CTL_EXIT_FAIL;
    int ok = printf("%s\n", s) >= 0 && fflush(stdout) == 0;
    free(s);
    return ok ? MN_CTL_EXIT_OK : MN_CTL_EXIT_FAIL;
}

mn_client *mn_ctl_connect(void) {
    mn_client *c = NULL;
    char err[256] = "";
    int rc = mn_client_connect(&c, mn_ctl.node, mn_ctl.timeout_ms, err, sizeof err);
    if (rc != MN_OK) {
        (void)mn_ctl_fail("UNAVAILABLE", "%s", err);
        return NULL;
    }
    return c;
}

json_t *mn_ctl_hex(const uint8_t *data, size_t len) {
    if (len > 4096) len = 4096; /* display bound; every field shown is far smaller */
    char buf[2 * 4096 + 1];
    mn_hex_encode(buf, data ? data : (const uint8_t *)"", data ? len : 0);
    return json_string(buf);
}

const char *mn_ctl_time_str(char *out, size_t out_len, int64_t ms) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r(&secs, &tm)) {
        snprintf(out, out_len, "%lld", (long long)ms);
        return out;
    }
    snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return out;
}

int mn_ctl_parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return MN_EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != 0) return MN_EINVAL;
    *out = v;
    return MN_OK;
}

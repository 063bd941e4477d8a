/* bench_args.c: midbench's command line. Every value is checked and a bad
 * one is named in the message, so that the caller can exit 2 with it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const struct {
    bench_workload w;
    const char *name;
} WORKLOADS[] = {
    {BENCH_STATUS, "status"},   {BENCH_STATUS_PROOF, "status-proof"}, {BENCH_SUBMIT, "submit"},
    {BENCH_PRELOAD, "preload"}, {BENCH_PROPAGATION, "propagation"}, {BENCH_ETCD_PUT, "etcd-put"},
};

const char *bench_workload_name(bench_workload w) {
    for (size_t i = 0; i < sizeof WORKLOADS / sizeof WORKLOADS[0]; i++)
        if (WORKLOADS[i].w == w) return WORKLOADS[i].name;
    return "?";
}

void bench_usage(FILE *f) {
    fprintf(f,
            "usage: midbench WORKLOAD [options]\n"
            "workloads:\n"
            "  status        GetStatus of random preloaded credentials (hits) and unknown ids (misses)\n"
            "  status-proof  the same with the full proof\n"
            "  submit        ISSUE transactions waiting for commit (needs --testnet)\n"
            "  preload       issue --count credentials of namespace --seed (needs --testnet)\n"
            "  propagation   REPORT_LOSS submission -> SUSPENDED on every node (needs --testnet)\n"
            "  etcd-put      comparison: puts into etcd through its HTTP gateway at --node\n"
            "options:\n"
            "  --node HOST:PORT     load target (default: first testnet node, else %s)\n"
            "  --nodes A,B,...      nodes that must read SUSPENDED (default: every testnet node)\n"
            "  --testnet DIR        a `midctl testnet` directory (testnet.json, keys)\n"
            "  --connections N      connections, one thread each (default 8; preload 16)\n"
            "  --depth D            requests in flight per connection (default 1)\n"
            "  --rate R             fixed offered rate, requests/s over all connections (default: closed loop)\n"
            "  --duration S         seconds of load (default 10; preload: until --count is done)\n"
            "  --count K            preload: credentials to issue; status: size of the preloaded set\n"
            "  --batch B            preload: B issuances per ISSUE_BATCH transaction (1..1000)\n"
            "  --seed S             credential namespace (default 1)\n"
            "  --miss-ratio F       status: share of never-issued ids (default 0.1)\n"
            "  --loss-share F       share of loss reports (propagation: default 0.5; submit: default 0)\n"
            "  --revoke-share F     submit: share of revocations of credentials issued by this run\n"
            "  --timeout-ms MS      per request (default 30000)\n"
            "  --json               one JSON object on stdout\n"
            "exit status: 0 done, 1 failed, 2 usage\n",
            "127.0.0.1:26601");
}

static int fail(char *err, size_t err_len, const char *what, const char *val) {
    snprintf(err, err_len, "%s: bad value '%s'", what, val ? val : "(missing)");
    return MN_EINVAL;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') return MN_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return MN_EINVAL;
    *out = v;
    return MN_OK;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return MN_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return MN_EINVAL;
    *out = v;
    return MN_OK;
}

static int copy_str(char *dst, size_t cap, const char *s) {
    if (!s || !*s || strlen(s) >= cap) return MN_EINVAL;
    memcpy(dst, s, strlen(s) + 1);
    return MN_OK;
}

static int parse_nodes(bench_opts *o, const char *s) {
    if (!s || !*s) return MN_EINVAL;
    o->node_count = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= BENCH_ADDR_MAX || o->node_count == BENCH_NODES_MAX) return MN_EINVAL;
        memcpy(o->nodes[o->node_count], p, n);
        o->nodes[o->node_count][n] = '\0';
        o->node_count++;
        p += n;
        if (*p == ',') {
            p++;
            if (!*p) return MN_EINVAL;
        }
    }
    return MN_OK;
}

int bench_parse_args(bench_opts *o, int argc, char **argv, char *err, size_t err_len) {
    memset(o, 0, sizeof *o);
    o->depth = 1;
    o->duration_s = 10;
    o->seed = 1;
    o->miss_ratio = 0.1;
    o->loss_share = 0.5;
    o->timeout_ms = 30000;
    bool have_conn = false, have_count = false, have_loss = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = true;
            return MN_OK;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        } else if (a[0] != '-') {
            if (o->workload) return fail(err, err_len, "workload (given twice)", a);
            for (size_t k = 0; k < sizeof WORKLOADS / sizeof WORKLOADS[0]; k++)
                if (!strcmp(a, WORKLOADS[k].name)) o->workload = WORKLOADS[k].w;
            if (!o->workload) return fail(err, err_len, "workload", a);
            continue;
        }
        /* Every other option takes a value. */
        if (!strcmp(a, "--node")) {
            if (copy_str(o->node, sizeof o->node, v)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--nodes")) {
            if (parse_nodes(o, v)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--testnet")) {
            if (copy_str(o->testnet, sizeof o->testnet, v)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--connections")) {
            if (parse_u64(v, 1, BENCH_CONNECTIONS_MAX, &u)) return fail(err, err_len, a, v);
            o->connections = (uint32_t)u;
            have_conn = true;
        } else if (!strcmp(a, "--depth")) {
            if (parse_u64(v, 1, BENCH_DEPTH_MAX, &u)) return fail(err, err_len, a, v);
            o->depth = (uint32_t)u;
        } else if (!strcmp(a, "--rate")) {
            if (parse_double(v, 0.001, 10e6, &o->rate)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--duration")) {
            if (parse_double(v, 0.01, 86400, &o->duration_s)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--count")) {
            if (parse_u64(v, 1, (uint64_t)1 << 40, &o->count)) return fail(err, err_len, a, v);
            have_count = true;
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(v, 0, UINT64_MAX, &o->seed)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--miss-ratio")) {
            if (parse_double(v, 0, 1, &o->miss_ratio)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--loss-share")) {
            if (parse_double(v, 0, 1, &o->loss_share)) return fail(err, err_len, a, v);
            have_loss = true;
        } else if (!strcmp(a, "--revoke-share")) {
            if (parse_double(v, 0, 1, &o->revoke_share)) return fail(err, err_len, a, v);
        } else if (!strcmp(a, "--batch")) {
            if (parse_u64(v, 1, MN_BATCH_ITEMS_MAX, &u)) return fail(err, err_len, a, v);
            o->batch = u > 1 ? (uint32_t)u : 0;
        } else if (!strcmp(a, "--timeout-ms")) {
            if (parse_u64(v, 1, 3600000, &u)) return fail(err, err_len, a, v);
            o->timeout_ms = (uint32_t)u;
        } else {
            snprintf(err, err_len, "unknown option '%s'", a);
            return MN_EINVAL;
        }
        i++;
    }
    if (o->workload == BENCH_ETCD_PUT && !o->node[0]) {
        snprintf(err, err_len, "etcd-put needs --node HOST:PORT (etcd's client address)");
        return MN_EINVAL;
    }
    if (!o->workload) {
        snprintf(err, err_len, "no workload given (status, status-proof, submit, preload, propagation)");
        return MN_EINVAL;
    }
    bool tx = o->workload == BENCH_SUBMIT || o->workload == BENCH_PRELOAD || o->workload == BENCH_PROPAGATION;
    if (tx && !o->testnet[0]) {
        snprintf(err, err_len, "%s needs --testnet DIR (the members' keys)", bench_workload_name(o->workload));
        return MN_EINVAL;
    }
    if (o->workload == BENCH_PRELOAD && !have_count) {
        snprintf(err, err_len, "preload needs --count K");
        return MN_EINVAL;
    }
    if (o->workload == BENCH_PROPAGATION && o->rate == 0) {
        snprintf(err, err_len, "propagation needs --rate R (the offered load)");
        return MN_EINVAL;
    }
    if (o->workload == BENCH_PROPAGATION && o->loss_share <= 0) {
        snprintf(err, err_len, "propagation needs --loss-share above 0");
        return MN_EINVAL;
    }
    if (o->workload != BENCH_PROPAGATION && !have_loss) o->loss_share = 0;
    if (o->loss_share + o->revoke_share > 1) {
        snprintf(err, err_len, "--loss-share plus --revoke-share is over 1");
        return MN_EINVAL;
    }
    if ((o->workload == BENCH_STATUS || o->workload == BENCH_STATUS_PROOF) && !have_count) o->count = 0;
    if (!have_conn) o->connections = o->workload == BENCH_PRELOAD ? 16 : 8;
    return MN_OK;
}

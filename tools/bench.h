/* bench.h: midbench, a load generator for a running midnode cluster, built
 * on the blocking RPC client (node/client.h), one thread per connection;
 * closed-loop `status` and `status-proof` instead run every connection from
 * one epoll thread (tools/bench_fast.c), as redis-benchmark does.
 *
 * Workloads (see `midbench --help`):
 *   status        GetStatus of random credentials of a preloaded set (hits)
 *                 and of ids that were never issued (misses)
 *   status-proof  the same with the full Merkle proof
 *   submit        ISSUE transactions of fresh credentials, waiting for commit
 *                 (latency = submit to committed); with --revoke-share and
 *                 --loss-share, that share of the transactions instead revokes
 *                 or reports lost a credential this run issued earlier
 *   preload       issues --count credentials of the --seed namespace (the set
 *                 that `status` queries), as fast as the cluster commits;
 *                 with --batch B, B issuances per signed ISSUE_BATCH
 *                 (ops and latency then count batch transactions)
 *   propagation   at --rate transactions/s of issuances and loss reports, the
 *                 time from a carrier's REPORT_LOSS submission until GetStatus
 *                 reads SUSPENDED on every node of --nodes
 * Modes: closed loop (--connections N, --depth D requests in flight each) or
 * fixed rate (--rate R per second over all connections; latency is measured
 * from the intended send time, so a stalled server is not hidden).
 *
 * Credential ids are derived, not stored: id(ns, i) = SHA-256("midbench-cred"
 * || ns || i) with ns and i as 8-byte big-endian integers, and likewise the
 * device and holder refs. `preload --seed S --count K` issues i = 0..K-1 of
 * namespace S; `status --seed S --count K` queries them back.
 *
 * Ownership: a bench_histogram is a plain value (no heap); bench_testnet owns
 * its signers' secret keys and wipes them in bench_testnet_free.
 * Errors: MN_OK or a negative MN_E* (node/mn.h); set-up paths fill err. */
#ifndef MN_BENCH_H
#define MN_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "loghist.h"
#include "mn.h"

/* ---- histogram: the log-linear buckets of node/loghist.h (16 per power
 * of two, relative error under 6.25%), values in microseconds; exact below
 * 16. A plain value rather than a node/metrics.h series: each thread keeps
 * its own without atomics and the totals are merged at the end. ---- */

typedef struct bench_histogram {
    uint64_t count;
    uint64_t sum;
    uint64_t min; /* UINT64_MAX when empty */
    uint64_t max;
    uint64_t buckets[MN_LOGHIST_BUCKETS];
} bench_histogram;

void bench_hist_init(bench_histogram *h);
void bench_hist_record(bench_histogram *h, uint64_t v);
void bench_hist_merge(bench_histogram *into, const bench_histogram *from);
/* q-quantile (0 <= q <= 1), see mn_loghist_quantile. 0 when empty. */
double bench_hist_quantile(const bench_histogram *h, double q);
double bench_hist_mean(const bench_histogram *h);

/* ---- arguments ---- */

typedef enum bench_workload {
    BENCH_STATUS = 1,
    BENCH_STATUS_PROOF,
    BENCH_SUBMIT,
    BENCH_PRELOAD,
    BENCH_PROPAGATION,
    BENCH_ETCD_PUT, /* comparison: puts into etcd (--node = its client URL host:port) */
} bench_workload;

#define BENCH_CONNECTIONS_MAX 512
#define BENCH_DEPTH_MAX 1024
#define BENCH_NODES_MAX 64
#define BENCH_ADDR_MAX 128
#define BENCH_PATH_MAX 1024

typedef struct bench_opts {
    bench_workload workload;
    char node[BENCH_ADDR_MAX];           /* load target; "" = first testnet node or default */
    size_t node_count;                   /* --nodes (propagation) */
    char nodes[BENCH_NODES_MAX][BENCH_ADDR_MAX];
    char testnet[BENCH_PATH_MAX];        /* testnet dir (testnet.json) */
    uint32_t connections;                /* default 8 (preload 16) */
    uint32_t depth;                      /* in flight per connection, default 1 */
    double rate;                         /* total ops/s; 0: closed loop */
    double duration_s;                   /* default 10 */
    uint64_t count;                      /* preload: to issue; status: set size */
    uint64_t seed;                       /* credential namespace, default 1 */
    double miss_ratio;                   /* status: share of never-issued ids, default 0.1 */
    double loss_share;                   /* share of loss reports: propagation default 0.5, submit 0 */
    double revoke_share;                 /* submit: share of revocations, default 0 */
    uint32_t timeout_ms;                 /* per request, default 30000 */
    uint32_t batch;                      /* preload: issuances per ISSUE_BATCH tx; 0: one ISSUE each */
    bool json;
    bool help;
} bench_opts;

/* Parses argv (argv[0] is the program; the workload is the first non-option
 * argument). Returns MN_OK, or MN_EINVAL with err naming the bad argument
 * (the caller exits 2). --help sets o->help and returns MN_OK. */
int bench_parse_args(bench_opts *o, int argc, char **argv, char *err, size_t err_len) MN_WARN_UNUSED;
const char *bench_workload_name(bench_workload w);
void bench_usage(FILE *f);

/* ---- testnet: members and their keys, nodes ---- */

#define BENCH_SIGNERS_MAX 64

typedef struct bench_signer {
    char id[MN_MEMBER_ID_MAX + 1];
    uint8_t seckey[MN_SECKEY_LEN];
    bool issuer, carrier;
    int cred_type;                       /* issuers: first allowed CredentialType */
    _Atomic uint64_t next_nonce;
} bench_signer;

typedef struct bench_testnet {
    char chain_id[MN_CHAIN_ID_MAX + 1];
    size_t node_count;
    char nodes[BENCH_NODES_MAX][BENCH_ADDR_MAX]; /* rpc addresses */
    size_t signer_count;
    bench_signer signers[BENCH_SIGNERS_MAX];     /* issuers and carriers with keys */
    size_t issuer_count, carrier_count;
    size_t issuers[BENCH_SIGNERS_MAX];           /* indices into signers */
    size_t carriers[BENCH_SIGNERS_MAX];
} bench_testnet;

/* Reads DIR/testnet.json and DIR/genesis.json (credential types), then every
 * issuer's and carrier's key file. Returns MN_OK, MN_EIO, MN_EINVAL. */
int bench_testnet_load(bench_testnet *t, const char *dir, char *err, size_t err_len) MN_WARN_UNUSED;
void bench_testnet_free(bench_testnet *t); /* wipes the keys */

/* ---- derived ids ---- */
void bench_cred_id(uint8_t out[static MN_ID_LEN], uint64_t ns, uint64_t i);
void bench_device_id(uint8_t out[static MN_ID_LEN], uint64_t ns, uint64_t i);
void bench_holder_id(uint8_t out[static MN_ID_LEN], uint64_t ns, uint64_t i);

/* ---- running ---- */

typedef struct bench_result {
    const char *workload;
    double elapsed_s;
    uint64_t ops;          /* successful requests (status: hits + misses) */
    uint64_t errors;
    uint64_t retries;      /* resubmissions after OVERLOADED / MEMPOOL_FULL */
    uint64_t hits, misses; /* status workloads */
    uint64_t loss_reports, issued, revocations; /* transactions sent, by kind */
    uint64_t propagated;   /* loss reports every node streamed as SUSPENDED */
    uint64_t read_back;    /* of those, reads that answered SUSPENDED (propagated x nodes) */
    uint64_t credentials;  /* preload --batch: credentials in the committed batches */
    size_t nodes;          /* propagation: nodes watched */
    bench_histogram lat;   /* request latency (submit: to commit) */
    bench_histogram prop;  /* propagation */
} bench_result;

/* Runs the workload of o against the cluster. Returns MN_OK (the figures in
 * *r, errors counted there) or an error with err filled when the run could
 * not start (no connection, no keys...). */
int bench_run(const bench_opts *o, bench_result *r, char *err, size_t err_len) MN_WARN_UNUSED;

/* Closed-loop `status` / `status-proof` from one thread and one epoll loop
 * over all connections at `target` (tools/bench_fast.c); fills r like
 * bench_run. Returns MN_OK or MN_EIO / MN_ENOMEM with err filled. */
int bench_status_fast(const bench_opts *o, const char *target, bool with_proof, bench_result *r, char *err,
                      size_t err_len) MN_WARN_UNUSED;

/* `etcd-put`: puts through etcd's HTTP gateway at o->node (tools/bench_etcd.c). */
int bench_run_etcd(const bench_opts *o, bench_result *r, char *err, size_t err_len) MN_WARN_UNUSED;

/* Prints r as one JSON object (json) or as text. */
void bench_print(FILE *f, const bench_opts *o, const bench_result *r, bool json);

#endif

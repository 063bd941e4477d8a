/* midbench.c: entry point of the load generator (see tools/bench.h). */
#include <stdio.h>

#include "bench.h"

int main(int argc, char **argv) {
    bench_opts o;
    char err[512] = "";
    if (bench_parse_args(&o, argc, argv, err, sizeof err) != MN_OK) {
        fprintf(stderr, "midbench: %s\n", err);
        bench_usage(stderr);
        return 2;
    }
    if (o.help) {
        bench_usage(stdout);
        return 0;
    }
    bench_result r;
    int rc = o.workload == BENCH_ETCD_PUT ? bench_run_etcd(&o, &r, err, sizeof err) : bench_run(&o, &r, err, sizeof err);
    if (rc != MN_OK) {
        fprintf(stderr, "midbench: %s\n", err);
        if (o.json) printf("{\"workload\": \"%s\", \"error\": \"%s\"}\n", bench_workload_name(o.workload), mn_strerror(rc));
        return 1;
    }
    bench_print(stdout, &o, &r, o.json);
    return 0;
}

/* midsim.c: runs seeded consensus simulations (tests/sim/sim.h).
 *
 *   midsim --n N --seeds K [--first-seed S] [--byzantine B] [--steps T]
 *          [--variant NAME] [--expect-fail] [--verbose]
 *
 * Prints a line per failing seed with the command that replays it, a
 * summary of heights and time, and ends with "K passed, F failed". With a
 * broken --variant, --expect-fail reports the first seed that caught it and
 * turns the counts around: a seed passes when the simulator caught the bug.
 * Exit status: 0 when nothing failed, 1 otherwise, 2 usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static int usage(void) {
    fprintf(stderr, "usage: midsim --n N --seeds K [--first-seed S] [--byzantine B] [--steps T]\n"
                    "              [--variant none|skip-lock|quorum-2f|forget-vote-log|no-sig-check]\n"
                    "              [--expect-fail] [--verbose]\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end;
    if (!s || !*s) return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    uint64_t n = 4, seeds = 1, first = 1, steps = 0, byz = 0;
    bool has_byz = false, expect_fail = false, verbose = false;
    int variant = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--n") && parse_u64(v, &n)) i++;
        else if (!strcmp(a, "--seeds") && parse_u64(v, &seeds)) i++;
        else if (!strcmp(a, "--first-seed") && parse_u64(v, &first)) i++;
        else if (!strcmp(a, "--steps") && parse_u64(v, &steps)) i++;
        else if (!strcmp(a, "--byzantine") && parse_u64(v, &byz)) { has_byz = true; i++; }
        else if (!strcmp(a, "--variant") && v && (variant = sim_variant_parse(v)) >= 0) i++;
        else if (!strcmp(a, "--expect-fail")) expect_fail = true;
        else if (!strcmp(a, "--verbose")) verbose = true;
        else return usage();
    }
    if (n < 1 || n > 64 || steps > 100000000 || (has_byz && byz > n)) return usage();

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t passed = 0, failed = 0, heights = 0, events = 0, evidence = 0, crashes = 0, parts = 0, syncs = 0;
    uint64_t first_caught = 0;
    bool caught = false;
    for (uint64_t k = 0; k < seeds; k++) {
        sim_params p = {.n = (uint32_t)n, .byzantine = has_byz ? (int32_t)byz : -1, .seed = first + k,
                        .steps = (uint32_t)steps, .variant = variant, .verbose = verbose};
        sim_result r;
        bool ok = sim_run(&p, &r);
        heights += r.min_height;
        events += r.events;
        evidence += r.evidence;
        crashes += r.crashes;
        parts += r.partitions;
        syncs += r.syncs;
        if (expect_fail) {
            if (!ok) {
                if (!caught) first_caught = p.seed;
                caught = true;
                printf("caught variant %s at seed %" PRIu64 " (after %" PRIu64 " seeds): %s\n",
                       sim_variant_name(variant), p.seed, k + 1, r.reason);
                printf("  replay: %s\n", sim_replay_command(&p));
                passed++;
                break;
            }
            continue;
        }
        if (ok) {
            passed++;
        } else {
            failed++;
            printf("FAIL seed %" PRIu64 " n=%" PRIu64 ": %s\n  replay: %s\n", p.seed, n, r.reason,
                   sim_replay_command(&p));
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (expect_fail) {
        if (!caught) {
            printf("variant %s NOT caught in %" PRIu64 " seeds from %" PRIu64 "\n", sim_variant_name(variant), seeds,
                   first);
            failed = 1;
        }
        (void)first_caught;
    } else {
        printf("n=%" PRIu64 " seeds=%" PRIu64 " heights=%" PRIu64 " events=%" PRIu64 " evidence=%" PRIu64
               " crashes=%" PRIu64 " partitions=%" PRIu64 " synced=%" PRIu64 " time=%.2fs (%.2fs per 1000 seeds)\n",
               n, seeds, heights, events, evidence, crashes, parts, syncs, secs,
               seeds ? secs * 1000.0 / (double)seeds : 0.0);
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    return failed ? 1 : 0;
}

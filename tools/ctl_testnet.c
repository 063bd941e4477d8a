/* ctl_testnet.c: `midctl testnet`: writes a ready cluster definition. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testnet.h"

static void usage(void) {
    fprintf(stderr, "usage: midctl testnet --dir DIR [--validators N] [--observers M] [--base-port P] [--host H] "
                    "[--chain-id ID] [--json]\n");
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || s[0] == '-' || v > max) return -1;
    *out = (uint32_t)v;
    return 0;
}

int mn_ctl_testnet(int argc, char **argv) {
    mn_testnet_opts o;
    mn_testnet_opts_default(&o);
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "midctl testnet: %s needs a value\n", a);
            usage();
            return 2;
        }
        int bad = 0;
        if (strcmp(a, "--dir") == 0)
            o.dir = v;
        else if (strcmp(a, "--validators") == 0)
            bad = parse_u32(v, 1000, &o.validators);
        else if (strcmp(a, "--observers") == 0)
            bad = parse_u32(v, 1000, &o.observers);
        else if (strcmp(a, "--base-port") == 0)
            bad = parse_u32(v, 65535, &o.base_port);
        else if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--chain-id") == 0)
            o.chain_id = v;
        else {
            fprintf(stderr, "midctl testnet: unknown option %s\n", a);
            usage();
            return 2;
        }
        if (bad) {
            fprintf(stderr, "midctl testnet: %s: not a valid number: %s\n", a, v);
            return 2;
        }
        i++;
    }
    if (!o.dir) {
        fprintf(stderr, "midctl testnet: --dir is required\n");
        usage();
        return 2;
    }
    char err[512] = "";
    int rc = mn_testnet_write(&o, err, sizeof err);
    if (rc != 0) {
        if (json)
            printf("{\"error\": \"testnet: %s\"}\n", err); /* err holds paths and words, no quotes */
        fprintf(stderr, "midctl testnet: %s\n", err);
        return rc == MN_EINVAL ? 2 : 1;
    }
    if (json)
        printf("{\"dir\": \"%s\", \"chain_id\": \"%s\", \"validators\": %u, \"observers\": %u, \"base_port\": %u}\n",
               o.dir, o.chain_id, o.validators, o.observers, o.base_port);
    else
        printf("wrote %s: chain %s, %u validators, %u observers, ports %u..%u; see %s/testnet.json\n", o.dir,
               o.chain_id, o.validators, o.observers, o.base_port, o.base_port + 3 * (o.validators + o.observers) - 1,
               o.dir);
    return 0;
}

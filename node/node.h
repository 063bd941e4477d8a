/* node.h: one running midnode, everything wired together.
 *
 * mn_node_open reads a home directory (config.json, genesis.json, keys/,
 * data/), opens the store, and binds the peer, RPC and HTTP listeners;
 * mn_node_run runs the event loop until SIGTERM/SIGINT (or mn_node_stop)
 * and then closes every handle, so that a clean stop leaves the store
 * consistent and the process exits 0.
 *
 * The node owns everything it opens. Single-threaded: every callback runs
 * on the node's libuv loop. */
#ifndef MN_NODE_H
#define MN_NODE_H

#include <stddef.h>

#include "mn.h"

typedef struct mn_node mn_node;

/* Opens the node of home directory `home`. log_level (may be NULL) overrides
 * config.json's. snapshot (may be NULL) is a certified state snapshot to
 * import first when the store is empty (snapshot.h: the same checks as
 * `midctl snapshot import`, and the state tree it rebuilds is the node's,
 * not built a second time); with a store that already holds a chain it is
 * ignored with a warning, so the same command line restarts the node.
 * Returns MN_OK and a node in *out, or an MN_E* code with a reason in err
 * (a missing file, a key that does not match genesis, a port already in
 * use, a store from another chain, a snapshot refused, ...). */
int mn_node_open(mn_node **out, const char *home, const char *log_level, const char *snapshot, char *err,
                 size_t err_len) MN_WARN_UNUSED;

/* Runs until stopped. Returns MN_OK after a clean stop, or an MN_E* code
 * when a fatal error (a failed disk write) forced the node down. */
int mn_node_run(mn_node *node);

/* Asks a running node to stop (safe from its own callbacks). */
void mn_node_stop(mn_node *node);

void mn_node_free(mn_node *node); /* NULL-safe; only after mn_node_run returned */

#endif

/* sim.h: a deterministic simulator of n midnode validators running the
 * consensus engine (consensus/cons.h) over a simulated network and clock.
 *
 * Everything comes from one 64-bit seed: the fault mix, message delays,
 * losses, duplicates, partitions, crashes and what the Byzantine validators
 * do. The same seed always replays the same run.
 *
 * A run has two phases. The fault phase processes `steps` events with
 * random loss, duplication, delay (hence reordering), partitions that form
 * and heal, crashes with restart from the durable vote log alone, and f
 * Byzantine validators that equivocate as proposer and voter, vote for
 * unknown blocks, echo every value they see, forge others' signatures and
 * send garbage. The heal phase then connects everyone with bounded delay,
 * restarts the crashed, and requires every honest validator to commit two
 * more heights within SIM_LIVENESS_MS of simulated time.
 *
 * Checked after every event: no two honest validators commit different
 * blocks at one height; no honest validator signs two different messages for
 * one (height, round, step); every committed block was proposed and judged
 * valid, and its certificate passes mn_cons_check_certificate; evidence only
 * ever accuses Byzantine validators.
 *
 * Signatures in the simulator are keyed SHA-256 tags (a validator can only
 * make its own), so thousands of seeds run in seconds; the engine sees them
 * only through its crypto table. */
#ifndef MN_SIM_H
#define MN_SIM_H

#include <stdbool.h>
#include <stdint.h>

#define SIM_LIVENESS_MS 120000
#define SIM_STEPS_DEFAULT 4000

/* Deliberately broken variants the simulator must catch. */
enum sim_variant {
    SIM_VARIANT_NONE = 0,
    SIM_VARIANT_SKIP_LOCK,       /* engine prevotes ignoring its lock */
    SIM_VARIANT_QUORUM_2F,       /* engine counts 2f votes as a quorum */
    SIM_VARIANT_FORGET_VOTE_LOG, /* restart without the durable vote log */
    SIM_VARIANT_NO_SIG_CHECK,    /* engine accepts any signature */
    SIM_VARIANT_COUNT
};

typedef struct sim_params {
    uint32_t n;          /* validators, 1..64 */
    int32_t byzantine;   /* -1: the most tolerated, (n-1)/3 */
    uint64_t seed;
    uint32_t steps;      /* events in the fault phase; 0: SIM_STEPS_DEFAULT */
    int variant;         /* enum sim_variant */
    bool verbose;        /* trace events to stderr */
} sim_params;

typedef struct sim_result {
    bool ok;
    char reason[256];        /* first violated property, when !ok */
    uint64_t min_height;     /* lowest last committed height among honest validators */
    uint64_t max_height;
    uint64_t events;
    uint64_t sim_ms;         /* simulated time at the end */
    uint64_t messages;       /* messages delivered */
    uint64_t evidence;       /* evidence reports (all against Byzantine validators) */
    uint64_t crashes;
    uint64_t partitions;
    uint64_t syncs;          /* heights caught up through certified sync */
} sim_result;

/* Runs one seed. Returns result->ok. Allocates and frees its own memory. */
bool sim_run(const sim_params *params, sim_result *result);

/* "none", "skip-lock", "quorum-2f", "forget-vote-log", "no-sig-check".
 * Returns the enum value, or -1 for an unknown name. */
int sim_variant_parse(const char *name);
const char *sim_variant_name(int variant);

/* The command line that replays one seed (static buffer). */
const char *sim_replay_command(const sim_params *params);

#endif

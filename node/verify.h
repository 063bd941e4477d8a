/* verify.h: the verifier library. Checks a status proof offline against the
 * validators' public keys, the current time and a maximum age, and either
 * returns the credential's status or names exactly why the proof fails.
 * There is no fallback to trusting the node: anything but MN_VERIFY_OK
 * means "do not rely on this answer" (indy-vdr issue 81).
 *
 * Checks, in order: the proof is well formed (MALFORMED); the header's chain
 * id is the trusted one (WRONG_CHAIN); its validators_hash is that of the
 * trusted set (UNKNOWN_VALIDATORS); the certificate has a quorum of valid
 * precommits for SHA-256(header) at the header's height (BAD_CERTIFICATE);
 * the header is not from the future (FUTURE, beyond MN_VERIFY_CLOCK_SKEW_MS)
 * nor older than max_age_ms (STALE); the record is the one asked about
 * (RECORD_MISMATCH); the Merkle path leads from the record (or its absence)
 * to the header's state_root (MERKLE_MISMATCH). mn_verify_response further
 * checks that the node's claim equals what the proof shows (CLAIM_MISMATCH).
 *
 * Links with libsecp256k1, libcrypto and libprotobuf-c only: verify.c,
 * cert.c, smt.c's verify part, crypto.c, signbytes.c, midnode.pb-c.c. */
#ifndef MN_VERIFY_H
#define MN_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "cert.h"
#include "midnode.pb-c.h"
#include "mn.h"

enum mn_verify_reason {
    MN_VERIFY_OK = 0,
    MN_VERIFY_MALFORMED,          /* missing part, wrong length, unparsable bytes */
    MN_VERIFY_WRONG_CHAIN,        /* header of another chain */
    MN_VERIFY_UNKNOWN_VALIDATORS, /* header names a validator set we do not trust */
    MN_VERIFY_BAD_CERTIFICATE,    /* no quorum of valid precommits for this header */
    MN_VERIFY_STALE,              /* header older than max age */
    MN_VERIFY_FUTURE,             /* header time ahead of our clock */
    MN_VERIFY_RECORD_MISMATCH,    /* record of another credential, or key_hash not ours */
    MN_VERIFY_MERKLE_MISMATCH,    /* path does not reach state_root */
    MN_VERIFY_CLAIM_MISMATCH,     /* the node's stated status is not what the proof shows */
};
#define MN_VERIFY_REASON_COUNT 10

/* A header may be this far ahead of the verifier's clock (clock skew). */
#define MN_VERIFY_CLOCK_SKEW_MS 5000

typedef struct mn_verify_result {
    int reason;          /* enum mn_verify_reason */
    int status;          /* Midnode__CredentialStatus, EXPIRED derived; valid when OK */
    bool present;        /* the credential exists (record proven) */
    uint64_t height;     /* header height (0 when the header did not parse) */
    int64_t time_ms;     /* header time */
    char message[256];   /* human-readable reason, also on success */
} mn_verify_result;

/* "OK", "MALFORMED", ... ; "?" for an unknown value. */
const char *mn_verify_reason_name(int reason);

/* Verifies proof for credential_id (32 bytes). now_ms is the verifier's
 * clock; max_age_ms < 0 disables the freshness check (the caller's explicit
 * choice). Fills *res and returns res->reason. When record is not NULL and
 * the proof verifies with a present record, *record receives the unpacked
 * record (caller frees with midnode__credential_record__free_unpacked(r,
 * NULL)); otherwise *record is NULL. */
int mn_verify_status(const mn_valset *vs, const Midnode__StatusProof *proof,
                     const uint8_t credential_id[static MN_ID_LEN], int64_t now_ms, int64_t max_age_ms,
                     mn_verify_result *res, Midnode__CredentialRecord **record);

/* The same for a serialised StatusProof. */
int mn_verify_status_bytes(const mn_valset *vs, const uint8_t *proof, size_t proof_len,
                           const uint8_t credential_id[static MN_ID_LEN], int64_t now_ms,
                           int64_t max_age_ms, mn_verify_result *res, Midnode__CredentialRecord **record);

/* Verifies a node's GetStatusResponse: it must carry a proof for
 * credential_id that verifies, and its credential_id, status, height,
 * time_ms and record (when present) must equal what the proof shows
 * (CLAIM_MISMATCH otherwise). Same outputs as mn_verify_status. */
int mn_verify_response(const mn_valset *vs, const Midnode__GetStatusResponse *resp,
                       const uint8_t credential_id[static MN_ID_LEN], int64_t now_ms, int64_t max_age_ms,
                       mn_verify_result *res, Midnode__CredentialRecord **record);

/* Effective status of a record read at header time time_ms: EXPIRED when
 * ACTIVE/SUSPENDED and expires_at != 0 and time_ms/1000 >= expires_at;
 * SUSPENDED when a suspension flag is set; otherwise the stored status. */
int mn_effective_status(const Midnode__CredentialRecord *r, int64_t time_ms);

#endif

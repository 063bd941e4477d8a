/* ctl_json.h: midctl's JSON shapes of protobuf replies (INTERFACE.md), and
 * emitting an object as JSON (--json) or as "key: value" lines.
 * Every function returns a new reference the caller owns (NULL only when a
 * serialised header inside does not decode, for mn_ctl_block_json). */
#ifndef MN_CTL_JSON_H
#define MN_CTL_JSON_H

#include <jansson.h>

#include "midnode.pb-c.h"

/* Prints o (stolen): one compact JSON line with --json, else one
 * "key: value" line per field. Returns an exit status. */
int mn_ctl_emit(json_t *o);

/* {"credential","status","height","time","time_ms","record": {...}|null} */
json_t *mn_ctl_status_json(const Midnode__GetStatusResponse *s);
json_t *mn_ctl_record_json(const Midnode__CredentialRecord *r);
json_t *mn_ctl_change_json(const Midnode__StatusChange *sc);
/* {"hash","signer","nonce","kind","body": {...},"signature"}; a tx that does
 * not decode gives {"hash","error"}. */
json_t *mn_ctl_tx_json(const uint8_t *tx, size_t len);
json_t *mn_ctl_cert_json(const Midnode__CommitCertificate *c);
/* {"hash","header": {...},"txs": [...],"last_commit": {...}|null,"commit": {...}|null} */
json_t *mn_ctl_block_json(const Midnode__GetBlockResponse *b);

#endif

/* verify.c: the verifier library: checks a status proof against trusted
 * validator keys, a clock and a maximum age (see verify.h). Needs only
 * SHA-256, secp256k1 and protobuf-c. */
#include "verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "smt.h"

static const char *const reason_names[MN_VERIFY_REASON_COUNT] = {
    "OK",           "MALFORMED", "WRONG_CHAIN",     "UNKNOWN_VALIDATORS", "BAD_CERTIFICATE",
    "STALE",        "FUTURE",    "RECORD_MISMATCH", "MERKLE_MISMATCH",    "CLAIM_MISMATCH",
};

const char *mn_verify_reason_name(int reason) {
    if (reason < 0 || reason >= MN_VERIFY_REASON_COUNT) return "?";
    return reason_names[reason];
}

static int set(mn_verify_result *res, int reason, const char *fmt, ...) MN_PRINTF(3, 4);
static int set(mn_verify_result *res, int reason, const char *fmt, ...) {
    res->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
    return reason;
}

int mn_effective_status(const Midnode__CredentialRecord *r, int64_t time_ms) {
    int s = r->status;
    if (s != MIDNODE__CREDENTIAL_STATUS__ACTIVE && s != MIDNODE__CREDENTIAL_STATUS__SUSPENDED) return s;
    if (r->expires_at != 0 && time_ms / 1000 >= r->expires_at) return MIDNODE__CREDENTIAL_STATUS__EXPIRED;
    if (r->loss_suspended || r->issuer_suspended) return MIDNODE__CREDENTIAL_STATUS__SUSPENDED;
    return s;
}

static void credential_key(uint8_t out[MN_HASH_LEN], const uint8_t id[MN_ID_LEN]) {
    uint8_t buf[1 + MN_ID_LEN];
    buf[0] = 0x01;
    memcpy(buf + 1, id, MN_ID_LEN);
    mn_sha256(out, buf, sizeof buf);
}

/* Everything but the claim check; on OK with a record, *rec_out holds it. */
static int verify_proof(const mn_valset *vs, const Midnode__StatusProof *p, const uint8_t cid[MN_ID_LEN],
                        int64_t now_ms, int64_t max_age_ms, mn_verify_result *res,
                        Midnode__CredentialRecord **rec_out) {
    *rec_out = NULL;
    if (!p) return set(res, MN_VERIFY_MALFORMED, "no proof");
    if (p->credential_id.len != MN_ID_LEN)
        return set(res, MN_VERIFY_MALFORMED, "proof credential_id is %zu bytes, not 32", p->credential_id.len);
    if (memcmp(p->credential_id.data, cid, MN_ID_LEN) != 0)
        return set(res, MN_VERIFY_RECORD_MISMATCH, "proof is for another credential");
    if (p->header.len == 0 || !p->merkle || !p->commit)
        return set(res, MN_VERIFY_MALFORMED, "proof lacks its %s",
                   p->header.len == 0 ? "header" : !p->merkle ? "Merkle path" : "commit certificate");
    if (p->header.len > MN_TX_BYTES_MAX) return set(res, MN_VERIFY_MALFORMED, "header of %zu bytes", p->header.len);
    Midnode__BlockHeader *h = midnode__block_header__unpack(NULL, p->header.len, p->header.data);
    if (!h) return set(res, MN_VERIFY_MALFORMED, "header does not parse");
    int reason = MN_VERIFY_OK;
    res->height = h->height;
    res->time_ms = h->time_ms;
    if (h->height == 0 || h->state_root.len != MN_HASH_LEN || h->validators_hash.len != MN_HASH_LEN) {
        reason = set(res, MN_VERIFY_MALFORMED, "header lacks height, state_root or validators_hash");
        goto out;
    }
    if (!h->chain_id || strcmp(h->chain_id, vs->chain_id) != 0) {
        reason = set(res, MN_VERIFY_WRONG_CHAIN, "header is of chain \"%.64s\", not \"%s\"",
                     h->chain_id ? h->chain_id : "", vs->chain_id);
        goto out;
    }
    if (memcmp(h->validators_hash.data, vs->hash, MN_HASH_LEN) != 0) {
        reason = set(res, MN_VERIFY_UNKNOWN_VALIDATORS,
                     "header names a validator set other than the trusted one (validators_hash differs)");
        goto out;
    }
    uint8_t block_hash[MN_HASH_LEN];
    mn_sha256(block_hash, p->header.data, p->header.len);
    char why[200];
    if (mn_cert_check_valset(vs, h->height, block_hash, p->commit, why, sizeof why) != MN_OK) {
        reason = set(res, MN_VERIFY_BAD_CERTIFICATE, "block %llu is not certified: %s",
                     (unsigned long long)h->height, why);
        goto out;
    }
    if (h->time_ms > now_ms && h->time_ms - now_ms > MN_VERIFY_CLOCK_SKEW_MS) {
        reason = set(res, MN_VERIFY_FUTURE, "header time is %lld ms ahead of this clock (allowed %d)",
                     (long long)(h->time_ms - now_ms), MN_VERIFY_CLOCK_SKEW_MS);
        goto out;
    }
    if (max_age_ms >= 0 && now_ms > h->time_ms && now_ms - h->time_ms > max_age_ms) {
        reason = set(res, MN_VERIFY_STALE, "header of block %llu is %lld ms old; at most %lld allowed",
                     (unsigned long long)h->height, (long long)(now_ms - h->time_ms), (long long)max_age_ms);
        goto out;
    }
    uint8_t key_hash[MN_HASH_LEN];
    credential_key(key_hash, cid);
    if (p->merkle->key_hash.len != MN_HASH_LEN || memcmp(p->merkle->key_hash.data, key_hash, MN_HASH_LEN) != 0) {
        reason = set(res, MN_VERIFY_RECORD_MISMATCH, "Merkle path is for another key");
        goto out;
    }
    Midnode__CredentialRecord *rec = NULL;
    if (p->record.len > 0) {
        if (p->record.len > MN_TX_BYTES_MAX) {
            reason = set(res, MN_VERIFY_MALFORMED, "record of %zu bytes", p->record.len);
            goto out;
        }
        rec = midnode__credential_record__unpack(NULL, p->record.len, p->record.data);
        if (!rec) {
            reason = set(res, MN_VERIFY_MALFORMED, "record does not parse");
            goto out;
        }
        if (rec->credential_id.len != MN_ID_LEN || memcmp(rec->credential_id.data, cid, MN_ID_LEN) != 0) {
            midnode__credential_record__free_unpacked(rec, NULL);
            reason = set(res, MN_VERIFY_RECORD_MISMATCH, "record is of another credential");
            goto out;
        }
    }
    const char *merkle_why = NULL;
    int mrc = mn_smt_verify(h->state_root.data, key_hash, rec ? p->record.data : NULL, p->record.len, p->merkle,
                            &merkle_why);
    if (mrc != MN_OK) {
        if (rec) midnode__credential_record__free_unpacked(rec, NULL);
        reason = set(res, mrc == MN_EINVAL ? MN_VERIFY_MALFORMED : MN_VERIFY_MERKLE_MISMATCH,
                     "Merkle path does not prove the %s at block %llu: %s", rec ? "record" : "absence",
                     (unsigned long long)h->height, merkle_why ? merkle_why : "proof refused");
        goto out;
    }
    res->present = rec != NULL;
    res->status = rec ? mn_effective_status(rec, h->time_ms) : MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN;
    *rec_out = rec;
    set(res, MN_VERIFY_OK, "%s at block %llu, certified by the trusted validators",
        rec ? "record proven" : "absence proven", (unsigned long long)h->height);
out:
    midnode__block_header__free_unpacked(h, NULL);
    return reason;
}

static void result_init(mn_verify_result *res, Midnode__CredentialRecord **record) {
    memset(res, 0, sizeof *res);
    if (record) *record = NULL;
}

int mn_verify_status(const mn_valset *vs, const Midnode__StatusProof *proof,
                     const uint8_t credential_id[static MN_ID_LEN], int64_t now_ms, int64_t max_age_ms,
                     mn_verify_result *res, Midnode__CredentialRecord **record) {
    result_init(res, record);
    Midnode__CredentialRecord *rec;
    int r = verify_proof(vs, proof, credential_id, now_ms, max_age_ms, res, &rec);
    if (rec && record)
        *record = rec;
    else if (rec)
        midnode__credential_record__free_unpacked(rec, NULL);
    return r;
}

int mn_verify_status_bytes(const mn_valset *vs, const uint8_t *proof, size_t proof_len,
                           const uint8_t credential_id[static MN_ID_LEN], int64_t now_ms, int64_t max_age_ms,
                           mn_verify_result *res, Midnode__CredentialRecord **record) {
    result_init(res, record);
    if (!proof || proof_len == 0) return set(res, MN_VERIFY_MALFORMED, "no proof");
    if (proof_len > MN_RPC_FRAME_BYTES_MAX) return set(res, MN_VERIFY_MALFORMED, "proof of %zu bytes", proof_len);
    Midnode__StatusProof *p = midnode__status_proof__unpack(NULL, proof_len, proof);
    if (!p) return set(res, MN_VERIFY_MALFORMED, "proof does not parse");
    int r = mn_verify_status(vs, p, credential_id, now_ms, max_age_ms, res, record);
    midnode__status_proof__free_unpacked(p, NULL);
    return r;
}

/* Compares two records by their protobuf-c encodings: both are normalised
 * by the same encoder, so equal messages give equal bytes. */
static bool same_record(const Midnode__CredentialRecord *a, const Midnode__CredentialRecord *b) {
    size_t la = midnode__credential_record__get_packed_size(a);
    size_t lb = midnode__credential_record__get_packed_size(b);
    if (la != lb || la > MN_TX_BYTES_MAX) return false;
    uint8_t ba[MN_TX_BYTES_MAX], bb[MN_TX_BYTES_MAX];
    midnode__credential_record__pack(a, ba);
    midnode__credential_record__pack(b, bb);
    return memcmp(ba, bb, la) == 0;
}

int mn_verify_response(const mn_valset *vs, const Midnode__GetStatusResponse *resp,
                       const uint8_t credential_id[static MN_ID_LEN], int64_t now_ms, int64_t max_age_ms,
                       mn_verify_result *res, Midnode__CredentialRecord **record) {
    result_init(res, record);
    if (!resp) return set(res, MN_VERIFY_MALFORMED, "no response");
    if (!resp->proof) return set(res, MN_VERIFY_MALFORMED, "the node sent no proof with its answer");
    if (resp->credential_id.len != MN_ID_LEN || memcmp(resp->credential_id.data, credential_id, MN_ID_LEN) != 0)
        return set(res, MN_VERIFY_CLAIM_MISMATCH, "the node answered about another credential");
    Midnode__CredentialRecord *rec;
    int r = verify_proof(vs, resp->proof, credential_id, now_ms, max_age_ms, res, &rec);
    if (r != MN_VERIFY_OK) return r;
    const char *bad = NULL;
    if ((int)resp->status != res->status)
        bad = "status";
    else if (resp->height != res->height)
        bad = "height";
    else if (resp->time_ms != res->time_ms)
        bad = "time_ms";
    else if ((resp->record != NULL) != (rec != NULL))
        bad = rec ? "record (missing)" : "record (present for an absent credential)";
    else if (rec && !same_record(resp->record, rec))
        bad = "record";
    if (bad) {
        if (rec) midnode__credential_record__free_unpacked(rec, NULL);
        res->present = false;
        return set(res, MN_VERIFY_CLAIM_MISMATCH, "the node's %s is not what its proof shows (proven status %d at block %llu)",
                   bad, res->status, (unsigned long long)res->height);
    }
    if (rec && record)
        *record = rec;
    else if (rec)
        midnode__credential_record__free_unpacked(rec, NULL);
    return MN_VERIFY_OK;
}

/* ctl_json.c: JSON renderings of the RPC replies midctl prints. Hashes and
 * identifiers are lower-case hex; times are both RFC 3339 and Unix ms. */
#include "ctl_json.h"

#include <stdio.h>
#include <string.h>

#include "client.h"
#include "crypto.h"
#include "ctl.h"

int mn_ctl_emit(json_t *o) {
    if (!o) return MN_CTL_EXIT_FAIL;
    if (mn_ctl.json) return mn_ctl_print_json(o);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (json_is_string(v)) {
            printf("%s: %s\n", key, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%s: %s\n", key, s ? s : "?");
            free(s);
        }
    }
    json_decref(o);
    return fflush(stdout) == 0 ? MN_CTL_EXIT_OK : MN_CTL_EXIT_FAIL;
}

static json_t *hexb(ProtobufCBinaryData b) { return mn_ctl_hex(b.data, b.len); }

static json_t *str(const char *s) { return json_string(s ? s : ""); }

static json_t *time_json(int64_t ms) {
    char ts[40];
    return json_string(mn_ctl_time_str(ts, sizeof ts, ms));
}

static const char *type_name(int t) {
    static const char *const names[] = {"unspecified", "resident", "driver", "veteran", "foreigner", "overseas"};
    return t >= 0 && t <= 5 ? names[t] : "?";
}

json_t *mn_ctl_record_json(const Midnode__CredentialRecord *r) {
    json_t *o = json_object();
    json_object_set_new(o, "credential", hexb(r->credential_id));
    json_object_set_new(o, "type", json_string(type_name((int)r->type)));
    json_object_set_new(o, "holder", hexb(r->holder_ref));
    json_object_set_new(o, "device", hexb(r->device_ref));
    json_object_set_new(o, "carrier", str(r->carrier));
    json_object_set_new(o, "issuer", str(r->issuer));
    json_object_set_new(o, "not_before", json_integer(r->not_before));
    json_object_set_new(o, "expires_at", json_integer(r->expires_at));
    json_object_set_new(o, "stored_status", json_string(mn_status_name((int)r->status)));
    json_object_set_new(o, "loss_suspended", json_boolean(r->loss_suspended));
    json_object_set_new(o, "issuer_suspended", json_boolean(r->issuer_suspended));
    json_object_set_new(o, "revoke_reason", str(r->revoke_reason));
    json_object_set_new(o, "issued_height", json_integer((json_int_t)r->issued_height));
    json_object_set_new(o, "issued_tx", hexb(r->issued_tx));
    json_object_set_new(o, "updated_height", json_integer((json_int_t)r->updated_height));
    json_object_set_new(o, "updated_tx", hexb(r->updated_tx));
    json_object_set_new(o, "superseded_by", hexb(r->superseded_by));
    return o;
}

json_t *mn_ctl_status_json(const Midnode__GetStatusResponse *s) {
    json_t *o = json_object();
    json_object_set_new(o, "credential", hexb(s->credential_id));
    json_object_set_new(o, "status", json_string(mn_status_name((int)s->status)));
    json_object_set_new(o, "height", json_integer((json_int_t)s->height));
    json_object_set_new(o, "time", time_json(s->time_ms));
    json_object_set_new(o, "time_ms", json_integer(s->time_ms));
    json_object_set_new(o, "record", s->record ? mn_ctl_record_json(s->record) : json_null());
    json_object_set_new(o, "proof", json_boolean(s->proof != NULL));
    return o;
}

json_t *mn_ctl_change_json(const Midnode__StatusChange *sc) {
    json_t *o = json_object();
    json_object_set_new(o, "height", json_integer((json_int_t)sc->height));
    json_object_set_new(o, "time", time_json(sc->time_ms));
    json_object_set_new(o, "credential", hexb(sc->credential_id));
    json_object_set_new(o, "status", json_string(mn_status_name((int)sc->status)));
    json_object_set_new(o, "previous", json_string(mn_status_name((int)sc->previous)));
    json_object_set_new(o, "kind", str(sc->kind));
    json_object_set_new(o, "signer", str(sc->signer));
    json_object_set_new(o, "tx_hash", hexb(sc->tx_hash));
    return o;
}

static json_t *body_json(const Midnode__TxPayload *p, const char **kind) {
    json_t *b = json_object();
    switch (p->body_case) {
    case MIDNODE__TX_PAYLOAD__BODY_ISSUE:
        *kind = "issue";
        json_object_set_new(b, "credential", hexb(p->issue->credential_id));
        json_object_set_new(b, "type", json_string(type_name((int)p->issue->type)));
        json_object_set_new(b, "holder", hexb(p->issue->holder_ref));
        json_object_set_new(b, "device", hexb(p->issue->device_ref));
        json_object_set_new(b, "carrier", str(p->issue->carrier));
        json_object_set_new(b, "not_before", json_integer(p->issue->not_before));
        json_object_set_new(b, "expires_at", json_integer(p->issue->expires_at));
        break;
    case MIDNODE__TX_PAYLOAD__BODY_REVOKE:
        *kind = "revoke";
        json_object_set_new(b, "credential", hexb(p->revoke->credential_id));
        json_object_set_new(b, "reason", str(p->revoke->reason));
        break;
    case MIDNODE__TX_PAYLOAD__BODY_SUSPEND:
        *kind = "suspend";
        json_object_set_new(b, "credential", hexb(p->suspend->credential_id));
        break;
    case MIDNODE__TX_PAYLOAD__BODY_RESUME:
        *kind = "resume";
        json_object_set_new(b, "credential", hexb(p->resume->credential_id));
        break;
    case MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS:
        *kind = "report_loss";
        json_object_set_new(b, "device", hexb(p->report_loss->device_ref));
        json_object_set_new(b, "report_ref", hexb(p->report_loss->report_ref));
        break;
    case MIDNODE__TX_PAYLOAD__BODY_ISSUE_BATCH: {
        *kind = "issue_batch";
        json_t *ids = json_array();
        for (size_t i = 0; i < p->issue_batch->n_items; i++)
            json_array_append_new(ids, hexb(p->issue_batch->items[i]->credential_id));
        json_object_set_new(b, "items", json_integer((json_int_t)p->issue_batch->n_items));
        json_object_set_new(b, "credentials", ids);
        break;
    }
    case MIDNODE__TX_PAYLOAD__BODY_REPORT_RECOVERY:
        *kind = "report_recovery";
        json_object_set_new(b, "device", hexb(p->report_recovery->device_ref));
        break;
    default: *kind = "none"; break;
    }
    return b;
}

json_t *mn_ctl_tx_json(const uint8_t *tx, size_t len) {
    uint8_t h[MN_HASH_LEN];
    mn_sha256(h, tx, len);
    json_t *o = json_object();
    json_object_set_new(o, "hash", mn_ctl_hex(h, sizeof h));
    Midnode__Tx *t = midnode__tx__unpack(NULL, len, tx);
    Midnode__TxPayload *p = t ? midnode__tx_payload__unpack(NULL, t->payload.len, t->payload.data) : NULL;
    if (!p) {
        json_object_set_new(o, "error", json_string("does not decode"));
    } else {
        const char *kind = "none";
        json_t *b = body_json(p, &kind);
        json_object_set_new(o, "kind", json_string(kind));
        json_object_set_new(o, "chain_id", str(p->chain_id));
        json_object_set_new(o, "signer", str(p->signer));
        json_object_set_new(o, "nonce", json_integer((json_int_t)p->nonce));
        json_object_set_new(o, "body", b);
        json_object_set_new(o, "signature", hexb(t->signature));
    }
    if (p) midnode__tx_payload__free_unpacked(p, NULL);
    if (t) midnode__tx__free_unpacked(t, NULL);
    return o;
}

json_t *mn_ctl_cert_json(const Midnode__CommitCertificate *c) {
    if (!c) return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "height", json_integer((json_int_t)c->height));
    json_object_set_new(o, "round", json_integer(c->round));
    json_object_set_new(o, "block_hash", hexb(c->block_hash));
    json_t *sigs = json_array();
    for (size_t i = 0; i < c->n_sigs; i++) {
        json_t *s = json_object();
        json_object_set_new(s, "validator_index", json_integer(c->sigs[i]->validator_index));
        json_object_set_new(s, "signature", hexb(c->sigs[i]->signature));
        json_array_append_new(sigs, s);
    }
    json_object_set_new(o, "sigs", sigs);
    return o;
}

json_t *mn_ctl_block_json(const Midnode__GetBlockResponse *b) {
    if (!b->block) return NULL;
    const Midnode__Block *blk = b->block;
    Midnode__BlockHeader *h = midnode__block_header__unpack(NULL, blk->header.len, blk->header.data);
    if (!h) return NULL;
    uint8_t hash[MN_HASH_LEN];
    mn_sha256(hash, blk->header.data, blk->header.len);
    json_t *hd = json_object();
    json_object_set_new(hd, "chain_id", str(h->chain_id));
    json_object_set_new(hd, "height", json_integer((json_int_t)h->height));
    json_object_set_new(hd, "time", time_json(h->time_ms));
    json_object_set_new(hd, "time_ms", json_integer(h->time_ms));
    json_object_set_new(hd, "prev_hash", hexb(h->prev_hash));
    json_object_set_new(hd, "tx_root", hexb(h->tx_root));
    json_object_set_new(hd, "state_root", hexb(h->state_root));
    json_object_set_new(hd, "proposer", str(h->proposer));
    json_object_set_new(hd, "validators_hash", hexb(h->validators_hash));
    json_object_set_new(hd, "last_commit_hash", hexb(h->last_commit_hash));
    json_t *txs = json_array();
    for (size_t i = 0; i < blk->n_txs; i++) json_array_append_new(txs, mn_ctl_tx_json(blk->txs[i].data, blk->txs[i].len));
    json_t *o = json_object();
    json_object_set_new(o, "height", json_integer((json_int_t)h->height));
    json_object_set_new(o, "hash", mn_ctl_hex(hash, sizeof hash));
    json_object_set_new(o, "header", hd);
    json_object_set_new(o, "txs", txs);
    json_object_set_new(o, "last_commit", mn_ctl_cert_json(blk->last_commit));
    json_object_set_new(o, "commit", mn_ctl_cert_json(b->commit));
    midnode__block_header__free_unpacked(h, NULL);
    return o;
}

/* ledger_fixture.h: a test chain for the ledger and everything above it.
 *
 * Builds an in-memory genesis with the default testnet members (validators
 * mois, skt, kt, lgu; issuers mois resident, knpa driver, mpva veteran, moj
 * foreigner, mofa overseas; carriers skt, kt, lgu) whose transaction keys
 * are derived from fixed seeds, so runs are reproducible; opens a store in a
 * fresh temporary directory; and signs transactions with the next nonce of
 * each member. Everything is static inline so a test includes it as is.
 *
 *   lf_fixture f; lf_open(&f);             // genesis + store + ledger
 *   uint8_t *tx; size_t n;
 *   lf_issue(&f, "mois", id, LF_RESIDENT, holder, device, "skt", 0, &tx, &n);
 *   lf_block(&f, 1000, txs, lens, count, codes);  // execute and commit one block
 *   lf_close(&f);                          // removes the directory */
#ifndef LEDGER_FIXTURE_H
#define LEDGER_FIXTURE_H

#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "genesis.h"
#include "ledger.h"
#include "midnode.pb-c.h"
#include "store.h"

#define LF_CHAIN "midnode-test"
#define LF_RESIDENT 1
#define LF_DRIVER 2
#define LF_VETERAN 3
#define LF_FOREIGNER 4
#define LF_OVERSEAS 5

typedef struct lf_fixture {
    mn_genesis *g;
    uint8_t sk[MN_MEMBERS_MAX][MN_SECKEY_LEN];
    uint64_t next_nonce[MN_MEMBERS_MAX]; /* nonce the next built tx uses, per member */
    char dir[256];
    mn_store *store;
    mn_ledger *l;
    int64_t time_ms;
} lf_fixture;

/* A 32-byte id from a small number and a tag (distinct inputs, distinct ids). */
static inline void lf_id(uint8_t out[32], char tag, uint32_t n) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%c:%u", tag, n);
    mn_sha256(out, buf, (size_t)len);
}

static inline int lf_member_index(const lf_fixture *f, const char *id) {
    for (size_t i = 0; i < f->g->member_count; i++)
        if (strcmp(f->g->members[i].id, id) == 0) return (int)i;
    return -1;
}

static inline void lf_add_member(lf_fixture *f, const char *id, uint32_t roles, uint32_t types) {
    mn_genesis *g = f->g;
    size_t i = g->member_count++;
    mn_member *m = &g->members[i];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    m->roles = roles;
    m->cred_types = types;
    m->has_tx_key = true;
    char seed[64];
    int n = snprintf(seed, sizeof seed, "midnode test key %s", id);
    mn_sha256(f->sk[i], seed, (size_t)n);
    if (mn_key_pubkey(m->tx_pubkey, f->sk[i]) != MN_OK) abort();
    m->validator_index = -1;
    if (roles & MN_ROLE_VALIDATOR) {
        m->validator_index = (int32_t)g->validator_count;
        g->validator_members[g->validator_count++] = (uint16_t)i;
        uint8_t csk[32];
        n = snprintf(seed, sizeof seed, "midnode test consensus %s", id);
        mn_sha256(csk, seed, (size_t)n);
        if (mn_key_pubkey(m->consensus_pubkey, csk) != MN_OK) abort();
    }
    f->next_nonce[i] = 1;
}

/* Fills f->g with the default members (no store). */
static inline void lf_genesis(lf_fixture *f) {
    f->g = calloc(1, sizeof(mn_genesis));
    if (!f->g) abort();
    snprintf(f->g->chain_id, sizeof f->g->chain_id, "%s", LF_CHAIN);
    f->g->genesis_time_ms = 1763800000000LL;
    lf_add_member(f, "mois", MN_ROLE_VALIDATOR | MN_ROLE_ISSUER, 1u << LF_RESIDENT);
    lf_add_member(f, "skt", MN_ROLE_VALIDATOR | MN_ROLE_CARRIER, 0);
    lf_add_member(f, "kt", MN_ROLE_VALIDATOR | MN_ROLE_CARRIER, 0);
    lf_add_member(f, "lgu", MN_ROLE_VALIDATOR | MN_ROLE_CARRIER, 0);
    lf_add_member(f, "knpa", MN_ROLE_ISSUER, 1u << LF_DRIVER);
    lf_add_member(f, "mpva", MN_ROLE_ISSUER, 1u << LF_VETERAN);
    lf_add_member(f, "moj", MN_ROLE_ISSUER, 1u << LF_FOREIGNER);
    lf_add_member(f, "mofa", MN_ROLE_ISSUER, 1u << LF_OVERSEAS);
}

/* Removes a directory tree (test directories only: files and folders). */
static inline void lf_rmrf(const char *dir) {
    if (strlen(dir) > 512) return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            char p[1024];
            if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p) continue;
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                lf_rmrf(p);
            else
                (void)unlink(p);
        }
        closedir(d);
    }
    (void)rmdir(dir);
}

/* Opens the store and ledger in f->dir (made when empty). Returns MN_OK. */
static inline int lf_open_store(lf_fixture *f) {
    char err[256];
    if (f->dir[0] == '\0') {
        snprintf(f->dir, sizeof f->dir, "/tmp/mn-ledger-test-XXXXXX");
        if (!mkdtemp(f->dir)) return MN_EIO;
    }
    char path[300];
    snprintf(path, sizeof path, "%s/data", f->dir);
    int rc = mn_store_open(&f->store, path, err, sizeof err);
    if (rc != MN_OK) {
        fprintf(stderr, "lf_open_store: %s\n", err);
        return rc;
    }
    return mn_ledger_open(&f->l, f->store, f->g);
}

static inline void lf_close_store(lf_fixture *f) {
    mn_ledger_free(f->l);
    mn_store_close(f->store);
    f->l = NULL;
    f->store = NULL;
}

/* Genesis, a fresh store and the ledger. Returns MN_OK. */
static inline int lf_open(lf_fixture *f) {
    memset(f, 0, sizeof *f);
    if (mn_crypto_init() != MN_OK) return MN_ECRYPTO;
    lf_genesis(f);
    f->time_ms = f->g->genesis_time_ms;
    return lf_open_store(f);
}

static inline void lf_close(lf_fixture *f) {
    lf_close_store(f);
    if (f->dir[0]) lf_rmrf(f->dir);
    free(f->g);
    f->g = NULL;
}

/* Signs payload p (chain id and signer taken from p) with member key_of's key.
 * nonce 0 in p means: use and advance the signer's next nonce.
 * *out is malloc'd (caller frees). */
static inline void lf_sign_as(lf_fixture *f, Midnode__TxPayload *p, const char *key_of, uint8_t **out,
                              size_t *len) {
    int si = lf_member_index(f, p->signer);
    if (p->nonce == 0 && si >= 0) p->nonce = f->next_nonce[si]++;
    size_t pl = midnode__tx_payload__get_packed_size(p);
    uint8_t *pb = malloc(pl ? pl : 1);
    if (!pb) abort();
    midnode__tx_payload__pack(p, pb);
    uint8_t digest[32], sig[64];
    mn_sha256(digest, pb, pl);
    int ki = lf_member_index(f, key_of);
    uint8_t sk[32];
    if (ki >= 0)
        memcpy(sk, f->sk[ki], 32);
    else
        mn_sha256(sk, key_of, strlen(key_of)); /* a key of no member */
    if (mn_sign(sig, digest, sk) != MN_OK) abort();
    Midnode__Tx tx = MIDNODE__TX__INIT;
    tx.payload = (ProtobufCBinaryData){pl, pb};
    tx.signature = (ProtobufCBinaryData){64, sig};
    *len = midnode__tx__get_packed_size(&tx);
    *out = malloc(*len);
    if (!*out) abort();
    midnode__tx__pack(&tx, *out);
    free(pb);
}

static inline void lf_payload(Midnode__TxPayload *p, const char *signer) {
    midnode__tx_payload__init(p);
    p->chain_id = (char *)LF_CHAIN;
    p->signer = (char *)signer;
}

static inline void lf_sign(lf_fixture *f, Midnode__TxPayload *p, uint8_t **out, size_t *len) {
    lf_sign_as(f, p, p->signer, out, len);
}

static inline void lf_issue(lf_fixture *f, const char *signer, const uint8_t id[32], int type,
                            const uint8_t holder[32], const uint8_t device[32], const char *carrier,
                            int64_t expires_at, uint8_t **out, size_t *len) {
    Midnode__TxPayload p;
    Midnode__IssueBody b = MIDNODE__ISSUE_BODY__INIT;
    lf_payload(&p, signer);
    b.credential_id = (ProtobufCBinaryData){32, (uint8_t *)id};
    b.type = (Midnode__CredentialType)type;
    b.holder_ref = (ProtobufCBinaryData){32, (uint8_t *)holder};
    b.device_ref = (ProtobufCBinaryData){32, (uint8_t *)device};
    b.carrier = (char *)carrier;
    b.not_before = 0;
    b.expires_at = expires_at;
    p.body_case = MIDNODE__TX_PAYLOAD__BODY_ISSUE;
    p.issue = &b;
    lf_sign(f, &p, out, len);
}

/* kind: MIDNODE__TX_PAYLOAD__BODY_REVOKE, _SUSPEND or _RESUME. */
static inline void lf_cred_op(lf_fixture *f, const char *signer, int kind, const uint8_t id[32],
                              uint8_t **out, size_t *len) {
    Midnode__TxPayload p;
    Midnode__RevokeBody rb = MIDNODE__REVOKE_BODY__INIT;
    Midnode__SuspendBody sb = MIDNODE__SUSPEND_BODY__INIT;
    Midnode__ResumeBody mb = MIDNODE__RESUME_BODY__INIT;
    lf_payload(&p, signer);
    p.body_case = (Midnode__TxPayload__BodyCase)kind;
    ProtobufCBinaryData idb = {32, (uint8_t *)id};
    if (kind == MIDNODE__TX_PAYLOAD__BODY_REVOKE) {
        rb.credential_id = idb;
        rb.reason = (char *)"test";
        p.revoke = &rb;
    } else if (kind == MIDNODE__TX_PAYLOAD__BODY_SUSPEND) {
        sb.credential_id = idb;
        p.suspend = &sb;
    } else {
        mb.credential_id = idb;
        p.resume = &mb;
    }
    lf_sign(f, &p, out, len);
}

/* loss: REPORT_LOSS when true, else REPORT_RECOVERY. */
static inline void lf_device_op(lf_fixture *f, const char *signer, int loss, const uint8_t device[32],
                                uint8_t **out, size_t *len) {
    Midnode__TxPayload p;
    Midnode__ReportLossBody lb = MIDNODE__REPORT_LOSS_BODY__INIT;
    Midnode__ReportRecoveryBody rb = MIDNODE__REPORT_RECOVERY_BODY__INIT;
    lf_payload(&p, signer);
    if (loss) {
        lb.device_ref = (ProtobufCBinaryData){32, (uint8_t *)device};
        p.body_case = MIDNODE__TX_PAYLOAD__BODY_REPORT_LOSS;
        p.report_loss = &lb;
    } else {
        rb.device_ref = (ProtobufCBinaryData){32, (uint8_t *)device};
        p.body_case = MIDNODE__TX_PAYLOAD__BODY_REPORT_RECOVERY;
        p.report_recovery = &rb;
    }
    lf_sign(f, &p, out, len);
}

/* Executes and commits one block of n txs at the next height, time f->time_ms
 * (advanced by 1 s afterwards). codes (may be NULL) receives each TxCode.
 * Frees the txs. Returns the commit result. */
static inline int lf_block(lf_fixture *f, uint8_t **txs, const size_t *lens, size_t n, int *codes) {
    mn_exec *e = mn_exec_begin(f->l, mn_ledger_height(f->l) + 1, f->time_ms);
    if (!e) return MN_ESTATE;
    for (size_t i = 0; i < n; i++) {
        char msg[MN_TX_MSG_MAX];
        int c = mn_exec_apply_tx(e, txs[i], lens[i], msg, sizeof msg);
        if (codes) codes[i] = c;
        free(txs[i]);
        txs[i] = NULL;
    }
    uint8_t root[32];
    int rc = mn_exec_finish(e, root);
    if (rc == MN_OK) {
        char block[64];
        int bl = snprintf(block, sizeof block, "block %llu", (unsigned long long)mn_exec_tx_count(e));
        rc = mn_exec_commit(e, (const uint8_t *)block, (size_t)bl, NULL, 0);
    }
    mn_exec_free(e);
    f->time_ms += 1000;
    return rc;
}

/* One transaction in its own block; returns its TxCode (or -100 - commit error). */
static inline int lf_one(lf_fixture *f, uint8_t *tx, size_t len) {
    int code = -1;
    int rc = lf_block(f, &tx, &len, 1, &code);
    return rc == MN_OK ? code : -100 + rc;
}

/* A refused transaction did not use its nonce: hand it out again. */
static inline void lf_unuse_nonce(lf_fixture *f, const char *signer) {
    int i = lf_member_index(f, signer);
    if (i >= 0 && f->next_nonce[i] > 1) f->next_nonce[i]--;
}

/* Committed status of a credential (STATUS_UNKNOWN when absent), as stored. */
static inline int lf_status(lf_fixture *f, const uint8_t id[32]) {
    Midnode__CredentialRecord *r = NULL;
    if (mn_ledger_get_record(f->l, id, &r) != MN_OK) return MIDNODE__CREDENTIAL_STATUS__STATUS_UNKNOWN;
    int s = r->status;
    midnode__credential_record__free_unpacked(r, NULL);
    return s;
}

#endif

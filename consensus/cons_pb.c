/* cons_pb.c: engine structs <-> protobuf messages (see cons_pb.h). */
#include "cons_pb.h"

#include <string.h>

static int copy_hash(bool *has, uint8_t out[MN_HASH_LEN], const ProtobufCBinaryData *b) {
    if (b->len == 0) {
        *has = false;
        memset(out, 0, MN_HASH_LEN);
        return MN_OK;
    }
    if (b->len != MN_HASH_LEN || !b->data) return MN_EINVAL;
    *has = true;
    memcpy(out, b->data, MN_HASH_LEN);
    return MN_OK;
}

static int copy_sig(uint8_t out[MN_SIG_LEN], const ProtobufCBinaryData *b) {
    if (b->len != MN_SIG_LEN || !b->data) return MN_EINVAL;
    memcpy(out, b->data, MN_SIG_LEN);
    return MN_OK;
}

static ProtobufCBinaryData bytes(const uint8_t *p, size_t len) {
    ProtobufCBinaryData b = {.len = len, .data = (uint8_t *)p};
    return b;
}

int mn_cons_vote_from_pb(mn_cons_vote *out, const Midnode__Vote *pb) {
    if (!out || !pb) return MN_EINVAL;
    memset(out, 0, sizeof *out);
    if (pb->type == MIDNODE__VOTE_TYPE__PREVOTE) out->type = MN_CONS_PREVOTE;
    else if (pb->type == MIDNODE__VOTE_TYPE__PRECOMMIT) out->type = MN_CONS_PRECOMMIT;
    else return MN_EINVAL;
    out->height = pb->height;
    out->round = pb->round;
    out->validator_index = pb->validator_index;
    if (copy_hash(&out->has_hash, out->block_hash, &pb->block_hash) != MN_OK) return MN_EINVAL;
    return copy_sig(out->sig, &pb->signature);
}

void mn_cons_vote_to_pb(Midnode__Vote *pb, const mn_cons_vote *v) {
    midnode__vote__init(pb);
    pb->type = v->type == MN_CONS_PREVOTE ? MIDNODE__VOTE_TYPE__PREVOTE : MIDNODE__VOTE_TYPE__PRECOMMIT;
    pb->height = v->height;
    pb->round = v->round;
    pb->block_hash = bytes(v->block_hash, v->has_hash ? MN_HASH_LEN : 0);
    pb->validator_index = v->validator_index;
    pb->signature = bytes(v->sig, MN_SIG_LEN);
}

int mn_cons_proposal_from_pb(mn_cons_proposal *out, const Midnode__Proposal *pb) {
    if (!out || !pb) return MN_EINVAL;
    memset(out, 0, sizeof *out);
    bool has = false;
    if (copy_hash(&has, out->block_hash, &pb->block_hash) != MN_OK || !has) return MN_EINVAL;
    out->height = pb->height;
    out->round = pb->round;
    out->pol_round = pb->pol_round;
    out->proposer_index = pb->proposer_index;
    return copy_sig(out->sig, &pb->signature);
}

void mn_cons_proposal_to_pb(Midnode__Proposal *pb, const mn_cons_proposal *p) {
    midnode__proposal__init(pb);
    pb->height = p->height;
    pb->round = p->round;
    pb->pol_round = p->pol_round;
    pb->block_hash = bytes(p->block_hash, MN_HASH_LEN);
    pb->proposer_index = p->proposer_index;
    pb->signature = bytes(p->sig, MN_SIG_LEN);
    pb->block = NULL;
}

int mn_cons_record_from_pb(mn_cons_record *out, const Midnode__SignedRecord *pb) {
    if (!out || !pb) return MN_EINVAL;
    memset(out, 0, sizeof *out);
    if (pb->step > MN_SIGN_PRECOMMIT) return MN_EINVAL;
    out->height = pb->height;
    out->round = pb->round;
    out->step = (uint8_t)pb->step;
    out->pol_round = pb->pol_round;
    out->validator_index = pb->validator_index;
    if (copy_hash(&out->has_hash, out->block_hash, &pb->block_hash) != MN_OK) return MN_EINVAL;
    if (out->step == MN_CONS_STEP_ROUND) return pb->signature.len == 0 ? MN_OK : MN_EINVAL;
    return copy_sig(out->sig, &pb->signature);
}

void mn_cons_record_to_pb(Midnode__SignedRecord *pb, const mn_cons_record *r) {
    midnode__signed_record__init(pb);
    pb->height = r->height;
    pb->round = r->round;
    pb->step = r->step;
    pb->block_hash = bytes(r->block_hash, r->has_hash ? MN_HASH_LEN : 0);
    pb->signature = bytes(r->sig, r->step == MN_CONS_STEP_ROUND ? 0 : MN_SIG_LEN);
    pb->pol_round = r->pol_round;
    pb->validator_index = r->validator_index;
    pb->has_hash = r->has_hash;
}

int mn_cons_cert_from_pb(mn_cons_cert *out, const Midnode__CommitCertificate *pb) {
    if (!out || !pb) return MN_EINVAL;
    memset(out, 0, sizeof *out);
    bool has = false;
    if (copy_hash(&has, out->block_hash, &pb->block_hash) != MN_OK || !has) return MN_EINVAL;
    if (pb->n_sigs > MN_VALIDATORS_MAX || (pb->n_sigs && !pb->sigs)) return MN_EINVAL;
    out->height = pb->height;
    out->round = pb->round;
    for (size_t i = 0; i < pb->n_sigs; i++) {
        const Midnode__CommitSig *s = pb->sigs[i];
        if (!s || copy_sig(out->sigs[i].sig, &s->signature) != MN_OK) return MN_EINVAL;
        out->sigs[i].validator_index = s->validator_index;
    }
    out->count = (uint32_t)pb->n_sigs;
    return MN_OK;
}

Midnode__CommitCertificate *mn_cons_cert_to_pb(mn_cons_cert_pb *store, const mn_cons_cert *c) {
    midnode__commit_certificate__init(&store->msg);
    store->msg.height = c->height;
    store->msg.round = c->round;
    store->msg.block_hash = bytes(c->block_hash, MN_HASH_LEN);
    uint32_t n = c->count > MN_VALIDATORS_MAX ? MN_VALIDATORS_MAX : c->count;
    for (uint32_t i = 0; i < n; i++) {
        midnode__commit_sig__init(&store->sigs[i]);
        store->sigs[i].validator_index = c->sigs[i].validator_index;
        store->sigs[i].signature = bytes(c->sigs[i].sig, MN_SIG_LEN);
        store->ptrs[i] = &store->sigs[i];
    }
    store->msg.n_sigs = n;
    store->msg.sigs = n ? store->ptrs : NULL;
    return &store->msg;
}

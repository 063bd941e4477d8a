/* cons_pb.h: conversions between the consensus engine's plain structs
 * (cons.h) and their protobuf messages (proto/midnode.proto): Vote,
 * Proposal (without its Block), SignedRecord and CommitCertificate.
 *
 * *_from_pb copy out of a decoded message and check every length: they
 * return MN_OK or MN_EINVAL (unknown vote type or step, a hash that is
 * neither empty nor 32 bytes, a signature that is not 64 bytes, too many
 * certificate signatures), and never keep a pointer into the message.
 * *_to_pb fill a message whose byte fields POINT INTO the source struct (and
 * into `store` for certificates): the source must outlive the message, and
 * the message must not be freed with protobuf_c_message_free_unpacked.
 * Nothing here allocates. */
#ifndef MN_CONS_PB_H
#define MN_CONS_PB_H

#include "cons.h"
#include "midnode.pb-c.h"

int mn_cons_vote_from_pb(mn_cons_vote *out, const Midnode__Vote *pb) MN_WARN_UNUSED;
void mn_cons_vote_to_pb(Midnode__Vote *pb, const mn_cons_vote *v);

/* The Block a Proposal carries is the daemon's business; only the fields
 * the engine signs are converted (pb->block is left NULL by to_pb). */
int mn_cons_proposal_from_pb(mn_cons_proposal *out, const Midnode__Proposal *pb) MN_WARN_UNUSED;
void mn_cons_proposal_to_pb(Midnode__Proposal *pb, const mn_cons_proposal *p);

int mn_cons_record_from_pb(mn_cons_record *out, const Midnode__SignedRecord *pb) MN_WARN_UNUSED;
void mn_cons_record_to_pb(Midnode__SignedRecord *pb, const mn_cons_record *r);

/* Storage for a certificate message built from an mn_cons_cert. */
typedef struct mn_cons_cert_pb {
    Midnode__CommitCertificate msg;
    Midnode__CommitSig sigs[MN_VALIDATORS_MAX];
    Midnode__CommitSig *ptrs[MN_VALIDATORS_MAX];
} mn_cons_cert_pb;

int mn_cons_cert_from_pb(mn_cons_cert *out, const Midnode__CommitCertificate *pb) MN_WARN_UNUSED;
/* Returns &store->msg. */
Midnode__CommitCertificate *mn_cons_cert_to_pb(mn_cons_cert_pb *store, const mn_cons_cert *c);

#endif

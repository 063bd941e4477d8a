/* mn.h: the one error convention and the bounds every midnode module shares.
 *
 * Functions that can fail return MN_OK (0) or a negative MN_E* code. Set-up
 * paths additionally write a human-readable reason into a caller-provided
 * `char *err, size_t err_len` buffer, which the top level logs once.
 * Bounds live here, with _Static_asserts on how they relate. */
#ifndef MN_H
#define MN_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define MN_WARN_UNUSED __attribute__((warn_unused_result))
#define MN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MN_WARN_UNUSED
#define MN_PRINTF(a, b)
#endif

enum mn_err {
    MN_OK = 0,
    MN_EINVAL = -1,     /* bad argument or malformed input */
    MN_ENOMEM = -2,     /* allocation failed */
    MN_EIO = -3,        /* disk or socket I/O failed */
    MN_ECRYPTO = -4,    /* signature or key operation failed */
    MN_ENOTFOUND = -5,  /* no such key / block / credential */
    MN_EPERM = -6,      /* refused: not allowed (file mode, unknown peer, ...) */
    MN_ETOOBIG = -7,    /* over a bound */
    MN_ECORRUPT = -8,   /* stored or received data fails its checks */
    MN_EAGAIN = -9,     /* try again later (queue full, not ready) */
    MN_ESTATE = -10,    /* operation not valid in the current state */
};

/* Returns a static string naming an MN_E* code ("MN_EINVAL", ...). */
const char *mn_strerror(int code);

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and durations. */
int64_t mn_mono_ms(void);

/* ---- bounds (units last) ---- */
#define MN_HASH_LEN 32
#define MN_ID_LEN 32               /* credential_id, holder_ref, device_ref */
#define MN_PUBKEY_LEN 33           /* compressed secp256k1 public key */
#define MN_SECKEY_LEN 32
#define MN_SIG_LEN 64              /* compact ECDSA signature */
#define MN_MEMBER_ID_MAX 32        /* bytes of a member id, without NUL */
#define MN_CHAIN_ID_MAX 64
#define MN_REASON_MAX 256          /* revoke reason text */
#define MN_TX_BYTES_MAX 4096       /* one serialised Tx (other than ISSUE_BATCH) */
#define MN_BATCH_ITEMS_MAX 1000    /* issuances in one ISSUE_BATCH */
#define MN_TX_BATCH_BYTES_MAX (256 * 1024) /* one serialised ISSUE_BATCH Tx */
#define MN_BLOCK_TXS_MAX 10000
#define MN_BLOCK_BYTES_MAX (MN_BLOCK_TXS_MAX * 512 + 65536)
#define MN_VALIDATORS_MAX 64
#define MN_MEMBERS_MAX 256
#define MN_PEER_FRAME_BYTES_MAX (16 * 1024 * 1024)
#define MN_RPC_FRAME_BYTES_MAX (1024 * 1024)
#define MN_STATUS_BATCH_MAX 1000
#define MN_SYNC_BLOCKS_MAX 256     /* blocks per catch-up response */

_Static_assert(MN_TX_BYTES_MAX < MN_RPC_FRAME_BYTES_MAX, "a tx fits in an RPC frame");
_Static_assert(MN_BLOCK_BYTES_MAX < MN_PEER_FRAME_BYTES_MAX, "a block fits in a peer frame");
_Static_assert(MN_TX_BATCH_BYTES_MAX + 4096 < MN_RPC_FRAME_BYTES_MAX, "a batch tx fits in an RPC frame");
_Static_assert(MN_TX_BATCH_BYTES_MAX * 4 < MN_BLOCK_BYTES_MAX - 65536, "a block holds several batch txs");
_Static_assert(MN_TX_BATCH_BYTES_MAX >= MN_BATCH_ITEMS_MAX * 200, "room for the items (an issuance is ~135 bytes)");
_Static_assert(MN_MEMBER_ID_MAX < 64, "member ids stay short");

/* A u64 as 8 big-endian bytes at p (keys on disk sort by it), and back. */
static inline void mn_put_u64be(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t mn_get_u64be(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

#endif

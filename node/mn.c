/* mn.c: names of the shared error codes. */
#include "mn.h"

const char *mn_strerror(int code) {
    switch (code) {
    case MN_OK: return "MN_OK";
    case MN_EINVAL: return "MN_EINVAL";
    case MN_ENOMEM: return "MN_ENOMEM";
    case MN_EIO: return "MN_EIO";
    case MN_ECRYPTO: return "MN_ECRYPTO";
    case MN_ENOTFOUND: return "MN_ENOTFOUND";
    case MN_EPERM: return "MN_EPERM";
    case MN_ETOOBIG: return "MN_ETOOBIG";
    case MN_ECORRUPT: return "MN_ECORRUPT";
    case MN_EAGAIN: return "MN_EAGAIN";
    case MN_ESTATE: return "MN_ESTATE";
    default: return "MN_E?";
    }
}

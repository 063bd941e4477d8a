/* ctl_testnet.c: `midctl testnet`: writes a ready cluster definition. The
 * work, argument parsing included, is in node/testnet.c so that unit tests
 * reach it without the midctl binary. */
#include "testnet.h"

int mn_ctl_testnet(int argc, char **argv) { return mn_testnet_main(argc, argv); }

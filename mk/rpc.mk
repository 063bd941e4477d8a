# rpc: `midctl status --verify` calls the verifier library (node/verify.c,
# cert.c, genesis.c). Until those sources exist midctl builds without it and
# says so at run time; the object is rebuilt when they appear.
MN_RPC_HAVE_VERIFY := $(if $(and $(wildcard node/verify.c),$(wildcard node/cert.c),$(wildcard node/genesis.c)),1,0)
$(BUILD)/obj/tools/ctl_query.o: CPPFLAGS += -DMN_HAVE_VERIFY=$(MN_RPC_HAVE_VERIFY)
$(BUILD)/obj/tools/ctl_query.o: $(wildcard node/verify.c node/cert.c node/genesis.c)

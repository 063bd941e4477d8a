# The client library a bank or carrier links: node/client.h (RPC client and
# transaction signing) and node/verify.h (offline proof checks) in one static
# archive that needs only libsecp256k1, libcrypto and libprotobuf-c.
CLIENT_LIB := $(BUILD)/lib/libmidclient.a
CLIENT_LIB_SRCS := node/client.c node/crypto.c node/mn.c node/verify.c node/cert.c node/smt_verify.c \
                   node/smt.c node/kvmap.c consensus/signbytes.c
CLIENT_LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(CLIENT_LIB_SRCS)) $(BUILD)/obj/gen/midnode.pb-c.o

$(CLIENT_LIB): $(CLIENT_LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

client-lib: $(CLIENT_LIB)
.PHONY: client-lib
all: $(CLIENT_LIB)

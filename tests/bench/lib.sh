# Shared helpers of the benchmark scripts (sourced; needs $PY).

# A block of $1 consecutive free ports on 127.0.0.1, below the kernel's
# ephemeral range so that no outgoing connection can take one of them
# between this check and the node's bind.
free_base() {
  $PY - "$1" <<'PYEOF'
import random, socket, sys
n = int(sys.argv[1])
high = 32768
try:
    high = min(high, int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0]))
except (OSError, ValueError, IndexError):
    pass
for _ in range(500):
    b = random.randint(10000, high - n)
    socks = []
    try:
        for p in range(b, b + n):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(b); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PYEOF
}

# One top-level field of a JSON file: jget FILE KEY
jget() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

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

# Sum of utime+stime (clock ticks) of the given pids.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}

# settle MAX PID...: waits until the pids together use under a tenth of a
# core over two seconds (a bulk load leaves LevelDB compactions running in
# the background, and measuring beside them measures the load's aftermath),
# or MAX seconds have passed. Prints the seconds waited; returns 1 when
# they were still busy.
settle() {
  local max=$1 t0=$SECONDS s0 s1 tck
  shift
  tck=$(getconf CLK_TCK)
  while :; do
    s0=$(cpu_ticks "$@"); sleep 2; s1=$(cpu_ticks "$@")
    [ $(( (s1 - s0) * 100 )) -lt $((tck * 2 * 10)) ] && { echo $((SECONDS - t0)); return 0; }
    [ $((SECONDS - t0)) -ge "$max" ] && { echo $((SECONDS - t0)); return 1; }
  done
}

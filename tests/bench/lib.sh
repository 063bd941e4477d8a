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

# Bytes the given pids have caused to be written to storage (write_bytes
# of /proc/PID/io).
io_write_bytes() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '$1 == "write_bytes:" {print $2}' "/proc/$p/io"))); done
  echo $t
}

# settle MAX PID...: waits until the pids together use under a tenth of a
# core and write under 1 MB/s, over two windows of two seconds in a row (a
# bulk load leaves LevelDB compactions to run in the background, and
# measuring beside them measures the load's aftermath; a compaction waiting
# on the disk uses little CPU, so CPU alone let runs start with one
# pending), or MAX seconds have passed. Prints the seconds waited; returns
# 1 when they were still busy.
settle() {
  local max=$1 t0=$SECONDS s0 s1 w0 w1 tck quiet=0
  shift
  tck=$(getconf CLK_TCK)
  while :; do
    s0=$(cpu_ticks "$@"); w0=$(io_write_bytes "$@"); sleep 2; s1=$(cpu_ticks "$@"); w1=$(io_write_bytes "$@")
    if [ $(( (s1 - s0) * 100 )) -lt $((tck * 2 * 10)) ] && [ $((w1 - w0)) -lt $((2 * 1024 * 1024)) ]; then
      quiet=$((quiet + 1))
    else
      quiet=0
    fi
    [ $quiet -ge 2 ] && { echo $((SECONDS - t0)); return 0; }
    [ $((SECONDS - t0)) -ge "$max" ] && { echo $((SECONDS - t0)); return 1; }
  done
}

# wait_rpc ADDR [SECONDS]: waits (default 60 s) until the node at ADDR
# answers `midctl info`; dies (the caller's die) when it does not. Needs $BIN.
wait_rpc() {
  local deadline=$((SECONDS + ${2:-60}))
  until "$BIN/midctl" --node "$1" info >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && die "node $1 did not answer"
    sleep 0.2
  done
}

# set_read_cache_mb HOME MB: sets limits.read_cache_mb in HOME/config.json.
set_read_cache_mb() {
  $PY - "$1/config.json" "$2" <<'PYEOF'
import json, sys
path, mb = sys.argv[1], int(sys.argv[2])
cfg = json.load(open(path))
cfg.setdefault("limits", {})["read_cache_mb"] = mb
json.dump(cfg, open(path, "w"), indent=2)
PYEOF
}

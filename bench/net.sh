#!/usr/bin/env bash
# bench/net: network throughput and latency of minivm's virtio-net against
# QEMU's userspace virtio-net (vhost=off), both on a TAP in the same bridge,
# in one session: directly on hardware KVM, or all inside one rig boot.
# For each VMM, RUNS times in turn (default 3): the guest runs an iperf3
# server; the host, on the bridge, measures host-to-guest (iperf3 -c) and
# guest-to-host (-R) TCP throughput for SECS seconds (default 5), and the
# ping round trip (20 pings). Prints the medians and QEMU/minivm ratios.
# Everything lives in a network namespace of its own. A benchmark: it
# asserts nothing, but says so when a run fails.
# bench/lib.sh: SRC, BUILD, KIT, RUNS and SECS (3 and 5), median, ratio, bench_where.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ -z "${MINIVM_RIG:-}" ] && ! host_has_hw_kvm; then
	bash "$SRC/guests/build-kit.sh" >&2
	[ -x "$BUILD/minivm" ] || { cmake -S "$SRC" -B "$BUILD" >/dev/null && make -C "$BUILD" -j2 minivm >/dev/null; }
	exec bash "$SRC/tests/rig/run.sh" --mem 2048 -- env RUNS="$RUNS" SECS="$SECS" VMMS="${VMMS:-}" \
		MINIVM_BUILD="$BUILD" bash "$0" "$@"
fi
for t in iperf3 ip; do
	command -v "$t" >/dev/null || { echo "bench/net: $t is missing (tests/install-deps.sh installs it)" >&2; exit 2; }
done
[ -f "$KIT/initrd-net.img" ] || { echo "bench/net: no $KIT/initrd-net.img (guests/build-kit.sh, with iperf3 installed)" >&2; exit 2; }

NS=mvbench-$$
HOST=192.168.79.1 GUEST=192.168.79.2
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/minivm-bench-net.XXXXXX")
cleanup() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip link add br0 type bridge
in_ns ip addr add "$HOST/24" dev br0
in_ns ip link set br0 up

APPEND="console=ttyS0 quiet scenario=net net_addr=$GUEST/24 net_iperf=1 net_stay=1"
COMMON="-kernel $KIT/vmlinuz -initrd $KIT/initrd-net.img -m 512 -smp 2"
declare -A CMDS=(
	[minivm]="$BUILD/minivm $COMMON -nographic -netdev tap,id=n0,ifname=mvb0,script=no,downscript=no -device virtio-net-pci,netdev=n0"
	[qemu]="qemu-system-x86_64 -accel kvm -cpu host -no-reboot $COMMON -nographic -netdev tap,id=n0,ifname=mvb0,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0"
)
read -r -a ORDER <<<"${VMMS:-minivm qemu}"
for name in "${ORDER[@]}"; do
	[ -n "${CMDS[$name]:-}" ] || { echo "bench/net: unknown VMM '$name' in VMMS" >&2; exit 2; }
done

# iperf3's JSON: the receiver's bits per second, in Mbit/s.
mbps() { python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'; }
# iperf VMM ARGS...: one iperf3 client run, its Mbit/s. iperf3 makes a
# temporary file per stream in $TMPDIR, which in the rig is 9p, where that
# fails ("unable to create a new stream"): so a tmpfs. Errors go to the log.
iperf() {
	local name=$1
	shift
	in_ns env TMPDIR=/dev/shm iperf3 "$@" 2>>"$WORK/$name.iperf.err" | mbps 2>>"$WORK/$name.iperf.err"
}
# iputils' ping if the machine has it, else busybox's (the rig runs this
# machine's programs, and Debian does not install ping by default).
if command -v ping >/dev/null; then PING=(ping); else PING=(busybox ping); fi

# One run of VMM: prints "TX RX RTT" (Mbit/s host-to-guest and guest-to-host,
# ms), "- - -" where it failed.
one_run() {
	local name=$1 log=$WORK/$1.log pid tx=- rx=- rtt=- _
	# shellcheck disable=SC2086  # the command's words
	in_ns timeout -k 5 300 ${CMDS[$name]} -append "$APPEND" </dev/null >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		in_ns ip link show mvb0 >/dev/null 2>&1 && break
		sleep 0.2
	done
	in_ns ip link set mvb0 master br0 up 2>/dev/null || true
	for _ in $(seq 600); do
		grep -q -e "iperf3 server up" -e "scenario exit" "$log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if grep -q "iperf3 server up" "$log"; then
		tx=$(iperf "$name" -c "$GUEST" -t "$SECS" -J) || tx=-
		rx=$(iperf "$name" -c "$GUEST" -t "$SECS" -R -J) || rx=-
		rtt=$(in_ns "${PING[@]}" -c 20 -i 0.2 -q "$GUEST" 2>/dev/null |
			sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p') || true
		rtt=${rtt:--}
		[ "$tx$rx" != -- ] || { echo "bench/net: $name: iperf3 failed:" >&2; tail -n 3 "$WORK/$name.iperf.err" >&2; }
	else
		echo "bench/net: $name: the guest did not come up; its last lines:" >&2
		tail -n 5 "$log" >&2
	fi
	# SIGTERM: the power button; then whatever is left in the namespace
	# goes, so that the next run finds the TAP's name free.
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	ip netns pids "$NS" | xargs -r kill -KILL 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	echo "$tx $rx $rtt"
}

declare -A TX RX RTT
for i in $(seq "$RUNS"); do
	for name in "${ORDER[@]}"; do
		read -r tx rx rtt < <(one_run "$name")
		echo "  $name run $i: host-to-guest ${tx} Mbit/s, guest-to-host ${rx} Mbit/s, ping ${rtt} ms" >&2
		[ "$tx" = - ] || TX[$name]+="$tx "
		[ "$rx" = - ] || RX[$name]+="$rx "
		[ "$rtt" = - ] || RTT[$name]+="$rtt "
	done
done

printf '\nbench/net: %s runs each, %s s per iperf3 run, medians (%s)\n' "$RUNS" "$SECS" \
	"$(bench_where)"
printf '%-8s %18s %18s %10s\n' VMM "host->guest Mbit/s" "guest->host Mbit/s" "ping ms"
declare -A M
for name in "${ORDER[@]}"; do
	M[$name.tx]=$(printf '%s\n' ${TX[$name]:-} | { grep . || true; } | median)
	M[$name.rx]=$(printf '%s\n' ${RX[$name]:-} | { grep . || true; } | median)
	M[$name.rtt]=$(printf '%s\n' ${RTT[$name]:-} | { grep . || true; } | median)
	printf '%-8s %18s %18s %10s\n' "$name" "${M[$name.tx]}" "${M[$name.rx]}" "${M[$name.rtt]}"
done
if [ -n "${M[minivm.tx]:-}" ] && [ -n "${M[qemu.tx]:-}" ]; then
	printf '%-8s %18s %18s %10s\n' "minivm/qemu" "$(ratio "${M[minivm.tx]}" "${M[qemu.tx]}")" \
		"$(ratio "${M[minivm.rx]}" "${M[qemu.rx]}")" "$(ratio "${M[minivm.rtt]}" "${M[qemu.rtt]}")"
	echo "(throughput: above 1 is minivm ahead; ping: below 1 is minivm ahead)"
fi

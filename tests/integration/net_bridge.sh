#!/usr/bin/env bash
# Two guests on one bridge, in a network namespace of the test's own:
# -netdev bridge with -device virtio-net-pci, and -nic bridge. They ping
# each other; their default MACs differ; info network shows the NICs and
# their traffic; set_link off takes the carrier away from the guest (which
# then cannot reach its peer) and set_link on brings it back.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"
[ "$MINIVM_TEST_VMM" = minivm ] || { echo "SKIP: uses minivm's monitor" >&2; exit 77; }

scratch_dir
runtime_dir
netns_new br
ip -n "$ns" link add br0 type bridge || fail "cannot create a bridge"
ip -n "$ns" link set br0 up
# guest NAME LOG ARGS...: a minivm in the namespace, in the background.
guest() {
	local name=$1 log=$2
	shift 2
	ip netns exec "$ns" timeout -k 5 "$GUEST_TIMEOUT" "$MINIVM" -kernel "$KIT/vmlinuz" \
		-initrd "$KIT/initrd.img" -m 256 -name "$name" "$@" </dev/null >"$log" 2>&1 &
	WAIT_PIDS+=($!)
}
g1=$dir/g1.log g2=$dir/g2.log
FAIL_LOGS=("$g1" "$g2")
# One boot at a time: two guests booting at once inside the rig have seen
# a vCPU triple fault there (TCG's nested SVM; see docs/rig.md). Guest 2
# keeps trying to ping guest 1 (120 s) while guest 1 boots.
guest nb2 "$g2" -nic bridge,br=br0,model=virtio-net-pci \
	-append "console=ttyS0 quiet scenario=net net_addr=192.168.77.11/24 net_ping=192.168.77.10 net_stay=1"
wait_for "$g2" "minivm-guest: mac "
guest nb1 "$g1" -netdev bridge,id=n0,br=br0 -device virtio-net-pci,netdev=n0,id=nic0 \
	-append "console=ttyS0 quiet scenario=net net_addr=192.168.77.10/24 net_link=192.168.77.11"

wait_for "$g1" "link test: waiting for the carrier to go"
wait_for "$g2" "minivm-guest: staying up"
grep -q "minivm-guest: ping 192.168.77.11 ok" "$g1" || fail "guest 1 cannot ping guest 2"
grep -q "minivm-guest: ping 192.168.77.10 ok" "$g2" || fail "guest 2 cannot ping guest 1"
grep -h "minivm-guest: ping" "$g1" "$g2"
[ "$(ip -n "$ns" -o link show master br0 | wc -l)" -eq 2 ] || fail "expected two TAPs on br0"
mac1=$(sed -n 's/.*minivm-guest: mac \([0-9a-f:]*\).*/\1/p' "$g1")
mac2=$(sed -n 's/.*minivm-guest: mac \([0-9a-f:]*\).*/\1/p' "$g2")
[ -n "$mac1" ] && [ -n "$mac2" ] && [ "$mac1" != "$mac2" ] || fail "default MACs: '$mac1' and '$mac2'"
[[ $mac1 == 52:54:00:* ]] || fail "default MAC $mac1 is not 52:54:00:..."
echo "ok: two guests on one bridge ping each other; default MACs $mac1 and $mac2"

info=$(ctl nb1 info network) || fail "info network: $info"
echo "$info"
grep -q "^net0 id=nic0: virtio-net-pci macaddr=$mac1 link=up, netdev n0: bridge ifname=" <<<"$info" ||
	fail "info network: not the expected first line"
rx=$(ctl nb1 -j info network | grep -o '"rx_frames": [0-9]*' | grep -o '[0-9]*$')
[ "${rx:-0}" -ge 3 ] || fail "info network: rx_frames ${rx:-none} after pings"

ctl nb1 set_link n0 off || fail "set_link n0 off"
ctl nb1 info network | grep -q "link=down" || fail "info network: link not down after set_link off"
wait_for "$g1" "minivm-guest: carrier down"
wait_for "$g1" "link test: waiting for the carrier to come back"
grep -q "minivm-guest: no answer with the link down" "$g1" || fail "the peer answered with the link down"
ctl nb1 set_link nic0 on || fail "set_link nic0 on"
wait_for "$g1" "minivm-guest: scenario exit"
grep -q "minivm-guest: carrier up" "$g1" || fail "the carrier did not come back"
[ "$(grep -c "minivm-guest: ping 192.168.77.11 ok" "$g1")" -eq 2 ] || fail "no ping after set_link on"
rc=0; wait "${WAIT_PIDS[1]}" || rc=$?
WAIT_PIDS=("${WAIT_PIDS[0]}") # guest 1 is done
[ "$rc" -eq 0 ] || fail "guest 1: minivm exited $rc"
echo "ok: set_link off/on: the guest sees the carrier go and come back, no traffic while it is down"

for bad in "set_link" "set_link n0 maybe" "set_link nosuch off"; do
	rc=0
	# shellcheck disable=SC2086  # words on purpose
	out=$(ctl nb2 $bad) || rc=$?
	[ "$rc" -eq 1 ] && [[ $out == error:* ]] || fail "'$bad': rc $rc, '$out'"
done
ctl nb2 system_powerdown || fail "system_powerdown"
rc=0; wait "${WAIT_PIDS[0]}" || rc=$?
[ "$rc" -eq 0 ] || fail "guest 2: minivm exited $rc"
echo "ok: bad set_link commands get errors; guest 2 powers off, exit 0"

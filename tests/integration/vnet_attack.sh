#!/usr/bin/env bash
# The guest as the attacker, against virtio-net: the teaching guest
# vnet-attack (guests/teach/vnet-attack.c) drives minivm's virtio-net device
# correctly once, then breaks one rule of the virtio 1.x spec per case
# (descriptors outside RAM, loops, bad indirect tables, bad headers, bad
# queue setup, junk in the registers, ...). Each case must end with the
# device refusing the request or setting DEVICE_NEEDS_RESET, and after a
# reset the device must work again: an ARP request sent, its reply
# received. minivm must exit 0 (the guest powers off at the end) with no
# crash, sanitizer report or hang (a timeout fails the test).
#
# Needs no Linux, so it runs directly on any /dev/kvm, PVM included, in a
# few seconds a run: with user-mode networking (-nic user and the
# -netdev/-device pair), and as root with a TAP in a private network
# namespace whose host side answers ARP. The suite runs it against each
# build it tests, the ASan one included ($MINIVM comes from lib.sh).
. "$(dirname "$0")/lib.sh"
need_any_kvm 1024 "$@"

GUEST=$MINIVM_BUILD/guests/teach/vnet-attack
[ -x "$MINIVM" ] || fail "no $MINIVM: build first"
[ -f "$GUEST.elf" ] || fail "no $GUEST.elf: run make in $MINIVM_BUILD"
scratch_dir
T=${MINIVM_GUEST_TIMEOUT:-60}

# What the device must do in each case, as the guest reports it (an
# extended regular expression for the text between "NAME: " and "; after
# reset"). The order is the guest's.
cases=(
	addr-past-ram-end needs_reset
	addr-in-mmio-bar needs_reset
	buffer-straddles-ram-end needs_reset
	'addr-len-wraps-2\^64' needs_reset
	len-zero used
	len-zero-in-chain sent
	len-4gib needs_reset
	chain-over-4gib needs_reset
	chain-loop needs_reset
	self-loop needs_reset
	next-out-of-range needs_reset
	next-0xffff needs_reset
	tx-device-writable needs_reset
	tx-readable-after-writable needs_reset
	head-out-of-range needs_reset
	avail-idx-jump needs_reset
	indirect-ok sent
	chain-longer-than-queue needs_reset
	indirect-bigger-than-queue needs_reset
	indirect-outside-ram needs_reset
	indirect-len-not-16x needs_reset
	indirect-nested needs_reset
	indirect-with-next needs_reset
	indirect-loop needs_reset
	indirect-next-out-of-table needs_reset
	indirect-not-negotiated needs_reset
	hdr-shorter-than-header used
	hdr-csum-beyond-frame dropped
	hdr-csum-just-beyond-frame dropped
	hdr-gso-size-zero dropped
	hdr-gso-hdr-len-huge 'dropped|sent' # with a TAP, the kernel judges
	hdr-bad-gso-type dropped
	hdr-device-only-flags dropped
	tx-frame-64k used
	tx-frame-too-big used
	tx-ipv4-last-fragment-first used
	rx-device-readable needs_reset
	rx-smaller-than-header needs_reset
	rx-outside-ram needs_reset
	rx-too-small-for-frame 'used, 20 bytes'
	rx-mrg-split-header 'used, num_buffers right'
	rx-mrg-dry-then-refill 'used, num_buffers right'
	rx-mrg-reset-mid-frame 'waiting for buffers'
	ctrl-garbage-class 'used, ack ERR'
	ctrl-mac-table-overflow 'used, ack ERR'
	ctrl-mac-table-past-end 'used, ack ERR'
	ctrl-mac-table-65 'used, ack OK'
	ctrl-too-long 'used, ack ERR'
	ctrl-one-byte 'used, ack ERR'
	ctrl-no-ack-byte needs_reset
	queue-size-not-pow2 'needs_reset \(queue_size reads 100, queue_enable 0\)'
	queue-size-too-big 'needs_reset \(queue_size reads 512, queue_enable 0\)'
	queue-size-zero 'needs_reset \(queue_size reads 0, queue_enable 0\)'
	queue-desc-outside-ram 'needs_reset \(.*queue_enable 0\)'
	queue-used-in-mmio 'needs_reset \(.*queue_enable 0\)'
	queue-ring-straddles-ram-end 'needs_reset \(.*queue_enable 0\)'
	queue-desc-misaligned 'needs_reset \(.*queue_enable 0\)'
	queue-change-while-enabled 'ignored \(queue_desc unchanged\), tx still ok'
	queue-enable-after-driver-ok 'ignored .*, tx still ok'
	features-not-offered 'refused .*'
	features-without-version-1 'refused .*'
	driver-ok-without-features-ok 'ignored .*'
	features-after-driver-ok '(accepted|refused), tx still ok|needs_reset'
	driver-ok-twice 'needs_reset|ignored, tx still ok'
	driver-sets-needs-reset 'ignored, tx still ok'
	reset-during-tx 'survived, tx still ok'
	notify-queue-7 'ignored, tx still ok'
	notify-queue-0xffff 'ignored, tx still ok'
	notify-odd-widths 'ignored, tx still ok'
	junk-common-cfg 'survived, device_status 0x[0-9a-f]+'
	junk-device-cfg 'ignored \(MAC unchanged\), tx still ok'
	junk-bar0-gaps-isr-end 'survived, tx still ok'
	junk-msix-table 'survived, tx still ok'
)
ncases=$((${#cases[@]} / 2))

# The console and stderr of the run whose files start with $log.
show() {
	echo "--- console ---" >&2
	cat "$log.txt" >&2
	echo "--- stderr ---" >&2
	cat "$log.err" >&2
}

# attack LABEL IMAGE [minivm args...]: runs the guest (under ${RUN[@]});
# every case must be there, in order, with the outcome above, and the
# device back after it.
attack() {
	local label=$1 image=$2 rc=0 i n name want line start=$SECONDS
	shift 2
	log=$dir/${label//[^a-z]/_}
	"${RUN[@]}" timeout -k 5 "$T" "$MINIVM" -kernel "$image" -nographic -m 128 "$@" \
		</dev/null >"$log.out" 2>"$log.err" || rc=$?
	tr -d '\r' <"$log.out" >"$log.txt"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		show
		fail "$label: minivm hung (killed after $T s)"
	fi
	if grep -qE -e 'AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault' \
		-e 'Aborted|core dumped|KVM internal error|triple fault' "$log.err"; then
		show
		fail "$label: minivm crashed or a sanitizer complained"
	fi
	[ "$rc" -eq 0 ] || { show; fail "$label: minivm exited $rc"; }
	grep -q '^vnet-attack: tx ok: ' "$log.txt" ||
		{ show; fail "$label: the correct driver could not send"; }
	n=0
	for ((i = 0; i < ${#cases[@]}; i += 2)); do
		n=$((n + 1))
		name=${cases[i]} want=${cases[i + 1]}
		line=$(grep -E "^vnet-attack: case $n $name: " "$log.txt") ||
			{ show; fail "$label: no line for case $n ${name//\\/}"; }
		[[ $line =~ ^vnet-attack:\ case\ $n\ $name:\ ($want)\;\ after\ reset:\ (.*)$ ]] ||
			{ show; fail "$label: case $n: '$line', expected '$want'"; }
		[ "${BASH_REMATCH[-1]}" = "tx ok" ] ||
			{ show; fail "$label: case $n ${name//\\/}: the device did not recover: ${BASH_REMATCH[-1]}"; }
	done
	[ "$(grep -c '^vnet-attack: case ' "$log.txt")" -eq "$ncases" ] ||
		{ show; fail "$label: the guest ran cases this test does not know"; }
	grep -qx "vnet-attack: $ncases cases, 0 without recovery" "$log.txt" ||
		{ show; fail "$label: the guest's summary is missing or wrong"; }
	grep -qx 'vnet-attack: done, minivm still running' "$log.txt" ||
		{ show; fail "$label: the guest did not finish"; }
	echo "ok: $label: $ncases cases, each refused or NEEDS_RESET," \
		"the device back after every reset ($((SECONDS - start)) s)"
}

RUN=()
attack "user (ELF)" "$GUEST.elf" -nic user
attack "user (flat)" "$GUEST.bin" -kernel-format flat \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0

# A TAP, in a namespace of our own: its host side is 10.0.2.2, which
# answers the guest's ARP requests as slirp does. The interface exists,
# addressed and up, before minivm attaches to it (script=no), and IPv6 is
# off, so nothing but the replies comes the guest's way.
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/net/tun ]; then
	echo "skipped: TAP (needs root and /dev/net/tun)"
	exit 0
fi
ns=mvt-vnet-attack-$$
# Ours first, then whatever lib.sh's exit trap does (scratch directories).
lib_exit=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
cleanup_ns() {
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	eval "$lib_exit"
}
trap cleanup_ns EXIT
if ! ip netns add "$ns" 2>/dev/null; then
	echo "skipped: TAP (cannot create a network namespace)"
	exit 0
fi
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev vat0 mode tap vnet_hdr || fail "cannot create a TAP in $ns"
ip -n "$ns" addr add 10.0.2.2/24 dev vat0
ip -n "$ns" link set vat0 up
RUN=(ip netns exec "$ns")
attack "tap" "$GUEST.elf" -netdev tap,id=n0,ifname=vat0,script=no,downscript=no \
	-device virtio-net-pci,netdev=n0

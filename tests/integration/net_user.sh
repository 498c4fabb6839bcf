#!/usr/bin/env bash
# User-mode networking (-netdev user, libslirp), no root needed: the guest
# gets its address by DHCP (QEMU's defaults: 10.0.2.15, router 10.0.2.2, DNS
# 10.0.2.3), pings the virtual router, and a hostfwd port on the host
# reaches a web server in the guest. Then -nic user with net= and a second
# forward, and a forward whose port is taken (one error line, exit 1).
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"
[ "$MINIVM_TEST_VMM" = minivm ] || { echo "SKIP: uses minivm's monitor" >&2; exit 77; }

scratch_dir
runtime_dir
log=$dir/user.log
fail_hook() { FAIL_LOGS=(${log:+"$log"}); }
# A free TCP port on 127.0.0.1 (the kernel's pick, then let go).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# http_get PORT PATH: the body, through bash's /dev/tcp.
http_get() {
	local reply
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3
	reply=$(timeout 30 cat <&3) || true
	exec 3<&-
	printf '%s\n' "$reply" | tr -d '\r' | sed '1,/^$/d'
}

port=$(free_port)
token=minivm-$RANDOM$RANDOM
timeout -k 5 "$GUEST_TIMEOUT" "$MINIVM" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" -m 256 -name nu1 \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:8080" -device virtio-net-pci,netdev=n0 \
	-append "console=ttyS0 quiet scenario=net net_dhcp=1 net_ping=10.0.2.2 net_httpd=8080 net_token=$token net_stay=1" \
	</dev/null >"$log" 2>&1 &
pid=$!
WAIT_PIDS=("$pid")
wait_for "$log" "minivm-guest: staying up"
grep -q "minivm-guest: dhcp eth0 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3" "$log" ||
	fail "DHCP: not QEMU's defaults"
grep -q "minivm-guest: ping 10.0.2.2 ok" "$log" || fail "the guest cannot ping the virtual router"
grep -h "minivm-guest: dhcp\|minivm-guest: ping" "$log"
echo "ok: DHCP from the user network: 10.0.2.15, router and DNS as QEMU's; the router answers pings"
got=$(http_get "$port" /token) || fail "cannot connect to the forwarded port $port"
[ "$got" = "$token" ] || fail "hostfwd: got '$got', expected '$token'"
echo "ok: hostfwd tcp:127.0.0.1:$port-:8080 reaches the guest's web server"
info=$(ctl nu1 info network) || fail "info network: $info"
echo "$info"
grep -q "netdev n0: user" <<<"$info" || fail "info network does not show the user backend"

# The port is taken now: a second VM asking for it gets one line and exit 1.
rc=0
timeout -k 5 60 "$MINIVM" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" -m 256 \
	-nic "user,hostfwd=tcp:127.0.0.1:$port-:22" </dev/null >"$dir/taken.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <"$dir/taken.log")" -eq 1 ] && grep -q "Address already in use" "$dir/taken.log" ||
	{ cat "$dir/taken.log" >&2; fail "a taken hostfwd port: rc $rc"; }
echo "ok: a hostfwd port in use: $(cat "$dir/taken.log")"
ctl nu1 system_powerdown || fail "system_powerdown"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "minivm exited $rc"

# -nic user with another network and the guest at a set address.
log=$dir/user2.log
port=$(free_port)
timeout -k 5 "$GUEST_TIMEOUT" "$MINIVM" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" -m 256 -name nu2 \
	-nic "user,net=10.9.8.0/24,dhcpstart=10.9.8.50,hostfwd=tcp:127.0.0.1:$port-10.9.8.50:8080" \
	-append "console=ttyS0 quiet scenario=net net_dhcp=1 net_ping=10.9.8.2 net_httpd=8080 net_token=$token net_stay=1" \
	</dev/null >"$log" 2>&1 &
pid=$!
WAIT_PIDS=("$pid")
wait_for "$log" "minivm-guest: staying up"
grep -q "minivm-guest: dhcp eth0 10.9.8.50/24 router 10.9.8.2 dns 10.9.8.3" "$log" || fail "net=10.9.8.0/24: wrong lease"
got=$(http_get "$port" /token) || fail "cannot connect to the forwarded port $port"
[ "$got" = "$token" ] || fail "hostfwd on net=10.9.8.0/24: got '$got'"
ctl nu2 system_powerdown || fail "system_powerdown"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "minivm exited $rc"
echo "ok: -nic user,net=10.9.8.0/24,dhcpstart=10.9.8.50: lease, router 10.9.8.2, hostfwd to 10.9.8.50"

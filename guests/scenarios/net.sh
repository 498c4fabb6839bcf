#!/bin/sh
# shellcheck shell=sh
# The network tests' guest. Reads its orders from the kernel command line,
# whose unknown key=value words the kernel hands to init as environment
# variables (so they reach this script):
#   net_addr=A/N     a static address on eth0     net_dhcp=1   ask DHCP (udhcpc)
#   net_gw=R         a default route via R
#   net_ping=H       ping H until it answers (120 s), then 3 more for the RTT
#   net_noping=H     H must NOT answer (the isolated model): 5 s of tries
#   net_link=H       follow the carrier: wait for it to go down (the host's
#                    set_link off), check H is unreachable, wait for it to come
#                    back, ping H again
#   net_httpd=PORT   serve /www (a file "token" holding net_token) on PORT
#   net_iperf=1      run an iperf3 server (the kit's initrd-net.img has iperf3)
#   net_stay=1       stay up until powered off (the power button)
# Every result is one "minivm-guest: ..." line that the host test reads.
say() { echo "minivm-guest: $*"; }
if=eth0
i=0
while [ ! -e /sys/class/net/$if ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /sys/class/net/$if ] || { say "no $if"; exit 1; }
ip link set lo up
ip link set $if up
say "mac $(cat /sys/class/net/$if/address) mtu $(cat /sys/class/net/$if/mtu)"
[ -n "${net_addr:-}" ] && ip addr add "$net_addr" dev $if
if [ "${net_dhcp:-0}" = 1 ]; then
	udhcpc -i $if -n -q -t 10 -T 2 -s /usr/share/udhcpc/default.script 2>/dev/null || { say "dhcp failed"; exit 1; }
fi
[ -n "${net_gw:-}" ] && ip route add default via "$net_gw"

carrier() { cat /sys/class/net/$if/carrier 2>/dev/null; }
# wait_carrier 0|1: up to 60 s.
wait_carrier() {
	i=0
	while [ "$(carrier)" != "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(carrier)" = "$1" ]
}
# ping_until H: 120 one-second tries (ARP and the peer's boot take a while).
ping_until() {
	i=0
	while ! ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge 120 ] && return 1
	done
	return 0
}
ping_report() {
	if ping_until "$1"; then
		say "ping $1 ok: $(ping -c 3 -i 0.2 "$1" | tail -n 1)"
	else
		say "ping $1 failed"
		return 1
	fi
}

rc=0
if [ -n "${net_ping:-}" ]; then
	ping_report "$net_ping" || rc=1
fi
if [ -n "${net_noping:-}" ]; then
	if ping -c 5 -W 1 "$net_noping" >/dev/null 2>&1; then
		say "ping $net_noping answered"
		rc=1
	else
		say "ping $net_noping unreachable"
	fi
fi
if [ -n "${net_link:-}" ]; then
	ping_report "$net_link" || rc=1
	say "link test: waiting for the carrier to go"
	if wait_carrier 0; then
		say "carrier down"
		if ping -c 2 -W 1 "$net_link" >/dev/null 2>&1; then
			say "ping $net_link answered with the link down"
			rc=1
		else
			say "no answer with the link down"
		fi
		say "link test: waiting for the carrier to come back"
		if wait_carrier 1; then
			say "carrier up"
			ping_report "$net_link" || rc=1
		else
			say "the carrier did not come back"
			rc=1
		fi
	else
		say "the carrier did not go down"
		rc=1
	fi
fi
if [ -n "${net_httpd:-}" ]; then
	mkdir -p /www
	echo "${net_token:-minivm}" >/www/token
	httpd -p "$net_httpd" -h /www && say "httpd on port $net_httpd"
fi
if [ "${net_iperf:-0}" = 1 ]; then
	if iperf3 -s -D >/dev/null 2>&1; then
		say "iperf3 server up"
	else
		say "no iperf3 (boot initrd-net.img)"
		rc=1
	fi
fi
if [ "${net_stay:-0}" = 1 ]; then
	say "staying up"
	while :; do sleep 1; done
fi
exit $rc

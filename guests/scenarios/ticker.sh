#!/bin/sh
# Prints a numbered tick with the guest's uptime five times a second, for
# ever: the host sees progress stop and resume under the monitor's stop and
# cont, and whether the guest's clock jumped across the pause. Ends when
# the VM is powered off (the power button, SIGTERM, quit).
echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
i=0
while :; do
	read -r up _ </proc/uptime
	echo "tick $i uptime=$up"
	i=$((i + 1))
	sleep 0.2
done

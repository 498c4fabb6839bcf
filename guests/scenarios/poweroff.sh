#!/bin/sh
# Power off from inside the scenario (no "scenario exit" marker follows):
# tests that the VMM ends when the guest does reboot(RB_POWER_OFF).
echo "minivm-guest: powering off"
sync
poweroff -f

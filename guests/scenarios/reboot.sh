#!/bin/sh
# Reboot from inside the scenario: tests the VMM's reset/exit path
# (QEMU -no-reboot and kvmtool exit here; a VMM that resets boots again).
echo "minivm-guest: rebooting"
sync
reboot -f

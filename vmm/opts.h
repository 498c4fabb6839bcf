/* SPDX-License-Identifier: MIT */
/*
 * The item splitter of QEMU's QemuOpts (util/qemu-option.c), shared by every
 * option minivm spells as QEMU does (-drive, -netdev, -device, -nic, -net),
 * so that they all split "key=value,key2=value2" by the same rules:
 *
 *   - items are separated by ','; inside a value ",," is one literal comma,
 *     and '=' is just a character;
 *   - an item without '=' is bare: the first item of -netdev and friends
 *     (the type, QEMU's implied key) or a boolean flag ("readonly" for
 *     readonly=on). Which one it is, the caller knows; the splitter only
 *     reports it;
 *   - a trailing ',' ends the list.
 *
 * The meaning of keys and values, and the error messages, stay with each
 * caller.
 */
#ifndef MINIVM_VMM_OPTS_H
#define MINIVM_VMM_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Splits the next item off *p. A key=value item: key and val filled,
 * *has_val true (key may be "" for "=value"). A bare item: key is "", val
 * holds the item (",," read as ','), *has_val false.
 *
 * Returns 1 with an item (*p then points past it and its ','), 0 at the end.
 * Errors leave *p at the start of the item, for the caller's message:
 *   -ENAMETOOLONG  the key is keysize bytes or longer; key holds its start
 *   -E2BIG         the value is valsize bytes or longer; key and *has_val
 *                  are filled, val holds the value's start
 * Both key and val are always NUL-terminated; keysize and valsize must be
 * at least 1.
 */
int opts_next(const char **p, char *key, size_t keysize, char *val, size_t valsize,
	      bool *has_val);

/*
 * QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'.
 * Ids of QEMU's own making start with '#', so they never clash with these.
 */
bool opts_id_wellformed(const char *s);

#endif

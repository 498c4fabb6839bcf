// SPDX-License-Identifier: MIT
/*
 * QemuOpts' item splitter and id check, shared by the option parsers
 * (see vmm/opts.h).
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "vmm/opts.h"

int opts_next(const char **p, char *key, size_t keysize, char *val, size_t valsize,
	      bool *has_val)
{
	const char *s = *p;
	size_t klen = strcspn(s, "=,"), n = 0;

	key[0] = '\0';
	val[0] = '\0';
	*has_val = s[klen] == '=';
	if (!*s)
		return 0;
	if (*has_val) {
		if (klen >= keysize) {
			memcpy(key, s, keysize - 1);
			key[keysize - 1] = '\0';
			return -ENAMETOOLONG;
		}
		memcpy(key, s, klen);
		key[klen] = '\0';
		s += klen + 1;
	}
	/* the value, or the whole of a bare item: up to a ',' not doubled */
	for (; *s; s++) {
		if (*s == ',') {
			if (s[1] != ',')
				break;
			s++; /* ",," is one literal comma */
		}
		if (n + 1 >= valsize) {
			val[n] = '\0';
			return -E2BIG;
		}
		val[n++] = *s;
	}
	val[n] = '\0';
	*p = *s ? s + 1 : s;
	return 1;
}

bool opts_id_wellformed(const char *s)
{
	if (!isalpha((unsigned char)s[0]))
		return false;
	for (s++; *s; s++) {
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	}
	return true;
}

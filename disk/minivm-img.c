// SPDX-License-Identifier: MIT
/* Placeholder: being written. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "minivm-img: not built yet\n");
	return 1;
}

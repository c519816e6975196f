/*
 * fuzz_encoding.c - libFuzzer target for Accept-Encoding negotiation
 * (encoding_negotiate() in src/encoding.c).
 *
 * Input: byte 0 is the mask of available codings (low four bits) and,
 * with bit 4 set, an absent header; the rest is the field value, handed
 * over as an exactly sized heap copy without a NUL.
 *
 * Properties, from what rep.h promises:
 *   - the answer is ENCODING_NONE_ACCEPTABLE or one available coding;
 *   - an absent header gives identity, or if it is not available, the
 *     preferred available coding;
 *   - codings, "q" and the rest are case-insensitive: the value in upper
 *     case gives the same answer;
 *   - empty list elements are ignored: "," in front or behind changes
 *     nothing;
 *   - the chosen coding, offered alone, is still chosen (it was
 *     acceptable), and taken away, it is not chosen again.
 */

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rep.h"

#define FUZZ_ENCODING_ALL \
	(ENCODING_IDENTITY | ENCODING_GZIP | ENCODING_ZSTD | ENCODING_BR)

static int
fuzz_encoding_run(const char *data, size_t len, int available)
{
	char	*p;
	int	 c;

	/* Exactly len bytes: a read past them is a heap overflow. */
	if ((p = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(p, data, len);
	c = encoding_negotiate(p, len, available);
	free(p);
	if (c != ENCODING_NONE_ACCEPTABLE &&
	    ((c & (c - 1)) != 0 || (c & available) != c))
		abort();
	return c;
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int order[] = {
		ENCODING_BR, ENCODING_ZSTD, ENCODING_GZIP, ENCODING_IDENTITY
	};
	const char	*v;
	char		*u;
	size_t		 len, i;
	int		 available, c, want;

	if (size < 1)
		return 0;
	available = data[0] & FUZZ_ENCODING_ALL;
	v = (const char *)data + 1;
	len = size - 1;

	if (data[0] & 0x10) {
		/* identity first, then the server's preference */
		want = available & ENCODING_IDENTITY;
		for (i = 0; want == 0 && i < sizeof(order) / sizeof(order[0]);
		    i++)
			want = available & order[i];
		if (encoding_negotiate(NULL, 0, available) != want)
			abort();
		return 0;
	}

	c = fuzz_encoding_run(v, len, available);

	if ((u = malloc(len + 1)) == NULL)
		abort();
	for (i = 0; i < len; i++)
		u[i] = (char)toupper((unsigned char)v[i]);
	if (fuzz_encoding_run(u, len, available) != c)
		abort();

	/* "," + value and value + "," */
	u[0] = ',';
	memcpy(u + 1, v, len);
	if (fuzz_encoding_run(u, len + 1, available) != c)
		abort();
	memcpy(u, v, len);
	u[len] = ',';
	if (fuzz_encoding_run(u, len + 1, available) != c)
		abort();
	free(u);

	if (c != ENCODING_NONE_ACCEPTABLE) {
		if (fuzz_encoding_run(v, len, c) != c)
			abort();
		if (fuzz_encoding_run(v, len, available & ~c) == c)
			abort();
	}
	return 0;
}

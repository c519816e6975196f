/*
 * fuzz_path.c - libFuzzer target for the path cleaner (file_clean_path()
 * in src/file.c), the one function between a request path and the file
 * system.
 *
 * Input: byte 0 is the size of a second, small output buffer; the rest
 * is the raw path, handed over as an exactly sized heap copy without a
 * NUL, and both output buffers are exactly sized heap blocks, so a read
 * or write one byte too far is an ASan report.
 *
 * Properties, from what file.c promises:
 *   - the status is 0, 400 or 414, and 414 only when out is too small:
 *     never with outsz >= len + 1 and >= 2 (decoding only shortens, and
 *     the one '/' it may add replaces a dot segment or an empty one);
 *   - a clean path starts with '/', has no "//" and no "." or ".."
 *     segment, so it cannot climb out of the root, and fits out with
 *     its NUL;
 *   - segments are decoded exactly once: the clean path, with each '%'
 *     written back as "%25", cleans to itself (so without a '%' it is
 *     a fixed point);
 *   - the buffer's size changes nothing, except that a smaller one may
 *     say 414: never another path, never 400 where a larger said 0.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"

static char *
fuzz_path_alloc(size_t n)
{
	char	*p;

	if ((p = malloc(n > 0 ? n : 1)) == NULL)
		abort();
	return p;
}

static void
fuzz_path_check_clean(const char *out, size_t outsz)
{
	const char	*s, *e;
	size_t		 n;

	n = strnlen(out, outsz);
	if (n == outsz || n == 0 || out[0] != '/')
		abort();
	/* each segment between two '/' (or the end) */
	for (s = out + 1; s <= out + n; s = e + 1) {
		e = memchr(s, '/', (size_t)(out + n - s));
		if (e == NULL)
			e = out + n;
		if (e == s && e != out + n)
			abort();		/* "//" */
		if ((e - s == 1 && s[0] == '.') ||
		    (e - s == 2 && s[0] == '.' && s[1] == '.'))
			abort();		/* a dot segment */
	}
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*raw, *out, *small, *again, *esc;
	size_t		 len, outsz, smallsz, n, i, k;
	int		 st, st2;

	if (size < 1)
		return 0;
	smallsz = data[0];
	len = size - 1;
	raw = fuzz_path_alloc(len);
	memcpy(raw, data + 1, len);

	/* Room for "/" when len is 0 (it is a 400 then, not a 414). */
	outsz = len + 1 < 2 ? 2 : len + 1;
	out = fuzz_path_alloc(outsz);
	st = file_clean_path(raw, len, out, outsz);
	if (st != 0 && st != 400)
		abort();

	/* Any other size: the same answer, or 414 if it is smaller. */
	small = fuzz_path_alloc(smallsz);
	st2 = file_clean_path(raw, len, small, smallsz);
	if ((st2 != 414 || smallsz >= outsz) && (st2 != st ||
	    (st == 0 && strcmp(small, out) != 0)))
		abort();
	free(small);
	free(raw);
	if (st != 0)
		goto done;

	fuzz_path_check_clean(out, outsz);
	n = strlen(out);

	/* Written back with every '%' escaped, it must come back as is. */
	esc = fuzz_path_alloc(3 * n);
	for (i = k = 0; i < n; i++) {
		if (out[i] == '%') {
			memcpy(esc + k, "%25", 3);
			k += 3;
		} else
			esc[k++] = out[i];
	}
	again = fuzz_path_alloc(k + 1);
	if (file_clean_path(esc, k, again, k + 1) != 0 ||
	    strcmp(again, out) != 0)
		abort();
	free(again);
	free(esc);
 done:
	free(out);
	return 0;
}

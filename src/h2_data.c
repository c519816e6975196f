/*
 * h2_data.c - the DATA frame payloads of a response, from its body
 * segments (r->segs[1..]; segment 0 is the head). Bytes in memory are
 * copied into the frame nghttp2 builds; bytes of a file are only
 * counted here (H2D_NOCOPY) and h2.c sends them behind the frame
 * header: by the transport's sendfile, so a large file is never copied
 * through user space on a plain connection, or read in right behind
 * the header where the transport must copy anyway (TLS).
 *
 * Flow control is nghttp2's: it asks for at most what the stream and
 * connection windows and the peer's SETTINGS_MAX_FRAME_SIZE allow, and
 * this file never hands back more than it was asked for.
 */
#include <string.h>

#include "h2.h"

void
h2_data_init(struct h2_data *d)
{
	memset(d, 0, sizeof(*d));
	d->seg = 1;
}

uint64_t
h2_data_length(const struct resp *r)
{
	uint64_t n = 0;
	int i;

	for (i = 1; i < r->nsegs; i++)
		n += r->segs[i].len;
	return n;
}

size_t
h2_data_read(struct h2_data *d, const struct resp *r, uint8_t *buf,
    size_t len, unsigned *flags)
{
	const struct seg *s;
	size_t n = 0, k;

	*flags = 0;
	if (d->seg >= r->nsegs) {
		/* After file bytes, the end of the stream rides alone. */
		*flags = H2D_EOF;
		return 0;
	}
	s = &r->segs[d->seg];
	if (s->kind == SEG_FILE) {
		k = s->len - d->done;
		if (k > len)
			k = len;
		d->nc_off = s->u.foff + (off_t)d->done;
		d->done += k;
		if (d->done == s->len) {
			d->seg++;
			d->done = 0;
		}
		d->framed += k;
		*flags = H2D_NOCOPY;
		if (d->copied && d->seg >= r->nsegs)
			*flags |= H2D_EOF;	/* no header left before its bytes */
		return k;
	}
	/* Memory: as many segments as fit, up to a file segment. */
	while (n < len && d->seg < r->nsegs &&
	    (s = &r->segs[d->seg])->kind != SEG_FILE) {
		const char *base = s->kind == SEG_BUF ? r->buf + s->u.boff :
		    s->u.mem;

		k = s->len - d->done;
		if (k > len - n)
			k = len - n;
		memcpy(buf + n, base + d->done, k);
		n += k;
		d->done += k;
		if (d->done == s->len) {
			d->seg++;
			d->done = 0;
		}
	}
	d->framed += n;
	if (d->seg >= r->nsegs)
		*flags = H2D_EOF;
	return n;
}

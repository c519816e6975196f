/*
 * h2_mem.c - HTTP/2's memory (h2_int.h): nghttp2's allocator, which
 * counts what a session holds, the page pools and small-block bins
 * behind it, and the pages an idle session gives back.
 */
#include <sys/mman.h>

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2_int.h"

/*
 * nghttp2's frame buffer, NGHTTP2_FRAMEBUF_CHUNKLEN in its
 * nghttp2_session.h: a frame header, a pad length and the largest
 * payload. The one allocation of this size while a session is made.
 */
#define H2_FRAMEBUF	(9 + 1 + 16384)
#define H2_POOL_SLOTS	64	/* per mapping: the bits of a uint64_t */
/*
 * Idle this long before the pages go back: giving them back costs a
 * madvise() and, when the session speaks again, a page fault per page
 * touched (a few microseconds), so a connection between the requests
 * of a page load, or answering a steady stream of them, never pays it,
 * and one that does pays it at most four times a second.
 */
#define H2_RELEASE_MS	250

/* h2_int.h's: here, in the h2 file that calls none of the others, so
 * that each of them may use it without making a cycle. */
struct h2_state h2;

/* ---- memory: what a session holds, and what an idle one gives back ---------- */

/*
 * nghttp2 allocates through these (nghttp2_mem, user data the session),
 * so a session knows the bytes it holds (h2_session_bytes()), and an
 * idle one can give whole pages back to the kernel (MADV_DONTNEED):
 *
 * - The frame buffer (H2_FRAMEBUF): nghttp2 packs each frame it sends
 *   there, allocates it with the session and keeps it to the end. It
 *   resets the buffer before it packs the next frame, so once it wants
 *   to write nothing, no byte there will be read again: its pages can
 *   go, and the next frame is packed into zero-filled ones. 16 KB of
 *   an idle session's 28 KB in nghttp2 1.52.
 * - A calloc'd page that reads all zero: the kernel maps zeros back on
 *   the next touch, so nghttp2 sees no change. In nghttp2 1.52 the
 *   stream map's table (256 buckets, 4 KB) is all zero again once the
 *   last stream is gone.
 *
 * Both come from page slots of their own (h2_pool_*), not from the
 * heap: page-aligned there, they would leave holes that keep other
 * blocks (the output buffer growing by realloc) from growing in place.
 * Everything else is malloc's. Failures return NULL: nghttp2 answers
 * NGHTTP2_ERR_NOMEM.
 */

/*
 * A mapping of H2_POOL_SLOTS slots of one size, whole pages, for the
 * whole worker. A slot freed (its session closed) goes back to the
 * kernel at once, so an empty pool costs address space, not memory;
 * pools are never unmapped. No mapping to be had: malloc's, kept.
 */
struct h2_pool {
	struct h2_pool	*next;
	char		*base;
	uint64_t	 free;		/* bit i: slot i is free */
};

static size_t
h2_pool_slot(int cls)
{
	return cls == H2_POOL_PAGE ? h2.page :
	    (H2_FRAMEBUF + h2.page - 1) & ~(h2.page - 1);
}

/* A slot of class cls, its pages zero or as its last user left them. */
static void *
h2_pool_get(int cls)
{
	struct h2_pool *pl;
	size_t size = h2_pool_slot(cls);
	void *base;
	int i;

	for (pl = h2.pools[cls]; pl != NULL && pl->free == 0; pl = pl->next)
		;
	if (pl == NULL) {
		base = mmap(NULL, size * H2_POOL_SLOTS, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED)
			return NULL;
		if ((pl = malloc(sizeof(*pl))) == NULL) {
			(void)munmap(base, size * H2_POOL_SLOTS);
			return NULL;
		}
		pl->base = base;
		pl->free = ~(uint64_t)0;
		pl->next = h2.pools[cls];
		h2.pools[cls] = pl;
	}
	i = __builtin_ctzll(pl->free);
	pl->free &= ~((uint64_t)1 << i);
	return pl->base + (size_t)i * size;
}

static void
h2_pool_put(int cls, void *p)
{
	struct h2_pool *pl;
	size_t size = h2_pool_slot(cls);
	size_t i;

	for (pl = h2.pools[cls]; pl != NULL; pl = pl->next) {
		if ((char *)p >= pl->base &&
		    (char *)p < pl->base + size * H2_POOL_SLOTS) {
			i = (size_t)((char *)p - pl->base) / size;
			(void)madvise(p, size, MADV_DONTNEED);
			pl->free |= (uint64_t)1 << i;
			return;
		}
	}
}

/* The session's slot for p, or -1: p is malloc's. */
static int
h2_pg_find(const struct h2_sess *s, const void *p)
{
	int i;

	for (i = 0; i < H2_PAGE_BLOCKS; i++)
		if (s->pg[i].p == p)
			return i;
	return -1;
}

/* A pool slot for the session; NULL: none free (use malloc instead). */
static void *
h2_pg_get(struct h2_sess *s, int cls, int dead_idle)
{
	int i;
	void *p;

	if ((i = h2_pg_find(s, NULL)) == -1 || (p = h2_pool_get(cls)) == NULL)
		return NULL;
	s->pg[i].p = p;
	s->pg[i].cls = (uint8_t)cls;
	s->pg[i].dead_idle = (uint8_t)dead_idle;
	s->mem += h2_pool_slot(cls);
	return p;
}

static void
h2_pg_put(struct h2_sess *s, int i)
{
	h2_pool_put(s->pg[i].cls, s->pg[i].p);
	s->mem -= h2_pool_slot(s->pg[i].cls);
	s->pg[i].p = NULL;
}

/*
 * Small blocks nghttp2 frees wait in a LIFO per size (for the whole
 * worker) for its next allocation of that size: a batch of streams
 * closing at once frees more blocks of one size (a stream, its
 * outbound items) than glibc's per-thread cache keeps (7), and the rest
 * would cost a trip through malloc's bins (2% more instructions per
 * request with 10 streams a connection, callgrind). At most 17 sizes x
 * H2_BIN_DEPTH x 256 bytes, 136 KB, for the whole worker; free() would
 * keep them in the heap as well.
 */
#define H2_BIN_MAX	256	/* usable bytes; bigger ones go to free() */
#define H2_BIN_DEPTH	32	/* blocks kept per size */

struct h2_binned {
	struct h2_binned *next;
	size_t		 usable;
};

static struct {
	struct h2_binned *head;
	uint32_t	 n;
} h2_bins[H2_BIN_MAX / 16 + 1];

/* A kept block of at least len bytes; its usable size in *u. NULL: none. */
static void *
h2_bin_get(size_t len, size_t *u)
{
	struct h2_binned *b;
	size_t k;

	if (len > H2_BIN_MAX - 8)
		return NULL;
	/* The usable size glibc gives len bytes: 16-byte chunks, 8 of header. */
	k = (len < 24 ? 24 : ((len + 23) & ~(size_t)15) - 8) >> 4;
	if ((b = h2_bins[k].head) == NULL || b->usable < len)
		return NULL;
	h2_bins[k].head = b->next;
	h2_bins[k].n--;
	*u = b->usable;
	return b;
}

static int
h2_bin_put(void *p, size_t u)
{
	struct h2_binned *b = p;
	size_t k = u >> 4;

	if (u > H2_BIN_MAX || u < sizeof(*b) || h2_bins[k].n >= H2_BIN_DEPTH)
		return -1;
	b->usable = u;
	b->next = h2_bins[k].head;
	h2_bins[k].head = b;
	h2_bins[k].n++;
	return 0;
}

void *
h2_mem_malloc(size_t len, void *arg)
{
	struct h2_sess *s = arg;
	size_t u;
	void *p;

	if (s->creating && len == H2_FRAMEBUF &&
	    (p = h2_pg_get(s, H2_POOL_FRAMEBUF, 1)) != NULL)
		return p;
	if ((p = h2_bin_get(len, &u)) != NULL) {
		s->mem += u;
		return p;
	}
	if ((p = malloc(len)) != NULL)
		s->mem += malloc_usable_size(p);
	return p;
}

void
h2_mem_free(void *p, void *arg)
{
	struct h2_sess *s = arg;
	size_t n;
	int i;

	if (p == NULL)
		return;
	if ((i = h2_pg_find(s, p)) != -1) {
		h2_pg_put(s, i);
		return;
	}
	n = malloc_usable_size(p);
	s->mem -= n;
	if (h2_bin_put(p, n) == -1)
		free(p);
}

void *
h2_mem_calloc(size_t nmemb, size_t len, void *arg)
{
	struct h2_sess *s = arg;
	void *p;

	if (len != 0 && nmemb > SIZE_MAX / len)
		return NULL;
	if (nmemb * len == h2.page &&
	    (p = h2_pg_get(s, H2_POOL_PAGE, 0)) != NULL) {
		memset(p, 0, h2.page);	/* a slot's last user left its bytes */
		return p;
	}
	if ((p = calloc(nmemb, len)) != NULL)
		s->mem += malloc_usable_size(p);
	return p;
}

void *
h2_mem_realloc(void *p, size_t len, void *arg)
{
	struct h2_sess *s = arg;
	size_t old;
	void *q;
	int i;

	if (p == NULL)	/* how nghttp2_buf_reserve() makes the frame buffer */
		return h2_mem_malloc(len, arg);
	if ((i = h2_pg_find(s, p)) != -1) {
		/* Not done by nghttp2 1.52; a pool slot moves to malloc. */
		if ((q = malloc(len)) == NULL)
			return NULL;
		s->mem += malloc_usable_size(q);
		old = h2_pool_slot(s->pg[i].cls);
		memcpy(q, p, len < old ? len : old);
		h2_pg_put(s, i);
		return q;
	}
	old = malloc_usable_size(p);
	if ((q = realloc(p, len)) == NULL)
		return NULL;
	s->mem += malloc_usable_size(q) - old;
	return q;
}

/* Is [p, p + len) all zero? len a multiple of a word. */
static int
h2_zero(const char *p, size_t len)
{
	const unsigned long *w = (const unsigned long *)(const void *)p;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++)
		if (w[i] != 0)
			return 0;
	return 1;
}

/* Give back the pages an idle session does not need (see above). */
static void
h2_mem_release(struct h2_sess *s)
{
	size_t size;
	int i;

	s->released = 0;
	for (i = 0; i < H2_PAGE_BLOCKS; i++) {
		if (s->pg[i].p == NULL)
			continue;
		size = h2_pool_slot(s->pg[i].cls);
		if (!s->pg[i].dead_idle && !h2_zero(s->pg[i].p, size))
			continue;
		if (madvise(s->pg[i].p, size, MADV_DONTNEED) == 0)
			s->released += size;
	}
}

static void	 h2_rel_timer(struct ev_loop *loop, void *arg);

void
h2_rel_unlink(struct h2_sess *s)
{
	if (!s->rel_queued)
		return;
	s->rel_queued = 0;
	if (s->rel_prev != NULL)
		s->rel_prev->rel_next = s->rel_next;
	else
		h2.rel_head = s->rel_next;
	if (s->rel_next != NULL)
		s->rel_next->rel_prev = s->rel_prev;
	else
		h2.rel_tail = s->rel_prev;
	s->rel_prev = s->rel_next = NULL;
}

static void
h2_rel_arm(uint64_t now)
{
	uint64_t due;

	if (h2.rel_armed || h2.rel_head == NULL)
		return;
	due = h2.rel_head->idle_since + H2_RELEASE_MS;
	h2.rel_armed = 1;
	(void)ev_timer_add(conn_loop(), due > now ? due - now : 0, h2_rel_timer,
	    NULL);
}

/*
 * The session has no stream: queue it to give pages back after
 * H2_RELEASE_MS. Called after each batch of its events; queued once.
 */
void
h2_mem_idle(struct h2_sess *s)
{
	uint64_t now = ev_now(conn_loop());

	if (s->rel_queued)
		return;
	s->released = 0;	/* whatever this batch touched is back */
	s->rel_queued = 1;
	s->idle_since = now;
	s->rel_next = NULL;
	s->rel_prev = h2.rel_tail;
	if (h2.rel_tail != NULL)
		h2.rel_tail->rel_next = s;
	else
		h2.rel_head = s;
	h2.rel_tail = s;
	h2_rel_arm(now);
}

/* The session has streams again: its pages are in use. */
void
h2_mem_busy(struct h2_sess *s)
{
	h2_rel_unlink(s);
	s->released = 0;
}

void
h2_release_idle(uint64_t now)
{
	struct h2_sess *s;

	while ((s = h2.rel_head) != NULL && s->idle_since + H2_RELEASE_MS <= now) {
		h2_rel_unlink(s);
		/* Still nothing to send: the frame buffer holds no frame. */
		if (s->nstreams == 0 && !nghttp2_session_want_write(s->ng))
			h2_mem_release(s);
	}
	h2_rel_arm(now);
}

static void
h2_rel_timer(struct ev_loop *loop, void *arg)
{
	(void)arg;
	h2.rel_armed = 0;
	h2_release_idle(ev_now(loop));
}

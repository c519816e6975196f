/*
 * fcache.c - the worker's open-file cache: path lookups (found or not),
 * their stat, an open fd, and the bytes of small files, so a hot file
 * costs no open/fstat/read/close per request.
 *
 * Never stale: every directory on a cached path is watched with
 * inotify, and fcache_sync() applies the queued events before requests
 * are answered (conn.c calls it before answering what it read). The
 * kernel queues an inotify event inside the syscall that changed the
 * file, and, the fd being O_ASYNC, marks SIGIO pending on this process
 * right there. A pending signal runs its handler before any later
 * syscall of ours returns to user space, so by the time the read that
 * brought a request returns, fc_dirty already says whether anything
 * changed before the client sent it. The common case costs no syscall.
 * Paths that go through a symlink are not cached (a change behind the
 * link would not be seen); they take the slow path every time.
 *
 * Entries are reference counted: a response being sent holds one, so
 * an entry invalidated meanwhile stays alive until it is released.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "porter.h"

#define FCACHE_BUCKETS		4096	/* power of two */
#define FCACHE_MAX_ENTRIES	2048
/*
 * Files up to this size are kept in memory and sent in the same sendmsg
 * as the headers; larger ones go out with sendfile. Copying a body into
 * the socket costs more than sendfile's page references from about
 * 8 KiB on (bench/: 6 KiB in memory 1.07-1.13x faster than sendfile,
 * 8 KiB 0.93-0.95x, 50 KiB 0.76x with twice the server CPU).
 */
#define FCACHE_SMALL		(6 * 1024)
#define FCACHE_MAX_DATA		(32 * 1024 * 1024)
#define FCACHE_MAX_WATCHES	4096
#define FCACHE_WATCH_MASK	(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | \
	IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | \
	IN_MOVE_SELF | IN_ONLYDIR)

struct fcache_watch {
	int		 wd;
	size_t		 site;
	char		*dir;		/* clean path, "/" or "/a/b" */
};

static struct {
	const struct conf *conf;	/* the sites' roots, for inotify paths */
	int		 ifd;		/* inotify, -1: caching off */
	struct ev_io	 io;
	struct fcache_entry *buckets[FCACHE_BUCKETS];
	struct fcache_entry *lru_head, *lru_tail;	/* most recent first */
	size_t		 nentries;
	size_t		 data_bytes;
	struct fcache_watch *watches;
	size_t		 nwatches;
} fc = { .ifd = -1 };

/* Set by the SIGIO handler: inotify has events to apply. */
static volatile sig_atomic_t fc_dirty = 1;

static void
fcache_sigio(int sig)
{
	fc_dirty = 1;
}

static uint32_t
fcache_hash(size_t site, const char *path, size_t len)
{
	uint32_t h = 2166136261u ^ (uint32_t)site;	/* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)path[i];
		h *= 16777619u;
	}
	return h;
}

static void
fcache_destroy(struct fcache_entry *e)
{
	if (e->fd != -1)
		close(e->fd);
	if (e->data != NULL)
		fc.data_bytes -= (size_t)e->st.st_size;
	free(e->data);
	free(e->path);
	free(e);
}

void
fcache_unref(struct fcache_entry *e)
{
	if (e != NULL && --e->refs == 0)
		fcache_destroy(e);
}

/* Take e out of the table and the LRU list; users keep it alive. */
static void
fcache_unlink(struct fcache_entry *e)
{
	struct fcache_entry **pp;

	if (!e->linked)
		return;
	for (pp = &fc.buckets[e->hash & (FCACHE_BUCKETS - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	if (e->lprev != NULL)
		e->lprev->lnext = e->lnext;
	else
		fc.lru_head = e->lnext;
	if (e->lnext != NULL)
		e->lnext->lprev = e->lprev;
	else
		fc.lru_tail = e->lprev;
	e->linked = 0;
	fc.nentries--;
	fcache_unref(e);
}

/* Drop every entry at or below site:prefix ("/a" drops "/a" and "/a/..."). */
static void
fcache_invalidate(size_t site, const char *prefix, size_t plen)
{
	struct fcache_entry *e, *next;

	for (e = fc.lru_head; e != NULL; e = next) {
		next = e->lnext;
		if (e->site != site || e->pathlen < plen ||
		    memcmp(e->path, prefix, plen) != 0)
			continue;
		if (e->pathlen == plen || e->path[plen] == '/' ||
		    (plen > 0 && prefix[plen - 1] == '/'))
			fcache_unlink(e);
	}
}

static void
fcache_invalidate_all(void)
{
	while (fc.lru_head != NULL)
		fcache_unlink(fc.lru_head);
}

static struct fcache_watch *
fcache_watch_by_wd(int wd)
{
	size_t i;

	for (i = 0; i < fc.nwatches; i++)
		if (fc.watches[i].wd == wd)
			return &fc.watches[i];
	return NULL;
}

static void
fcache_watch_forget(int wd)
{
	size_t i;

	for (i = 0; i < fc.nwatches; i++)
		if (fc.watches[i].wd == wd) {
			free(fc.watches[i].dir);
			fc.watches[i] = fc.watches[--fc.nwatches];
			return;
		}
}

void
fcache_sync(void)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	struct fcache_watch *w;
	char path[4200];
	ssize_t n;
	char *p;
	int len;

	if (fc.ifd == -1 || !fc_dirty)
		return;
	/* Cleared first: an event queued while we read sets it again. */
	fc_dirty = 0;
	for (;;) {
		n = read(fc.ifd, buf, sizeof(buf));
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return;
		}
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				fcache_invalidate_all();
				continue;
			}
			if ((w = fcache_watch_by_wd(ev->wd)) == NULL)
				continue;
			if (ev->len > 0 && ev->name[0] != '\0') {
				len = snprintf(path, sizeof(path), "%s%s%s", w->dir,
				    strcmp(w->dir, "/") == 0 ? "" : "/", ev->name);
				if (len > 0 && (size_t)len < sizeof(path))
					fcache_invalidate(w->site, path, (size_t)len);
				else
					fcache_invalidate_all();
			} else
				fcache_invalidate(w->site, w->dir, strlen(w->dir));
			if (ev->mask & IN_IGNORED)
				fcache_watch_forget(ev->wd);
		}
	}
}

static void
fcache_event_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	fc_dirty = 1;		/* epoll says readable: that is proof enough */
	fcache_sync();
}

int
fcache_init(struct ev_loop *loop, const struct conf *conf)
{
	struct sigaction sa;
	sigset_t set;
	int fd;

	fc.conf = conf;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fcache_sigio;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGIO, &sa, NULL) == -1)
		return -1;
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		return -1;
	/* No SIGIO, no guarantee: then the cache stays off. */
	if (fcntl(fd, F_SETOWN, getpid()) == -1 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) == -1) {
		close(fd);
		return -1;
	}
	fc.ifd = fd;
	fc.watches = xcalloc(FCACHE_MAX_WATCHES, sizeof(*fc.watches));
	/* Also in the loop, so events are applied even while we are idle. */
	ev_add(loop, &fc.io, fc.ifd, EPOLLIN, fcache_event_cb, NULL);
	return 0;
}

/* Watch site:dir (a clean path) unless we already do. 0, or -1: don't cache. */
static int
fcache_watch(size_t site, const char *dir)
{
	char abs[4200];
	size_t i;
	int wd, n;

	for (i = 0; i < fc.nwatches; i++)
		if (fc.watches[i].site == site && strcmp(fc.watches[i].dir, dir) == 0)
			return 0;
	if (fc.nwatches == FCACHE_MAX_WATCHES)
		return -1;
	/* Cut short, it would name (and watch) some other directory. */
	n = snprintf(abs, sizeof(abs), "%s%s", fc.conf->sites[site].root, dir);
	if (n < 0 || (size_t)n >= sizeof(abs))
		return -1;
	if ((wd = inotify_add_watch(fc.ifd, abs, FCACHE_WATCH_MASK)) == -1)
		return -1;
	/* Two paths to one directory (a bind mount): invalidation would miss one. */
	if (fcache_watch_by_wd(wd) != NULL)
		return -1;
	fc.watches[fc.nwatches].wd = wd;
	fc.watches[fc.nwatches].site = site;
	fc.watches[fc.nwatches].dir = xstrdup(dir);
	fc.nwatches++;
	return 0;
}

/* Watch every directory from the root down to the parent of path. */
static int
fcache_watch_path(size_t site, const char *path)
{
	char dir[4200];
	size_t i, len = strlen(path);

	if (len >= sizeof(dir))
		return -1;
	if (fcache_watch(site, "/") == -1)
		return -1;
	for (i = 1; i < len; i++) {
		if (path[i] != '/')
			continue;
		memcpy(dir, path, i);
		dir[i] = '\0';
		if (fcache_watch(site, dir) == -1)
			return -1;
	}
	return 0;
}

static struct fcache_entry *
fcache_new(size_t site, const char *path, size_t len, uint32_t h)
{
	struct fcache_entry *e = xcalloc(1, sizeof(*e));

	e->site = site;
	e->path = xmalloc(len + 1);
	memcpy(e->path, path, len + 1);
	e->pathlen = len;
	e->hash = h;
	e->fd = -1;
	e->refs = 1;	/* the caller's */
	return e;
}

static void
fcache_insert(struct fcache_entry *e)
{
	struct fcache_entry **b = &fc.buckets[e->hash & (FCACHE_BUCKETS - 1)];

	while (fc.nentries >= FCACHE_MAX_ENTRIES && fc.lru_tail != NULL)
		fcache_unlink(fc.lru_tail);
	e->hnext = *b;
	*b = e;
	e->lprev = NULL;
	e->lnext = fc.lru_head;
	if (fc.lru_head != NULL)
		fc.lru_head->lprev = e;
	else
		fc.lru_tail = e;
	fc.lru_head = e;
	e->linked = 1;
	e->refs++;	/* the table's */
	fc.nentries++;
}

/* Read a small file whole, once; a short read means it changed: skip. */
static void
fcache_load_data(struct fcache_entry *e)
{
	size_t size = (size_t)e->st.st_size;
	ssize_t n;

	if (size == 0 || size > FCACHE_SMALL ||
	    fc.data_bytes + size > FCACHE_MAX_DATA)
		return;
	e->data = xmalloc(size);
	n = pread(e->fd, e->data, size, 0);
	if (n != (ssize_t)size) {
		free(e->data);
		e->data = NULL;
		return;
	}
	fc.data_bytes += size;
}

/*
 * Look up site:path (a clean path). Returns an entry the caller must
 * fcache_unref(): e->err is 0 (e->fd, e->st valid; e->data for small
 * regular files) or an errno. Returns NULL when the path must take the
 * uncached way (it involves a symlink, or caching is off).
 */
struct fcache_entry *
fcache_open(size_t site, int rootfd, const char *path)
{
	size_t len = strlen(path);
	uint32_t h;
	struct fcache_entry *e;
	int err = 0;

	if (fc.ifd == -1)
		return NULL;
	h = fcache_hash(site, path, len);
	for (e = fc.buckets[h & (FCACHE_BUCKETS - 1)]; e != NULL; e = e->hnext) {
		if (e->hash == h && e->site == site && e->pathlen == len &&
		    memcmp(e->path, path, len) == 0) {
			/* Move to the front of the LRU list. */
			if (e != fc.lru_head) {
				e->lprev->lnext = e->lnext;
				if (e->lnext != NULL)
					e->lnext->lprev = e->lprev;
				else
					fc.lru_tail = e->lprev;
				e->lprev = NULL;
				e->lnext = fc.lru_head;
				fc.lru_head->lprev = e;
				fc.lru_head = e;
			}
			e->refs++;
			return e;
		}
	}
	/* Watch first: a change between the open and the watch would be lost. */
	if (fcache_watch_path(site, path) == -1)
		return NULL;
	e = fcache_new(site, path, len, h);
	e->fd = file_open_nolinks(rootfd, path, O_RDONLY | O_NONBLOCK, &err);
	if (e->fd == -1) {
		if (err == ELOOP || err == EXDEV || err == ENOSYS || err == EPERM ||
		    err == EMFILE || err == ENFILE || err == EAGAIN) {
			/*
			 * Symlinks, escapes, odd kernels, no fds, renames that
			 * kept racing: the slow path decides.
			 */
			fcache_destroy(e);
			return NULL;
		}
		e->err = err;	/* remember "not there" too */
	} else if (fstat(e->fd, &e->st) == -1) {
		fcache_destroy(e);
		return NULL;
	} else if (S_ISDIR(e->st.st_mode)) {
		close(e->fd);	/* only its stat is wanted */
		e->fd = -1;
	} else if (S_ISREG(e->st.st_mode))
		fcache_load_data(e);
	else {
		fcache_destroy(e);
		return NULL;
	}
	fcache_insert(e);
	return e;
}

/*
 * The lookup front: the cache when it can vouch for the path (misses
 * included), else open beneath the root and fstat.
 */
int
fcache_lookup(size_t site, int rootfd, const char *path,
    struct fcache_entry **fep, int *fdp, struct stat *st, int *errp)
{
	struct fcache_entry *fe;
	int fd;

	*fep = NULL;
	*fdp = -1;
	if ((fe = fcache_open(site, rootfd, path)) != NULL) {
		if (fe->err != 0) {
			*errp = fe->err;
			fcache_unref(fe);
			return -1;
		}
		*fep = fe;
		*fdp = fe->fd;
		*st = fe->st;
		return 0;
	}
	if ((fd = file_open_beneath(rootfd, path, O_RDONLY | O_NONBLOCK,
	    errp)) == -1)
		return -1;
	if (fstat(fd, st) == -1) {
		*errp = errno;
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

void
fcache_lookup_done(struct fcache_entry *fe, int fd)
{
	if (fe != NULL)
		fcache_unref(fe);
	else if (fd != -1)
		close(fd);
}

/*
 * fcache.c - the worker's open-file cache: path lookups (found or not),
 * their stat, an open fd, and the bytes of small files, so a hot file
 * costs no open/fstat/read/close per request.
 *
 * Never stale for a change inotify reports: every directory on a cached
 * path is watched with inotify, and fcache_sync() applies the queued events before requests
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
 * A watch follows the inode it was added on, not its path: when a
 * watched directory, or any directory above it, is renamed, deleted or
 * replaced, the watches at and below that path are removed and the
 * entries under it dropped, so the next lookup watches what the path
 * names now. Watches are added through the root fd's /proc link, so
 * they name the same tree the fd opens files in.
 *
 * inotify cannot see everything: a write through a hard link outside
 * the watched directories, or by another host on a network filesystem,
 * queues no event. So a hot entry is also compared with the path's
 * fstatat() at most once a second (FCACHE_RECHECK_MS, loop clock), and
 * fcache_tick() notices a site root renamed away and replaced. An entry
 * whose body is sent from its descriptor is also compared with the
 * descriptor's fstat() on every use (fcache_fd_moved), so its headers
 * always describe the bytes that go out.
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
/* A hot entry is checked against the file system at most this often. */
#define FCACHE_RECHECK_MS	1000
#define FCACHE_WATCH_MASK	(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | \
	IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | \
	IN_MOVE_SELF | IN_ONLYDIR)
/*
 * After these, the path the event names (the watched directory itself
 * for the _SELF ones and IN_IGNORED) no longer leads to the inode a
 * watch at or below it was added on. The name events matter only for
 * directories (IN_ISDIR): no watch is on a file, and a file cannot take
 * a directory's name without the directory leaving first.
 */
#define FCACHE_GONE_SELF	(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | \
	IN_UNMOUNT)
#define FCACHE_GONE_NAME	(IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | \
	IN_DELETE)

struct fcache_watch {
	int		 wd;
	size_t		 site;
	char		*dir;		/* clean path, "/" or "/a/b" */
};

static struct {
	struct ev_loop	*loop;
	const struct conf *conf;	/* the sites' root paths */
	int		*rootfds;	/* the worker's, one per site */
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

/* Is path (len bytes) prefix or below it ("/a": "/a", "/a/", "/a/b")? */
static int
fcache_below(const char *path, size_t len, const char *prefix, size_t plen)
{
	if (len < plen || memcmp(path, prefix, plen) != 0)
		return 0;
	return len == plen || path[plen] == '/' ||
	    (plen > 0 && prefix[plen - 1] == '/');
}

/* Drop every entry at or below site:prefix ("/a" drops "/a" and "/a/..."). */
static void
fcache_invalidate(size_t site, const char *prefix, size_t plen)
{
	struct fcache_entry *e, *next;

	for (e = fc.lru_head; e != NULL; e = next) {
		next = e->lnext;
		if (e->site == site &&
		    fcache_below(e->path, e->pathlen, prefix, plen))
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

/*
 * site:dir no longer names what its watch, or a watch below it, was
 * added on (renamed, deleted, replaced, or the kernel dropped it):
 * remove those watches and drop every entry under dir, so the next
 * lookup watches the directories the path names now. The kernel may
 * already have removed a watch (EINVAL), or even given its number to a
 * newer watch whose IN_IGNORED is still queued: removing that one too
 * is only a re-watch later, never a missed change.
 */
static void
fcache_unwatch(size_t site, const char *dir, size_t dlen)
{
	struct fcache_watch *w;
	size_t i = 0;

	while (i < fc.nwatches) {
		w = &fc.watches[i];
		if (w->site != site ||
		    !fcache_below(w->dir, strlen(w->dir), dir, dlen)) {
			i++;
			continue;
		}
		(void)inotify_rm_watch(fc.ifd, w->wd);
		free(w->dir);
		*w = fc.watches[--fc.nwatches];
	}
	fcache_invalidate(site, dir, dlen);
}

/* Events were lost (IN_Q_OVERFLOW) or a root changed: start afresh. */
static void
fcache_unwatch_all(void)
{
	size_t i;

	for (i = 0; i < fc.nwatches; i++) {
		(void)inotify_rm_watch(fc.ifd, fc.watches[i].wd);
		free(fc.watches[i].dir);
	}
	fc.nwatches = 0;
	fcache_invalidate_all();
}

void
fcache_sync(void)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	struct fcache_watch *w;
	char path[4200];
	size_t site;
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
				/* A rename may be among the lost: trust no watch. */
				fcache_unwatch_all();
				continue;
			}
			if ((w = fcache_watch_by_wd(ev->wd)) == NULL)
				continue;
			site = w->site;
			/* Copied: fcache_unwatch() frees w->dir. */
			if (ev->len > 0 && ev->name[0] != '\0')
				len = snprintf(path, sizeof(path), "%s%s%s", w->dir,
				    strcmp(w->dir, "/") == 0 ? "" : "/", ev->name);
			else
				len = snprintf(path, sizeof(path), "%s", w->dir);
			if (len <= 0 || (size_t)len >= sizeof(path))
				fcache_unwatch_all();
			else if ((ev->mask & FCACHE_GONE_SELF) ||
			    ((ev->mask & FCACHE_GONE_NAME) && (ev->mask & IN_ISDIR)))
				/* The name now means another inode, or none. */
				fcache_unwatch(site, path, (size_t)len);
			else
				fcache_invalidate(site, path, (size_t)len);
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
fcache_init(struct ev_loop *loop, const struct conf *conf, int *rootfds)
{
	struct sigaction sa;
	sigset_t set;
	int fd;

	/* First: fcache_tick() works with the cache off, too. */
	fc.loop = loop;
	fc.conf = conf;
	fc.rootfds = rootfds;
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
	ev_add(loop, &fc.io, fc.ifd, EPOLLIN, fcache_event_cb);
	return 0;
}

/*
 * Watch site:dir (a clean path) unless we already do. 0, or -1: don't
 * cache. The path goes through rootfd's /proc link, not the configured
 * root's name: if the root was renamed and not yet reopened
 * (fcache_tick), the watch is still on the tree files are opened in.
 */
static int
fcache_watch(size_t site, int rootfd, const char *dir)
{
	char abs[4200];
	size_t i;
	int len, wd;

	for (i = 0; i < fc.nwatches; i++)
		if (fc.watches[i].site == site && strcmp(fc.watches[i].dir, dir) == 0)
			return 0;
	if (fc.nwatches == FCACHE_MAX_WATCHES)
		return -1;
	/* Cut short, it would name (and watch) some other directory. */
	len = snprintf(abs, sizeof(abs), "/proc/self/fd/%d%s", rootfd,
	    strcmp(dir, "/") == 0 ? "" : dir);
	if (len <= 0 || (size_t)len >= sizeof(abs))
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
fcache_watch_path(size_t site, int rootfd, const char *path)
{
	char dir[4200];
	size_t i, len = strlen(path);

	if (len >= sizeof(dir))
		return -1;
	if (fcache_watch(site, rootfd, "/") == -1)
		return -1;
	for (i = 1; i < len; i++) {
		if (path[i] != '/')
			continue;
		memcpy(dir, path, i);
		dir[i] = '\0';
		if (fcache_watch(site, rootfd, dir) == -1)
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

/* Does st still describe the file e->st was taken from, same version? */
static int
fcache_same(const struct fcache_entry *e, const struct stat *st)
{
	return st->st_ino == e->st.st_ino && st->st_dev == e->st.st_dev &&
	    st->st_mode == e->st.st_mode && st->st_size == e->st.st_size &&
	    st->st_mtim.tv_sec == e->st.st_mtim.tv_sec &&
	    st->st_mtim.tv_nsec == e->st.st_mtim.tv_nsec &&
	    st->st_ctim.tv_sec == e->st.st_ctim.tv_sec &&
	    st->st_ctim.tv_nsec == e->st.st_ctim.tv_nsec;
}

/*
 * Read a small file whole, once. The bytes must be the version e->st
 * describes, or the response would pair its validators and length with
 * other bytes: one byte more is asked for (a grown file reads long), and
 * the stat is taken again after the read (a rewrite, even of the same
 * length, moves ctime). -1: it changed meanwhile, do not cache it.
 */
static int
fcache_load_data(struct fcache_entry *e)
{
	size_t size = (size_t)e->st.st_size;
	struct stat st;
	ssize_t n;

	if (size == 0 || size > FCACHE_SMALL ||
	    fc.data_bytes + size > FCACHE_MAX_DATA)
		return 0;
	e->data = xmalloc(size + 1);
	n = pread(e->fd, e->data, size + 1, 0);
	if (n != (ssize_t)size || fstat(e->fd, &st) == -1 ||
	    !fcache_same(e, &st)) {
		free(e->data);
		e->data = NULL;
		return -1;
	}
	fc.data_bytes += size;
	return 0;
}

/*
 * Has site:path changed where inotify cannot see (a write through a
 * hard link outside the watched directories, another NFS client)?
 * Asked at most once per FCACHE_RECHECK_MS per entry, by the loop's
 * cached clock: one fstatat() a second for a hot entry, none per
 * request. Until then a small file kept in memory may be served as it
 * was (a whole, consistent old version) for up to that long. A change
 * while a body is being sent cannot be undone: the sender never pads a
 * file that shrank (the connection closes short) nor sends more than
 * the promised length of one that grew.
 */
static int
fcache_stale(struct fcache_entry *e, int rootfd, uint64_t now)
{
	const char *rel = e->path;
	struct stat st;

	if (now - e->checked < FCACHE_RECHECK_MS)
		return 0;
	e->checked = now;
	while (*rel == '/')
		rel++;
	if (fstatat(rootfd, *rel == '\0' ? "." : rel, &st,
	    AT_SYMLINK_NOFOLLOW) == -1)
		return e->err != errno;
	return e->err != 0 || !fcache_same(e, &st);
}

/*
 * A file sent from its descriptor (not kept in memory): has the inode
 * changed since e->st, through a name inotify does not watch? The
 * response's validators and length come from e->st while its bytes
 * come from the file at send time, so they must describe the same
 * version (an in-memory body is a snapshot and always matches its
 * stat). One fstat() per such response, beside its sendfile or
 * pread calls; the small in-memory fast path pays nothing.
 */
static int
fcache_fd_moved(struct fcache_entry *e)
{
	struct stat st;

	if (e->fd == -1 || e->data != NULL || !S_ISREG(e->st.st_mode))
		return 0;
	return fstat(e->fd, &st) == -1 || !fcache_same(e, &st);
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
	uint64_t now;
	int err = 0;

	if (fc.ifd == -1)
		return NULL;
	now = ev_now(fc.loop);
	h = fcache_hash(site, path, len);
	for (e = fc.buckets[h & (FCACHE_BUCKETS - 1)]; e != NULL; e = e->hnext) {
		if (e->hash == h && e->site == site && e->pathlen == len &&
		    memcmp(e->path, path, len) == 0) {
			if (fcache_stale(e, rootfd, now) || fcache_fd_moved(e)) {
				fcache_unlink(e);	/* and look it up afresh */
				break;
			}
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
	if (fcache_watch_path(site, rootfd, path) == -1)
		return NULL;
	e = fcache_new(site, path, len, h);
	e->checked = now;
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
	} else if (S_ISREG(e->st.st_mode)) {
		if (fcache_load_data(e) == -1) {
			fcache_destroy(e);
			return NULL;
		}
	} else {
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

/*
 * About once a second (the worker's tick): has a site root been renamed
 * away and something else put at its path (a deploy by rename, or a
 * symlink root swapped)? Then open the new one onto the same fd number,
 * so every user of the worker's rootfds[] sees the new tree from now
 * on, and forget everything cached for the site. A root that is gone keeps the
 * tree we have: serving it beats 404 until a new one appears. Costs a
 * stat() and an fstat() per site and tick, and works with the cache off.
 */
void
fcache_tick(void)
{
	const struct conf *conf = fc.conf;
	struct stat cur, old;
	size_t i;
	int fd;

	for (i = 0; i < conf->nsites; i++) {
		if (stat(conf->sites[i].root, &cur) == -1 || !S_ISDIR(cur.st_mode))
			continue;
		if (fc.rootfds[i] != -1 &&
		    fstat(fc.rootfds[i], &old) == 0 &&
		    old.st_ino == cur.st_ino && old.st_dev == cur.st_dev)
			continue;
		fd = open(conf->sites[i].root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd == -1)
			continue;
		if (fc.rootfds[i] == -1)
			fc.rootfds[i] = fd;
		else {
			/* Atomic: no moment without a root at that number. */
			if (dup3(fd, fc.rootfds[i], O_CLOEXEC) == -1)
				log_warn("site root %s: dup3", conf->sites[i].root);
			close(fd);
		}
		if (fc.ifd != -1)
			fcache_unwatch(i, "/", 1);
	}
}

/*
 * file.c - from a request path to an open file under the site root.
 *
 * file_clean_path() turns the path as sent into one without escapes or
 * dot segments; file_open_beneath() opens it so that neither ".." nor
 * a symlink can reach outside the root.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1		/* O_PATH */
#endif

#include <sys/types.h>
#include <sys/syscall.h>

#include <linux/openat2.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http_chars.h"
#include "porter.h"

/* openat2() says EAGAIN when a rename raced the lookup; it is worth a retry. */
#define FILE_OPEN_TRIES	8

static int	file_decode(const char *, size_t, size_t *);
static int	file_fdpath(int, char *, size_t);
static int	file_open_checked(int, const char *, int);

/* The kernel has no openat2(): do not ask again for every request. */
static int	file_no_openat2;

/*
 * Decode the byte at s[*i], s ending at n, and move *i past it.
 * Returns -1 for a bad escape, a NUL or an encoded '/': once decoded,
 * "%2F" would split a segment the client sent as one.
 */
static int
file_decode(const char *s, size_t n, size_t *i)
{
	int	 hi, lo, c;

	if (s[*i] != '%') {
		c = (unsigned char)s[(*i)++];
		return c == '\0' ? -1 : c;
	}
	if (n - *i < 3 || (hi = http_hexval((unsigned char)s[*i + 1])) == -1 ||
	    (lo = http_hexval((unsigned char)s[*i + 2])) == -1)
		return -1;
	*i += 3;
	c = hi << 4 | lo;
	if (c == '\0' || c == '/')
		return -1;
	return c;
}

/*
 * Segments are split on the raw '/' (an encoded one is refused), each
 * is decoded exactly once, and only then compared with "." and "..":
 * so "%2e%2e" climbs like "..", while "%252e" stays the name "%2e".
 * 414 is also returned when the path outgrows out before a later ".."
 * would have shortened it again.
 */
int
file_clean_path(const char *raw, size_t len, char *out, size_t outsz)
{
	size_t	 i, j, end, n, dots, pos = 0;
	int	 c, trailing = 0;

	if (outsz < 2)
		return 414;
	if (len == 0 || raw[0] != '/')
		return 400;

	/* out[0..pos) is empty or "/seg/seg", without a trailing '/'. */
	for (i = 1; i <= len; i = end + 1) {
		for (end = i; end < len && raw[end] != '/'; end++)
			;
		for (j = i, n = dots = 0; j < end; n++) {
			if ((c = file_decode(raw, end, &j)) == -1)
				return 400;
			if (c == '.')
				dots++;
		}
		trailing = n == 0 || (dots == n && n <= 2);
		if (n == 0 || (dots == n && n == 1))
			continue;
		if (dots == n && n == 2) {
			if (pos == 0)
				return 400;
			while (out[--pos] != '/')
				;
			continue;
		}
		if (outsz - pos < n + 2)	/* '/', the segment, a NUL */
			return 414;
		out[pos++] = '/';
		for (j = i; j < end; )
			out[pos++] = (char)file_decode(raw, end, &j);
	}

	if (pos == 0 || trailing) {
		if (outsz - pos < 2)
			return 414;
		out[pos++] = '/';
	}
	out[pos] = '\0';
	return 0;
}

int
file_is_hidden(const char *clean)
{
	const char	*p = clean;

	if (*p == '.')
		return 1;
	/* RFC 8615 well-known URIs, such as ACME challenges, are public. */
	if (strncmp(p, "/.well-known", 12) == 0 &&
	    (p[12] == '/' || p[12] == '\0'))
		p += 12;
	while ((p = strchr(p, '/')) != NULL)
		if (*++p == '.')
			return 1;
	return 0;
}

static int
file_fdpath(int fd, char *buf, size_t bufsz)
{
	char	 proc[32];
	ssize_t	 n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((n = readlink(proc, buf, bufsz)) == -1)
		return -1;
	if ((size_t)n >= bufsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	buf[n] = '\0';
	return 0;
}

/*
 * Without openat2(): let openat() resolve the path to an O_PATH fd,
 * which opens nothing (no FIFO or device side effects), ask /proc
 * where it really is, and only then reopen that very inode through
 * its /proc magic link. Unlike RESOLVE_BENEATH this accepts an
 * absolute symlink whose target lies inside the root.
 */
static int
file_open_checked(int rootfd, const char *rel, int flags)
{
	char	 root[PATH_MAX], path[PATH_MAX], proc[32];
	size_t	 rootlen;
	int	 pfd, fd, saved;

	pfd = openat(rootfd, rel, O_PATH | O_CLOEXEC |
	    (flags & (O_NOFOLLOW | O_DIRECTORY)));
	if (pfd == -1)
		return -1;
	if (file_fdpath(rootfd, root, sizeof(root)) == -1 ||
	    file_fdpath(pfd, path, sizeof(path)) == -1) {
		/* No /proc: we cannot tell, so refuse, and loudly (500). */
		if (errno != ENAMETOOLONG)
			errno = ENOSYS;
		goto fail;
	}
	rootlen = strlen(root);
	if (strcmp(root, "/") != 0 && (strncmp(path, root, rootlen) != 0 ||
	    (path[rootlen] != '/' && path[rootlen] != '\0'))) {
		errno = EXDEV;
		goto fail;
	}
	if (flags & O_PATH)
		return pfd;

	/* The magic link is the inode just checked, not a new lookup. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, (flags & ~O_NOFOLLOW) | O_CLOEXEC | O_NOCTTY);
	saved = errno;
	close(pfd);
	errno = saved;
	return fd;

 fail:
	saved = errno;
	close(pfd);
	errno = saved;
	return -1;
}

/* The path relative to the root: "/a/b" -> "a/b", "/" -> ".". */
static const char *
file_rel(const char *clean)
{
	while (*clean == '/')
		clean++;
	return *clean == '\0' ? "." : clean;
}

/* openat2() beneath rootfd, retried a few times while a rename races it. */
static int
file_openat2(int rootfd, const char *rel, int flags, uint64_t resolve)
{
	struct open_how	 how;
	int		 fd = -1, i;

	memset(&how, 0, sizeof(how));
	/* openat2() is strict: O_PATH takes no O_NOCTTY. */
	how.flags = (unsigned int)(flags | O_CLOEXEC |
	    (flags & O_PATH ? 0 : O_NOCTTY));
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | resolve;
	for (i = 0; i < FILE_OPEN_TRIES; i++) {
		fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
		if (fd != -1 || errno != EAGAIN)
			break;
	}
	return fd;
}

int
file_open_beneath(int rootfd, const char *clean, int flags, int *errp)
{
	const char	*rel = file_rel(clean);
	int		 fd;

	if (!file_no_openat2) {
		if ((fd = file_openat2(rootfd, rel, flags, 0)) != -1)
			return fd;
		if (errno == ENOSYS)
			file_no_openat2 = 1;
		/* EPERM may be a seccomp filter; a real one comes back below. */
		else if (errno != EPERM)
			goto fail;
	}
	if ((fd = file_open_checked(rootfd, rel, flags)) != -1)
		return fd;

 fail:
	/* Outside the root is "not found": do not confirm it exists. */
	*errp = errno == EXDEV ? ENOENT : errno;
	return -1;
}

/*
 * Open clean beneath rootfd only if no component is a symlink (ELOOP if
 * one is), with openat2() alone, for the open-file cache, which can vouch
 * only for such paths. ENOSYS without openat2().
 */
int
file_open_nolinks(int rootfd, const char *clean, int flags, int *errp)
{
	int fd;

	if (file_no_openat2) {
		*errp = ENOSYS;
		return -1;
	}
	if ((fd = file_openat2(rootfd, file_rel(clean), flags,
	    RESOLVE_NO_SYMLINKS)) == -1)
		*errp = errno;
	return fd;
}

int
file_errno_status(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
	case EXDEV:
	case ENXIO:
		return 404;
	case EACCES:
	case EPERM:
		return 403;
	case ENAMETOOLONG:
		return 414;
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return 503;
	default:
		return 500;
	}
}

/*
 * acme.c - the ACME http-01 challenge path (RFC 8555 8.3).
 *
 * A CA proves control of a name by fetching
 * "http://NAME/.well-known/acme-challenge/TOKEN" over plain HTTP. A
 * site serves that path from its root like any file; with
 * acme_challenge_root it comes from that directory instead, laid out as
 * certbot's --webroot writes it (DIR/.well-known/acme-challenge/TOKEN),
 * so one directory can answer for every site. The path is also what a
 * site's redirect to https leaves alone: a first certificate has to be
 * issued before any https:// URL can work.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "porter.h"

#define ACME_PREFIX	"/.well-known/acme-challenge/"
#define ACME_PREFIX_LEN	(sizeof(ACME_PREFIX) - 1)

int
acme_path(const char *clean)
{
	return strncmp(clean, ACME_PREFIX, ACME_PREFIX_LEN) == 0;
}

/*
 * The challenge directory is opened for each request rather than once
 * per worker: challenges are a few requests a quarter, and an admin
 * may replace the directory between them.
 */
int
acme_serve(struct resp *r, const char *dir, const char *path)
{
	struct stat st;
	int dirfd, fd = -1, err = 0;

	if ((dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		err = errno;
		goto fail;
	}
	fd = file_open_beneath(dirfd, path, O_RDONLY | O_NONBLOCK, &err);
	close(dirfd);
	if (fd == -1)
		goto fail;
	if (fstat(fd, &st) == -1) {
		err = errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 404;	/* the directory itself, or no file at all */
	}
	/* RFC 8555 8.3's example type; the CA reads only the body. */
	resp_begin(r, 200);
	resp_printf(r, "Content-Type: application/octet-stream\r\n"
	    "Content-Length: %lld\r\n", (long long)st.st_size);
	resp_head_done(r);
	resp_file_hold(r, NULL, fd);
	resp_seg_file(r, 0, (size_t)st.st_size);
	return 0;

fail:
	if (fd != -1)
		close(fd);
	return file_errno_status(err);
}

/*
 * listing.c - the HTML index of a directory that has no index file.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rep.h"

struct listing_ent {
	char	*le_name;
	int	 le_isdir;
	off_t	 le_size;
	time_t	 le_mtime;
};

/* An output buffer whose first allocation failure sticks, so the
 * rendering code can append without checking every call. */
struct listing_buf {
	char	*lb_p;
	size_t	 lb_len;
	size_t	 lb_cap;
	int	 lb_failed;
};

static const char listing_head[] =
	"<!DOCTYPE html>\n"
	"<html>\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">\n"
	"<title>Index of ";
static const char listing_style[] =
	"</title>\n"
	"<style>\n"
	"body { font-family: sans-serif; margin: 2em; }\n"
	"table { border-collapse: collapse; }\n"
	"th, td { padding: 0.15em 1.5em 0.15em 0; text-align: left; }\n"
	"td.size { text-align: right; }\n"
	"</style>\n"
	"</head>\n"
	"<body>\n"
	"<h1>Index of ";
static const char listing_table[] =
	"</h1>\n"
	"<table>\n"
	"<thead><tr><th>Name</th><th>Last modified</th>"
	    "<th>Size</th></tr></thead>\n"
	"<tbody>\n";
static const char listing_tail[] =
	"</tbody>\n"
	"</table>\n"
	"</body>\n"
	"</html>\n";

static void
listing_reserve(struct listing_buf *b, size_t more)
{
	size_t	 cap;
	char	*p;

	if (b->lb_failed)
		return;
	if (b->lb_cap - b->lb_len > more)
		return;
	cap = b->lb_cap ? b->lb_cap : 4096;
	while (cap - b->lb_len <= more) {
		if (cap > SIZE_MAX / 2) {
			b->lb_failed = 1;
			return;
		}
		cap *= 2;
	}
	if ((p = realloc(b->lb_p, cap)) == NULL) {
		b->lb_failed = 1;
		return;
	}
	b->lb_p = p;
	b->lb_cap = cap;
}

static void
listing_put(struct listing_buf *b, const char *s, size_t n)
{
	listing_reserve(b, n);
	if (b->lb_failed)
		return;
	memcpy(b->lb_p + b->lb_len, s, n);
	b->lb_len += n;
	b->lb_p[b->lb_len] = '\0';
}

static void
listing_puts(struct listing_buf *b, const char *s)
{
	listing_put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
listing_printf(struct listing_buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	 tmp[128];
	int	 n;

	/* Only short, fixed-shape fields go through here. */
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->lb_failed = 1;
		return;
	}
	listing_put(b, tmp, (size_t)n);
}

/* Text and attribute values: escape the five characters that matter. */
static void
listing_put_html(struct listing_buf *b, const char *s)
{
	const char	*esc;
	size_t		 run;

	while (*s != '\0') {
		run = strcspn(s, "&<>\"'\x01\x02\x03\x04\x05\x06\x07\x08\x09"
		    "\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17"
		    "\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f");
		listing_put(b, s, run);
		s += run;
		if (*s == '\0')
			break;
		switch (*s) {
		case '&':
			esc = "&amp;";
			break;
		case '<':
			esc = "&lt;";
			break;
		case '>':
			esc = "&gt;";
			break;
		case '"':
			esc = "&quot;";
			break;
		case '\'':
			esc = "&#39;";
			break;
		default:
			/* A reference to a control character is itself a
			 * parse error in HTML: show a replacement. */
			esc = "&#xFFFD;";
			break;
		}
		listing_puts(b, esc);
		s++;
	}
}

/* Everything but RFC 3986 unreserved characters is percent-encoded:
 * the link stays relative whatever the name holds (':', '?', '#'). */
static void
listing_put_href(struct listing_buf *b, const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 c;
	char			 enc[3];

	for (; (c = (unsigned char)*s) != '\0'; s++) {
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			listing_put(b, (const char *)&c, 1);
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[c >> 4];
		enc[2] = hex[c & 0x0f];
		listing_put(b, enc, 3);
	}
}

static void
listing_put_size(struct listing_buf *b, off_t size)
{
	static const char	 units[] = "KMGTPE";
	double			 v = (double)size;
	int			 u = -1;

	listing_printf(b, "<td class=\"size\" title=\"%jd bytes\">",
	    (intmax_t)size);
	if (size < 1024) {
		listing_printf(b, "%jd", (intmax_t)size);
	} else {
		while (v >= 1024 && u < (int)sizeof(units) - 2) {
			v /= 1024;
			u++;
		}
		/* One decimal while it still says something. */
		if (v < 10)
			listing_printf(b, "%.1f%c", v, units[u]);
		else
			listing_printf(b, "%.0f%c", v, units[u]);
	}
	listing_puts(b, "</td>");
}

static void
listing_put_mtime(struct listing_buf *b, time_t t)
{
	struct tm	 tm;

	if (gmtime_r(&t, &tm) == NULL) {
		listing_puts(b, "<td></td>");
		return;
	}
	/* long: a far-future mtime's tm_year + 1900 overflows an int. */
	listing_printf(b, "<td>%04ld-%02d-%02d %02d:%02d</td>",
	    (long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min);
}

static int
listing_cmp(const void *a, const void *b)
{
	const struct listing_ent	*x = a, *y = b;

	if (x->le_isdir != y->le_isdir)
		return y->le_isdir - x->le_isdir;
	return strcmp(x->le_name, y->le_name);
}

static void
listing_render(struct listing_buf *b, const char *urlpath,
    const struct listing_ent *ents, size_t n)
{
	size_t	 k;

	listing_puts(b, listing_head);
	listing_put_html(b, urlpath);
	listing_puts(b, listing_style);
	listing_put_html(b, urlpath);
	listing_puts(b, listing_table);
	if (strcmp(urlpath, "/") != 0 && urlpath[0] != '\0')
		listing_puts(b, "<tr><td><a href=\"../\">../</a></td>"
		    "<td></td><td class=\"size\">-</td></tr>\n");
	for (k = 0; k < n; k++) {
		const struct listing_ent	*e = &ents[k];
		const char			*slash = e->le_isdir ? "/" : "";

		listing_puts(b, "<tr><td><a href=\"");
		listing_put_href(b, e->le_name);
		listing_puts(b, slash);
		listing_puts(b, "\">");
		listing_put_html(b, e->le_name);
		listing_puts(b, slash);
		listing_puts(b, "</a></td>");
		listing_put_mtime(b, e->le_mtime);
		if (e->le_isdir)
			listing_puts(b, "<td class=\"size\">-</td>");
		else
			listing_put_size(b, e->le_size);
		listing_puts(b, "</tr>\n");
	}
	listing_puts(b, listing_tail);
}

int
listing_html(int dirfd, const char *urlpath, listing_follow_fn follow,
    void *arg, char **out, size_t *outlen)
{
	struct listing_buf	 b = { NULL, 0, 0, 0 };
	struct listing_ent	*ents = NULL, *e;
	size_t			 n = 0, cap = 0, k;
	struct dirent		*de;
	struct stat		 st;
	DIR			*d;
	int			 saved;

	*out = NULL;
	*outlen = 0;
	if ((d = fdopendir(dirfd)) == NULL) {
		saved = errno;
		close(dirfd);
		errno = saved;
		return -1;
	}

	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0)
				goto fail;
			break;
		}
		/* Dotfiles are private by convention, "." and ".." too. */
		if (de->d_name[0] == '.')
			continue;
		/* An entry that went away since readdir() is not listed. */
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		/*
		 * Through symlinks, but only where the caller would follow
		 * them too: a link out of the root must not show what it
		 * points at. Broken ones are left out.
		 */
		if (S_ISLNK(st.st_mode) && (follow != NULL ?
		    follow(arg, de->d_name, &st) :
		    fstatat(dirfd, de->d_name, &st, 0)) == -1)
			continue;
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;
		if (n == cap) {
			size_t	 ncap = cap ? cap * 2 : 64;

			if ((e = reallocarray(ents, ncap, sizeof(*ents))) ==
			    NULL)
				goto fail;
			ents = e;
			cap = ncap;
		}
		e = &ents[n];
		if ((e->le_name = strdup(de->d_name)) == NULL)
			goto fail;
		e->le_isdir = S_ISDIR(st.st_mode);
		e->le_size = st.st_size;
		e->le_mtime = st.st_mtim.tv_sec;
		n++;
	}

	if (n > 1)
		qsort(ents, n, sizeof(*ents), listing_cmp);
	listing_render(&b, urlpath, ents, n);
	if (b.lb_failed) {
		errno = ENOMEM;
		goto fail;
	}

	for (k = 0; k < n; k++)
		free(ents[k].le_name);
	free(ents);
	closedir(d);
	*out = b.lb_p;
	*outlen = b.lb_len;
	return 0;

 fail:
	saved = errno;
	for (k = 0; k < n; k++)
		free(ents[k].le_name);
	free(ents);
	free(b.lb_p);
	closedir(d);
	errno = saved;
	return -1;
}

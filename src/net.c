/*
 * net.c - socket helpers; see net.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static int
net_parse_port(const char *s, int *port)
{
	char *end;
	long v;

	if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int
net_parse_listen(const char *spec, struct net_addr *out, int max,
    char *err, size_t errlen)
{
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t hlen;
	int port;

	if (max < 2) {
		snprintf(err, errlen, "no room for addresses");
		return -1;
	}
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':')
			goto bad;
		hlen = (size_t)(close - spec - 1);
		colon = close + 1;
		if (hlen == 0 || hlen >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, hlen);
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			goto bad;
		hlen = (size_t)(colon - spec);
		if (hlen == 0 || hlen >= sizeof(host))
			goto bad;
		memcpy(host, spec, hlen);
	}
	host[hlen] = '\0';
	if (net_parse_port(colon + 1, &port) == -1)
		goto bad;

	memset(out, 0, sizeof(*out) * 2);
	if (strcmp(host, "*") == 0) {
		sin6 = (struct sockaddr_in6 *)&out[0].ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		out[0].len = sizeof(*sin6);
		out[0].v6only = 1;
		sin = (struct sockaddr_in *)&out[1].ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons(port);
		out[1].len = sizeof(*sin);
		return 2;
	}
	if (spec[0] == '[') {
		sin6 = (struct sockaddr_in6 *)&out[0].ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			goto bad;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		out[0].len = sizeof(*sin6);
		/* "[::]:P" as written: IPv6 only, so it can sit beside 0.0.0.0:P. */
		out[0].v6only = 1;
		return 1;
	}
	sin = (struct sockaddr_in *)&out[0].ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		goto bad;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	out[0].len = sizeof(*sin);
	return 1;
bad:
	snprintf(err, errlen, "bad listen address '%s' (want *:PORT, "
	    "IPv4:PORT or [IPv6]:PORT)", spec);
	return -1;
}

int
net_listen(const struct net_addr *a, int backlog, char *err, size_t errlen)
{
	char text[NET_ADDRSTRLEN];
	int fd, one = 1;

	net_addr_format((const struct sockaddr *)&a->ss, text, sizeof(text), 1);
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket for %s: %s", text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &a->v6only, sizeof(a->v6only)) == -1)
		goto fail;
	/* Accepted sockets inherit TCP_NODELAY: no setsockopt per connection. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto fail;
	/*
	 * Wake us when the request is there, not at the handshake: one
	 * wakeup and a read that finds data. A client that sends nothing is
	 * still handed over after the kernel's deferral (~1 s) and then
	 * meets header_timeout.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1)
		goto fail;
	if (listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", text, strerror(errno));
	close(fd);
	return -1;
}

int
net_sockname(int fd, struct net_addr *a)
{
	socklen_t optlen = sizeof(a->v6only);

	memset(a, 0, sizeof(*a));
	a->len = sizeof(a->ss);
	if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) == -1)
		return -1;
	if (a->ss.ss_family == AF_INET6 && getsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &a->v6only, &optlen) == -1)
		return -1;
	return 0;
}

int
net_addr_equal(const struct net_addr *a, const struct net_addr *b)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)&a->ss;
		b4 = (const struct sockaddr_in *)&b->ss;
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	if (a->ss.ss_family == AF_INET6) {
		a6 = (const struct sockaddr_in6 *)&a->ss;
		b6 = (const struct sockaddr_in6 *)&b->ss;
		if (a6->sin6_port != b6->sin6_port ||
		    memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)))
			return 0;
		/* Only the wildcard's v6only changes what it accepts. */
		if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
			return !a->v6only == !b->v6only;
		return 1;
	}
	return 0;
}

void
net_addr_format(const struct sockaddr *sa, char *buf, size_t len, int with_port)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		if (with_port)
			snprintf(buf, len, "%s:%d", host, ntohs(sin->sin_port));
		else
			snprintf(buf, len, "%s", host);
	} else if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		/* Show v4-mapped peers as plain IPv4, as access logs expect. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host,
			    sizeof(host));
			if (with_port)
				snprintf(buf, len, "%s:%d", host,
				    ntohs(sin6->sin6_port));
			else
				snprintf(buf, len, "%s", host);
			return;
		}
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		if (with_port)
			snprintf(buf, len, "[%s]:%d", host, ntohs(sin6->sin6_port));
		else
			snprintf(buf, len, "%s", host);
	} else if (sa->sa_family == AF_UNIX) {
		snprintf(buf, len, "unix");
	} else
		snprintf(buf, len, "?");
}

int
net_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

int
net_set_nonblock(int fd, int on)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		return -1;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags);
}

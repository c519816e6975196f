/*
 * net.h - socket helpers in the anet style: they never log; they return
 * -1 and write a message into the caller's error buffer.
 * Stand-alone: needs only libc.
 */
#ifndef PORTER_NET_H
#define PORTER_NET_H

#include <stddef.h>
#include <sys/socket.h>

#define NET_ADDRSTRLEN	64	/* "[ffff:...:ffff]:65535" and a NUL */

struct net_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 v6only;	/* IPV6_V6ONLY for [::] from "*:P" */
};

/*
 * Parse a listen spec: "*:80" (gives two addresses, 0.0.0.0 and [::]
 * with v6only), "0.0.0.0:80", "127.0.0.1:80", "[::]:80", "[::1]:80".
 * Returns the number of addresses written to out (1 or 2), or -1.
 */
int	 net_parse_listen(const char *spec, struct net_addr *out, int max,
	    char *err, size_t errlen);
/* socket, SO_REUSEADDR, bind, listen; returns a non-blocking fd or -1. */
int	 net_listen(const struct net_addr *a, int backlog, char *err,
	    size_t errlen);
/* The address a socket is bound to (getsockname), with v6only read back. */
int	 net_sockname(int fd, struct net_addr *a);
/* Same family, address and port (and v6only for the IPv6 wildcard). */
int	 net_addr_equal(const struct net_addr *a, const struct net_addr *b);
/* "127.0.0.1:80" or "[::1]:80"; with_port 0 gives the bare address. */
void	 net_addr_format(const struct sockaddr *sa, char *buf, size_t len,
	    int with_port);
int	 net_addr_port(const struct sockaddr *sa);
int	 net_set_nonblock(int fd, int on);

#endif

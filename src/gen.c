/*
 * gen.c - a generation: the listening sockets, the user and the log
 * files that the workers of one configuration start with. The master
 * builds the next generation in full before any of its workers starts,
 * so a reload that fails at any step has changed nothing (master_reload.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"
#include "tls.h"

#define GEN_MAX_LISTENERS	64

void
gen_clear(struct generation *g)
{
	memset(g, 0, sizeof(*g));
	g->access_fd = -1;
	g->error_fd = -1;
}

/* Is fd one of gen's listeners? */
int
gen_has_fd(const struct generation *g, int fd)
{
	size_t i;

	for (i = 0; i < g->nls; i++)
		if (g->ls[i].fd == fd)
			return 1;
	return 0;
}

/* A socket systemd passed for this address, taken out of fds; or -1. */
static int
gen_take_sd_fd(int *fds, int nfds, const struct net_addr *a)
{
	struct net_addr got;
	int i, fd;

	for (i = 0; i < nfds; i++) {
		if ((fd = fds[i]) == -1)
			continue;
		if (net_sockname(fd, &got) == 0 && net_addr_equal(&got, a)) {
			fds[i] = -1;
			net_set_nonblock(fd, 1);
			return fd;
		}
	}
	return -1;
}

/*
 * The socket for address a: an address the serving generation already
 * has is shared, never closed and re-bound, so its accept queue
 * survives (*keep set); one systemd passed (sd_fds) is taken from
 * there; any other is bound. -1 with err on failure.
 */
static int
gen_socket(const struct generation *old, int *sd_fds, int sd_nfds,
    const struct net_addr *a, int *keep, char *err, size_t errlen)
{
	size_t j;
	int fd = -1;

	*keep = 0;
	for (j = 0; old != NULL && j < old->nls; j++) {
		/* Port 0 asks for a new ephemeral port: never shared. */
		if (net_addr_port((const struct sockaddr *)&a->ss) &&
		    net_addr_equal(&old->ls[j].addr, a)) {
			*keep = 1;
			return old->ls[j].fd;
		}
	}
	if ((fd = gen_take_sd_fd(sd_fds, sd_nfds, a)) == -1)
		fd = net_listen(a, 4096, err, errlen);
	return fd;
}

/*
 * Add the listeners of one listen string (an address may expand to two:
 * "*:80"): cl is its 'listen' entry, or NULL for a status listener's
 * (plain HTTP/1.1, never PROXY; status.c answers there).
 */
static int
gen_add(struct generation *g, const struct generation *old, int *sd_fds,
    int sd_nfds, const char *spec, const struct conf_listen *cl, char *err,
    size_t errlen)
{
	struct net_addr addrs[2];
	struct listener *l;
	int n, k;

	if ((n = net_parse_listen(spec, addrs, 2, err, errlen)) == -1)
		return -1;
	for (k = 0; k < n; k++) {
		if (g->nls == GEN_MAX_LISTENERS) {
			snprintf(err, errlen, "too many listen addresses");
			return -1;
		}
		l = &g->ls[g->nls];
		l->addr = addrs[k];
		/*
		 * A kept socket takes the new protocol: old workers keep
		 * their copy of the old listener, so each side speaks what
		 * its generation says.
		 */
		l->protocol = cl != NULL ? cl->protocol : PROTO_HTTP;
		l->tls = cl != NULL && cl->tls ? 1 : 0;
		/* HTTP/2: on by default with TLS (ALPN h2), off on plain. */
		l->http2 = cl != NULL && cl->protocol == PROTO_HTTP &&
		    (cl->http2 == 1 || (cl->http2 == -1 && l->tls));
		l->proxy = cl != NULL && cl->proxy_protocol ? cl : NULL;
		l->status = cl == NULL;
		if ((l->fd = gen_socket(old, sd_fds, sd_nfds, &addrs[k],
		    &l->keep, err, errlen)) == -1)
			return -1;
		/* Port 0 became a real port: show that one. */
		net_sockname(l->fd, &l->addr);
		net_addr_format((struct sockaddr *)&l->addr.ss, l->text,
		    sizeof(l->text), 1);
		g->nls++;
	}
	return 0;
}

/*
 * Listeners for conf: the public ones ('listen'), then the status
 * listener's ('status.listen'), each kept, taken from systemd or bound
 * (gen_socket()).
 */
int
gen_listen(struct generation *g, const struct generation *old, int *sd_fds,
    int sd_nfds, char *err, size_t errlen)
{
	size_t i;

	g->ls = xcalloc(GEN_MAX_LISTENERS, sizeof(*g->ls));
	for (i = 0; i < g->conf->nlisten; i++)
		if (gen_add(g, old, sd_fds, sd_nfds, g->conf->listen[i],
		    &g->conf->listeners[i], err, errlen) == -1)
			return -1;
	for (i = 0; i < g->conf->status.nlisten; i++)
		if (gen_add(g, old, sd_fds, sd_nfds, g->conf->status.listen[i],
		    NULL, err, errlen) == -1)
			return -1;
	return 0;
}

/* How the log names what l serves: "http", "echo", "status". */
const char *
gen_listener_kind(const struct listener *l)
{
	return l->status ? "status" : conf_protocol_name(l->protocol);
}

/* Close the listeners of g that the other generation does not share. */
void
gen_close_listeners(struct generation *g, const struct generation *other)
{
	size_t i;

	for (i = 0; i < g->nls; i++)
		if (other == NULL || !gen_has_fd(other, g->ls[i].fd))
			close(g->ls[i].fd);
	free(g->ls);
	g->ls = NULL;
	g->nls = 0;
}

int
gen_user(struct generation *g, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	g->uid = (uid_t)-1;
	g->gid = (gid_t)-1;
	if (g->conf->user == NULL || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(g->conf->user)) == NULL) {
		snprintf(err, errlen, "%s: user '%s' not found", g->conf->path,
		    g->conf->user);
		return -1;
	}
	g->uid = pw->pw_uid;
	g->gid = pw->pw_gid;
	if (g->conf->group != NULL) {
		if ((gr = getgrnam(g->conf->group)) == NULL) {
			snprintf(err, errlen, "%s: group '%s' not found",
			    g->conf->path, g->conf->group);
			return -1;
		}
		g->gid = gr->gr_gid;
	}
	return 0;
}

/* Log files are opened by the master, which keeps its privileges. */
int
gen_open_log(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Workers write the access log after dropping privileges: through this fd. */
int
gen_open_access(struct generation *g, char *err, size_t errlen)
{
	const char *path = g->conf->access_log;

	g->access_fd = -1;
	g->access_stderr = 0;
	if (path == NULL)
		return 0;
	if (strcmp(path, "stderr") == 0) {
		g->access_fd = STDERR_FILENO;
		g->access_stderr = 1;
		return 0;
	}
	if ((g->access_fd = gen_open_log(path)) == -1) {
		snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A reload that moves the error log: the new workers must write the new
 * file from the start, but the master keeps the old one until the switch,
 * since a failed reload must change nothing.
 */
int
gen_open_error(struct generation *g, const struct conf *cur, char *err,
    size_t errlen)
{
	const char *path = g->conf->error_log;

	g->error_fd = -1;
	if (strcmp(path, cur->error_log) == 0)
		return 0;
	if (strcmp(path, "stderr") == 0) {
		g->error_fd = STDERR_FILENO;
		return 0;
	}
	if ((g->error_fd = gen_open_log(path)) == -1) {
		snprintf(err, errlen, "error log %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Everything but the listeners, which gen_close_listeners() handles. */
void
gen_free(struct generation *g)
{
	if (g->access_fd != -1 && !g->access_stderr)
		close(g->access_fd);
	if (g->error_fd > STDERR_FILENO)
		close(g->error_fd);
	/* Workers of g have their own copies; connections hold references. */
	tls_free(g->tls);
	conf_free(g->conf);
	free(g->ls);
	gen_clear(g);
}

int
gen_tls(struct generation *g, const struct generation *old,
    const struct tls_ticket_keys *keys, char *err, size_t errlen)
{
	const struct conf *conf = g->conf;
	struct tls_site *sites;
	struct tls_opts o;
	char line[1024];
	size_t i;
	int any = 0;

	for (i = 0; i < conf->nlisten; i++)
		any |= conf->listeners[i].tls;
	if (!any)
		return 0;
	sites = xcalloc(conf->nsites, sizeof(*sites));
	for (i = 0; i < conf->nsites; i++) {
		sites[i].certificate = conf->sites[i].tls_certificate;
		sites[i].key = conf->sites[i].tls_key;
		sites[i].origin = conf->sites[i].tls_origin;
	}
	memset(&o, 0, sizeof(o));
	o.profile = (enum tls_profile)conf->tls.profile;
	o.protocols = conf->tls.protocols;
	o.ciphers = conf->tls.ciphers;
	o.ciphersuites = conf->tls.ciphersuites;
	o.groups = conf->tls.groups;
	o.ktls = conf->tls.ktls;
	o.keys = conf->tls.session_tickets ? keys : NULL;
	o.reuse = old != NULL ? old->tls : NULL;
	g->tls = tls_new(conf, sites, &o, err, errlen);
	free(sites);
	if (g->tls == NULL)
		return -1;
	for (i = 0; i < tls_count(g->tls); i++) {
		const char *how = tls_reused(g->tls, i) ? " [unchanged]" : "";

		switch (tls_summary(g->tls, i, line, sizeof(line))) {
		case 0:
			log_notice("certificate %s%s", line, how);
			break;
		case 1:
			log_warnx("certificate %s%s", line, how);
			break;
		default:
			log_errx("certificate %s%s", line, how);
			break;
		}
	}
	return 0;
}

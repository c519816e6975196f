/*
 * master_reload.c - a reload (the states are in master.c's comment): the
 * file loaded and checked in full, a new generation started with it
 * beside the serving one, the switch once all of it is ready (the
 * listeners handed over, the error log and the pid file moved), and the
 * answer once no older worker can accept; on any failure, what was
 * started is drained and nothing else changes. Also what start-up
 * shares with it: the config hash, the session ticket ring, the pid file.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"
#include "metrics.h"
#include "climit.h"
#include "tls.h"
#include "master_int.h"

static void	 master_reload_done(int ok, const char *msg);

/* ---- reload -------------------------------------------------------------- */

/* Move the pid file and the control socket when a reload changed pid_file. */
static void
master_set_pid_file(const char *path)
{
	if (path == NULL ? m.pid_file == NULL :
	    m.pid_file != NULL && strcmp(path, m.pid_file) == 0)
		return;
	ctl_close();
	if (m.pid_file != NULL)
		unlink(m.pid_file);
	free(m.pid_file);
	m.pid_file = path != NULL ? xstrdup(path) : NULL;
	master_write_pid();
	if (m.pid_file != NULL)
		ctl_open(m.loop, m.pid_file, m.ctl);
}

/*
 * A switch is over when no worker of an older generation can accept:
 * each has closed its listeners (CHAN_DRAINED) or is gone. Only then may
 * `porter -s reload` hear that the new configuration serves; an old
 * worker that has not yet read its CHAN_QUIT would otherwise take, with
 * the old configuration, a connection made after that answer. The
 * CHAN_QUIT wakes it at once, so this takes one turn of its loop.
 */
void
master_check_switched(void)
{
	if (!m.reload_wait || proc_count_listening_besides(m.cur.id) > 0)
		return;
	m.reload_wait = 0;
	master_reload_done(1, "configuration reloaded");
}

void
master_check_switch(void)
{
	struct proc *w;
	char err[512];

	if (m.state != MS_RELOADING)
		return;
	if (proc_count_ready(m.next.id) < m.next.target)
		return;

	/*
	 * Every new worker is ready: they start and the old ones stop in
	 * one go. Connections that arrive between the two wait in the
	 * shared listen queues, which the master keeps open.
	 */
	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (w->state == PW_READY && w->gen == m.next.id)
			proc_go(w);
	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (w->gen != m.next.id)
			proc_drain(w);
	/*
	 * Our copies of removed addresses go; each old worker closes its
	 * own after a last accept, and the last close ends the socket.
	 */
	gen_close_listeners(&m.cur, &m.next);
	if (m.next.error_fd != -1) {
		if (log_open(m.next.conf->error_log, err, sizeof(err)) == -1)
			log_errx("error log: %s", err);
		if (m.next.error_fd > STDERR_FILENO)
			close(m.next.error_fd);
		m.next.error_fd = -1;
	}
	master_set_pid_file(m.next.conf->pid_file);
	/* Nothing in the master points into the old conf any more. */
	gen_free(&m.cur);
	m.cur = m.next;
	m.cur_hash = m.next_hash;
	gen_clear(&m.next);
	m.state = MS_RUNNING;
	proc_backoff_reset();
	m.ever_ready = 1;
	log_notice("reloaded: generation %u serving with %d workers (%llu ms)",
	    m.cur.id, m.cur.target,
	    (unsigned long long)(ev_clock_ms() - m.reload_start));
	master_resize_pending();
	m.reload_wait = 1;
	master_check_switched();
}

/*
 * Undo a reload in progress. New workers may already have taken
 * connections, so they drain like any old worker: no reset for anyone.
 */
void
master_reload_cancel(void)
{
	struct proc *w;

	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (w->gen == m.next.id)
			proc_drain(w);
	gen_close_listeners(&m.next, &m.cur);
	gen_free(&m.next);
	m.state = MS_RUNNING;
}

void
master_reload_fail(const char *why)
{
	master_reload_cancel();
	log_errx("reload failed: %s; still serving the previous configuration",
	    why);
	master_resize_pending();
	master_reload_done(0, why);
}

/*
 * porter_config_info's hash of the file just loaded. It reads the file a
 * second time (conf.c hands libconfig the path): a file replaced in
 * between shows the newer hash, which the next reload loads anyway.
 */
uint64_t
master_conf_hash(void)
{
	uint64_t h;

	if (metrics_hash_file(m.conf_path, &h) == -1) {
		log_warn("%s: no config hash for the metrics", m.conf_path);
		return 0;
	}
	return h;
}

void
master_reload(void)
{
	char err[1024], note[160];
	struct conf *conf;
	size_t i;

	if (m.state == MS_STOPPING || m.delay_timer)
		return;
	if (m.state == MS_RELOADING || m.reload_wait) {
		/* The file may have changed again since this reload read it. */
		m.reload_again = 1;
		log_info("reload asked for during a reload: it follows");
		return;
	}
	m.reload_seq++;
	m.reload_start = ev_clock_ms();
	systemd_reloading();
	log_notice("reloading %s", m.conf_path);
	if ((conf = conf_load(m.conf_path, err, sizeof(err))) == NULL)
		goto fail;
	/* Before next's workers fork: they must inherit the tables. */
	if (climit_master_conf(conf, note, sizeof(note), err,
	    sizeof(err)) == -1) {
		conf_free(conf);
		goto fail;
	}
	if (note[0] != '\0')
		log_warnx("reload:%s", note);
	m.next_hash = master_conf_hash();
	gen_clear(&m.next);
	m.next.conf = conf;
	m.next.id = ++m.gen_seq;
	m.next.target = conf->workers;
	master_tickets(conf);
	/* Every certificate and key read again, checked, before any switch. */
	if (gen_tls(&m.next, &m.cur, m.tickets, err, sizeof(err)) == -1 ||
	    gen_user(&m.next, err, sizeof(err)) == -1 ||
	    gen_open_access(&m.next, err, sizeof(err)) == -1 ||
	    gen_open_error(&m.next, m.cur.conf, err, sizeof(err)) == -1 ||
	    gen_listen(&m.next, &m.cur, m.sd_fds, m.sd_nfds, err, sizeof(err)) == -1) {
		gen_close_listeners(&m.next, &m.cur);
		gen_free(&m.next);
		goto fail;
	}
	if (mime_load("/etc/mime.types", err, sizeof(err)) == -1)
		log_debug("%s", err);
	for (i = 0; i < m.next.nls; i++)
		if (!m.next.ls[i].keep)
			log_info("listening on %s (%s%s%s)", m.next.ls[i].text,
			    gen_listener_kind(&m.next.ls[i]),
			    m.next.ls[i].tls ? " over TLS" : "",
			    m.next.ls[i].proxy != NULL ? ", PROXY protocol" : "");
	m.state = MS_RELOADING;
	master_fill();
	return;
fail:
	log_errx("reload failed: %s; still serving the previous configuration",
	    err);
	master_reload_done(0, err);
}

static void
master_reload_done(int ok, const char *msg)
{
	snprintf(m.reload_msg, sizeof(m.reload_msg), "%s", msg);
	m.reload_ok = ok;
	m.reload_time = time(NULL);
	sb_master_reload(ok, (uint64_t)m.reload_time, m.cur.id, m.cur_hash);
	/*
	 * systemd waits for READY=1 after RELOADING=1, success or not. It
	 * goes first: once `porter -s reload` (ExecReload=) returns, systemd
	 * must already know the reload is over.
	 */
	m.ready_sent = 1;
	systemd_ready(NULL);
	master_update_status();
	ctl_answer(ok, msg, m.reload_seq);
	if (m.reload_again && m.state == MS_RUNNING) {
		m.reload_again = 0;
		master_reload();
	}
}

/*
 * The ticket key ring, for a configuration that has TLS listeners: made
 * once (the page must exist before the first fork, so the first
 * configuration makes it even without TLS), filled on first use, and
 * started afresh only when ticket_lifetime changes, since the ring's
 * schedule depends on it.
 */
void
master_tickets(const struct conf *conf)
{
	int64_t life = conf->tls.ticket_lifetime;

	if (m.tickets == NULL)
		return;
	if (m.tickets->lifetime == life)
		return;
	if (tls_ticket_init(m.tickets, life, tls_clock()) == -1)
		log_warnx("session tickets: no key (random generator)");
}

void
master_write_pid(void)
{
	char buf[32];
	int fd, n;

	if (m.pid_file == NULL)
		return;
	fd = open(m.pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_warn("pid file %s", m.pid_file);
		free(m.pid_file);
		m.pid_file = NULL;
		return;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	(void)!write(fd, buf, (size_t)n);
	close(fd);
}

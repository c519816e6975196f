/*
 * main.c - command line, configuration test, start-up, and the
 * `porter -s SIGNAL` client that talks to a running master.
 *
 * The client finds the master through the pid file of the configuration
 * named by -c. "reload" checks that file first (a broken one is reported
 * here, with file and line, and the master is not disturbed), then asks
 * over the control socket next to the pid file and waits for the
 * outcome; "stop" signals TERM and waits until the master has exited;
 * "status" asks over the control socket and prints the master's
 * "key: value" lines on stdout; "drain" and "undrain" turn the master's
 * drain flag on and off the same way (health checks fail, keep-alive
 * clients are told Connection: close, requests are still served).
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"

/*
 * A message from the command line tool. Under systemd (ExecReload=
 * runs `porter -s reload`) stderr is the journal: the "<N>" prefix gives
 * the line its priority, so `journalctl -p err` finds a failed reload.
 */
static void PRINTF(2, 3)
main_say(int prio, const char *fmt, ...)
{
	va_list ap;

	if (log_stderr_is_journal())
		fprintf(stderr, "<%d>", prio);
	fputs("porter: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void __attribute__((noreturn))
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: porter [-c file] [-t] [-s reload|stop|quit|reopen|status] [-V] [-h]\n"
	    "       porter [-c file] -s drain|undrain\n"
	    "       porter [-c file] -s bans|clients [N]|client ADDR|limits-reset\n"
	    "       porter [-c file] -s ban ADDR[/LEN] SECONDS [REASON]|unban ADDR[/LEN]|all\n"
	    "  -c file   configuration file (default %s)\n"
	    "  -t        check the configuration and exit\n"
	    "  -s signal tell the running master to reload (and wait for the\n"
	    "            outcome), stop (and wait), quit (graceful, no wait)\n"
	    "            or reopen its log files, or print its status; drain\n"
	    "            (fail /health, close keep-alive) or undrain\n"
	    "  -V        print the version and exit\n"
	    "  -h        this help\n", PORTER_CONF_DEFAULT);
	exit(code);
}

static pid_t
main_read_pid(const char *pid_file)
{
	FILE *f;
	long pid = 0;

	if ((f = fopen(pid_file, "r")) == NULL) {
		main_say(3, "%s: %s (is porter running?)\n",
		    pid_file, strerror(errno));
		return -1;
	}
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		main_say(3, "%s: no pid in it\n", pid_file);
		pid = -1;
	}
	fclose(f);
	return (pid_t)pid;
}

/* Connect to the master's control socket; -1 with errno set if none. */
static int
main_ctl_connect(const char *pid_file)
{
	struct sockaddr_un sun;
	char *path;
	int fd, saved;

	path = ctl_path(pid_file);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		free(path);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	free(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Ask the master to reload over its control socket and wait for the outcome. */
static int
main_reload(const char *pid_file)
{
	struct pollfd pfd;
	char reply[700];
	size_t len = 0;
	ssize_t n;
	int fd;
	pid_t pid;

	if ((fd = main_ctl_connect(pid_file)) == -1) {
		/* No control socket: fall back to a plain, asynchronous HUP. */
		main_say(3, "control socket for %s: %s; sending "
		    "SIGHUP without waiting\n", pid_file, strerror(errno));
		if ((pid = main_read_pid(pid_file)) == -1)
			return 1;
		if (kill(pid, SIGHUP) == -1) {
			main_say(3, "kill %d: %s\n", (int)pid,
			    strerror(errno));
			return 1;
		}
		return 0;
	}
	if (write(fd, "reload\n", 7) != 7) {
		main_say(3, "control socket: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		/* A new generation has 15 s to start; give the master more. */
		if (poll(&pfd, 1, 60000) <= 0) {
			main_say(3, "no answer from the master\n");
			close(fd);
			return 1;
		}
		n = read(fd, reply + len, sizeof(reply) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(reply, '\n', len) != NULL || len == sizeof(reply) - 1)
			break;
	}
	close(fd);
	reply[len] = '\0';
	reply[strcspn(reply, "\n")] = '\0';
	if (strncmp(reply, "ok", 2) == 0) {
		printf("porter: %s\n", reply[2] ? reply + 3 : "reloaded");
		return 0;
	}
	main_say(3, "reload failed: %s\n",
	    strncmp(reply, "error ", 6) == 0 ? reply + 6 :
	    (len ? reply : "the master closed the connection"));
	return 1;
}

/*
 * `porter -s status` (the master's own account, through the control
 * socket: its workers, their heartbeats, the monotonic totals), `-s
 * drain`, `-s undrain` and the client-limit queries: send line, print
 * the answer after "ok". No socket means no master: exit 1 with a
 * message.
 */
static int
main_query(const char *pid_file, const char *line)
{
	struct pollfd pfd;
	char *reply = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, rv = 1;

	if ((fd = main_ctl_connect(pid_file)) == -1) {
		main_say(3, "control socket for %s: %s (is porter running?)\n",
		    pid_file, strerror(errno));
		return 1;
	}
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		main_say(3, "control socket: %s\n", strerror(errno));
		goto fail;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, 10000) <= 0) {
			main_say(3, "no answer from the master\n");
			goto fail;
		}
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			reply = xrealloc(reply, cap);
		}
		n = read(fd, reply + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (reply == NULL || len == 0) {
		main_say(3, "the master closed the connection\n");
		goto fail;
	}
	reply[len] = '\0';
	if (strncmp(reply, "ok ", 3) == 0) {
		/* "ok MESSAGE": a one-line answer (porter -s ban). */
		fputs(reply + 3, stdout);
		rv = fflush(stdout) == 0 ? 0 : 1;
		goto fail;
	}
	if (strncmp(reply, "ok\n", 3) != 0) {
		reply[strcspn(reply, "\n")] = '\0';
		main_say(3, "%.*s: %s\n", (int)strcspn(line, " \n"), line,
		    strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
		goto fail;
	}
	fputs(reply + 3, stdout);
	rv = fflush(stdout) == 0 ? 0 : 1;
fail:
	free(reply);
	close(fd);
	return rv;
}

/* Gone, or a zombie its parent has not reaped yet: either way it is done. */
static int
main_pid_gone(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (kill(pid, 0) == -1 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything; look past the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	return p[1] == ' ' && p[2] == 'Z';
}

/*
 * Wait for the master to exit. Its control socket is the precise signal:
 * only the master holds it, so end of file comes with its exit, after
 * its last worker. Without one, poll the pid.
 */
static int
main_wait_exit(pid_t pid, int ctl, int timeout_s)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	struct pollfd pfd;
	char buf[256];
	int i;

	for (i = 0; i < timeout_s * 20; i++) {
		if (ctl != -1) {
			pfd.fd = ctl;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, 50) == 1 &&
			    read(ctl, buf, sizeof(buf)) <= 0)
				break;
		} else
			nanosleep(&ts, NULL);
		if (main_pid_gone(pid))
			break;
	}
	if (ctl != -1)
		close(ctl);
	if (i == timeout_s * 20 && !main_pid_gone(pid)) {
		main_say(3, "%d still running after %d s\n",
		    (int)pid, timeout_s);
		return 1;
	}
	return 0;
}

/* The client-limit commands, answered over the control socket. */
static int
main_is_query(const char *cmd)
{
	static const char *const q[] = { "status", "bans", "clients",
	    "client", "ban", "unban", "limits-reset", "drain", "undrain",
	    NULL };
	size_t i;

	for (i = 0; q[i] != NULL; i++)
		if (strcmp(cmd, q[i]) == 0)
			return 1;
	return 0;
}

static int
main_signal(const char *conf_path, const char *cmd, char **args, int nargs)
{
	char line[512];
	size_t len;
	int j;
	char err[1024];
	struct conf *conf;
	char *pid_file;
	int sig, rv, ctl = -1, timeout;
	pid_t pid;

	if (strcmp(cmd, "stop") == 0)
		sig = SIGTERM;
	else if (strcmp(cmd, "quit") == 0)
		sig = SIGQUIT;
	else if (strcmp(cmd, "reopen") == 0)
		sig = SIGUSR1;
	else if (strcmp(cmd, "reload") == 0)
		sig = SIGHUP;
	else if (main_is_query(cmd))
		sig = 0;
	else
		usage(1);
	if (nargs > 0 && sig != 0)
		usage(1);
	len = (size_t)snprintf(line, sizeof(line), "%s", cmd);
	for (j = 0; j < nargs && len < sizeof(line); j++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s",
		    args[j]);
	if (len + 2 > sizeof(line) || strchr(line, '\n') != NULL) {
		main_say(3, "-s %s: arguments too long\n", cmd);
		return 1;
	}
	line[len++] = '\n';
	line[len] = '\0';

	if ((conf = conf_load(conf_path, err, sizeof(err))) == NULL) {
		if (sig == SIGHUP) {
			/* The master would refuse it too: say why, stop here. */
			main_say(3, "reload failed: %s\n", err);
			return 1;
		}
		/* Without the file, only the default pid file is left to try. */
		main_say(3, "%s; trying %s\n", err,
		    PORTER_PID_DEFAULT);
		pid_file = xstrdup(PORTER_PID_DEFAULT);
		timeout = 40;
	} else {
		if (conf->pid_file == NULL) {
			main_say(3, "%s has pid_file off: cannot "
			    "find the master\n", conf_path);
			conf_free(conf);
			return 1;
		}
		pid_file = xstrdup(conf->pid_file);
		/*
		 * The master drains for shutdown_delay, then forces its
		 * workers out after shutdown_timeout.
		 */
		timeout = conf->health.shutdown_delay +
		    conf->shutdown_timeout + 10;
		conf_free(conf);
	}

	if (sig == SIGHUP || sig == 0) {
		rv = sig == SIGHUP ? main_reload(pid_file) :
		    main_query(pid_file, line);
		free(pid_file);
		return rv;
	}
	/* Connected before the signal, so the end of file cannot be missed. */
	if (sig == SIGTERM)
		ctl = main_ctl_connect(pid_file);
	pid = main_read_pid(pid_file);
	free(pid_file);
	if (pid == -1) {
		if (ctl != -1)
			close(ctl);
		return 1;
	}
	if (kill(pid, sig) == -1) {
		main_say(3, "kill %d: %s\n", (int)pid, strerror(errno));
		if (ctl != -1)
			close(ctl);
		return 1;
	}
	if (sig == SIGTERM)
		return main_wait_exit(pid, ctl, timeout);
	return 0;
}

/*
 * Every connection is a descriptor and the soft limit is often 1024:
 * take what the hard limit allows (systemd's default is 524288).
 */
static void
main_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit NOFILE");
	}
}

int
main(int argc, char *argv[])
{
	const char *conf_path = PORTER_CONF_DEFAULT, *sigcmd = NULL;
	char err[1024];
	struct conf *conf;
	int ch, test = 0;

	while ((ch = getopt(argc, argv, "c:ts:Vh")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 's':
			sigcmd = optarg;
			break;
		case 'V':
			printf("porter %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (sigcmd != NULL)
		return main_signal(conf_path, sigcmd, argv + optind,
		    argc - optind);
	if (optind != argc)
		usage(1);

	if ((conf = conf_load(conf_path, err, sizeof(err))) == NULL) {
		main_say(3, "%s\n", err);
		return test ? 1 : EXIT_CONFIG;
	}
	if (test) {
		struct generation g;

		/* Certificates and keys are part of the configuration. */
		gen_clear(&g);
		g.conf = conf;
		if (gen_tls(&g, NULL, NULL, err, sizeof(err)) == -1) {
			main_say(3, "%s\n", err);
			gen_free(&g);
			return 1;
		}
		main_say(6, "configuration %s is valid\n", conf_path);
		gen_free(&g);
		return 0;
	}

	log_init(0);
	if (log_open(conf->error_log, err, sizeof(err)) == -1) {
		main_say(3, "error log %s\n", err);
		return EXIT_CONFIG;
	}
	main_raise_nofile();
	return master_run(conf, conf_path);
}

/*
 * main.c - command line, configuration test, start-up, and the
 * `porter -s SIGNAL` client that talks to a running master.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"

static void __attribute__((noreturn))
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: porter [-c file] [-t] [-s reload|stop|quit|reopen] [-V] [-h]\n"
	    "  -c file   configuration file (default %s)\n"
	    "  -t        check the configuration and exit\n"
	    "  -s signal tell the running master to reload (and wait for the\n"
	    "            outcome), stop (and wait), quit (graceful, no wait)\n"
	    "            or reopen its log files\n"
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
		fprintf(stderr, "porter: %s: %s (is porter running?)\n",
		    pid_file, strerror(errno));
		return -1;
	}
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "porter: %s: no pid in it\n", pid_file);
		pid = -1;
	}
	fclose(f);
	return (pid_t)pid;
}

/* Ask the master to reload over its control socket and wait for the outcome. */
static int
main_reload(const char *pid_file)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	char *path, reply[700];
	size_t len = 0;
	ssize_t n;
	int fd;
	pid_t pid;

	path = master_ctl_path(pid_file);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		/* No control socket: fall back to a plain, asynchronous HUP. */
		fprintf(stderr, "porter: %s: %s; sending SIGHUP without "
		    "waiting\n", path, strerror(errno));
		free(path);
		if (fd != -1)
			close(fd);
		if ((pid = main_read_pid(pid_file)) == -1)
			return 1;
		if (kill(pid, SIGHUP) == -1) {
			fprintf(stderr, "porter: kill %d: %s\n", (int)pid,
			    strerror(errno));
			return 1;
		}
		return 0;
	}
	free(path);
	if (write(fd, "reload\n", 7) != 7) {
		fprintf(stderr, "porter: control socket: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		/* A new generation has 15 s to start; give the master more. */
		if (poll(&pfd, 1, 60000) <= 0) {
			fprintf(stderr, "porter: no answer from the master\n");
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
	fprintf(stderr, "porter: reload failed: %s\n",
	    strncmp(reply, "error ", 6) == 0 ? reply + 6 :
	    (len ? reply : "the master closed the connection"));
	return 1;
}

static int
main_signal(const char *conf_path, const char *cmd)
{
	char err[1024];
	struct conf *conf;
	char *pid_file;
	int sig, rv, wait_exit = 0, timeout = 30;
	pid_t pid;

	/* A broken file still names no other pid file than the default. */
	if ((conf = conf_load(conf_path, err, sizeof(err))) != NULL) {
		if (conf->pid_file == NULL) {
			fprintf(stderr, "porter: %s has pid_file off: cannot "
			    "find the master\n", conf_path);
			conf_free(conf);
			return 1;
		}
		pid_file = xstrdup(conf->pid_file);
		timeout = conf->shutdown_timeout + 10;
		conf_free(conf);
	} else
		pid_file = xstrdup(PORTER_PID_DEFAULT);

	if (strcmp(cmd, "reload") == 0) {
		rv = main_reload(pid_file);
		free(pid_file);
		return rv;
	}
	if (strcmp(cmd, "stop") == 0) {
		sig = SIGTERM;
		wait_exit = 1;
	} else if (strcmp(cmd, "quit") == 0)
		sig = SIGQUIT;
	else if (strcmp(cmd, "reopen") == 0)
		sig = SIGUSR1;
	else {
		free(pid_file);
		usage(1);
	}
	pid = main_read_pid(pid_file);
	free(pid_file);
	if (pid == -1)
		return 1;
	if (kill(pid, sig) == -1) {
		fprintf(stderr, "porter: kill %d: %s\n", (int)pid, strerror(errno));
		return 1;
	}
	if (wait_exit) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		int i;

		for (i = 0; i < timeout * 20; i++) {
			if (kill(pid, 0) == -1 && errno == ESRCH)
				return 0;
			nanosleep(&ts, NULL);
		}
		fprintf(stderr, "porter: %d still running\n", (int)pid);
		return 1;
	}
	return 0;
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
	if (optind != argc)
		usage(1);

	if (sigcmd != NULL)
		return main_signal(conf_path, sigcmd);

	if ((conf = conf_load(conf_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "porter: %s\n", err);
		return test ? 1 : EXIT_CONFIG;
	}
	if (test) {
		fprintf(stderr, "porter: configuration %s is valid\n", conf_path);
		conf_free(conf);
		return 0;
	}

	log_init(0);
	if (log_open(conf->error_log, err, sizeof(err)) == -1) {
		fprintf(stderr, "porter: error log %s\n", err);
		return EXIT_CONFIG;
	}
	return master_run(conf, conf_path);
}

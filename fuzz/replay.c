/*
 * replay.c - run a fuzz target's LLVMFuzzerTestOneInput() once on each
 * file of its corpus, without libFuzzer. `make check` links every target
 * with this main() and the normal build's libporter.a (gcc, or ASan and
 * UBSan under ./dev sanitize), so the seeds and the targets' properties
 * are checked on every test run, with or without clang.
 *
 *   replay_TARGET [FILE|DIR]...
 *
 * Without arguments it reads $PORTER_SRCDIR/fuzz/corpus/TARGET. A broken
 * property aborts, which fails the test.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_TARGET_NAME
#error "FUZZ_TARGET_NAME must name the target's corpus"
#endif

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int	replay_file(const char *path);
static int	replay_path(const char *path, size_t *count);

/* One input, in an exactly sized heap block like libFuzzer gives. */
static int
replay_file(const char *path)
{
	FILE		*f;
	uint8_t		*buf = NULL;
	struct stat	 st;
	size_t		 n;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) == -1)
		goto fail;
	if ((buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL)
		goto fail;
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f) || n != (size_t)st.st_size)
		goto fail;
	fclose(f);
	fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;

 fail:
	perror(path);
	free(buf);
	if (f != NULL)
		fclose(f);
	return -1;
}

static int
replay_path(const char *path, size_t *count)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 sub[4096];
	int		 rv = 0;

	if (stat(path, &st) == -1) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	if ((d = opendir(path)) == NULL) {
		perror(path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
		    de->d_name) >= sizeof(sub) || replay_path(sub, count) == -1)
			rv = -1;
	}
	closedir(d);
	return rv;
}

int
main(int argc, char **argv)
{
	const char	*src;
	char		 dir[4096];
	size_t		 count = 0;
	int		 i, rv = 0;

	if (argc < 2) {
		if ((src = getenv("PORTER_SRCDIR")) == NULL)
			src = ".";
		snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s", src,
		    FUZZ_TARGET_NAME);
		rv = replay_path(dir, &count);
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) == -1)
			rv = -1;
	printf("fuzz_%s: %zu inputs replayed%s\n", FUZZ_TARGET_NAME, count,
	    rv == 0 ? "" : ", some could not be read");
	/* An empty corpus means a wrong path, not a pass. */
	return rv == 0 && count > 0 ? 0 : 1;
}

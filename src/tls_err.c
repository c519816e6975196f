/*
 * tls_err.c - OpenSSL's error queue in porter's one-line error messages
 * (see tls_int.h), for the files behind tls.h.
 */
#include <stdio.h>

#include <openssl/err.h>

#include "tls_int.h"

/* ---- errors ----------------------------------------------------------------- */

/*
 * "what: msg (OpenSSL's reasons)": the queue drained oldest first (the
 * root cause), each with its added text ("Verify error:...").
 */
void
tls_error(char *err, size_t errlen, const char *what, const char *msg)
{
	char reasons[512], one[256];
	const char *data;
	unsigned long e;
	size_t n = 0;
	int flags;

	reasons[0] = '\0';
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (n < sizeof(reasons))
			n += (size_t)snprintf(reasons + n, sizeof(reasons) - n,
			    "%s%s%s%s", n ? "; " : "", one,
			    (flags & ERR_TXT_STRING) && *data ? ": " : "",
			    (flags & ERR_TXT_STRING) ? data : "");
	}
	if (reasons[0] != '\0')
		snprintf(err, errlen, "%s: %s (%s)", what, msg, reasons);
	else
		snprintf(err, errlen, "%s: %s", what, msg);
}

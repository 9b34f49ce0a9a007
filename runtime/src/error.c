/* Per-thread error message: core functions set it and return -1 / NULL. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mtl/core.h"

static _Thread_local char message[1024];

int mtl_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return -1;
}

const char *mtl_error_message(void) { return message[0] ? message : "unknown error"; }

void mtl_error_prefix(const char *prefix) {
  char tmp[sizeof message];
  size_t n = strlen(prefix);
  if (n > sizeof tmp - 3) n = sizeof tmp - 3;
  memcpy(tmp, prefix, n);
  tmp[n] = ':';
  tmp[n + 1] = ' ';
  size_t rest = sizeof tmp - n - 3, m = strlen(message);
  if (m > rest) m = rest;
  memcpy(tmp + n + 2, message, m);
  tmp[n + 2 + m] = 0;
  memcpy(message, tmp, sizeof message);
}

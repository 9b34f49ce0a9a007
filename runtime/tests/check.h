/* The C tests' one check: CHECK(cond) or CHECK(cond, "printf format", ...)
 * prints "file:line: check failed: cond[: message]" to stderr when cond is
 * false and counts it in `failures`; a test's main returns nonzero when any
 * failed. Include it once per test program. */
#ifndef MTL_TEST_CHECK_H
#define MTL_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int failures;

/* fmt starts with ": " (the macro prepends it); alone it means no message. */
static void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
  fprintf(stderr, "%s:%d: check failed: %s", file, line, cond);
  if (fmt[2]) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
  }
  fputc('\n', stderr);
  failures++;
}

#define CHECK(cond, ...) ((cond) ? (void)0 : check_failed(__FILE__, __LINE__, #cond, ": " __VA_ARGS__))

#endif

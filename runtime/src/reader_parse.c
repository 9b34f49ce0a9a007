/* Field value parsers of the readers: integers, numbers, string ids.
 * They are bounded by an end pointer (fields are not NUL-terminated) and stop
 * at the first byte that cannot continue the value; the caller decides whether
 * that stop is a legal end of field. */
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "mtl/reader.h"

const char *mtl_parse_int64(const char *s, const char *e, int64_t *out, bool *overflow) {
  const char *p = s;
  bool neg = false;
  if (p < e && (*p == '-' || *p == '+')) {
    neg = *p == '-';
    p++;
  }
  const char *digits = p;
  uint64_t v = 0;
  bool of = false;
  while (p < e && (unsigned)(*p - '0') < 10) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) of = true;
    else v = v * 10 + d;
    p++;
  }
  if (p == digits) return NULL;
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (v > limit) of = true;
  *overflow = of;
  if (of) *out = 0;
  else if (neg) *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  else *out = (int64_t)v;
  return p;
}

/* strtod in the "C" locale whatever the process's locale is. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static bool numberish(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
         c == '+' || c == '-' || c == '(' || c == ')' || c == '_';
}

/* The slow path: strtod on a NUL-terminated copy of the longest run of bytes
 * strtod could consume (so it never sees leading spaces or the next field). */
static const char *parse_double_slow(const char *s, const char *e, double *out) {
  size_t n = 0;
  while (s + n < e && numberish(s[n])) n++;
  if (n == 0) return NULL;
  char local[512], *buf = local;
  if (n >= sizeof local) {
    buf = malloc(n + 1);
    if (!buf) return NULL;
  }
  memcpy(buf, s, n);
  buf[n] = 0;
  pthread_once(&c_locale_once, make_c_locale);
  char *end;
  double v = c_locale ? strtod_l(buf, &end, c_locale) : strtod(buf, &end);
  size_t used = (size_t)(end - buf);
  if (buf != local) free(buf);
  if (used == 0) return NULL;
  *out = v;
  return s + used;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A decimal's significant digits as read so far: at most 19 in m, the
 * power of ten to apply, whether any digit came and whether digits beyond
 * the 19th were dropped (nonzero ones make the fast path inexact). */
typedef struct {
  uint64_t m;
  int sig, exp10;
  bool any, inexact;
} decimal;

/* Reads a run of digits into d: the integer part (digits beyond the 19th
 * scale by ten) or, with fraction, the digits after the point (each kept one
 * scales by a tenth). */
static inline const char *read_digits(const char *p, const char *e, bool fraction, decimal *d) {
  for (; p < e && (unsigned)(*p - '0') < 10; p++) {
    unsigned digit = (unsigned)(*p - '0');
    d->any = true;
    if (d->sig < 19) {
      d->m = d->m * 10 + digit;
      if (d->m) d->sig++;
      if (fraction) d->exp10--;
    } else {
      if (!fraction) d->exp10++;
      if (digit) d->inexact = true;
    }
  }
  return p;
}

/* Fast path (Clinger): a decimal with at most 19 significant digits whose
 * mantissa m fits in 53 bits and whose power of ten is at most 22 is exactly
 * m * 10^k or m / 10^-k, one correctly rounded IEEE operation. Everything else
 * (long mantissas, large exponents, hex, inf, nan) goes to strtod. */
const char *mtl_parse_double(const char *s, const char *e, double *out) {
  const char *p = s;
  bool neg = false;
  if (p < e && (*p == '-' || *p == '+')) {
    neg = *p == '-';
    p++;
  }
  decimal d = {0, 0, 0, false, false};
  p = read_digits(p, e, false, &d);
  if (p < e && *p == '.') p = read_digits(p + 1, e, true, &d);
  if (!d.any) return parse_double_slow(s, e, out);
  if (p < e && (*p == 'e' || *p == 'E')) {
    const char *q = p + 1;
    bool eneg = false;
    if (q < e && (*q == '-' || *q == '+')) {
      eneg = *q == '-';
      q++;
    }
    if (q < e && (unsigned)(*q - '0') < 10) {
      int x = 0;
      for (; q < e && (unsigned)(*q - '0') < 10; q++)
        if (x < 100000) x = x * 10 + (*q - '0');
      d.exp10 += eneg ? -x : x;
      p = q;
    } /* else the 'e' is not part of the number: stop before it, as strtod does */
  }
  if (p < e && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
    return parse_double_slow(s, e, out); /* 0x1p3 and the like */
  double v;
  if (d.m == 0) v = 0.0;
  else if (d.inexact || d.m > ((uint64_t)1 << 53) || d.exp10 > 22 || d.exp10 < -22)
    return parse_double_slow(s, e, out);
  else v = d.exp10 >= 0 ? (double)d.m * pow10_exact[d.exp10] : (double)d.m / pow10_exact[-d.exp10];
  *out = neg ? -v : v;
  return p;
}

int64_t mtl_hash_string(const char *s, size_t n) {
  uint64_t h = XXH3_64bits(s, n);
  int64_t id;
  memcpy(&id, &h, sizeof id);
  return id;
}

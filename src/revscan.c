/* The revision scanner: a Lua lexer for the few forms a plain revision file uses, and a
 * grammar that accepts only statements whose effect at load time it knows exactly
 * (assignments of string literals, nil and tables of strings to the four declared globals,
 * and function definitions, which run nothing). Any doubt returns 0: the loader then runs
 * the file, which gives today's answer or today's error. */
#include "revscan.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "revfile.h"

enum { T_EOF, T_NAME, T_STRING, T_NUMBER, T_PUNCT, T_BAD };

typedef struct lexer {
  const char *p, *end, *start; /* start: the chunk's first byte, for line numbers */
  char *out;                   /* where decoded strings go (NULL: only skip them) */
  int kind;
  const char *tok; /* the token's first byte */
  size_t tlen;
  const char *str; /* a decoded string (when out was set) */
} lexer;

/* Character classes by table: the lexer asks for each byte of a file, most of them inside
 * the function bodies it skips (a third of a cold load's instructions were here). */
enum { C_SPACE = 1, C_ALPHA = 2, C_DIGIT = 4, C_XDIGIT = 8 };
static const unsigned char cls[256] = {
    [' '] = C_SPACE,
    ['\t'] = C_SPACE,
    ['\n'] = C_SPACE,
    ['\r'] = C_SPACE,
    ['\f'] = C_SPACE,
    ['\v'] = C_SPACE,
    ['0' ... '9'] = C_DIGIT | C_XDIGIT,
    ['a' ... 'f'] = C_ALPHA | C_XDIGIT,
    ['A' ... 'F'] = C_ALPHA | C_XDIGIT,
    ['g' ... 'z'] = C_ALPHA,
    ['G' ... 'Z'] = C_ALPHA,
    ['_'] = C_ALPHA,
};

static int is_space(int c) {
  return cls[(unsigned char)c] & C_SPACE;
}
static int is_alpha(int c) {
  return cls[(unsigned char)c] & C_ALPHA;
}
static int is_digit(int c) {
  return cls[(unsigned char)c] & C_DIGIT;
}
static int is_xdigit(int c) {
  return cls[(unsigned char)c] & C_XDIGIT;
}
static int hexval(int c) {
  return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* At '[': the level of a long bracket `[==[` (>= 0), -1 for a plain '[', -2 for `[=`
 * without its second '[' (Lua's "invalid long string delimiter"). */
static int long_open(const char *p, const char *end) {
  const char *q = p + 1;
  while (q < end && *q == '=') q++;
  if (q < end && *q == '[') return (int)(q - p - 1);
  return q == p + 1 ? -1 : -2;
}

/* Skips a long bracket of `level` opened at p; the byte after its close, or NULL when it
 * never closes. */
static const char *long_skip(const char *p, const char *end, int level) {
  for (p += level + 2; p < end; p++) {
    if (*p != ']') continue;
    const char *q = p + 1;
    while (q < end && *q == '=') q++;
    if (q < end && *q == ']' && q - p - 1 == level) return q + 1;
  }
  return NULL;
}

/* Lua's line end inside a string: \n, \r, \n\r or \r\n count as one. */
static const char *newline(const char *p, const char *end) {
  char c = *p++;
  if (p < end && (*p == '\n' || *p == '\r') && *p != c) p++;
  return p;
}

/* A short string opened at lx->p. With lx->out it is decoded as Lua does, and any escape
 * this does not decode (\z, \u{...}) or a NUL in the value (which the loader's C strings
 * would cut) gives 0; without, it is skipped. 1 when well formed. */
static int short_string(lexer *lx) {
  char q = *lx->p++, *o = lx->out;
  const char *p = lx->p, *end = lx->end;
  lx->str = o;
  while (p < end && *p != q) {
    int c = (unsigned char)*p;
    if (c == '\n' || c == '\r') return 0; /* unfinished string */
    if (c != '\\') {
      if (o) *o++ = (char)c;
      p++;
      continue;
    }
    if (++p == end) return 0;
    c = (unsigned char)*p;
    if (!o) { /* skipping: the escape's validity is the compiler's business */
      if (c == '\n' || c == '\r')
        p = newline(p, end);
      else if (c == 'z')
        for (p++; p < end && is_space((unsigned char)*p);) p++;
      else
        p++;
      continue;
    }
    int v;
    switch (c) {
      case 'a':
        v = '\a';
        p++;
        break;
      case 'b':
        v = '\b';
        p++;
        break;
      case 'f':
        v = '\f';
        p++;
        break;
      case 'n':
        v = '\n';
        p++;
        break;
      case 'r':
        v = '\r';
        p++;
        break;
      case 't':
        v = '\t';
        p++;
        break;
      case 'v':
        v = '\v';
        p++;
        break;
      case '\\':
      case '"':
      case '\'':
        v = c;
        p++;
        break;
      case '\n':
      case '\r':
        v = '\n';
        p = newline(p, end);
        break;
      case 'x':
        if (end - p < 3 || !is_xdigit((unsigned char)p[1]) || !is_xdigit((unsigned char)p[2]))
          return 0;
        v = hexval((unsigned char)p[1]) * 16 + hexval((unsigned char)p[2]);
        p += 3;
        break;
      default:
        if (!is_digit(c)) return 0; /* \z, \u{...} and what Lua refuses */
        v = 0;
        for (int i = 0; i < 3 && p < end && is_digit((unsigned char)*p); i++, p++)
          v = v * 10 + (*p - '0');
        if (v > 255) return 0;
    }
    if (v == 0) return 0;
    *o++ = (char)v;
  }
  if (p == end) return 0;
  lx->p = p + 1;
  if (o) {
    *o++ = '\0';
    lx->out = o;
  }
  return 1;
}

/* Skips white space and comments; 0 on a long comment that never closes. */
static int skip_space(lexer *lx) {
  const char *p = lx->p, *end = lx->end;
  for (;;) {
    while (p < end && is_space((unsigned char)*p)) p++;
    if (end - p < 2 || p[0] != '-' || p[1] != '-') break;
    p += 2;
    int level = p < end && *p == '[' ? long_open(p, end) : -1;
    if (level >= 0) {
      if (!(p = long_skip(p, end, level))) return 0;
    } else {
      while (p < end && *p != '\n' && *p != '\r') p++;
    }
  }
  lx->p = p;
  return 1;
}

/* The next token into lx->kind/tok/tlen. */
static void next(lexer *lx) {
  if (!skip_space(lx)) {
    lx->kind = T_BAD;
    return;
  }
  const char *p = lx->p, *end = lx->end;
  lx->tok = p;
  lx->tlen = 1;
  if (p == end) {
    lx->kind = T_EOF;
    return;
  }
  int c = (unsigned char)*p;
  if (is_alpha(c)) {
    while (p < end && cls[(unsigned char)*p] & (C_ALPHA | C_DIGIT)) p++;
    lx->kind = T_NAME;
  } else if (c == '"' || c == '\'') {
    lx->kind = short_string(lx) ? T_STRING : T_BAD;
    lx->tlen = (size_t)(lx->p - lx->tok);
    return;
  } else if (is_digit(c) || (c == '.' && end - p > 1 && is_digit((unsigned char)p[1]))) {
    /* Lua's read_numeral: hex digits, dots and signed exponents, never touching a letter. */
    const char *expo = c == '0' && end - p > 1 && (p[1] | 0x20) == 'x' ? "Pp" : "Ee";
    if (*expo == 'P') p += 2;
    while (p < end) {
      if (*p == expo[0] || *p == expo[1]) {
        p++;
        if (p < end && (*p == '-' || *p == '+')) p++;
      } else if (is_xdigit((unsigned char)*p) || *p == '.') {
        p++;
      } else {
        break;
      }
    }
    lx->kind = p < end && is_alpha((unsigned char)*p) ? T_BAD : T_NUMBER;
  } else if (c == '[' && long_open(p, end) != -1) {
    int level = long_open(p, end);
    lx->kind = level >= 0 && (p = long_skip(p, end, level)) ? T_STRING : T_BAD;
    if (lx->kind == T_STRING) lx->str = NULL; /* a long string is never a value here */
  } else if (c == '=' && end - p > 1 && p[1] == '=') {
    p += 2;
    lx->kind = T_PUNCT;
  } else if (c < 0x80 && strchr("+-*/%^#&~|<>=(){}[];:,.", c)) {
    p++;
    lx->kind = T_PUNCT;
  } else {
    lx->kind = T_BAD; /* a byte Lua's lexer refuses (NUL, non-ASCII, '@', '\\' ...) */
  }
  lx->tlen = (size_t)(p - lx->tok);
  lx->p = p;
}

static int is(const lexer *lx, int kind, const char *text) {
  size_t n = strlen(text);
  return lx->kind == kind && lx->tlen == n && !memcmp(lx->tok, text, n);
}

static int line_of(const lexer *lx) {
  int line = 1;
  for (const char *p = lx->start; p < lx->tok;)
    if (*p == '\n' || *p == '\r') {
      p = newline(p, lx->tok);
      line++;
    } else {
      p++;
    }
  return line;
}

/* +1 for a name that opens a block `end` or `until` closes (do, if, function, repeat), -1
 * for one that closes it, else 0; by length first, as most names in a body are none of
 * them (the body is skipped a token at a time, and this runs for each name in it). */
static int block_delta(const char *t, size_t n) {
  switch (n) {
    case 2: return (t[0] == 'd' && t[1] == 'o') || (t[0] == 'i' && t[1] == 'f');
    case 3: return -!memcmp(t, "end", 3);
    case 5: return -!memcmp(t, "until", 5);
    case 6: return !memcmp(t, "repeat", 6);
    case 8: return !memcmp(t, "function", 8);
    default: return 0;
  }
}

/* After `function NAME (`: skips the body to its `end`, counting the blocks that `end` and
 * `until` close (do, if, function, repeat; while and for open theirs with do). 1 when it
 * closes. */
static int skip_function(lexer *lx) {
  lx->out = NULL;
  long depth = 1;
  while (depth > 0) {
    next(lx);
    if (lx->kind == T_EOF || lx->kind == T_BAD) return 0;
    if (lx->kind == T_NAME) depth += block_delta(lx->tok, lx->tlen);
  }
  return 1;
}

/* A value: nil, a string, or a table of strings (`{}` included, `,` or `;` between and
 * after). Fills list[0..*n); 1 when it is one of those. */
static int value(lexer *lx, const char **list, size_t *n, int *is_string) {
  *n = 0;
  *is_string = 0;
  next(lx);
  if (is(lx, T_NAME, "nil")) return 1;
  if (lx->kind == T_STRING) {
    if (!lx->str) return 0;
    list[(*n)++] = lx->str;
    *is_string = 1;
    return 1;
  }
  if (!is(lx, T_PUNCT, "{")) return 0;
  for (;;) {
    next(lx);
    if (is(lx, T_PUNCT, "}")) return 1;
    if (lx->kind != T_STRING || !lx->str || *n == LM_REVSCAN_MAX) return 0;
    list[(*n)++] = lx->str;
    next(lx);
    if (is(lx, T_PUNCT, "}")) return 1;
    if (!is(lx, T_PUNCT, ",") && !is(lx, T_PUNCT, ";")) return 0;
  }
}

/* The six names luamigrate.env records, and _ENV, whose redefinition changes what every
 * later global means. */
static int reserved(const char *s, size_t n) {
  static const char *const names[] = {"revision", "down_revision", "branch_labels", "depends_on",
                                      "upgrade",  "downgrade",     "_ENV"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strlen(names[i]) == n && !memcmp(names[i], s, n)) return 1;
  return 0;
}

/* The statements of the chunk; 1 when all are plain and the file declares what the
 * loader requires. */
static int scan(lexer *lx, lm_revscan *r) {
  enum { REV, DOWN, LABELS, DEPS, UP, DOWNGRADE, N };
  static const char *const globals[] = {"revision", "down_revision", "branch_labels", "depends_on"};
  int seen[N] = {0};
  const char *id[LM_REVSCAN_MAX];
  for (;;) {
    next(lx);
    if (lx->kind == T_EOF) break;
    if (is(lx, T_PUNCT, ";")) continue;
    if (lx->kind != T_NAME) return 0;
    int local = is(lx, T_NAME, "local");
    if (local) next(lx);
    if (is(lx, T_NAME, "function")) {
      if (!r->body_line) r->body_line = line_of(lx);
      next(lx);
      if (lx->kind != T_NAME) return 0;
      int up = is(lx, T_NAME, "upgrade"), down = is(lx, T_NAME, "downgrade");
      if (local ? reserved(lx->tok, lx->tlen) : !up && !down && reserved(lx->tok, lx->tlen))
        return 0;
      next(lx);
      if (!is(lx, T_PUNCT, "(")) return 0;
      char *out = lx->out;
      if (!skip_function(lx)) return 0;
      lx->out = out;
      seen[UP] |= !local && up;
      seen[DOWNGRADE] |= !local && down;
      continue;
    }
    if (local) return 0;
    int g = 0;
    while (g < 4 && !is(lx, T_NAME, globals[g])) g++;
    if (g == 4 || seen[g]) return 0;
    seen[g] = 1;
    next(lx);
    if (!is(lx, T_PUNCT, "=")) return 0;
    int is_string;
    size_t one;
    if (g == REV) {
      if (!value(lx, id, &one, &is_string) || !is_string) return 0;
      r->id = id[0];
    } else if (!value(lx,
                      g == DOWN     ? r->down
                      : g == LABELS ? r->labels
                                    : r->deps,
                      g == DOWN     ? &r->nd
                      : g == LABELS ? &r->nl
                                    : &r->ne,
                      &is_string)) {
      return 0;
    }
  }
  return seen[REV] && seen[DOWN] && seen[UP] && seen[DOWNGRADE];
}

int lm_revscan_read(const char *s, size_t len, lm_revscan *r) {
  memset(r, 0, sizeof *r);
  if (memchr(s, '\0', len)) return 0; /* the loader refuses such a file */
  size_t bom = lm_revfile_bom(s, len);
  /* Decoded strings are never longer than their literals. */
  if (!(r->buf = malloc(len + 1))) return LM_ENOMEM;
  lexer lx = {.p = s + bom, .end = s + len, .start = s + bom, .out = r->buf};
  if (scan(&lx, r)) return 1;
  lm_revscan_free(r);
  return 0;
}

void lm_revscan_free(lm_revscan *r) {
  free(r->buf);
  memset(r, 0, sizeof *r);
}

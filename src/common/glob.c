/* Glob patterns over relative paths (see glob.h).
 *
 * Compiling expands braces into at most SBX_GLOB_MAX_ALTERNATIVES plain
 * patterns and splits each into segments. A path matches when one
 * alternative does; the segments are run as an NFA over pattern positions
 * (a "**" segment stays put or moves on), so matching costs at most
 * segments x path components segment tests, whatever the pattern. Within a
 * segment, the classic last-star backtracking is linear too. */
#include "glob.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A pattern of SBX_GLOB_MAX_LEN bytes has at most this many segments. */
#define MAX_SEGS (SBX_GLOB_MAX_LEN / 2 + 1)
#define STATE_WORDS ((MAX_SEGS + 1 + 63) / 64)

typedef struct seg
{
  const char *p;
  size_t len;
  bool globstar;
} seg_t;

typedef struct alt
{
  char *text; /* the alternative, segments pointing into it */
  seg_t *segs;
  size_t nsegs;
} alt_t;

struct sbx_glob
{
  size_t nalts;
  alt_t alts[];
};

/* ------------------------------------------------------------ one segment */

/* Decodes one UTF-8 character. Invalid bytes decode alone, to values no
 * valid character has, so they only ever match themselves. */
static size_t
utf8_next (const char *s, const char *end, uint32_t *cp)
{
  const unsigned char *u = (const unsigned char *) s;
  unsigned c = u[0];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || (size_t) (end - s) < n)
    goto invalid;
  uint32_t v = n == 1 ? c : c & (0x7fu >> n);
  for (size_t i = 1; i < n; i++)
    {
      if ((u[i] & 0xc0) != 0x80)
        goto invalid;
      v = v << 6 | (u[i] & 0x3f);
    }
  *cp = v;
  return n;
invalid:
  *cp = 0x110000 + c;
  return 1;
}

/* Index of the ']' closing the class that opens at P[I], or 0 when the
 * class is not closed within the segment. */
static size_t
class_end (const char *p, size_t i, size_t n)
{
  size_t j = i + 1;
  if (j < n && (p[j] == '!' || p[j] == '^'))
    j++;
  if (j < n && p[j] == ']')
    j++;
  for (; j < n && p[j] != ']'; j++)
    {
      if (p[j] == '/')
        return 0;
      if (p[j] == '\\' && j + 1 < n)
        j++;
    }
  return j < n ? j : 0;
}

/* One character of a class, with its escape. */
static size_t
class_char (const char *p, const char *end, uint32_t *cp)
{
  if (*p == '\\' && p + 1 < end)
    return 1 + utf8_next (p + 1, end, cp);
  return utf8_next (p, end, cp);
}

static bool
class_matches (const char *p, const char *close, uint32_t c)
{
  bool neg = false, hit = false;
  p++;
  if (*p == '!' || *p == '^')
    {
      neg = true;
      p++;
    }
  /* CLOSE comes from class_end, which already took a ']' right after the
     opening as a member. */
  while (p < close)
    {
      uint32_t lo, hi;
      p += class_char (p, close, &lo);
      hi = lo;
      if (p + 1 < close && *p == '-')
        p += 1 + class_char (p + 1, close, &hi);
      if (lo <= c && c <= hi)
        hit = true;
    }
  return hit != neg;
}

/* Whether the pattern element at *P matches the character at S; on success
 * advances *P past the element and returns the length of that character. */
static size_t
match_one (const char **pp, const char *pe, const char *s, const char *se)
{
  const char *p = *pp;
  uint32_t c, want;
  size_t len = utf8_next (s, se, &c);
  switch (*p)
    {
    case '?':
      *pp = p + 1;
      return len;
    case '[':
      {
        size_t close = class_end (p, 0, (size_t) (pe - p));
        if (close == 0)
          break; /* an unclosed '[' is literal here; compile rejects it */
        if (!class_matches (p, p + close, c))
          return 0;
        *pp = p + close + 1;
        return len;
      }
    case '\\':
      if (p + 1 < pe)
        p++;
      break;
    default:
      break;
    }
  size_t plen = utf8_next (p, pe, &want);
  if (want != c)
    return 0;
  *pp = p + plen;
  return len;
}

static bool
match_seg (const char *p, const char *pe, const char *s, const char *se)
{
  const char *star_p = NULL, *star_s = NULL;
  while (s < se)
    {
      if (p < pe && *p == '*')
        {
          while (p < pe && *p == '*')
            p++;
          star_p = p;
          star_s = s;
          continue;
        }
      size_t n = p < pe ? match_one (&p, pe, s, se) : 0;
      if (n)
        {
          s += n;
          continue;
        }
      if (star_p == NULL)
        return false;
      /* Let the last star swallow one more character and retry from there. */
      uint32_t c;
      star_s += utf8_next (star_s, se, &c);
      s = star_s;
      p = star_p;
    }
  while (p < pe && *p == '*')
    p++;
  return p == pe;
}

bool
sbx_glob_match_segment (const char *pat, const char *name)
{
  return match_seg (pat, pat + strlen (pat), name, name + strlen (name));
}

/* ------------------------------------------------------------ compiling */

typedef struct expansion
{
  char *items[SBX_GLOB_MAX_ALTERNATIVES];
  size_t n;
} expansion_t;

/* Index of the last byte of the token at P[I]: an escape pair and a closed
 * class are single tokens (braces and commas in them are literal). */
static size_t
token_end (const char *p, size_t i, size_t n)
{
  if (p[i] == '\\' && i + 1 < n)
    return i + 1;
  if (p[i] == '[')
    {
      size_t e = class_end (p, i, n);
      if (e)
        return e;
    }
  return i;
}

static int
add_alternative (expansion_t *out, const char *p, size_t n, const char **error)
{
  if (out->n == SBX_GLOB_MAX_ALTERNATIVES)
    {
      *error = "too many alternatives in glob pattern (at most 256 after expanding braces)";
      return -1;
    }
  if ((out->items[out->n] = strndup (p, n)) == NULL)
    {
      *error = "out of memory";
      return -1;
    }
  out->n++;
  return 0;
}

/* Expands the first top-level brace group of P, recursing on each result. */
static int
expand (const char *p, size_t n, expansion_t *out, const char **error)
{
  size_t open, close = 0, depth = 0, i;
  for (open = 0; open < n && p[open] != '{' && p[open] != '}'; open++)
    open = token_end (p, open, n);
  if (open == n)
    return add_alternative (out, p, n, error);
  if (p[open] == '}')
    {
      *error = "unbalanced '}' in glob pattern";
      return -1;
    }
  for (i = open + 1; i < n && close == 0; i++)
    {
      if (p[i] == '{')
        depth++;
      else if (p[i] == '}' && depth == 0)
        close = i;
      else if (p[i] == '}')
        depth--;
      else
        i = token_end (p, i, n);
    }
  if (close == 0)
    {
      *error = "unbalanced '{' in glob pattern";
      return -1;
    }
  char *buf = malloc (n);
  if (buf == NULL)
    {
      *error = "out of memory";
      return -1;
    }
  /* Each top-level option between the braces: prefix + option + suffix. */
  int r = 0;
  size_t start = open + 1;
  depth = 0;
  for (i = open + 1; i <= close && r == 0; i++)
    {
      if (i == close || (p[i] == ',' && depth == 0))
        {
          size_t len = open;
          memcpy (buf, p, open);
          memcpy (buf + len, p + start, i - start);
          len += i - start;
          memcpy (buf + len, p + close + 1, n - close - 1);
          len += n - close - 1;
          r = expand (buf, len, out, error);
          start = i + 1;
        }
      else if (p[i] == '{')
        depth++;
      else if (p[i] == '}')
        depth--;
      else
        i = token_end (p, i, n);
    }
  free (buf);
  return r;
}

/* Splits one expanded alternative into segments: empty ones vanish and runs
 * of "**" collapse into one. */
static int
split_alternative (alt_t *a, char *text, const char **error)
{
  size_t n = strlen (text), count = 1;
  for (size_t i = 0; i < n; i++)
    count += text[i] == '/';
  a->text = text;
  a->nsegs = 0;
  if ((a->segs = calloc (count, sizeof *a->segs)) == NULL)
    {
      *error = "out of memory";
      return -1;
    }
  for (char *s = text; *s;)
    {
      char *e = strchrnul (s, '/');
      size_t len = (size_t) (e - s);
      bool last = *e == '\0';
      *e = '\0';
      bool globstar = len == 2 && s[0] == '*' && s[1] == '*';
      for (size_t i = 0; i < len; i++)
        {
          if (s[i] == '[' && class_end (s, i, len) == 0)
            {
              *error = "unbalanced '[' in glob pattern";
              return -1;
            }
          i = token_end (s, i, len);
        }
      if (len > 0 && !(globstar && a->nsegs > 0 && a->segs[a->nsegs - 1].globstar))
        a->segs[a->nsegs++] = (seg_t){ s, len, globstar };
      if (last)
        break;
      s = e + 1;
    }
  return 0;
}

void
sbx_glob_free (sbx_glob_t *g)
{
  if (g == NULL)
    return;
  for (size_t i = 0; i < g->nalts; i++)
    {
      free (g->alts[i].text);
      free (g->alts[i].segs);
    }
  free (g);
}

int
sbx_glob_compile (const char *pattern, sbx_glob_t **out, const char **error)
{
  *out = NULL;
  size_t n = strlen (pattern);
  if (n > SBX_GLOB_MAX_LEN)
    {
      *error = "glob pattern too long (at most 4096 bytes)";
      return -1;
    }
  for (;;)
    {
      if (pattern[0] == '/')
        pattern++;
      else if (pattern[0] == '.' && pattern[1] == '/')
        pattern += 2;
      else
        break;
    }
  expansion_t ex = { .n = 0 };
  int r = expand (pattern, strlen (pattern), &ex, error);
  sbx_glob_t *g = r == 0 ? calloc (1, sizeof *g + ex.n * sizeof (alt_t)) : NULL;
  if (r == 0 && g == NULL)
    {
      *error = "out of memory";
      r = -1;
    }
  size_t used = 0;
  for (; r == 0 && used < ex.n; used++)
    {
      r = split_alternative (&g->alts[used], ex.items[used], error);
      g->nalts = used + 1;
    }
  /* Items not handed over to G yet are freed here; G frees the rest. */
  for (size_t i = used; i < ex.n; i++)
    free (ex.items[i]);
  if (r < 0)
    {
      sbx_glob_free (g);
      return -1;
    }
  *out = g;
  return 0;
}

/* ------------------------------------------------------------ matching */

typedef struct states
{
  uint64_t w[STATE_WORDS];
} states_t;

static bool
has (const states_t *s, size_t i)
{
  return s->w[i / 64] >> (i % 64) & 1;
}

static void
set (states_t *s, size_t i)
{
  s->w[i / 64] |= (uint64_t) 1 << (i % 64);
}

/* A "**" may match no segment at all, so being before it is also being
 * after it. Segments are visited in order, so chains propagate. */
static void
close_states (const alt_t *a, states_t *s)
{
  for (size_t i = 0; i < a->nsegs; i++)
    if (has (s, i) && a->segs[i].globstar)
      set (s, i + 1);
}

/* Runs alternative A over the segments of PATH. With BELOW, whether a
 * longer path could still match; otherwise whether PATH matches. */
static bool
alt_run (const alt_t *a, const char *path, bool below)
{
  size_t words = (a->nsegs + 1 + 63) / 64;
  states_t cur = { { 0 } }, next;
  set (&cur, 0);
  close_states (a, &cur);
  for (const char *s = path; *s;)
    {
      const char *e = strchrnul (s, '/');
      if (e > s)
        {
          bool any = false;
          memset (&next, 0, words * sizeof next.w[0]);
          for (size_t i = 0; i < a->nsegs; i++)
            {
              if (!has (&cur, i))
                continue;
              const seg_t *g = &a->segs[i];
              if (g->globstar)
                set (&next, i);
              else if (match_seg (g->p, g->p + g->len, s, e))
                set (&next, i + 1);
              else
                continue;
              any = true;
            }
          if (!any)
            return false;
          close_states (a, &next);
          memcpy (&cur, &next, words * sizeof cur.w[0]);
        }
      s = *e ? e + 1 : e;
    }
  if (!below)
    return has (&cur, a->nsegs);
  for (size_t i = 0; i < a->nsegs; i++)
    if (has (&cur, i))
      return true;
  return false;
}

bool
sbx_glob_match (const sbx_glob_t *g, const char *relpath)
{
  for (size_t i = 0; i < g->nalts; i++)
    if (alt_run (&g->alts[i], relpath, false))
      return true;
  return false;
}

bool
sbx_glob_could_match_below (const sbx_glob_t *g, const char *reldir)
{
  for (size_t i = 0; i < g->nalts; i++)
    if (alt_run (&g->alts[i], reldir, true))
      return true;
  return false;
}

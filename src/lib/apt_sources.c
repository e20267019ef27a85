/* apt source lists -> a mirror debootstrap can use. */
#include "apt_sources.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Next whitespace-separated word of [*P, END); false at the end. The range
 * may span a deb822 field's continuation lines: newlines separate words and
 * comment lines within it are skipped. */
static bool
next_word (const char **p, const char *end, const char **w, size_t *wl)
{
  const char *s = *p;
  for (;;)
    {
      while (s < end && (is_space (*s) || *s == '\n'))
        s++;
      if (s < end && s > *p && *s == '#' && s[-1] == '\n')
        {
          while (s < end && *s != '\n')
            s++;
          continue;
        }
      break;
    }
  if (s == end)
    return false;
  const char *e = s;
  while (e < end && !is_space (*e) && *e != '\n')
    e++;
  *w = s;
  *wl = e - s;
  *p = e;
  return true;
}

static bool
word_is (const char *w, size_t wl, const char *s)
{
  return wl == strlen (s) && memcmp (w, s, wl) == 0;
}

static bool
usable_uri (const char *w, size_t wl)
{
  static const char *const schemes[] = { "http://", "https://", "file:/" };
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    {
      size_t sl = strlen (schemes[i]);
      if (wl > sl && strncasecmp (w, schemes[i], sl) == 0)
        return true;
    }
  return false;
}

static int
copy_uri (const char *w, size_t wl, char **uri)
{
  while (wl > 1 && w[wl - 1] == '/')
    wl--;
  *uri = strndup (w, wl);
  return *uri ? 1 : -1;
}

static bool
list_has (const char *list, size_t len, const char *word)
{
  const char *p = list, *end = list + len, *w;
  size_t wl;
  while (next_word (&p, end, &w, &wl))
    if (word_is (w, wl, word))
      return true;
  return false;
}

/* One line "deb [opts] URI SUITE COMPONENT...". */
static int
one_line_entry (const char *line, const char *end, const char *suite, char **uri)
{
  const char *hash = memchr (line, '#', end - line);
  if (hash)
    end = hash;
  const char *p = line, *w, *u;
  size_t wl, ul;
  if (!next_word (&p, end, &w, &wl) || !word_is (w, wl, "deb"))
    {
      /* "deb[arch=amd64]" is not valid apt syntax either; anything else
       * (deb-src, rpm, garbage) is not for us. */
      return 0;
    }
  while (p < end && is_space (*p))
    p++;
  if (p < end && *p == '[')
    {
      const char *close = memchr (p, ']', end - p);
      if (close == NULL)
        return 0;
      /* An entry apt would skip is skipped here too. */
      const char *opts = p + 1;
      size_t ol = close - opts;
      const char *q = opts;
      while (next_word (&q, opts + ol, &w, &wl))
        if (wl >= 8 && strncmp (w, "enabled=", 8) == 0 && !word_is (w + 8, wl - 8, "yes"))
          return 0;
      p = close + 1;
    }
  if (!next_word (&p, end, &u, &ul) || !next_word (&p, end, &w, &wl))
    return 0;
  if (!word_is (w, wl, suite) || !usable_uri (u, ul))
    return 0;
  return copy_uri (u, ul, uri);
}

int
sbx_apt_mirror_one_line (const char *text, const char *suite, char **uri)
{
  *uri = NULL;
  const char *p = text;
  while (*p)
    {
      const char *nl = strchr (p, '\n');
      const char *end = nl ? nl : p + strlen (p);
      int r = one_line_entry (p, end, suite, uri);
      if (r != 0)
        return r;
      p = nl ? nl + 1 : end;
    }
  return 0;
}

/* The fields of one deb822 stanza that matter here; each value points into
 * the text and may span continuation lines, so it is scanned as a list of
 * words over [start, end). */
struct stanza
{
  const char *types, *types_end;
  const char *uris, *uris_end;
  const char *suites, *suites_end;
  const char *enabled, *enabled_end;
};

static int
stanza_check (const struct stanza *s, const char *suite, char **uri)
{
  if (s->types == NULL || s->uris == NULL || s->suites == NULL)
    return 0;
  if (!list_has (s->types, s->types_end - s->types, "deb"))
    return 0;
  if (s->enabled)
    {
      const char *p = s->enabled, *w;
      size_t wl;
      if (next_word (&p, s->enabled_end, &w, &wl) && !(wl == 3 && strncasecmp (w, "yes", 3) == 0))
        return 0;
    }
  if (!list_has (s->suites, s->suites_end - s->suites, suite))
    return 0;
  const char *p = s->uris, *w;
  size_t wl;
  while (next_word (&p, s->uris_end, &w, &wl))
    if (usable_uri (w, wl))
      return copy_uri (w, wl, uri);
  return 0;
}

int
sbx_apt_mirror_deb822 (const char *text, const char *suite, char **uri)
{
  *uri = NULL;
  struct stanza s = { 0 };
  /* The value being extended by continuation lines, if it is one we keep. */
  const char **cur_end = NULL;
  const char *p = text;
  for (;;)
    {
      const char *nl = strchr (p, '\n');
      const char *end = nl ? nl : p + strlen (p);
      const char *q = p;
      while (q < end && is_space (*q))
        q++;
      if (q == end) /* blank line or end of text: the stanza is complete */
        {
          int r = stanza_check (&s, suite, uri);
          if (r != 0)
            return r;
          memset (&s, 0, sizeof s);
          cur_end = NULL;
        }
      else if (*p == '#')
        ; /* comments may sit inside a stanza without ending it */
      else if (is_space (*p))
        {
          if (cur_end)
            *cur_end = end;
        }
      else
        {
          const char *colon = memchr (p, ':', end - p);
          cur_end = NULL;
          if (colon)
            {
              size_t nl_ = colon - p;
              const char **start = NULL;
              if (nl_ == 5 && strncasecmp (p, "Types", 5) == 0)
                start = &s.types, cur_end = &s.types_end;
              else if (nl_ == 4 && strncasecmp (p, "URIs", 4) == 0)
                start = &s.uris, cur_end = &s.uris_end;
              else if (nl_ == 6 && strncasecmp (p, "Suites", 6) == 0)
                start = &s.suites, cur_end = &s.suites_end;
              else if (nl_ == 7 && strncasecmp (p, "Enabled", 7) == 0)
                start = &s.enabled, cur_end = &s.enabled_end;
              if (start)
                {
                  *start = colon + 1;
                  *cur_end = end;
                }
            }
        }
      if (nl == NULL)
        break;
      p = nl + 1;
    }
  return 0;
}

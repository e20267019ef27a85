/* Unit tests for the glob matcher (src/common/glob.c). */
#include "glob.h"
#include "tap.h"

static sbx_glob_t *
compile (const char *pattern)
{
  sbx_glob_t *g = NULL;
  const char *error = NULL;
  if (sbx_glob_compile (pattern, &g, &error) < 0)
    diag ("compiling '%s' failed: %s", pattern, error);
  return g;
}

/* Whether PATTERN matches PATH equals WANT. */
static void
check (const char *pattern, const char *path, bool want)
{
  sbx_glob_t *g = compile (pattern);
  ok (g && sbx_glob_match (g, path) == want, "'%s' %s '%s'", pattern,
      want ? "matches" : "does not match", path);
  sbx_glob_free (g);
}

static void
check_below (const char *pattern, const char *dir, bool want)
{
  sbx_glob_t *g = compile (pattern);
  ok (g && sbx_glob_could_match_below (g, dir) == want, "'%s' %s below '%s'", pattern,
      want ? "could match" : "cannot match", dir);
  sbx_glob_free (g);
}

static void
check_invalid (const char *pattern, const char *why)
{
  sbx_glob_t *g = (sbx_glob_t *) 1;
  const char *error = NULL;
  int r = sbx_glob_compile (pattern, &g, &error);
  ok (r == -1 && g == NULL && error && strstr (error, why), "'%.40s' is invalid (%s)", pattern,
      error ? error : "no error");
}

static void
test_star (void)
{
  check ("*.c", "main.c", true);
  check ("*.c", "src/main.c", false); /* '*' stays within a segment */
  check ("src/*.c", "src/main.c", true);
  check ("src/*.c", "src/a/main.c", false);
  check ("*", "x", true);
  check ("*", "", false);
  check ("a*b*c", "aXXbYYc", true);
  check ("a*b*c", "aXXbYY", false);
  check ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false);
  check ("**a", "xxa", true);       /* '**' inside a segment is a plain star */
  check ("*.c", ".hidden.c", true); /* dotfiles are matched by '*' */
  check (".*", ".bashrc", true);
  check ("*", "é", true);
}

static void
test_globstar (void)
{
  check ("**/x", "x", true); /* zero segments */
  check ("**/x", "a/b/x", true);
  check ("**/x", "a/b/y", false);
  check ("src/**/*.c", "src/main.c", true);
  check ("src/**/*.c", "src/a/b/main.c", true);
  check ("src/**/*.c", "lib/a/main.c", false);
  check ("src/**", "src/a/b/c", true);
  check ("src/**", "src", true);
  check ("src/**", "srcx/a", false);
  check ("**", "a/b/c", true);
  check ("a/**/b/**/c", "a/b/c", true);
  check ("a/**/b/**/c", "a/x/b/y/z/c", true);
  check ("a/**/b/**/c", "a/x/y/z/c", false);
  check ("**/**/**/x", "x", true);
  check ("**/*.py", ".venv/lib/site.py", true);
}

static void
test_question_and_classes (void)
{
  check ("?.c", "a.c", true);
  check ("?.c", "ab.c", false);
  check ("a?c", "a/c", false); /* '?' does not match '/' */
  check ("?", "é", true);      /* one character, not one byte */
  check ("[abc].txt", "b.txt", true);
  check ("[abc].txt", "d.txt", false);
  check ("[a-c]x", "bx", true);
  check ("[a-c]x", "dx", false);
  check ("[!a-c]x", "dx", true);
  check ("[!a-c]x", "ax", false);
  check ("[^a-c]x", "ax", false);
  check ("[]a]", "]", true);
  check ("[!]]", "]", false);
  check ("[!]]", "x", true);
  check ("[a-]", "-", true);
  check ("[0-9][0-9]", "42", true);
  check ("[é]", "é", true);
  check ("[!é]", "é", false);
  check ("*[!é]", "é", false); /* a star never splits a character */
  check ("[\\]]", "]", true);
}

static void
test_braces (void)
{
  check ("*.{c,h}", "x.c", true);
  check ("*.{c,h}", "x.h", true);
  check ("*.{c,h}", "x.o", false);
  check ("{src,lib}/**/*.c", "lib/a/x.c", true);
  check ("{a,b{c,d}}x", "bdx", true);
  check ("{a,b{c,d}}x", "ax", true);
  check ("{a,b{c,d}}x", "bx", false);
  check ("x{,.bak}", "x", true);
  check ("x{,.bak}", "x.bak", true);
  check ("[{]a", "{a", true); /* braces in a class are literal */
  check ("a{b}c", "abc", true);
}

static void
test_escapes (void)
{
  check ("\\*", "*", true);
  check ("\\*", "x", false);
  check ("\\?", "?", true);
  check ("\\[a]", "[a]", true);
  check ("\\{a,b\\}", "{a,b}", true);
  check ("a\\", "a\\", true); /* a trailing backslash is literal */
}

static void
test_leading (void)
{
  check ("/src/*.c", "src/x.c", true);
  check ("./src/*.c", "src/x.c", true);
  check ("src//x.c", "src/x.c", true);
}

static void
test_could_match_below (void)
{
  check_below ("src/**/*.c", "src", true);
  check_below ("src/**/*.c", "docs", false);
  check_below ("src/**/*.c", "", true);
  check_below ("src/**/*.c", "src/a/b", true);
  check_below ("src/*.c", "src", true);
  check_below ("src/*.c", "src/a", false);
  check_below ("*.c", "", true);
  check_below ("*.c", "a", false);
  check_below ("**/*.c", "a/b/c", true);
  check_below ("{src,lib}/x", "lib", true);
  check_below ("{src,lib}/x", "bin", false);
  check_below ("s*/x", "src", true);
}

static void
test_invalid (void)
{
  check_invalid ("{a,b", "unbalanced '{'");
  check_invalid ("a}", "unbalanced '}'");
  check_invalid ("[abc", "unbalanced '['");
  check_invalid ("x/[a/b]", "unbalanced '['");
  check_invalid ("{a,{b,c}", "unbalanced '{'");

  /* 3^5 = 243 alternatives are fine, 3^6 = 729 are too many. */
  sbx_glob_t *g = compile ("{a,b,c}{a,b,c}{a,b,c}{a,b,c}{a,b,c}");
  ok (g != NULL, "243 alternatives compile");
  ok (g && sbx_glob_match (g, "cabca"), "and match");
  sbx_glob_free (g);
  check_invalid ("{a,b,c}{a,b,c}{a,b,c}{a,b,c}{a,b,c}{a,b,c}", "too many alternatives");
  /* Exponential expansion is cut off early rather than computed. */
  char big[SBX_GLOB_MAX_LEN + 2];
  for (size_t i = 0; i + 5 <= 4000; i += 5)
    memcpy (big + i, "{,a}x", 5);
  big[4000] = '\0';
  check_invalid (big, "too many alternatives");

  memset (big, 'a', SBX_GLOB_MAX_LEN + 1); /* one byte over */
  big[SBX_GLOB_MAX_LEN + 1] = '\0';
  check_invalid (big, "too long");
}

static void
test_deep (void)
{
  /* Many globstars and segments stay fast (NFA, no backtracking). */
  char pat[SBX_GLOB_MAX_LEN], path[8192];
  size_t n = 0;
  for (int i = 0; i < 500; i++)
    n += (size_t) snprintf (pat + n, sizeof pat - n, "**/a/");
  snprintf (pat + n, sizeof pat - n, "b");
  n = 0;
  for (int i = 0; i < 1000; i++)
    n += (size_t) snprintf (path + n, sizeof path - n, "a/");
  snprintf (path + n, sizeof path - n, "c");
  check (pat, path, false);
}

static void
test_segment (void)
{
  ok (sbx_glob_match_segment ("*.txt", "notes.txt"), "segment: *.txt");
  ok (!sbx_glob_match_segment ("*.txt", "notes.md"), "segment: *.txt vs .md");
  ok (sbx_glob_match_segment ("[ab]?", "bz"), "segment: class and ?");
  ok (sbx_glob_match_segment ("[ab", "[ab"), "segment: an unclosed '[' is literal");
  ok (sbx_glob_match_segment ("", ""), "segment: empty matches empty");
}

int
main (void)
{
  test_star ();
  test_globstar ();
  test_question_and_classes ();
  test_braces ();
  test_escapes ();
  test_leading ();
  test_could_match_below ();
  test_invalid ();
  test_deep ();
  test_segment ();
  return done_testing ();
}

/* File operations with the seed's semantics, against a real sandbox. */
#include "helpers.h"

static void
write_file (sbx_sandbox_t *sb, const char *path, const char *content)
{
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, path, content, strlen (content), &err), &err, path);
}

static void
test_write_read (sbx_sandbox_t *sb)
{
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "deep/er/hello.txt", "one\ntwo\nthree\n", 14, &err), &err,
            "write creates parent directories");
  is_str (run (sb, "cat /workspace/deep/er/hello.txt", NULL), "one\ntwo\nthree\n",
          "relative paths land in the work dir");

  char *text = NULL;
  err = NULL;
  if (check_ok (sbx_read (sb, "deep/er/hello.txt", 0, 0, &text, &err), &err, "read"))
    is_str (text, "     1\tone\n     2\ttwo\n     3\tthree\n", "lines numbered %%6d<TAB>");
  free (text);
  err = NULL;
  if (check_ok (sbx_read (sb, "/workspace/deep/er/hello.txt", 1, 1, &text, &err), &err,
                "read with offset and limit"))
    is_str (text, "     2\ttwo\n... more lines follow; read on with offset=2\n",
            "one line, numbered from the offset, and a note that more remain");
  free (text);

  write_file (sb, "empty.txt", "");
  err = NULL;
  if (check_ok (sbx_read (sb, "empty.txt", 0, 0, &text, &err), &err, "an empty file is readable"))
    is_str (text, "", "and reads as nothing (not as missing)");
  free (text);
  bool exists = false;
  err = NULL;
  check_ok (sbx_exists (sb, "empty.txt", &exists, &err), &err, "exists on an empty file");
  ok (exists, "an empty file exists");
  err = NULL;
  check_ok (sbx_exists (sb, "nope.txt", &exists, &err), &err, "exists on a missing file");
  ok (!exists, "a missing file does not");

  write_file (sb, "noeol.txt", "a\nb");
  err = NULL;
  if (check_ok (sbx_read (sb, "noeol.txt", 0, 0, &text, &err), &err,
                "read a file without final newline"))
    is_str (text, "     1\ta\n     2\tb\n", "last line without newline");
  free (text);

  /* Binary content round-trips byte for byte. */
  unsigned char bin[4096];
  for (size_t i = 0; i < sizeof bin; i++)
    bin[i] = (unsigned char) (i * 7);
  err = NULL;
  check_ok (sbx_write (sb, "bin/data.bin", bin, sizeof bin, &err), &err, "write binary");
  void *data = NULL;
  size_t len = 0;
  err = NULL;
  if (check_ok (sbx_read_bytes (sb, "bin/data.bin", &data, &len, &err), &err, "read_bytes"))
    ok (len == sizeof bin && memcmp (data, bin, len) == 0, "binary round trip is exact");
  free (data);
  err = NULL;
  check_fails (sbx_read (sb, "bin/data.bin", 0, 0, &text, &err), &err, SBX_E_NOT_TEXT, "binary",
               "read refuses a binary file");

  /* A big file: only what is asked for comes back. */
  run (sb, "seq 1 200000 > big.txt", NULL);
  err = NULL;
  if (check_ok (sbx_read (sb, "big.txt", 199990, 5, &text, &err), &err, "read deep in a big file"))
    is_str (text,
            "199991\t199991\n199992\t199992\n199993\t199993\n199994\t199994\n199995\t199995\n"
            "... more lines follow; read on with offset=199995\n",
            "numbers wider than six digits still line up");
  free (text);

  /* Overwrite keeps the mode. */
  run (sb, "printf '#!/bin/sh\\necho v1\\n' > run.sh; chmod 750 run.sh", NULL);
  write_file (sb, "run.sh", "#!/bin/sh\necho v2\n");
  is_str (run (sb, "stat -c %a run.sh; ./run.sh", NULL), "750\nv2\n", "overwrite keeps the mode");
}

static void
test_atomic_write (sbx_sandbox_t *sb)
{
  /* A reader polling the file while we rewrite it 1 MiB at a time must only
   * ever see a whole old or whole new version. It says which version it
   * sees when that changes, so that it is seen at work before the writes
   * and after them. */
  size_t n = 1 << 20;
  char *a = malloc (n), *b = malloc (n);
  memset (a, 'a', n);
  memset (b, 'b', n);
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "atomic.txt", a, n, &err), &err, "a 1 MiB file");
  char *id = NULL;
  if (!check_ok (sbx_bg_start (sb,
                               "last=; while true; do s=$(wc -c < atomic.txt); "
                               "m=$(tr -d a < atomic.txt | tr -d b | wc -c); "
                               "[ \"$s\" = 1048576 ] && [ \"$m\" = 0 ] || echo BAD $s; "
                               "c=$(head -c 1 atomic.txt); "
                               "[ \"$c\" = \"$last\" ] || { echo \"$c\"; last=$c; }; done",
                               NULL, &id, &err),
                 &err, "a reader in a loop"))
    {
      free (a);
      free (b);
      return;
    }
  static char seen[65536];
  seen[0] = '\0';
  bg_output_until (sb, id, "a\n", seen, sizeof seen);
  is_str (seen, "a\n", "the reader sees the first version");
  bool all_written = true;
  for (int i = 0; i < 20; i++)
    {
      all_written &= sbx_write (sb, "atomic.txt", i % 2 ? b : a, n, &err) == 0;
      sbx_error_free (err), err = NULL;
    }
  ok (all_written, "20 rewrites, the last with the second version");
  ok (bg_output_until (sb, id, "b\n", seen, sizeof seen), "the reader sees the last version");
  if (!ok (strstr (seen, "BAD") == NULL, "a reader never sees a partial file"))
    diag ("the reader saw: %s", seen);
  check_ok (sbx_bg_kill (sb, id, &err), &err, "the reader stopped");
  free (id);
  is_str (run (sb, "ls -a /workspace | grep -c sbx-", NULL), "0\n", "no temporary files left");
  free (a);
  free (b);
}

static void
test_edit (sbx_sandbox_t *sb)
{
  /* CRLF, invalid UTF-8 and no final newline must survive an edit untouched. */
  const char orig[] = "x = 1\r\n\xff\xfe raw\r\nx = 1\r\ny = 2";
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "edit.txt", orig, sizeof orig - 1, &err), &err, "a file to edit");
  size_t count = 0;
  err = NULL;
  check_fails (sbx_edit (sb, "edit.txt", "x = 1", "x = 3", false, &count, &err), &err,
               SBX_E_EDIT_AMBIGUOUS, "occurs 2 times", "an ambiguous edit names the count");
  err = NULL;
  check_fails (sbx_edit (sb, "edit.txt", "zzz", "q", false, &count, &err), &err,
               SBX_E_EDIT_NO_MATCH, "not found", "a missing old text is an error");
  err = NULL;
  if (check_ok (sbx_edit (sb, "edit.txt", "y = 2", "y = 20", false, &count, &err), &err,
                "a unique edit"))
    is_int (count, 1, "one occurrence replaced");
  err = NULL;
  if (check_ok (sbx_edit (sb, "edit.txt", "x = 1", "x = 3", true, &count, &err), &err,
                "replace all"))
    is_int (count, 2, "two occurrences replaced");
  void *data = NULL;
  size_t len = 0;
  const char want[] = "x = 3\r\n\xff\xfe raw\r\nx = 3\r\ny = 20";
  err = NULL;
  if (check_ok (sbx_read_bytes (sb, "edit.txt", &data, &len, &err), &err, "read back"))
    ok (len == sizeof want - 1 && memcmp (data, want, len) == 0,
        "bytes outside the matches are untouched (CRLF, invalid UTF-8, no final newline)");
  free (data);
  err = NULL;
  check_fails (sbx_edit (sb, "missing.txt", "a", "b", false, &count, &err), &err, SBX_E_NOT_FOUND,
               "missing.txt", "editing a missing file");
}

static void
test_ls (sbx_sandbox_t *sb)
{
  run (sb,
       "mkdir -p /tmp/ls/zdir /tmp/ls/adir && printf 12345 > /tmp/ls/b.txt && "
       "printf 1 > /tmp/ls/a.txt && touch /tmp/ls/.hidden",
       NULL);
  sbx_file_list_t list;
  sbx_error_t *err = NULL;
  if (check_ok (sbx_ls (sb, "/tmp/ls", NULL, &list, &err), &err, "ls"))
    {
      const char *want[] = { "adir", "zdir", ".hidden", "a.txt", "b.txt" };
      bool order = list.count == 5;
      for (size_t i = 0; order && i < 5; i++)
        order = strcmp (list.items[i].name, want[i]) == 0;
      ok (order, "directories first, then files, each by name");
      ok (list.count == 5 && list.items[0].is_dir && !list.items[4].is_dir
              && list.items[4].size == 5 && strcmp (list.items[4].path, "/tmp/ls/b.txt") == 0,
          "entries carry kind, size and absolute path");
    }
  sbx_file_list_free (&list);
  err = NULL;
  check_fails (sbx_ls (sb, "/tmp/ls/a.txt", NULL, &list, &err), &err, SBX_E_NOT_DIR, NULL,
               "ls of a file is an error");
  err = NULL;
  check_fails (sbx_ls (sb, "/nonexistent", NULL, &list, &err), &err, SBX_E_NOT_FOUND,
               "/nonexistent", "ls of a missing directory names it");
  char *text = NULL;
  err = NULL;
  check_fails (sbx_read (sb, "/tmp/ls", 0, 0, &text, &err), &err, SBX_E_IS_DIR, NULL,
               "read of a directory is an error");
  err = NULL;
  check_fails (sbx_read (sb, "/tmp/ls/none.txt", 0, 0, &text, &err), &err, SBX_E_NOT_FOUND,
               "none.txt", "read of a missing file names it");
  err = NULL;
  check_fails (sbx_write (sb, "/tmp/ls/adir", "x", 1, &err), &err, SBX_E_IS_DIR, NULL,
               "write over a directory is refused");
}

static char *
paths (const sbx_file_list_t *l)
{
  static char buf[4096];
  buf[0] = '\0';
  for (size_t i = 0; i < l->count; i++)
    {
      strncat (buf, l->items[i].path, sizeof buf - strlen (buf) - 2);
      strcat (buf, " ");
    }
  return buf;
}

static void
check_glob (sbx_sandbox_t *sb, const char *pattern, const char *path, const char *want)
{
  sbx_file_list_t list;
  sbx_error_t *err = NULL;
  if (check_ok (sbx_glob (sb, pattern, path, NULL, &list, &err), &err, "glob runs"))
    is_str (paths (&list), want, "glob '%s' in %s", pattern, path ? path : "(workdir)");
  sbx_file_list_free (&list);
}

static void
test_glob (sbx_sandbox_t *sb)
{
  run (sb,
       "mkdir -p /g/src/sub /g/docs && cd /g && touch top.py src/a.py src/b.c src/sub/c.py "
       "docs/x.md src/.hid.py",
       NULL);
  check_glob (sb, "*.py", "/g", "/g/top.py ");
  check_glob (sb, "**/*.py", "/g", "/g/src/.hid.py /g/src/a.py /g/src/sub/c.py /g/top.py ");
  check_glob (sb, "src/*.{c,py}", "/g", "/g/src/.hid.py /g/src/a.py /g/src/b.c ");
  check_glob (sb, "src/?.c", "/g", "/g/src/b.c ");
  check_glob (sb, "src/[ab].*", "/g", "/g/src/a.py /g/src/b.c ");
  check_glob (sb, "**/top.py", "/g", "/g/top.py ");
  check_glob (sb, "/g/docs/*", NULL, "/g/docs/x.md ");
  check_glob (sb, "*.none", "/g", "");
  sbx_file_list_t list;
  sbx_error_t *err = NULL;
  check_fails (sbx_glob (sb, "src/{a,b", "/g", NULL, &list, &err), &err, SBX_E_PATTERN, NULL,
               "an unbalanced brace is an invalid pattern");
  err = NULL;
  check_fails (sbx_glob (sb, "*", "/nonexistent", NULL, &list, &err), &err, SBX_E_NOT_FOUND, NULL,
               "glob in a missing directory");
}

static char *
matches (const sbx_grep_result_t *r)
{
  static char buf[4096];
  buf[0] = '\0';
  for (size_t i = 0; i < r->count; i++)
    snprintf (buf + strlen (buf), sizeof buf - strlen (buf), "%s:%llu:%s\n", r->items[i].path,
              (unsigned long long) r->items[i].line_number, r->items[i].line);
  return buf;
}

static void
check_grep (sbx_sandbox_t *sb, const char *pattern, const sbx_grep_opts_t *o, const char *want,
            const char *what)
{
  sbx_grep_result_t res;
  sbx_error_t *err = NULL;
  if (check_ok (sbx_grep (sb, pattern, o, &res, &err), &err, "grep runs"))
    is_str (matches (&res), want, "%s", what);
  sbx_grep_result_free (&res);
}

static void
test_grep (sbx_sandbox_t *sb)
{
  run (sb,
       "mkdir -p /r/sub /r/.git && cd /r && printf 'def foo():\\n    return 1\\n' > a.py && "
       "printf \"it's here\\nnot\\n\" > sub/b.txt && printf 'def hidden():\\n' > .h.py && "
       "printf 'def inside_git():\\n' > .git/c.py && printf 'def x\\0bin' > bin.py",
       NULL);
  sbx_grep_opts_t o = { .path = "/r" };
  check_grep (sb, "def\\s+\\w+\\(", &o, "/r/a.py:1:def foo():\n",
              "PCRE2 classes work; hidden files and binaries are skipped");
  o.include_hidden = true;
  check_grep (sb, "^def", &o,
              "/r/.git/c.py:1:def inside_git():\n/r/.h.py:1:def hidden():\n"
              "/r/a.py:1:def foo():\n",
              "hidden files on request");
  o = (sbx_grep_opts_t){ .path = "/r", .glob = "*.txt" };
  check_grep (sb, "it's", &o, "/r/sub/b.txt:1:it's here\n", "a quote in the pattern, glob filter");
  o = (sbx_grep_opts_t){ .path = "/r/sub/b.txt" };
  check_grep (sb, "^not$", &o, "/r/sub/b.txt:2:not\n", "a single file as the path");
  o = (sbx_grep_opts_t){ .path = "/r", .ignore_case = true };
  check_grep (sb, "DEF FOO", &o, "/r/a.py:1:def foo():\n", "ignore case");
  sbx_grep_result_t res;
  sbx_error_t *err = NULL;
  check_fails (sbx_grep (sb, "foo(", &o, &res, &err), &err, SBX_E_PATTERN, NULL,
               "an invalid regular expression is reported");
  o = (sbx_grep_opts_t){ .path = "/r/none" };
  err = NULL;
  check_fails (sbx_grep (sb, "x", &o, &res, &err), &err, SBX_E_NOT_FOUND, NULL,
               "grep in a missing path");
  /* Catastrophic backtracking is stopped by the match limit, not a hang. */
  run (sb, "python3 -c \"print('a'*5000 + '!')\" > /r/evil.txt", NULL);
  o = (sbx_grep_opts_t){ .path = "/r/evil.txt" };
  double t0 = now_s ();
  err = NULL;
  int r = sbx_grep (sb, "(a+)+$x", &o, &res, &err);
  ok ((r == 0 && res.count == 0) || r == -SBX_E_PATTERN, "a runaway pattern ends (%s)",
      r ? sbx_error_message (err) : "no match");
  ok (now_s () - t0 < 10, "within the match limit's time");
  sbx_error_free (err);
  if (r == 0)
    sbx_grep_result_free (&res);
}

int
main (void)
{
  sbx_sandbox_t *sb = start_sandbox (test_options ());
  if (!ok (sb != NULL, "sandbox started"))
    return done_testing ();
  test_write_read (sb);
  test_atomic_write (sb);
  test_edit (sb);
  test_ls (sb);
  test_glob (sb);
  test_grep (sb);
  remove_sandbox (sb);
  return done_testing ();
}

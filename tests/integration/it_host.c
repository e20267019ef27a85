/* Nothing a sandbox, an image or a racing caller controls is trusted on the
 * host, and failures leave nothing behind: containers that carry sbx's
 * labels without being sbx's, concurrent creates of one name, options that
 * drift on re-use, starts that fail, volumes whose source is missing. */
#include "helpers.h"

#include <errno.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

extern char **environ;

/* What a failed create may leave: a container, a host folder, a mount. */
static void
nothing_left (const char *name, const char *what)
{
  char dir[512];
  snprintf (dir, sizeof dir, "%s/sandboxes/%s", state_root (), name);
  ok (!container_exists (name), "%s: no container left", what);
  ok (!path_exists (dir), "%s: no host folder left", what);
  ok (!mounted_below (dir), "%s: no mount left", what);
}

/* ------------------------------------------------------ foreign containers */

static void
test_foreign_labels (void)
{
  /* A victim folder that a label names, and a container anyone could make
     with sbx's labels (`docker run --label ...`). */
  char victim[] = "/tmp/sbx-victim-XXXXXX";
  if (!ok (mkdtemp (victim) != NULL, "a host folder to protect"))
    return;
  char file[300];
  snprintf (file, sizeof file, "%s/precious", victim);
  FILE *f = fopen (file, "we");
  if (f)
    fclose (f);
  char body[1024], path[256], out[8192];
  snprintf (body, sizeof body,
            "{\"Image\":\"%s\",\"Cmd\":[\"sleep\",\"300\"],\"Labels\":{\"io.sbx.managed\":\"1\","
            "\"io.sbx.named\":\"0\",\"io.sbx.state-dir\":\"%s\",\"io.sbx.workdir\":\"/\"}}",
            test_image (), victim);
  ok (engine ("POST", "/containers/create?name=sbx-foreign-test", body, out, sizeof out) == 0
          && strstr (out, "\"Id\""),
      "a container with sbx's labels, made without sbx");
  ok (engine ("POST", "/containers/sbx-foreign-test/start", NULL, out, sizeof out) == 0 && !out[0],
      "and started (%s)", out);

  sbx_sandbox_info_t *items = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  bool listed = false;
  if (check_ok (sbx_sandbox_list (&items, &n, &err), &err, "list sandboxes"))
    for (size_t i = 0; i < n; i++)
      listed |= strcmp (items[i].id, "sbx-foreign-test") == 0;
  sbx_sandbox_info_list_free (items, n);
  ok (!listed, "it is not listed as a sandbox");
  sbx_sandbox_t *sb = NULL;
  check_fails (sbx_sandbox_open ("sbx-foreign-test", &sb, &err), &err, SBX_E_EXISTS,
               "exists but is not", "opening it fails");
  int status = system ("build/sbx rm sbx-foreign-test >/dev/null 2>&1");
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 125, "`sbx rm` refuses it");
  status = system ("build/sbx stop sbx-foreign-test >/dev/null 2>&1");
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 125, "`sbx stop` refuses it");
  ok (path_exists (file), "the folder its label names is untouched");
  ok (container_exists ("sbx-foreign-test"), "and so is the container");

  /* A named create over it does not take it over either. */
  sbx_options_t *o = test_options ();
  sbx_options_set_name (o, "sbx-foreign-test", NULL);
  sbx_sandbox_new (o, &sb, NULL);
  sbx_options_free (o);
  check_fails (sbx_sandbox_start (sb, &err), &err, SBX_E_EXISTS, "choose another name",
               "a sandbox of that name cannot be made");
  sbx_sandbox_free (sb);
  engine ("DELETE", "/containers/sbx-foreign-test?force=1", NULL, NULL, 0);

  /* An image whose labels name the victim: sbx's sandbox of it is removed
     with its own folder only. */
  snprintf (body, sizeof body, "{\"Image\":\"%s\",\"Cmd\":[\"true\"]}", test_image ());
  engine ("POST", "/containers/create?name=sbx-label-src", body, NULL, 0);
  snprintf (path, sizeof path,
            "/commit?container=sbx-label-src&repo=sbx-test/labelled&tag=1&changes=LABEL%%20"
            "io.sbx.state-dir=%s%%0ALABEL%%20io.sbx.named=0",
            victim);
  ok (engine ("POST", path, NULL, out, sizeof out) == 0 && strstr (out, "\"Id\""),
      "an image that carries sbx's labels, naming the folder");
  engine ("DELETE", "/containers/sbx-label-src?force=1", NULL, NULL, 0);
  o = sbx_options_new ();
  sbx_options_set_image (o, "sbx-test/labelled:1", NULL);
  sb = start_sandbox (o);
  if (ok (sb != NULL, "a sandbox of that image"))
    {
      char dir[512];
      snprintf (dir, sizeof dir, "%s/sandboxes/%s", state_root (), sbx_sandbox_id (sb));
      ok (path_exists (dir), "has its own host folder");
      check_ok (sbx_sandbox_remove (sb, &err), &err, "and is removed");
      ok (!path_exists (dir), "with its own folder");
      ok (path_exists (file), "the folder the image's label names is untouched");
      sbx_sandbox_free (sb);
    }
  engine ("DELETE", "/images/sbx-test/labelled:1?force=1", NULL, NULL, 0);
  unlink (file);
  rmdir (victim);

  check_fails (sbx_sandbox_open ("..", &sb, &err), &err, SBX_E_INVALID, "invalid sandbox id",
               "an id that is a path is refused");
}

/* ------------------------------------------------------ races */

static pid_t
spawn_cli (char *const argv[], const char *out)
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  if (posix_spawn (&pid, argv[0], &fa, NULL, argv, environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy (&fa);
  return pid;
}

static void
test_concurrent_create (void)
{
  enum
  {
    N = 6
  };
  char *argv[] = { (char *) "build/sbx",
                   (char *) "create",
                   (char *) "--name",
                   (char *) "sbx-race-test",
                   (char *) "--image",
                   (char *) test_image (),
                   NULL };
  pid_t pids[N];
  char outs[N][64];
  for (int i = 0; i < N; i++)
    {
      snprintf (outs[i], sizeof outs[i], "/tmp/sbx-race-%d.out", i);
      pids[i] = spawn_cli (argv, outs[i]);
    }
  int succeeded = 0;
  for (int i = 0; i < N; i++)
    {
      int status = 0;
      if (pids[i] > 0)
        waitpid (pids[i], &status, 0);
      char line[128] = "";
      FILE *f = fopen (outs[i], "re");
      if (f && fgets (line, sizeof line, f) == NULL)
        line[0] = '\0';
      if (f)
        fclose (f);
      unlink (outs[i]);
      succeeded += WIFEXITED (status) && WEXITSTATUS (status) == 0
                   && strcmp (line, "sbx-race-test\n") == 0;
    }
  is_int (succeeded, N, "%d concurrent `sbx create --name X`: all made or re-used it", N);
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  if (check_ok (sbx_sandbox_open ("sbx-race-test", &sb, &err), &err, "it opens"))
    {
      is_str (run (sb, "echo works", NULL), "works\n", "and works");
      remove_sandbox (sb);
    }
}

/* ------------------------------------------------------ option drift */

static void
test_option_drift (void)
{
  sbx_options_t *o = test_options ();
  sbx_options_set_name (o, "sbx-drift-test", NULL);
  sbx_options_set_network (o, "bridge", NULL);
  sbx_options_set_memory (o, 256 << 20, NULL);
  sbx_sandbox_t *sb = start_sandbox (o);
  if (!ok (sb != NULL, "a named sandbox on the bridge network, 256 MiB"))
    return;
  sbx_sandbox_free (sb);
  sbx_error_t *err = NULL;

  o = test_options ();
  sbx_options_set_name (o, "sbx-drift-test", NULL);
  sbx_sandbox_new (o, &sb, NULL);
  sbx_options_free (o);
  check_fails (sbx_sandbox_start (sb, &err), &err, SBX_E_EXISTS,
               "sandbox sbx-drift-test exists with other options: network bridge (asked: none), "
               "memory 256 MiB (asked: 1 GiB)",
               "asked again with the defaults: refused, naming each difference");
  sbx_sandbox_free (sb);

  o = test_options ();
  sbx_options_set_name (o, "sbx-drift-test", NULL);
  sbx_options_set_network (o, "bridge", NULL);
  sbx_options_set_memory (o, 256 << 20, NULL);
  sb = start_sandbox (o);
  if (ok (sb != NULL, "asked with the same options: re-used"))
    sbx_sandbox_free (sb);

  o = test_options ();
  sbx_options_set_name (o, "sbx-drift-test", NULL);
  sbx_options_set_replace (o, true);
  sb = start_sandbox (o);
  if (ok (sb != NULL, "with replace: made again"))
    {
      is_str (run (sb, "ls /sys/class/net", NULL), "lo\n", "now without a network");
      remove_sandbox (sb);
    }
  FILE *p = popen ("build/sbx create --name sbx-drift-test2 --network bridge --image "
                   "sbx/base:bookworm >/dev/null 2>&1 && build/sbx create --name sbx-drift-test2 "
                   "--image sbx/base:bookworm 2>&1; echo \"exit $?\"; build/sbx rm sbx-drift-test2",
                   "r");
  char out[1024] = "";
  size_t n = p ? fread (out, 1, sizeof out - 1, p) : 0;
  out[n] = '\0';
  if (p)
    pclose (p);
  is_str (out,
          "sbx: sandbox sbx-drift-test2 exists with other options: network bridge (asked: none); "
          "use it as it is (the same options), replace it (--replace, sbx_options_set_replace), or "
          "remove it first (`sbx rm sbx-drift-test2`)\nexit 125\n",
          "the CLI says so too");
}

/* ------------------------------------------------------ failures */

static void
test_failed_start (void)
{
  sbx_options_t *o = test_options ();
  sbx_options_set_name (o, "sbx-fail-test", NULL);
  sbx_options_set_network (o, "sbx-no-such-network", NULL);
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  sbx_sandbox_new (o, &sb, NULL);
  sbx_options_free (o);
  int r = sbx_sandbox_start (sb, &err);
  ok (r < 0 && strstr (sbx_error_message (err), "sbx-no-such-network")
          && !strstr (sbx_error_message (err), "does not exist (see"),
      "a start that fails reports the real cause (%s)", sbx_error_message (err));
  sbx_error_free (err), err = NULL;
  sbx_sandbox_free (sb);
  nothing_left ("sbx-fail-test", "a failed start");

  char missing[] = "/tmp/sbx-missing-XXXXXX";
  if (mkdtemp (missing))
    rmdir (missing);
  char spec[128];
  snprintf (spec, sizeof spec, "%s:/data", missing);
  o = test_options ();
  sbx_options_set_name (o, "sbx-fail-test", NULL);
  check_ok (sbx_options_add_volume (o, spec, &err), &err, "a volume whose host path is missing");
  sbx_sandbox_new (o, &sb, NULL);
  sbx_options_free (o);
  check_fails (sbx_sandbox_start (sb, &err), &err, SBX_E_NOT_FOUND, missing,
               "is an error naming the path");
  sbx_sandbox_free (sb);
  ok (!path_exists (missing), "and the path was not made on the host");
  nothing_left ("sbx-fail-test", "a missing volume");
}

/* ------------------------------------------------------ bounded by bytes */

/* Peak memory of a CLI process (KiB). A child forked from this (large)
 * process would carry this process's peak into its own across exec, so a
 * fresh copy of this program (`--peak-of`, see main) starts it and reports
 * its children's peak on stdout. */
static long
child_peak_kib (char *const argv[], int *status)
{
  char *peak_argv[16] = { (char *) "/proc/self/exe", (char *) "--peak-of" };
  for (size_t i = 0; argv[i] && i < 13; i++)
    peak_argv[i + 2] = argv[i];
  char out[] = "/tmp/sbx-peak-XXXXXX";
  int fd = mkstemp (out);
  if (fd < 0)
    return -1;
  close (fd);
  pid_t pid = spawn_cli (peak_argv, out);
  long kib = -1;
  if (pid > 0 && waitpid (pid, status, 0) == pid)
    {
      FILE *f = fopen (out, "re");
      if (f && fscanf (f, "%ld", &kib) != 1)
        kib = -1;
      if (f)
        fclose (f);
    }
  unlink (out);
  return kib;
}

/* `--peak-of CMD...`: runs CMD with stdout to /dev/null and prints its
 * peak resident size in KiB; exits with its status. */
static int
peak_of (char *argv[])
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int status = 0;
  int r = posix_spawn (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0 || waitpid (pid, &status, 0) != pid)
    return 127;
  struct rusage ru;
  getrusage (RUSAGE_CHILDREN, &ru);
  printf ("%ld\n", ru.ru_maxrss);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128;
}

static void
test_bounded_bytes (void)
{
  sbx_sandbox_t *sb = start_sandbox (test_options ());
  if (!ok (sb != NULL, "a sandbox for long paths"))
    return;
  int code = -1;
  run (sb,
       "python3 -c \"import os\n"
       "base = '/workspace/long/' + 'd' * 200 + '/' + 'e' * 200\n"
       "os.makedirs(base)\n"
       "for i in range(100000):\n"
       "    with open(base + '/f%06d' % i + 'x' * 200, 'w') as f:\n"
       "        f.write('x' * 3000 + '\\n' if i < 20000 else '')\"",
       &code);
  is_int (code, 0, "100,000 files with paths of 620 bytes");
  sbx_error_t *err = NULL;
  sbx_file_list_t list;
  long before = max_rss_kib ();
  if (check_ok (sbx_glob (sb, "**", "/workspace/long", NULL, &list, &err), &err, "glob them all"))
    {
      ok (list.truncated && list.count < 100000 && list.total == 100000,
          "cut by bytes (%zu of %zu returned), flagged truncated", list.count, list.total);
      size_t bytes = 0;
      for (size_t i = 0; i < list.count; i++)
        bytes += strlen (list.items[i].path) + strlen (list.items[i].name) + 2
                 + sizeof (sbx_file_info_t);
      ok (bytes <= SBX_DEFAULT_MAX_LIST_BYTES, "within 16 MiB (%zu bytes)", bytes);
    }
  sbx_file_list_free (&list);
  char dir[600];
  snprintf (dir, sizeof dir, "/workspace/long/%0200d/%0200d", 0, 0);
  for (char *p = dir + 16; *p; p++)
    if (*p == '0')
      *p = p < dir + 16 + 200 ? 'd' : 'e';
  if (check_ok (sbx_ls (sb, dir, NULL, &list, &err), &err, "ls the directory"))
    ok (list.truncated && list.count < 100000 && list.total == 100000,
        "cut by bytes too (%zu of %zu)", list.count, list.total);
  sbx_file_list_free (&list);
  sbx_grep_result_t g;
  sbx_grep_opts_t go = { .path = "/workspace/long" };
  if (check_ok (sbx_grep (sb, "xxx", &go, &g, &err), &err, "grep 3000-byte matching lines"))
    ok (g.truncated && g.count < 10000, "cut by bytes (%zu matches)", g.count);
  sbx_grep_result_free (&g);
  long growth = max_rss_kib () - before;
#ifdef __SANITIZE_ADDRESS__
  /* ASan's redzones and its quarantine of freed blocks add to the peak; the
   * plain build holds the real line. */
  long bound = 3 * 48 * 1024;
#else
  long bound = 48 * 1024;
#endif
  ok (growth < bound, "the host's peak memory grew by %ld KiB (under %ld MiB)", growth,
      bound / 1024);

  char *argv[] = { (char *) "build/sbx",
                   (char *) "glob",
                   (char *) sbx_sandbox_id (sb),
                   (char *) "**",
                   (char *) "--path",
                   (char *) "/workspace/long",
                   (char *) "--json",
                   NULL };
  int status = 0;
  long peak = child_peak_kib (argv, &status);
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 0 && peak > 0 && peak < 80 * 1024,
      "`sbx glob --json` over them peaks at %ld KiB (under 80 MiB)", peak);
  remove_sandbox (sb);
}

int
main (int argc, char *argv[])
{
  if (argc > 2 && strcmp (argv[1], "--peak-of") == 0)
    return peak_of (argv + 2);
  test_foreign_labels ();
  test_concurrent_create ();
  test_option_drift ();
  test_failed_start ();
  test_bounded_bytes ();
  return done_testing ();
}

/* Lifecycle: lazy start, explicit start, named re-use, stop, remove, list,
 * and the errors a user meets on the way. */
#include "helpers.h"

#include <sys/stat.h>

static bool
dir_exists (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0;
}

static char *
state_dir_of (const char *id)
{
  static char buf[512];
  snprintf (buf, sizeof buf, "%s/sandboxes/%s", state_root (), id);
  return buf;
}

static bool
listed (const char *id)
{
  sbx_sandbox_info_t *items = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  bool found = false;
  if (sbx_sandbox_list (&items, &n, &err) == 0)
    for (size_t i = 0; i < n; i++)
      found |= strcmp (items[i].id, id) == 0;
  sbx_error_free (err);
  sbx_sandbox_info_list_free (items, n);
  return found;
}

static void
test_lazy (void)
{
  sbx_sandbox_t *sb = NULL;
  sbx_options_t *o = test_options ();
  sbx_error_t *err = NULL;
  check_ok (sbx_sandbox_new (o, &sb, &err), &err, "new sandbox handle");
  sbx_options_free (o);
  ok (sbx_sandbox_id (sb) == NULL, "no container before the first operation");
  ok (!sbx_sandbox_is_alive (sb), "not alive before the first operation");
  err = NULL;
  check_ok (sbx_write (sb, "/workspace/hello.py", "print('Hello from Docker!')\n", 28, &err), &err,
            "the first operation starts it");
  ok (sbx_sandbox_is_alive (sb), "alive after it");
  is_str (sbx_sandbox_image (sb), test_image (), "the sandbox reports its image");
  is_str (run (sb, "python /workspace/hello.py", NULL), "Hello from Docker!\n",
          "the seed's basic example");
  char id[128];
  snprintf (id, sizeof id, "%s", sbx_sandbox_id (sb));
  ok (listed (id), "sbx_sandbox_list shows it");
  ok (dir_exists (state_dir_of (id)), "its host folder exists");
  is_str (run (sb, "ls /.sbx/run", NULL), "agent.sock\n", "its run folder holds only the socket");
  err = NULL;
  check_ok (sbx_sandbox_start (sb, &err), &err, "start on a running sandbox is harmless");
  err = NULL;
  check_ok (sbx_sandbox_stop (sb, &err), &err, "stop");
  ok (!sbx_sandbox_is_alive (sb), "not alive after stop");
  ok (!listed (id), "an unnamed sandbox is removed by stop");
  ok (!dir_exists (state_dir_of (id)), "and its host folder is gone");
  sbx_sandbox_t *again = NULL;
  err = NULL;
  check_fails (sbx_sandbox_open (id, &again, &err), &err, SBX_E_GONE, "does not exist",
               "opening a removed sandbox says it does not exist");
  sbx_sandbox_free (sb);
}

static void
test_named (void)
{
  const char *name = "sbx-test-named";
  sbx_options_t *o = test_options ();
  sbx_options_set_name (o, name, NULL);
  sbx_sandbox_t *sb = start_sandbox (o);
  if (!ok (sb != NULL, "named sandbox started"))
    return;
  is_str (sbx_sandbox_id (sb), name, "its id is its name");
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "keep.txt", "kept", 4, &err), &err, "write a file");
  err = NULL;
  check_ok (sbx_sandbox_stop (sb, &err), &err, "stop a named sandbox");
  ok (listed (name), "a named sandbox is kept by stop");
  ok (!sbx_sandbox_is_alive (sb), "but it is not running");
  sbx_sandbox_free (sb);

  /* Re-used by name: the same container, started again, file still there. */
  o = test_options ();
  sbx_options_set_name (o, name, NULL);
  sb = start_sandbox (o);
  if (ok (sb != NULL, "re-use by name"))
    {
      is_str (run (sb, "cat keep.txt", NULL), "kept", "its files survived");
      sbx_sandbox_t *other = NULL;
      err = NULL;
      if (check_ok (sbx_sandbox_open (name, &other, &err), &err, "open it by id"))
        is_str (run (other, "echo via-open", NULL), "via-open\n", "a second handle works too");
      sbx_sandbox_free (other);
      remove_sandbox (sb);
      ok (!listed (name), "remove deletes a named sandbox");
      ok (!dir_exists (state_dir_of (name)), "and its host folder");
    }
}

static void
test_errors (void)
{
  sbx_error_t *err = NULL;
  sbx_options_t *o = sbx_options_new ();
  check_fails (sbx_options_set_name (o, "bad/name", &err), &err, SBX_E_INVALID, "bad/name",
               "an invalid name is refused");
  err = NULL;
  check_fails (sbx_options_add_volume (o, "relative:/x", &err), &err, SBX_E_INVALID, "relative:/x",
               "a relative host path is refused");
  err = NULL;
  check_fails (sbx_options_add_volume (o, "/tmp:/.sbx/run", &err), &err, SBX_E_INVALID, NULL,
               "mounting over the agent's folder is refused");
  err = NULL;
  check_fails (sbx_options_add_env (o, "1BAD=x", &err), &err, SBX_E_INVALID, "1BAD",
               "an invalid env key is refused");
  err = NULL;
  check_fails (sbx_options_set_network (o, "host", &err), &err, SBX_E_INVALID, "host",
               "host networking is refused");
  err = NULL;
  check_fails (sbx_options_set_workdir (o, "/a/../b", &err), &err, SBX_E_INVALID, NULL,
               "a work dir with .. is refused");
  int64_t bytes = 0;
  err = NULL;
  check_ok (sbx_parse_size ("512m", &bytes, &err), &err, "parse 512m");
  is_int (bytes, 512LL << 20, "512m is 512 MiB");
  err = NULL;
  check_fails (sbx_parse_size ("lots", &bytes, &err), &err, SBX_E_INVALID, "lots", "a bad size");
  sbx_options_free (o);

  o = sbx_options_new ();
  sbx_options_set_image (o, "sbx-test/no-such-image:1", NULL);
  sbx_sandbox_t *sb = NULL;
  sbx_sandbox_new (o, &sb, NULL);
  sbx_options_free (o);
  err = NULL;
  check_fails (sbx_sandbox_start (sb, &err), &err, SBX_E_IMAGE_MISSING, "sbx-test/no-such-image:1",
               "a missing image is reported by name");
  ok (sbx_sandbox_id (sb) == NULL, "the handle names no sandbox after the failed start");
  check_fails (sbx_write (sb, "a", "x", 1, &err), &err, SBX_E_IMAGE_MISSING,
               "sbx-test/no-such-image:1", "a later operation tries again and says the real cause");
  sbx_sandbox_free (sb);

  /* The engine unreachable: the error names the socket. */
  const char *saved = getenv ("DOCKER_HOST");
  setenv ("DOCKER_HOST", "unix:///nonexistent/docker.sock", 1);
  sbx_sandbox_new (NULL, &sb, NULL);
  err = NULL;
  check_fails (sbx_sandbox_start (sb, &err), &err, SBX_E_ENGINE, "/nonexistent/docker.sock",
               "an unreachable engine is named");
  sbx_sandbox_free (sb);
  if (saved)
    setenv ("DOCKER_HOST", saved, 1);
  else
    unsetenv ("DOCKER_HOST");

  /* A sandbox removed behind our back. */
  sb = start_sandbox (test_options ());
  if (ok (sb != NULL, "a sandbox to remove behind a handle's back"))
    {
      sbx_sandbox_t *other = NULL;
      err = NULL;
      check_ok (sbx_sandbox_open (sbx_sandbox_id (sb), &other, &err), &err, "a second handle");
      remove_sandbox (other);
      ok (!listed (sbx_sandbox_id (sb)), "removed through it");
      err = NULL;
      sbx_exec_result_t res;
      check_fails (sbx_exec (sb, "true", NULL, &res, &err), &err, SBX_E_GONE, NULL,
                   "an operation on a removed sandbox says it is gone");
      sbx_sandbox_free (sb);
    }
}

int
main (void)
{
  test_lazy ();
  test_named ();
  test_errors ();
  return done_testing ();
}

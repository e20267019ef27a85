/* Sessions: the session manager against the real engine. Users isolated,
 * workspaces that outlive sessions and managers, idle reaping, limits,
 * racing callers, dead containers, the warm pool, a manager killed in the
 * middle of its work, and ids that try to become paths. */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static char ws_root[] = "/tmp/sbx-it-session-XXXXXX";
static char prefix[64]; /* of this run's managers' names */

/* A manager of this run named NAME, with workspaces unless NO_WS. */
static sbx_manager_t *
manager (const char *name, bool no_ws, double idle, size_t max, size_t per_user, size_t pool)
{
  char full[128];
  snprintf (full, sizeof full, "%s-%s", prefix, name);
  sbx_options_t *o = test_options ();
  sbx_manager_config_t c = { .name = full,
                             .sandbox = o,
                             .workspace_root = no_ws ? NULL : ws_root,
                             .idle_timeout = idle,
                             .max_sessions = max,
                             .max_per_user = per_user,
                             .pool_size = pool };
  sbx_manager_t *m = NULL;
  sbx_error_t *err = NULL;
  if (sbx_manager_new (&c, &m, &err) < 0)
    diag ("cannot make the manager %s: %s", full, sbx_error_message (err));
  sbx_error_free (err);
  sbx_options_free (o);
  return m;
}

static char *
create (sbx_manager_t *m, const char *user)
{
  char *id = NULL;
  sbx_error_t *err = NULL;
  if (sbx_manager_create_session (m, user, &id, &err) < 0)
    diag ("session of %s: %s", user, sbx_error_message (err));
  sbx_error_free (err);
  return id;
}

static sbx_sandbox_t *
session_sandbox (sbx_manager_t *m, const char *id)
{
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  if (id == NULL || sbx_manager_get_session (m, id, &sb, &err) < 0)
    diag ("get session %s: %s", id ? id : "(none)", sbx_error_message (err));
  sbx_error_free (err);
  return sb;
}

/* The output of COMMAND in session ID's sandbox (static buffer), or NULL. */
static const char *
run_in (sbx_manager_t *m, const char *id, const char *command)
{
  sbx_sandbox_t *sb = session_sandbox (m, id);
  const char *out = sb ? run (sb, command, NULL) : NULL;
  sbx_sandbox_free (sb);
  return out;
}

/* Session ID's sandbox name, or its state (STATE): a static buffer, ""
 * when the session is not listed. */
static const char *
listed (sbx_manager_t *m, const char *id, bool state)
{
  static char text[128];
  text[0] = '\0';
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  if (sbx_manager_list (m, &v, &n, &err) == 0)
    for (size_t i = 0; i < n; i++)
      if (strcmp (v[i].id, id) == 0)
        snprintf (text, sizeof text, "%s", state ? v[i].state : v[i].sandbox);
  sbx_error_free (err);
  sbx_session_info_list_free (v, n);
  return text;
}

static const char *
sandbox_of (sbx_manager_t *m, const char *id)
{
  return listed (m, id, false);
}

static const char *
state_of (sbx_manager_t *m, const char *id)
{
  return listed (m, id, true);
}

static size_t
session_count (sbx_manager_t *m)
{
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  if (sbx_manager_list (m, &v, &n, &err) < 0)
    diag ("list: %s", sbx_error_message (err));
  sbx_error_free (err);
  sbx_session_info_list_free (v, n);
  return n;
}

/* The containers the engine holds for manager NAME (of this run). */
static int
containers_of (const char *name)
{
  char path[512], out[65536];
  snprintf (
      path, sizeof path,
      "/containers/json?all=1&filters=%%7B%%22label%%22:%%5B%%22io.sbx.manager=%s-%s%%22%%5D%%7D",
      prefix, name);
  if (engine ("GET", path, NULL, out, sizeof out) < 0)
    return -1;
  int n = 0;
  for (const char *p = out; (p = strstr (p, "\"Id\":")); p++)
    n++;
  return n;
}

/* The files in the manager's records folder KIND ("sessions", "pool"). */
static int
records_in (const char *name, const char *kind)
{
  char dir[512];
  snprintf (dir, sizeof dir, "%s/managers/%s-%s/%s", state_root (), prefix, name, kind);
  DIR *d = opendir (dir);
  int n = 0;
  for (struct dirent *de; d && (de = readdir (d));)
    n += de->d_name[0] != '.';
  if (d)
    closedir (d);
  return d ? n : -1;
}

static bool
host_file_is (const char *user, const char *file, const char *want)
{
  char path[512], buf[256] = "";
  snprintf (path, sizeof path, "%s/%s/workspace/%s", ws_root, user, file);
  FILE *f = fopen (path, "re");
  size_t n = f ? fread (buf, 1, sizeof buf - 1, f) : 0;
  buf[n] = '\0';
  if (f)
    fclose (f);
  if (f && strcmp (buf, want) == 0)
    return true;
  diag ("%s holds '%s', not '%s'", path, f ? buf : "(missing)", want);
  return false;
}

static void
host_write (const char *user, const char *file, const char *text)
{
  char path[512];
  snprintf (path, sizeof path, "%s/%s", ws_root, user);
  mkdir (path, 0700);
  snprintf (path, sizeof path, "%s/%s/workspace", ws_root, user);
  mkdir (path, 0755);
  snprintf (path, sizeof path, "%s/%s/workspace/%s", ws_root, user, file);
  FILE *f = fopen (path, "we");
  if (f)
    {
      fputs (text, f);
      fclose (f);
    }
}

/* Ends every session of M, then frees it. */
static void
finish (sbx_manager_t *m)
{
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  if (m && sbx_manager_list (m, &v, &n, NULL) == 0)
    for (size_t i = 0; i < n; i++)
      sbx_manager_end_session (m, v[i].id, false, NULL);
  sbx_session_info_list_free (v, n);
  sbx_manager_free (m);
}

/* ------------------------------------------------------------------ ids */

static void
test_ids (void)
{
  static const char *const bad[]
      = { "",
          "..",
          "../etc",
          "a/b",
          ".hidden",
          "-x",
          "a b",
          "a\nb",
          "x\\y",
          "%2e%2e",
          "0123456789012345678901234567890123456789012345678901234567890123x" };
  bool all = true;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (sbx_session_id_valid (bad[i]))
      all = false, diag ("'%s' is taken as an id", bad[i]);
  ok (all && !sbx_session_id_valid (NULL), "ids that are not single plain names are refused");
  ok (sbx_session_id_valid ("alice") && sbx_session_id_valid ("user-1.x_Y")
          && sbx_session_id_valid (
              "0123456789012345678901234567890123456789012345678901234567890123"),
      "plain names up to 64 characters are ids");

  sbx_manager_t *m = manager ("ids", false, 0, 0, 0, 0);
  if (!ok (m != NULL, "a manager with a workspace root"))
    return;
  sbx_error_t *err = NULL;
  char *id = NULL;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      int r = sbx_manager_create_session (m, bad[i], &id, &err);
      if (r != -SBX_E_INVALID || !strstr (sbx_error_message (err), "invalid user id"))
        all = false, diag ("user '%s': %s", bad[i], sbx_error_message (err));
      sbx_error_free (err), err = NULL;
    }
  ok (all && id == NULL, "a session for a user id that is not a name is refused");
  sbx_sandbox_t *sb = NULL;
  check_fails (sbx_manager_get_session (m, "../../etc/passwd", &sb, &err), &err, SBX_E_INVALID,
               "invalid session id", "get_session refuses a path for an id");
  check_fails (sbx_manager_get_or_create (m, "../x", "alice", &sb, &err), &err, SBX_E_INVALID,
               "invalid session id", "get_or_create refuses a path for a session id");
  check_fails (sbx_manager_get_or_create (m, "s-ok", "../alice", &sb, &err), &err, SBX_E_INVALID,
               "invalid user id", "and for a user id");
  check_fails (sbx_manager_get_or_create (m, "s-ok", NULL, &sb, &err), &err, SBX_E_INVALID,
               "invalid user id", "and no user at all");
  check_fails (sbx_manager_end_session (m, "x/../../y", true, &err), &err, SBX_E_INVALID,
               "invalid session id", "end_session refuses a path for an id");
  check_fails (sbx_manager_end_session (m, "no-such-session", false, &err), &err, SBX_E_NOT_FOUND,
               "does not exist", "ending an unknown session says so");
  check_fails (sbx_manager_get_session (m, "no-such-session", &sb, &err), &err, SBX_E_NOT_FOUND,
               "does not exist", "getting an unknown session says so");

  /* A user folder that is a symbolic link is not followed. */
  char link[512];
  snprintf (link, sizeof link, "%s/mallory", ws_root);
  ok (symlink ("/etc", link) == 0, "ROOT/mallory is a link to /etc");
  check_fails (sbx_manager_create_session (m, "mallory", &id, &err), &err, SBX_E_IO,
               "is not a folder", "a session for that user is refused");
  ok (!path_exists ("/etc/workspace"), "nothing was made through the link");
  unlink (link);
  snprintf (link, sizeof link, "%s/eve", ws_root);
  mkdir (link, 0700);
  snprintf (link, sizeof link, "%s/eve/workspace", ws_root);
  ok (symlink ("/root", link) == 0, "ROOT/eve/workspace is a link to /root");
  check_fails (sbx_manager_create_session (m, "eve", &id, &err), &err, SBX_E_IO, "is not a folder",
               "a session for that user is refused");
  unlink (link);
  ok (session_count (m) == 0 && containers_of ("ids") == 0,
      "the refused sessions left no record and no container");
  sbx_manager_free (m);

  sbx_manager_config_t c = { .name = "../escape" };
  check_fails (sbx_manager_new (&c, &m, &err), &err, SBX_E_INVALID, "invalid manager name",
               "a manager's name is checked too");
  c = (sbx_manager_config_t){ .workspace_root = "relative/dir" };
  check_fails (sbx_manager_new (&c, &m, &err), &err, SBX_E_NOT_FOUND, "absolute path",
               "a relative workspace root is refused");
  sbx_options_t *o = test_options ();
  sbx_options_set_name (o, "fixed", NULL);
  c = (sbx_manager_config_t){ .sandbox = o };
  check_fails (sbx_manager_new (&c, &m, &err), &err, SBX_E_INVALID, "take no name",
               "sandbox options with a name are refused");
  sbx_options_free (o);
}

/* ---------------------------------------------------------- workspaces */

/* Exit status 0 when a new manager process finds session ID of alice and
 * her file in it. */
static int
child_finds (const char *id, const char *sandbox)
{
  sbx_manager_t *m = manager ("users", false, 0, 0, 0, 0);
  if (m == NULL)
    return 1;
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  int bad = 2;
  if (sbx_manager_list (m, &v, &n, NULL) == 0)
    for (size_t i = 0; i < n; i++)
      if (strcmp (v[i].id, id) == 0 && strcmp (v[i].user, "alice") == 0
          && strcmp (v[i].sandbox, sandbox) == 0 && strcmp (v[i].state, "running") == 0
          && v[i].created > 0 && v[i].last_activity >= v[i].created)
        bad = 0;
  sbx_session_info_list_free (v, n);
  const char *out = run_in (m, id, "cat /workspace/notes.txt");
  if (out == NULL || strcmp (out, "kept\n") != 0)
    bad |= 4;
  sbx_manager_free (m);
  return bad;
}

static void
test_users (void)
{
  sbx_manager_t *m = manager ("users", false, 0, 0, 0, 0);
  if (!ok (m != NULL, "a manager with workspaces"))
    return;
  char *a = create (m, "alice"), *b = create (m, "bob");
  ok (a && b && strcmp (a, b) != 0, "alice and bob each have a session");
  sbx_sandbox_t *sa = session_sandbox (m, a);
  sbx_error_t *err = NULL;
  if (sa)
    check_ok (sbx_write (sa, "/workspace/notes.txt", "kept\n", 5, &err), &err,
              "alice writes a file in her workspace");
  ok (host_file_is ("alice", "notes.txt", "kept\n"), "it is in ROOT/alice/workspace on the host");
  is_str (run_in (m, b, "ls -A /workspace"), "", "bob's workspace does not show it");
  is_str (run_in (m, b, "grep -c alice /proc/self/mountinfo"), "0\n",
          "nothing of alice's is mounted in bob's sandbox");
  is_str (run_in (m, a, "pwd"), "/workspace\n", "the workspace is the work dir");

  /* Across a new manager process. */
  char sandbox[128];
  snprintf (sandbox, sizeof sandbox, "%s", sandbox_of (m, a));
  fflush (stdout);
  pid_t pid = fork ();
  if (pid == 0)
    _exit (child_finds (a, sandbox));
  int status = 0;
  waitpid (pid, &status, 0);
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 0,
      "a new manager process finds alice's session, its sandbox and her file (status %d)",
      WIFEXITED (status) ? WEXITSTATUS (status) : -1);

  /* Across sessions. */
  sbx_sandbox_free (sa);
  check_ok (sbx_manager_end_session (m, a, false, &err), &err, "alice's session ends");
  ok (!container_exists (sandbox), "its container is removed");
  ok (host_file_is ("alice", "notes.txt", "kept\n"), "her workspace is kept");
  sbx_sandbox_t *gone = NULL;
  check_fails (sbx_manager_get_session (m, a, &gone, &err), &err, SBX_E_NOT_FOUND, "does not exist",
               "the ended session is unknown");
  char *a2 = create (m, "alice");
  ok (a2 && strcmp (sandbox_of (m, a2), sandbox) != 0, "her next session has a new sandbox");
  is_str (run_in (m, a2, "cat /workspace/notes.txt"), "kept\n", "and her file");

  /* Purge: refused while another session of the user lives. */
  char *a3 = create (m, "alice");
  check_fails (sbx_manager_end_session (m, a2, true, &err), &err, SBX_E_EXISTS, "in use by session",
               "purging a workspace another session uses is refused");
  ok (host_file_is ("alice", "notes.txt", "kept\n") && session_count (m) == 3,
      "and nothing is lost");
  check_ok (sbx_manager_end_session (m, a3, false, &err), &err, "one of her sessions ends");
  check_ok (sbx_manager_end_session (m, a2, true, &err), &err, "the other ends with a purge");
  char path[512];
  snprintf (path, sizeof path, "%s/alice", ws_root);
  ok (!path_exists (path), "her folder is gone");
  snprintf (path, sizeof path, "%s/bob/workspace", ws_root);
  ok (path_exists (path), "bob's is not");
  finish (m);
  ok (containers_of ("users") == 0 && records_in ("users", "sessions") == 0,
      "no container and no record left");
  free (a), free (a2), free (a3), free (b);
}

/* ---------------------------------------------------------------- idle */

struct long_exec
{
  sbx_sandbox_t *sb;
  int exit_code;
};

static void *
long_exec (void *arg)
{
  struct long_exec *l = arg;
  l->exit_code = -1;
  run (l->sb, "sleep 6", &l->exit_code);
  return NULL;
}

static void
test_idle (void)
{
  sbx_manager_t *m = manager ("idle", false, 3, 0, 0, 0);
  if (!ok (m != NULL, "a manager with an idle timeout of 3 s"))
    return;
  char *id = create (m, "idler");
  sbx_sandbox_t *sb = session_sandbox (m, id);
  char sandbox[128];
  snprintf (sandbox, sizeof sandbox, "%s", sandbox_of (m, id));
  size_t reaped = 99;
  sbx_error_t *err = NULL;
  /* File operations only, through one handle, for longer than the timeout. */
  bool wrote = sb != NULL;
  for (double end = now_s () + 4.5; wrote && now_s () < end; usleep (300000))
    wrote = sbx_write (sb, "/workspace/tick", "t", 1, NULL) == 0;
  ok (wrote, "file operations for 4.5 s");
  check_ok (sbx_manager_cleanup_idle (m, 0, &reaped, &err), &err, "cleanup");
  ok (reaped == 0 && container_exists (sandbox), "a session in use is not idle (reaped %zu)",
      reaped);

  /* A command that runs longer than the timeout, printing nothing. */
  struct long_exec l = { .sb = sb };
  pthread_t t;
  if (sb == NULL || pthread_create (&t, NULL, long_exec, &l) != 0)
    {
      free (id);
      return;
    }
  sleep (5);
  check_ok (sbx_manager_cleanup_idle (m, 0, &reaped, &err), &err, "cleanup during a long command");
  ok (reaped == 0, "a running command keeps its session (reaped %zu)", reaped);
  pthread_join (t, NULL);
  is_int (l.exit_code, 0, "the command finished");
  sbx_sandbox_free (sb);

  usleep (3500000);
  check_ok (sbx_manager_cleanup_idle (m, 0, &reaped, &err), &err, "cleanup after 3.5 s idle");
  ok (reaped == 1, "the idle session is reaped (%zu)", reaped);
  ok (!container_exists (sandbox), "its container is removed");
  ok (host_file_is ("idler", "tick", "t"), "its workspace is kept");
  check_fails (sbx_manager_get_session (m, id, &sb, &err), &err, SBX_E_NOT_FOUND, "does not exist",
               "the session is ended");
  free (id);

  check_fails (sbx_manager_cleanup_idle (m, -1, &reaped, &err), &err, SBX_E_INVALID, "out of range",
               "a negative idle time is refused");

  /* The reaper thread. */
  id = create (m, "idler");
  check_ok (sbx_manager_start_reaper (m, 0.5, &err), &err, "a reaper every 0.5 s");
  bool emptied = false;
  for (double end = now_s () + 15; !emptied && now_s () < end; usleep (200000))
    emptied = session_count (m) == 0;
  ok (emptied, "it ends the idle session");
  sbx_manager_stop_reaper (m);
  free (id);

  /* An explicit time beats the session's own. */
  id = create (m, "idler");
  sleep (2);
  check_ok (sbx_manager_cleanup_idle (m, 60, &reaped, &err), &err, "cleanup, 60 s");
  ok (reaped == 0, "not idle for 60 s");
  check_ok (sbx_manager_cleanup_idle (m, 1, &reaped, &err), &err, "cleanup, 1 s");
  ok (reaped == 1, "idle for 1 s");
  free (id);
  finish (m);
}

/* -------------------------------------------------------------- limits */

static void
test_limits (void)
{
  sbx_manager_t *m = manager ("limits", false, 0, 2, 1, 0);
  if (!ok (m != NULL, "a manager of 2 sessions, 1 per user"))
    return;
  sbx_error_t *err = NULL;
  char *a = create (m, "alice"), *x = NULL;
  ok (a != NULL, "alice's session");
  check_fails (sbx_manager_create_session (m, "alice", &x, &err), &err, SBX_E_LIMIT,
               "user alice has 1 session, the most a user may have", "her second is refused");
  char *b = create (m, "bob");
  ok (b != NULL, "bob's session");
  check_fails (sbx_manager_create_session (m, "carol", &x, &err), &err, SBX_E_LIMIT,
               "the session limit of 2 is reached", "a third session is refused");
  sbx_sandbox_t *sb = NULL;
  check_fails (sbx_manager_get_or_create (m, "new-one", "dave", &sb, &err), &err, SBX_E_LIMIT,
               "the session limit of 2", "get_or_create of a new session is refused too");
  is_str (run_in (m, a, "echo served"), "served\n", "an existing session is served at the limit");
  if (check_ok (sbx_manager_get_or_create (m, a, "alice", &sb, &err), &err,
                "get_or_create of an existing session at the limit"))
    sbx_sandbox_free (sb);
  ok (session_count (m) == 2 && containers_of ("limits") == 2 && x == NULL,
      "the refusals left nothing");
  check_ok (sbx_manager_end_session (m, b, false, &err), &err, "bob's session ends");
  char *c = create (m, "carol");
  ok (c != NULL, "then carol's starts");
  finish (m);

  /* A start that fails leaves nothing. */
  char full[128];
  snprintf (full, sizeof full, "%s-broken", prefix);
  sbx_options_t *o = sbx_options_new ();
  sbx_options_set_image (o, "sbx-test/no-such-image:1", NULL);
  sbx_manager_config_t cfg = { .name = full, .sandbox = o, .workspace_root = ws_root };
  if (check_ok (sbx_manager_new (&cfg, &m, &err), &err, "a manager of an image that is missing"))
    {
      check_fails (sbx_manager_create_session (m, "frank", &x, &err), &err, SBX_E_IMAGE_MISSING,
                   "sbx-test/no-such-image:1", "its session fails to start, saying why");
      ok (session_count (m) == 0 && containers_of ("broken") == 0
              && records_in ("broken", "sessions") == 0,
          "and leaves no record and no container");
      char frank[512];
      snprintf (frank, sizeof frank, "%s/frank", ws_root);
      ok (!path_exists (frank), "nor the folder it made for a new user");
      sbx_manager_free (m);
    }
  sbx_options_free (o);
  free (a), free (b), free (c);
}

/* --------------------------------------------------------- concurrency */

struct racer
{
  sbx_manager_t *m;
  const char *id, *user;
  char sandbox[128];
  int r;
};

static void *
race_get_or_create (void *arg)
{
  struct racer *x = arg;
  sbx_sandbox_t *sb = NULL;
  x->r = sbx_manager_get_or_create (x->m, x->id, x->user, &sb, NULL);
  if (x->r == 0)
    snprintf (x->sandbox, sizeof x->sandbox, "%s", sbx_sandbox_id (sb));
  sbx_sandbox_free (sb);
  return NULL;
}

static void *
race_create (void *arg)
{
  struct racer *x = arg;
  char *id = NULL;
  x->r = sbx_manager_create_session (x->m, x->user, &id, NULL);
  free (id);
  return NULL;
}

static void
test_races (void)
{
  sbx_manager_t *m = manager ("races", false, 0, 5, 0, 0);
  if (!ok (m != NULL, "a manager of 5 sessions"))
    return;
  enum
  {
    N = 8
  };
  struct racer x[N];
  pthread_t t[N];
  for (int i = 0; i < N; i++)
    {
      x[i] = (struct racer){ .m = m, .id = "shared", .user = "alice" };
      pthread_create (&t[i], NULL, race_get_or_create, &x[i]);
    }
  bool same = true;
  for (int i = 0; i < N; i++)
    {
      pthread_join (t[i], NULL);
      same &= x[i].r == 0 && strcmp (x[i].sandbox, x[0].sandbox) == 0;
    }
  ok (same, "8 concurrent get_or_create of one id all get one sandbox (%s)", x[0].sandbox);
  ok (session_count (m) == 1 && containers_of ("races") == 1, "one session, one container");
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  check_fails (sbx_manager_get_or_create (m, "shared", "bob", &sb, &err), &err, SBX_E_PERMISSION,
               "belongs to another user", "another user cannot take the session");

  /* 8 users at once for the 4 places left. */
  static const char *const users[N] = { "u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7" };
  for (int i = 0; i < N; i++)
    {
      x[i] = (struct racer){ .m = m, .user = users[i] };
      pthread_create (&t[i], NULL, race_create, &x[i]);
    }
  int made = 0, refused = 0;
  for (int i = 0; i < N; i++)
    {
      pthread_join (t[i], NULL);
      made += x[i].r == 0;
      refused += x[i].r == -SBX_E_LIMIT;
    }
  ok (made == 4 && refused == 4, "exactly 4 of 8 racing sessions start (%d), 4 are refused (%d)",
      made, refused);
  ok (session_count (m) == 5 && containers_of ("races") == 5, "5 sessions, 5 containers");
  finish (m);
}

/* ------------------------------------------------------ dead containers */

static void
test_dead (void)
{
  sbx_manager_t *m = manager ("dead", false, 0, 0, 0, 0);
  if (!ok (m != NULL, "a manager"))
    return;
  char *id = create (m, "dora");
  is_str (run_in (m, id, "echo data > /workspace/f && cat /workspace/f"), "data\n",
          "a file in the workspace");
  char first[128], path[256];
  snprintf (first, sizeof first, "%s", sandbox_of (m, id));

  snprintf (path, sizeof path, "/containers/%s/kill", first);
  ok (engine ("POST", path, NULL, NULL, 0) == 0, "its container is killed");
  bool exited = false;
  for (double end = now_s () + 10; !exited && now_s () < end; usleep (100000))
    exited = strcmp (state_of (m, id), "stopped") == 0;
  ok (exited, "the session is listed as stopped");
  is_str (run_in (m, id, "cat /workspace/f"), "data\n", "the next use starts it, files kept");
  is_str (sandbox_of (m, id), first, "in the same sandbox");

  snprintf (path, sizeof path, "/containers/%s?force=1", first);
  ok (engine ("DELETE", path, NULL, NULL, 0) == 0, "its container is removed behind sbx's back");
  is_str (state_of (m, id), "dead", "the session is listed as dead");
  is_str (run_in (m, id, "cat /workspace/f"), "data\n", "the next use replaces it, files kept");
  ok (strcmp (sandbox_of (m, id), first) != 0 && sandbox_of (m, id)[0], "in a new sandbox (%s)",
      sandbox_of (m, id));
  is_str (state_of (m, id), "running", "listed as running");
  ok (containers_of ("dead") == 1, "one container");

  /* Shutdown stops every session's container, and a later use starts it. */
  char *id2 = create (m, "dora");
  size_t stopped = 0;
  sbx_error_t *err = NULL;
  check_ok (sbx_manager_shutdown (m, &stopped, &err), &err, "shutdown");
  ok (stopped == 2, "it stopped both sessions (%zu)", stopped);
  ok (strcmp (state_of (m, id), "stopped") == 0 && strcmp (state_of (m, id2), "stopped") == 0,
      "both are stopped");
  is_str (run_in (m, id, "cat /workspace/f"), "data\n", "a later use starts the session again");
  finish (m);
  free (id), free (id2);
}

/* ----------------------------------------------------------------- pool */

/* The names of the warm sandboxes in the pool's records (space-separated). */
static void
pool_names (const char *name, char *buf, size_t cap)
{
  char dir[512];
  snprintf (dir, sizeof dir, "%s/managers/%s-%s/pool", state_root (), prefix, name);
  buf[0] = '\0';
  DIR *d = opendir (dir);
  for (struct dirent *de; d && (de = readdir (d));)
    if (de->d_name[0] != '.')
      {
        size_t len = strlen (buf);
        snprintf (buf + len, cap - len, "%.*s ", (int) strlen (de->d_name) - 5, de->d_name);
      }
  if (d)
    closedir (d);
}

static bool
pool_fills (sbx_manager_t *m, size_t n)
{
  for (double end = now_s () + 60; now_s () < end; usleep (100000))
    if (sbx_manager_pool_ready (m) == n)
      return true;
  return false;
}

static void
test_pool (void)
{
  /* The same question to a cold session and a warm one. */
  static const char probe[] = "pwd; id -u; stat -c '%a %u %g' /workspace; ls -A /workspace; "
                              "cat /workspace/hello; echo new > /workspace/made; hostname | wc -c";
  host_write ("wendy", "hello", "from the host\n");
  sbx_manager_t *cold = manager ("cold", false, 0, 0, 0, 0);
  char *c = cold ? create (cold, "wendy") : NULL;
  char want[4096] = "";
  const char *out = run_in (cold, c, probe);
  snprintf (want, sizeof want, "%s", out ? out : "(none)");
  finish (cold);
  free (c);
  char made[512];
  snprintf (made, sizeof made, "%s/wendy/workspace/made", ws_root);
  unlink (made);

  sbx_manager_t *m = manager ("pool", false, 0, 0, 0, 2);
  if (!ok (m != NULL, "a manager with a pool of 2"))
    return;
  ok (pool_fills (m, 2), "2 warm sandboxes get ready");
  char warm[1024];
  pool_names ("pool", warm, sizeof warm);
  char *w = create (m, "wendy"), *v = create (m, "victor");
  char sw[128], sv[128];
  snprintf (sw, sizeof sw, "%s ", sandbox_of (m, w));
  snprintf (sv, sizeof sv, "%s ", sandbox_of (m, v));
  ok (w && v && strstr (warm, sw) && strstr (warm, sv) && strcmp (sw, sv) != 0,
      "two sessions claim two distinct warm sandboxes (%s, %s of %s)", sw, sv, warm);
  is_str (run_in (m, w, probe), want,
          "a claimed sandbox answers as a cold one does, her "
          "workspace at the work dir");
  ok (host_file_is ("wendy", "made", "new\n"), "what it writes is in her workspace");
  is_str (run_in (m, v, "ls -A /workspace"), "", "victor's shows nothing of hers");
  ok (pool_fills (m, 2), "the pool refills");

  /* Each warm sandbox is handed out once. */
  char seen[1024];
  snprintf (seen, sizeof seen, " %s%s", sw, sv);
  bool distinct = true;
  for (int i = 0; i < 4; i++)
    {
      char *s = create (m, "victor");
      char name[130];
      snprintf (name, sizeof name, " %s ", sandbox_of (m, s));
      distinct &= s && !strstr (seen, name);
      strncat (seen, name + 1, sizeof seen - strlen (seen) - 1);
      if (s)
        sbx_manager_end_session (m, s, false, NULL);
      free (s);
    }
  ok (distinct, "4 more sessions, started and ended, never get a sandbox twice");
  char slots[512];
  snprintf (slots, sizeof slots, "%s/managers/%s-pool/slots/%s", state_root (), prefix, sv);
  slots[strlen (slots) - 1] = '\0';
  sbx_error_t *err = NULL;
  check_ok (sbx_manager_end_session (m, v, false, &err), &err, "victor's session ends");
  ok (!mounted_below (slots) && !path_exists (slots), "its slot is unmounted and removed");

  ok (pool_fills (m, 2), "the pool is full again");
  sbx_manager_free (m);
  ok (records_in ("pool", "pool") == 0 && containers_of ("pool") == 1,
      "freeing the manager removes its warm sandboxes, not the session");
  char slot_dir[512];
  snprintf (slot_dir, sizeof slot_dir, "%s/managers/%s-pool/slots/", state_root (), prefix);
  int mounts = 0;
  FILE *f = fopen ("/proc/self/mountinfo", "re");
  char line[4096];
  while (f && fgets (line, sizeof line, f))
    mounts += strstr (line, slot_dir) != NULL;
  if (f)
    fclose (f);
  ok (mounts == 2, "only the live session's slot stays mounted (%d mounts)", mounts);

  /* An empty pool falls back to a cold start. */
  m = manager ("pool", false, 0, 0, 0, 1);
  char *s1 = create (m, "wendy"), *s2 = create (m, "wendy"), *s3 = create (m, "wendy");
  ok (s1 && s2 && s3, "three sessions at once from a pool of one");
  is_str (run_in (m, s3, "cat /workspace/hello"), "from the host\n", "each sees her workspace");
  finish (m);
  ok (containers_of ("pool") == 0 && !mounted_below (slot_dir), "nothing left");
  free (w), free (v), free (s1), free (s2), free (s3);
}

/* -------------------------------------------------------------- crashes */

/* A manager process that makes a session, says so on READY once its pool
 * is full, then makes sessions until it is killed. */
static void
crash_child (int ready)
{
  sbx_manager_t *m = manager ("crash", false, 0, 0, 0, 1);
  char *done = m ? create (m, "kim") : NULL;
  if (done && pool_fills (m, 1) && write (ready, "y", 1) != 1)
    _exit (1);
  close (ready);
  for (;;)
    free (create (m, "kim"));
}

/* The sandbox a half-made record names ("" when none is found yet). */
static bool
half_made (char *sandbox, size_t cap)
{
  char dir[512];
  snprintf (dir, sizeof dir, "%s/managers/%s-crash/sessions", state_root (), prefix);
  DIR *d = opendir (dir);
  bool found = false;
  for (struct dirent *de; d && !found && (de = readdir (d));)
    {
      char path[1024], buf[4096] = "";
      snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
      FILE *f = de->d_name[0] != '.' ? fopen (path, "re") : NULL;
      size_t n = f ? fread (buf, 1, sizeof buf - 1, f) : 0;
      buf[n] = '\0';
      if (f)
        fclose (f);
      const char *s = strstr (buf, "\"sandbox\":\"");
      if (strstr (buf, "\"creating\":true") && s && strstr (buf, "\"slot\":null"))
        {
          snprintf (sandbox, cap, "%.*s", (int) strcspn (s + 11, "\""), s + 11);
          found = true;
        }
    }
  if (d)
    closedir (d);
  return found;
}

/* Whether every slot mounted is that of one of the sessions V. */
static bool
slots_all_in_use (const sbx_session_info_t *v, size_t n)
{
  char slots[512], line[4096];
  int len = snprintf (slots, sizeof slots, "%s/managers/%s-crash/slots/", state_root (), prefix);
  FILE *f = fopen ("/proc/self/mountinfo", "re");
  bool all = f != NULL;
  while (f && fgets (line, sizeof line, f))
    {
      const char *s = strstr (line, slots);
      if (s == NULL)
        continue;
      s += len;
      bool used = false;
      for (size_t i = 0; i < n; i++)
        used |= strncmp (s, v[i].sandbox, strlen (v[i].sandbox)) == 0
                && strchr (" /", s[strlen (v[i].sandbox)]) != NULL;
      if (!used)
        diag ("a slot of no session is mounted: %s", line);
      all &= used;
    }
  if (f)
    fclose (f);
  return all;
}

static void
test_crash (void)
{
  int ready[2];
  if (pipe (ready) < 0)
    return;
  fflush (stdout);
  pid_t pid = fork ();
  if (pid == 0)
    {
      close (ready[0]);
      crash_child (ready[1]);
      _exit (0);
    }
  close (ready[1]);
  char c = 0;
  ok (read (ready[0], &c, 1) == 1 && c == 'y', "a manager process made a session and its pool");
  close (ready[0]);
  /* Killed while a cold session is being made, with its pool refilling. */
  char sandbox[128] = "";
  bool seen = false;
  for (double end = now_s () + 60; !seen && now_s () < end; usleep (2000))
    seen = records_in ("crash", "pool") == 1 && half_made (sandbox, sizeof sandbox);
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
  ok (seen, "the manager process is killed with a session half made (%s)", sandbox);
  /* What the engine was doing when it died, it finishes. */
  sleep (1);
  ok (records_in ("crash", "pool") == 1, "its warm sandbox's record is left");
  int before = containers_of ("crash");

  sbx_manager_t *m = manager ("crash", false, 0, 0, 0, 0);
  if (!ok (m != NULL, "a new manager on the same state"))
    return;
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  bool all_kims = true;
  if (check_ok (sbx_manager_list (m, &v, &n, &err), &err, "it lists the sessions"))
    for (size_t i = 0; i < n; i++)
      all_kims &= strcmp (v[i].user, "kim") == 0 && strcmp (v[i].state, "running") == 0
                  && container_exists (v[i].sandbox);
  ok (n >= 2 && all_kims, "every session made before the crash is found, running (%zu)", n);
  ok (!container_exists (sandbox), "the half-made session's container is gone");
  ok (records_in ("crash", "pool") == 0, "the dead process's warm sandbox record is gone");
  ok (containers_of ("crash") == (int) n,
      "only the sessions' containers are left (%d of %d before)", containers_of ("crash"), before);
  ok (slots_all_in_use (v, n), "the only slots mounted are the found sessions'");
  is_str (v && n ? run_in (m, v[0].id, "echo alive") : NULL, "alive\n",
          "the found sessions are served");
  sbx_session_info_list_free (v, n);
  finish (m);
}

/* -------------------------------------------------------------- attacks */

/* The record of session ID of the manager NAME, rewritten by F. */
static bool
record_edit (const char *name, const char *id, const char *from, const char *to)
{
  char path[512], buf[8192] = "", out[8192];
  snprintf (path, sizeof path, "%s/managers/%s-%s/sessions/%s.json", state_root (), prefix, name,
            id);
  FILE *f = fopen (path, "re");
  size_t n = f ? fread (buf, 1, sizeof buf - 1, f) : 0;
  if (f)
    fclose (f);
  buf[n] = '\0';
  char *at = strstr (buf, from);
  if (at == NULL)
    return false;
  snprintf (out, sizeof out, "%.*s%s%s", (int) (at - buf), buf, to, at + strlen (from));
  f = fopen (path, "we");
  bool ok = f && fputs (out, f) >= 0;
  if (f)
    ok = fclose (f) == 0 && ok;
  return ok;
}

static void
test_attacks (void)
{
  sbx_manager_t *m = manager ("attack", false, 0, 0, 0, 0);
  sbx_manager_t *m2 = manager ("attack2", false, 0, 0, 0, 0);
  if (!ok (m && m2, "two managers on one workspace root"))
    return;
  sbx_error_t *err = NULL;
  char victim[] = "/tmp/sbx-it-victim-XXXXXX", path[600];
  if (mkdtemp (victim) == NULL)
    return;
  snprintf (path, sizeof path, "%s/keep.txt", victim);
  FILE *f = fopen (path, "we");
  if (f)
    fputs ("host data\n", f), fclose (f);

  /* Symbolic links a sandbox makes in its workspace are not followed by a purge. */
  char *a = create (m, "ivy");
  char cmd[2048];
  snprintf (cmd, sizeof cmd,
            "ln -s %s /workspace/dir-link; ln -s %s /workspace/file-link; "
            "mkdir -p /workspace/d; ln -s / /workspace/d/root",
            victim, path);
  run_in (m, a, cmd);
  check_ok (sbx_manager_end_session (m, a, true, &err), &err,
            "a workspace full of links is purged");
  ok (path_exists (path), "the links' targets on the host are untouched");
  char ivy[512];
  snprintf (ivy, sizeof ivy, "%s/ivy", ws_root);
  ok (!path_exists (ivy), "and the user's folder is gone");
  free (a);

  /* A purge is refused while another manager's session uses the workspace. */
  a = create (m, "jo");
  char *b = create (m2, "jo");
  run_in (m2, b, "echo live > /workspace/live.txt");
  check_fails (sbx_manager_end_session (m, a, true, &err), &err, SBX_E_EXISTS, "in use by session",
               "a purge with a session of another manager running is refused");
  ok (host_file_is ("jo", "live.txt", "live\n"), "and the running session's files are kept");
  check_ok (sbx_manager_end_session (m2, b, false, &err), &err, "that session ends");
  check_ok (sbx_manager_end_session (m, a, true, &err), &err, "then the purge goes through");
  free (a), free (b);

  /* A user folder replaced by a link is not followed when a session is revived. */
  a = create (m, "kit");
  char sandbox[128], kit[512], link_target[600];
  snprintf (sandbox, sizeof sandbox, "%s", sandbox_of (m, a));
  snprintf (kit, sizeof kit, "%s/kit", ws_root);
  snprintf (link_target, sizeof link_target, "%s/workspace", victim);
  mkdir (link_target, 0755);
  snprintf (cmd, sizeof cmd, "docker rm -f %s >/dev/null 2>&1 && rm -rf %s && ln -s %s %s", sandbox,
            kit, victim, kit);
  ok (system (cmd) == 0, "kit's container is removed and her folder made a link to a host folder");
  sbx_sandbox_t *sb = NULL;
  check_fails (sbx_manager_get_session (m, a, &sb, &err), &err, SBX_E_IO, "symbolic link",
               "reviving the session refuses the link");
  sbx_sandbox_free (sb);
  check_fails (sbx_manager_end_session (m, a, true, &err), &err, SBX_E_IO, "symbolic link",
               "and a purge refuses it too");
  ok (path_exists (path) && path_exists (link_target), "the host folder is untouched");
  unlink (kit);
  check_ok (sbx_manager_end_session (m, a, false, &err), &err, "the session ends");
  free (a);

  /* The same with the container only stopped: get_session starts it only
     after checking the folder again. */
  a = create (m, "max");
  snprintf (sandbox, sizeof sandbox, "%s", sandbox_of (m, a));
  char maxdir[512];
  snprintf (maxdir, sizeof maxdir, "%s/max", ws_root);
  snprintf (cmd, sizeof cmd, "docker stop -t 1 %s >/dev/null 2>&1 && rm -rf %s && ln -s %s %s",
            sandbox, maxdir, victim, maxdir);
  ok (system (cmd) == 0, "max's container is stopped and her folder made a link");
  check_fails (sbx_manager_get_session (m, a, &sb, &err), &err, SBX_E_IO, "symbolic link",
               "getting the stopped session refuses the link");
  unlink (maxdir);
  check_ok (sbx_manager_end_session (m, a, false, &err), &err, "the session ends");
  free (a);

  /* A record edited to name host paths or another sandbox is not acted on. */
  sbx_options_t *o = test_options ();
  sbx_sandbox_t *other = NULL;
  char other_id[128] = "";
  if (check_ok (sbx_sandbox_new (o, &other, &err), &err, "a sandbox of nobody's session")
      && check_ok (sbx_sandbox_start (other, &err), &err, "started"))
    snprintf (other_id, sizeof other_id, "%s", sbx_sandbox_id (other));
  sbx_options_free (o);
  a = create (m, "lee");
  char own[128], ws_json[700], vic_json[700];
  snprintf (own, sizeof own, "\"sandbox\":\"%s\"", sandbox_of (m, a));
  char hostile[200];
  snprintf (hostile, sizeof hostile, "\"sandbox\":\"%s\"", other_id);
  snprintf (ws_json, sizeof ws_json, "\"workspace\":\"%s/lee/workspace\"", ws_root);
  snprintf (vic_json, sizeof vic_json, "\"workspace\":\"%s\"", victim);
  ok (record_edit ("attack", a, ws_json, vic_json), "lee's record now names a host folder");
  check_fails (sbx_manager_end_session (m, a, true, &err), &err, SBX_E_IO, "damaged",
               "a purge by that record is refused");
  ok (path_exists (path), "the host folder is untouched");
  ok (record_edit ("attack", a, vic_json, ws_json) && record_edit ("attack", a, own, hostile),
      "lee's record now names another sandbox");
  check_ok (sbx_manager_end_session (m, a, false, &err), &err, "ending that session");
  ok (container_exists (other_id), "does not remove the sandbox it was not made with");
  char lee_sandbox[128];
  snprintf (lee_sandbox, sizeof lee_sandbox, "%.*s", (int) strlen (own) - 12, own + 11);
  sbx_manager_t *again = manager ("attack", false, 0, 0, 0, 0);
  ok (again && strlen (lee_sandbox) == 16 && !container_exists (lee_sandbox),
      "lee's own container, which no record names now, goes with the next manager's recovery");
  sbx_manager_free (again);
  /* Plain sandboxes carry empty manager labels, whatever their image says. */
  snprintf (cmd, sizeof cmd,
            "test \"$(docker inspect -f '{{index .Config.Labels \"io.sbx.manager-key\"}}|"
            "{{index .Config.Labels \"io.sbx.role\"}}' %s)\" = '|'",
            other_id);
  ok (other_id[0] && system (cmd) == 0, "a plain sandbox's manager labels are set, empty");
  if (other)
    sbx_sandbox_remove (other, NULL);
  sbx_sandbox_free (other);
  free (a);

  snprintf (cmd, sizeof cmd, "rm -rf %s", victim);
  if (system (cmd) != 0)
    diag ("cannot remove %s", victim);
  sbx_manager_free (m);
  sbx_manager_free (m2);
}

/* ------------------------------------------------------------- deletion */

static void
test_delete (void)
{
  char full[128], dir[512];
  snprintf (full, sizeof full, "%s-del", prefix);
  snprintf (dir, sizeof dir, "%s/managers/%s", state_root (), full);
  sbx_manager_t *m = manager ("del", false, 0, 0, 0, 0);
  char *id = m ? create (m, "dora") : NULL;
  sbx_error_t *err = NULL;
  check_fails (sbx_manager_delete (full, &err), &err, SBX_E_EXISTS, "has 1 session; end them first",
               "a manager with a session is not deleted");
  ok (path_exists (dir), "its state is kept");
  if (id)
    check_ok (sbx_manager_end_session (m, id, false, &err), &err, "its session ends");
  sbx_manager_free (m);
  free (id);
  check_ok (sbx_manager_delete (full, &err), &err, "then the manager is deleted");
  ok (!path_exists (dir), "its state is gone");
  char ws[512];
  snprintf (ws, sizeof ws, "%s/dora/workspace", ws_root);
  ok (path_exists (ws), "its user's workspace is kept");
  check_fails (sbx_manager_delete ("../x", &err), &err, SBX_E_INVALID, "invalid manager name",
               "a name that tries path traversal is refused");

  /* Every manager of this test ends with nothing left to delete. */
  static const char *const used[] = { "ids",  "users", "idle", "limits", "broken", "races",
                                      "dead", "pool",  "cold", "crash",  "attack", "attack2" };
  bool all = true;
  for (size_t i = 0; i < sizeof used / sizeof *used; i++)
    {
      snprintf (full, sizeof full, "%s-%s", prefix, used[i]);
      if (sbx_manager_delete (full, &err) < 0)
        {
          diag ("manager %s: %s", full, sbx_error_message (err));
          all = false;
        }
      sbx_error_free (err), err = NULL;
    }
  ok (all, "every other manager of the tests has no session left, and is deleted");
  int left = 0;
  for (size_t i = 0; i < sizeof used / sizeof *used; i++)
    left += containers_of (used[i]);
  is_int (left, 0, "no container of any of them is left");
}

int
main (void)
{
  if (mkdtemp (ws_root) == NULL)
    return 1;
  snprintf (prefix, sizeof prefix, "it-%d", (int) getpid ());
  test_ids ();
  test_users ();
  test_idle ();
  test_limits ();
  test_races ();
  test_dead ();
  test_pool ();
  test_crash ();
  test_attacks ();
  test_delete ();
  char cmd[256];
  snprintf (cmd, sizeof cmd, "rm -rf %s %s/managers/%s-*", ws_root, state_root (), prefix);
  if (system (cmd) != 0)
    diag ("cannot remove %s", ws_root);
  return done_testing ();
}

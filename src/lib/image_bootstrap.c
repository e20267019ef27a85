/* sbx's own base image, for machines where the seed image cannot be
 * pulled: a minimal Debian made with debootstrap from the machine's own apt
 * sources, packed with libarchive and imported into the engine. */
#include "internal.h"
#include "state.h"
#include "apt_sources.h"
#include "dl.h"
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#define BOOTSTRAP_SUITE "bookworm"
#define BOOTSTRAP_PACKAGES "python3,python-is-python3,ca-certificates"
#define BASE_REPO "sbx/base"
#define BASE_TAG "bookworm"
#define MAX_SOURCES_FILE ((size_t) 1 << 20)
#define MAX_OUTPUT_LINE 4096

static void report (sbx_progress_cb progress, void *ud, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
report (sbx_progress_cb progress, void *ud, const char *fmt, ...)
{
  if (progress == NULL)
    return;
  va_list ap;
  va_start (ap, fmt);
  char *line = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (line)
    progress (line, ud);
  free (line);
}

/* Reads a small text file; NULL (errno set) on failure or when too large. */
static char *
read_text (const char *path)
{
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return NULL;
  size_t cap = 8192, len = 0;
  char *buf = malloc (cap);
  while (buf)
    {
      if (len + 1 >= cap)
        {
          char *nb = cap < MAX_SOURCES_FILE ? realloc (buf, cap * 2) : NULL;
          if (nb == NULL)
            {
              free (buf);
              buf = NULL;
              errno = cap < MAX_SOURCES_FILE ? ENOMEM : EFBIG;
              break;
            }
          buf = nb;
          cap *= 2;
        }
      size_t n = fread (buf + len, 1, cap - 1 - len, f);
      len += n;
      if (n == 0)
        {
          if (ferror (f))
            {
              free (buf);
              buf = NULL;
              errno = EIO;
            }
          break;
        }
    }
  fclose (f);
  if (buf)
    buf[len] = '\0';
  return buf;
}

static bool
has_suffix (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n > m && strcmp (s + n - m, suffix) == 0;
}

/* The first mirror in the host's apt sources (in apt's reading order) that
 * serves the suite; the public mirror otherwise. NULL when out of memory. */
static char *
find_mirror (void)
{
  char *uri = NULL;
  cleanup_free char *main_list = read_text ("/etc/apt/sources.list");
  if (main_list && sbx_apt_mirror_one_line (main_list, BOOTSTRAP_SUITE, &uri) != 0)
    return uri;
  struct dirent **names = NULL;
  int n = scandir ("/etc/apt/sources.list.d", &names, NULL, alphasort);
  for (int i = 0; i < n; i++)
    {
      const char *name = names[i]->d_name;
      bool deb822 = has_suffix (name, ".sources");
      if (uri == NULL && (deb822 || has_suffix (name, ".list")))
        {
          cleanup_free char *path = sbx_strdup_printf ("/etc/apt/sources.list.d/%s", name);
          cleanup_free char *text = path ? read_text (path) : NULL;
          if (text)
            {
              if (deb822)
                sbx_apt_mirror_deb822 (text, BOOTSTRAP_SUITE, &uri);
              else
                sbx_apt_mirror_one_line (text, BOOTSTRAP_SUITE, &uri);
            }
        }
      free (names[i]);
    }
  free (names);
  return uri ? uri : strdup (SBX_APT_FALLBACK_MIRROR);
}

static char *
find_program (const char *name)
{
  const char *path = getenv ("PATH");
  /* debootstrap lives in sbin, which a normal user's PATH often lacks. */
  cleanup_free char *search = sbx_strdup_printf ("%s:/usr/sbin:/sbin", path ? path : "");
  if (search == NULL)
    return NULL;
  char *save = NULL;
  for (char *dir = strtok_r (search, ":", &save); dir; dir = strtok_r (NULL, ":", &save))
    {
      if (dir[0] != '/')
        continue; /* relative PATH entries are a trap for a root process */
      char *candidate = sbx_strdup_printf ("%s/%s", dir, name);
      struct stat st;
      if (candidate && stat (candidate, &st) == 0 && S_ISREG (st.st_mode)
          && access (candidate, X_OK) == 0)
        return candidate;
      free (candidate);
    }
  return NULL;
}

/* The child's environment: ours, with a root PATH and a plain locale. */
static char **
child_env (void)
{
  static const char *const drop[]
      = { "PATH=", "LC_ALL=", "LANG=", "LANGUAGE=", "DEBIAN_FRONTEND=" };
  static const char *const add[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL=C",
    "DEBIAN_FRONTEND=noninteractive",
  };
  size_t n = 0;
  for (char **p = environ; p && *p; p++)
    n++;
  char **env = calloc (n + sizeof add / sizeof add[0] + 1, sizeof *env);
  if (env == NULL)
    return NULL;
  size_t k = 0;
  for (char **p = environ; p && *p; p++)
    {
      bool skip = false;
      for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        skip = skip || strncmp (*p, drop[i], strlen (drop[i])) == 0;
      if (!skip)
        env[k++] = *p;
    }
  for (size_t i = 0; i < sizeof add / sizeof add[0]; i++)
    env[k++] = (char *) add[i];
  return env;
}

#define TAIL_LINES 3

struct output
{
  sbx_progress_cb progress;
  void *ud;
  char tail[TAIL_LINES][256]; /* the last lines, for an error message */
  size_t count;
};

static void
output_line (struct output *o, const char *line, size_t len)
{
  while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
    len--;
  if (len == 0)
    return;
  cleanup_free char *clean = sbx_utf8_sanitize (line, len);
  if (clean == NULL)
    return;
  report (o->progress, o->ud, "debootstrap: %s", clean);
  snprintf (o->tail[o->count % TAIL_LINES], sizeof o->tail[0], "%s", clean);
  o->count++;
}

/* Runs ARGV[0] (no shell involved) with stdout and stderr forwarded line by
 * line to O. Returns the wait status, or -1 with errno. */
static int
run_forwarding (const char *const argv[], struct output *o)
{
  char **env = child_env ();
  if (env == NULL)
    return -1;
  int devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  int fds[2];
  if (devnull < 0 || pipe2 (fds, O_CLOEXEC) < 0)
    {
      int saved = errno;
      if (devnull >= 0)
        close (devnull);
      free (env);
      errno = saved;
      return -1;
    }
  pid_t pid = fork ();
  if (pid < 0)
    {
      int saved = errno;
      close (devnull);
      close (fds[0]);
      close (fds[1]);
      free (env);
      errno = saved;
      return -1;
    }
  if (pid == 0)
    {
      /* Only async-signal-safe calls from here to exec. */
      sigset_t all;
      sigemptyset (&all);
      sigprocmask (SIG_SETMASK, &all, NULL);
      signal (SIGPIPE, SIG_DFL);
      if (dup2 (devnull, 0) < 0 || dup2 (fds[1], 1) < 0 || dup2 (fds[1], 2) < 0)
        _exit (126);
      /* Descriptors the application left inheritable stay out of the child. */
      close_range (3, ~0U, 0);
      execve (argv[0], (char *const *) argv, env);
      static const char msg[] = "cannot execute the program\n";
      if (write (2, msg, sizeof msg - 1) < 0)
        _exit (127);
      _exit (127);
    }
  close (devnull);
  close (fds[1]);
  free (env);

  char buf[MAX_OUTPUT_LINE];
  size_t len = 0;
  for (;;)
    {
      ssize_t n = read (fds[0], buf + len, sizeof buf - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += n;
      size_t start = 0;
      for (char *nl; (nl = memchr (buf + start, '\n', len - start)); start = nl + 1 - buf)
        output_line (o, buf + start, nl - (buf + start));
      /* A line longer than the buffer is passed on in pieces. */
      if (start == 0 && len == sizeof buf)
        start = len, output_line (o, buf, len);
      memmove (buf, buf + start, len - start);
      len -= start;
    }
  output_line (o, buf, len);
  close (fds[0]);

  int status;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return status;
}

/* Removes the entries of DIR (relative to ROOT) whose names end in SUFFIX
 * (every entry when SUFFIX is ""). */
static void
remove_entries (const char *root, const char *dir, const char *suffix)
{
  cleanup_free char *path = sbx_strdup_printf ("%s/%s", root, dir);
  DIR *d = path ? opendir (path) : NULL;
  if (d == NULL)
    return;
  for (struct dirent *de; (de = readdir (d));)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (*suffix && !has_suffix (de->d_name, suffix))
        continue;
      cleanup_free char *child = sbx_strdup_printf ("%s/%s", path, de->d_name);
      if (child)
        sbx_remove_tree (child);
    }
  closedir (d);
}

static int
archive_fail (sbx_error_t **err, struct archive *a, const char *what)
{
  const char *msg = sbx_archive.error_string (a);
  int e = sbx_archive.err_no (a);
  if (e == ENOSPC)
    return sbx_error_set (err, SBX_E_IO,
                          "packing the root file system failed (%s): no space left on "
                          "/var/tmp; free some space and try again",
                          what);
  return sbx_error_set (err, SBX_E_IO, "packing the root file system failed (%s): %s", what,
                        msg ? msg : "unknown libarchive error");
}

static int
copy_entry_data (struct archive *disk, struct archive *out, sbx_error_t **err)
{
  for (;;)
    {
      const void *block;
      size_t size;
      la_int64_t offset;
      int r = sbx_archive.read_data_block (disk, &block, &size, &offset);
      if (r == ARCHIVE_EOF)
        return 0;
      if (r < ARCHIVE_WARN)
        return archive_fail (err, disk, "reading a file");
      if (size > 0 && sbx_archive.write_data (out, block, size) != (la_ssize_t) size)
        return archive_fail (err, out, "writing");
    }
}

/* Writes the tree at ROOT to FD as a pax tar with numeric owners, modes,
 * symlinks, hard links and device nodes. Paths are relative to ROOT; ROOT
 * itself is left out (its mode is mkdtemp's 0700, which is not the image's). */
static int
pack_tree (const char *root, int fd, sbx_error_t **err)
{
  int loaded = sbx_dl_archive (err);
  if (loaded < 0)
    return loaded;
  struct archive *disk = sbx_archive.read_disk_new ();
  struct archive *out = sbx_archive.write_new ();
  struct archive_entry_linkresolver *links = sbx_archive.entry_linkresolver_new ();
  int ret = 0;
  if (disk == NULL || out == NULL || links == NULL)
    {
      ret = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      goto done;
    }
  /* No name lookup: the host's user names mean nothing in the image, and
   * Docker uses the numeric ids. */
  if (sbx_archive.read_disk_set_symlink_physical (disk) != ARCHIVE_OK
      || sbx_archive.read_disk_set_behavior (
             disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_XATTR
                       | ARCHIVE_READDISK_NO_ACL | ARCHIVE_READDISK_NO_FFLAGS
                       | ARCHIVE_READDISK_NO_SPARSE)
             != ARCHIVE_OK
      || sbx_archive.write_set_format_pax_restricted (out) != ARCHIVE_OK
      || sbx_archive.write_open_fd (out, fd) != ARCHIVE_OK)
    {
      ret = archive_fail (err, out, "setting up");
      goto done;
    }
  sbx_archive.entry_linkresolver_set_strategy (links, sbx_archive.format (out));
  if (sbx_archive.read_disk_open (disk, root) != ARCHIVE_OK)
    {
      ret = archive_fail (err, disk, "opening the tree");
      goto done;
    }
  size_t root_len = strlen (root);
  for (;;)
    {
      struct archive_entry *entry = sbx_archive.entry_new ();
      if (entry == NULL)
        {
          ret = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
          goto done;
        }
      int r = sbx_archive.read_next_header2 (disk, entry);
      if (r == ARCHIVE_EOF)
        {
          sbx_archive.entry_free (entry);
          break;
        }
      if (r < ARCHIVE_WARN)
        {
          sbx_archive.entry_free (entry);
          ret = archive_fail (err, disk, "walking the tree");
          goto done;
        }
      sbx_archive.read_disk_descend (disk);

      const char *full = sbx_archive.entry_pathname (entry);
      const char *rel = full && strncmp (full, root, root_len) == 0 ? full + root_len : NULL;
      while (rel && *rel == '/')
        rel++;
      /* Sockets cannot be stored in a tar (and none belong in an image). */
      if (rel == NULL || *rel == '\0' || sbx_archive.entry_filetype (entry) == AE_IFSOCK)
        {
          sbx_archive.entry_free (entry);
          continue;
        }
      cleanup_free char *relcopy = strdup (rel);
      if (relcopy == NULL)
        {
          sbx_archive.entry_free (entry);
          ret = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
          goto done;
        }
      sbx_archive.entry_copy_pathname (entry, relcopy);

      /* The first name of a hard-linked file carries the data; later names
       * become links to it. */
      struct archive_entry *spare = NULL;
      sbx_archive.entry_linkify (links, &entry, &spare);
      while (entry)
        {
          r = sbx_archive.write_header (out, entry);
          if (r < ARCHIVE_WARN)
            ret = archive_fail (err, out, sbx_archive.entry_pathname (entry));
          else if (sbx_archive.entry_size (entry) > 0 && sbx_archive.entry_hardlink (entry) == NULL)
            ret = copy_entry_data (disk, out, err);
          sbx_archive.entry_free (entry);
          entry = spare;
          spare = NULL;
          if (ret < 0)
            {
              sbx_archive.entry_free (entry);
              goto done;
            }
        }
    }
  if (sbx_archive.write_close (out) != ARCHIVE_OK)
    ret = archive_fail (err, out, "finishing");

done:
  if (links)
    sbx_archive.entry_linkresolver_free (links);
  if (disk)
    sbx_archive.read_free (disk);
  if (out)
    sbx_archive.write_free (out);
  return ret;
}

/* An unlinked file under /var/tmp: nothing to clean up if we are killed. */
static int
open_scratch_file (void)
{
  int fd = open ("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
    return fd;
  char path[] = "/var/tmp/sbx-rootfs-XXXXXX";
  fd = mkostemp (path, O_CLOEXEC);
  if (fd >= 0)
    unlink (path);
  return fd;
}

/* The engine's id for IMAGE (a name or an id), or NULL (absent, or any
 * trouble); *TAGS (may be NULL) gets how many names it has. */
static char *
image_id (sbx_engine_t *e, const char *image, size_t *tags)
{
  cleanup_free char *path = sbx_strdup_printf ("/images/%s/json", image);
  long status = 0;
  json_t *resp = NULL;
  if (path == NULL || sbx_engine_request (e, "GET", path, NULL, &status, &resp, NULL) < 0)
    return NULL;
  const char *id = status == 200 ? json_string_value (json_object_get (resp, "Id")) : NULL;
  char *copy = id ? strdup (id) : NULL;
  if (tags)
    *tags = json_array_size (json_object_get (resp, "RepoTags"));
  json_decref (resp);
  return copy;
}

static int
import_tree (sbx_engine_t *e, const char *root, sbx_progress_cb progress, void *ud,
             sbx_error_t **err)
{
  static const char *const changes[] = {
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "CMD [\"/bin/sh\"]",
    NULL,
  };
  report (progress, ud, "packing root file system");
  cleanup_close int fd = open_scratch_file ();
  if (fd < 0)
    return sbx_error_set_errno (err, SBX_E_IO, errno,
                                "cannot create a scratch file in /var/tmp for the image tarball");
  int r = pack_tree (root, fd, err);
  if (r < 0)
    return r;
  struct stat st;
  if (fstat (fd, &st) == 0)
    report (progress, ud, "packed %lld MiB", (long long) (st.st_size >> 20));
  int fd2 = dup (fd);
  FILE *tar = fd2 >= 0 ? fdopen (fd2, "rb") : NULL;
  if (tar == NULL)
    {
      int saved = errno;
      if (fd2 >= 0)
        close (fd2);
      return sbx_error_set_errno (err, SBX_E_IO, saved, "cannot reopen the image tarball");
    }
  if (fseeko (tar, 0, SEEK_SET) < 0)
    {
      int saved = errno;
      fclose (tar);
      return sbx_error_set_errno (err, SBX_E_IO, saved, "cannot rewind the image tarball");
    }

  cleanup_free char *old_id = image_id (e, SBX_BASE_IMAGE, NULL);
  report (progress, ud, "importing into the engine as " SBX_BASE_IMAGE);
  r = sbx_engine_image_import (e, tar, BASE_REPO, BASE_TAG, changes, err);
  fclose (tar);
  if (r < 0)
    return r;
  cleanup_free char *new_id = image_id (e, SBX_BASE_IMAGE, NULL);
  if (new_id == NULL)
    return sbx_error_set (err, SBX_E_ENGINE,
                          "the Docker engine accepted the import but " SBX_BASE_IMAGE
                          " is not there afterwards; check the engine's log");
  /* A rebuild leaves the previous image untagged; drop it, unless it still
   * has another name or a container uses it (the engine then refuses). */
  size_t old_tags = 1;
  cleanup_free char *old_again = old_id && strcmp (old_id, new_id) != 0
                                     ? image_id (e, old_id, &old_tags)
                                     : NULL;
  if (old_again && old_tags == 0)
    {
      cleanup_free char *path = sbx_strdup_printf ("/images/%s", old_id);
      long status = 0;
      if (path && sbx_engine_request (e, "DELETE", path, NULL, &status, NULL, NULL) == 0
          && status == 200)
        report (progress, ud, "removed the previous " SBX_BASE_IMAGE " (%.19s)", old_id);
    }
  report (progress, ud, "done: " SBX_BASE_IMAGE " (%s)", new_id);
  return 0;
}

SBX_EXPORT int
sbx_image_bootstrap (sbx_progress_cb progress, void *userdata, sbx_error_t **err)
{
  if (geteuid () != 0)
    return sbx_error_set (err, SBX_E_PERMISSION,
                          "building the base image needs root (debootstrap); run `sudo sbx image "
                          "bootstrap`");
  cleanup_free char *debootstrap = find_program ("debootstrap");
  if (debootstrap == NULL)
    return sbx_error_set (err, SBX_E_INVALID,
                          "debootstrap is not installed; apt-get install debootstrap");

  /* Fail before the long part if the engine is not there. */
  sbx_engine_t *e = NULL;
  int r = sbx_engine_get (&e, err);
  if (r < 0)
    return r;

  cleanup_free char *mirror = find_mirror ();
  char root[] = "/var/tmp/sbx-bootstrap-XXXXXX";
  if (mirror == NULL)
    {
      r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      goto out_engine;
    }
  if (mkdtemp (root) == NULL)
    {
      r = sbx_error_set_errno (err, SBX_E_IO, errno, "cannot create a build folder under /var/tmp");
      goto out_engine;
    }
  report (progress, userdata, "building " SBX_BASE_IMAGE " in %s from %s", root, mirror);

  const char *const argv[] = {
    debootstrap,
    "--variant=minbase",
    "--include=" BOOTSTRAP_PACKAGES,
    BOOTSTRAP_SUITE,
    root,
    mirror,
    NULL,
  };
  struct output o = { .progress = progress, .ud = userdata };
  int status = run_forwarding (argv, &o);
  if (status < 0)
    {
      r = sbx_error_set_errno (err, SBX_E_IO, errno, "cannot run %s", debootstrap);
      goto out_dir;
    }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      char how[48];
      if (WIFEXITED (status))
        snprintf (how, sizeof how, "exited with status %d", WEXITSTATUS (status));
      else
        snprintf (how, sizeof how, "was killed by signal %d", WTERMSIG (status));
      const char *last = o.count ? o.tail[(o.count - 1) % TAIL_LINES] : "no output";
      r = sbx_error_set (
          err, SBX_E_IO,
          "debootstrap %s (last line: %s); check that %s is reachable and serves " BOOTSTRAP_SUITE,
          how, last, mirror);
      goto out_dir;
    }

  /* Package downloads and index files are only needed to build. */
  remove_entries (root, "var/cache/apt/archives", ".deb");
  remove_entries (root, "var/cache/apt", ".bin");
  remove_entries (root, "var/lib/apt/lists", "");
  r = import_tree (e, root, progress, userdata, err);

out_dir:
  {
    int left = sbx_remove_tree (root);
    if (left != 0)
      report (progress, userdata,
              "warning: could not remove all of %s; something may still be mounted there "
              "(see `findmnt`)",
              root);
  }
out_engine:
  return r;
}

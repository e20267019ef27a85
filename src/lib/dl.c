/* Loading libcurl and libarchive on first use (see dl.h). */
#include "dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

struct sbx_curl_api sbx_curl;
struct sbx_archive_api sbx_archive;

/* A library and the functions to take from it, into a struct of pointers
 * laid out in the same order. */
struct library
{
  const char *soname, *package;
  const char *const *symbols;
  void **slots;
  pthread_once_t once;
  char error[512]; /* empty when loaded */
};

static const char *const curl_symbols[] = {
  "curl_global_init",
  "curl_easy_init",
  "curl_easy_setopt",
  "curl_easy_perform",
  "curl_easy_getinfo",
  "curl_easy_reset",
  "curl_easy_cleanup",
  "curl_easy_strerror",
  "curl_slist_append",
  "curl_slist_free_all",
  NULL,
};

static const char *const archive_symbols[] = {
  "archive_error_string",
  "archive_errno",
  "archive_format",
  "archive_write_new",
  "archive_write_free",
  "archive_write_close",
  "archive_write_header",
  "archive_write_data",
  "archive_write_open_fd",
  "archive_write_open_FILE",
  "archive_write_set_format_ustar",
  "archive_write_set_format_pax_restricted",
  "archive_read_disk_new",
  "archive_read_disk_open",
  "archive_read_disk_descend",
  "archive_read_disk_set_behavior",
  "archive_read_disk_set_symlink_physical",
  "archive_read_next_header2",
  "archive_read_data_block",
  "archive_read_free",
  "archive_entry_new",
  "archive_entry_free",
  "archive_entry_clear",
  "archive_entry_pathname",
  "archive_entry_copy_pathname",
  "archive_entry_set_pathname",
  "archive_entry_size",
  "archive_entry_set_size",
  "archive_entry_set_perm",
  "archive_entry_set_mtime",
  "archive_entry_filetype",
  "archive_entry_set_filetype",
  "archive_entry_hardlink",
  "archive_entry_linkify",
  "archive_entry_linkresolver_new",
  "archive_entry_linkresolver_free",
  "archive_entry_linkresolver_set_strategy",
  NULL,
};

_Static_assert(sizeof (struct sbx_curl_api)
                   == (sizeof curl_symbols / sizeof curl_symbols[0] - 1) * sizeof (void *),
               "one symbol per slot of struct sbx_curl_api");
_Static_assert(sizeof (struct sbx_archive_api)
                   == (sizeof archive_symbols / sizeof archive_symbols[0] - 1) * sizeof (void *),
               "one symbol per slot of struct sbx_archive_api");

static struct library curl_lib = { "libcurl.so.4",      "libcurl4",        curl_symbols,
                                   (void **) &sbx_curl, PTHREAD_ONCE_INIT, "" };
static struct library archive_lib = { "libarchive.so.13",     "libarchive13",    archive_symbols,
                                      (void **) &sbx_archive, PTHREAD_ONCE_INIT, "" };

static void
load (struct library *l)
{
  /* Never unloaded: the pointers stay valid for the process's life. */
  void *h = dlopen (l->soname, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    {
      snprintf (l->error, sizeof l->error, "cannot load %s (%s); install Debian's %s", l->soname,
                dlerror (), l->package);
      return;
    }
  for (size_t i = 0; l->symbols[i]; i++)
    {
      void *f = dlsym (h, l->symbols[i]);
      if (f == NULL)
        {
          snprintf (l->error, sizeof l->error, "%s has no %s; install a newer %s", l->soname,
                    l->symbols[i], l->package);
          return;
        }
      l->slots[i] = f;
    }
}

static void
load_curl (void)
{
  load (&curl_lib);
}

static void
load_archive (void)
{
  load (&archive_lib);
}

int
sbx_dl_curl (sbx_error_t **err)
{
  pthread_once (&curl_lib.once, load_curl);
  return curl_lib.error[0] ? sbx_error_set (err, SBX_E_ENGINE, "%s", curl_lib.error) : 0;
}

int
sbx_dl_archive (sbx_error_t **err)
{
  pthread_once (&archive_lib.once, load_archive);
  return archive_lib.error[0] ? sbx_error_set (err, SBX_E_IO, "%s", archive_lib.error) : 0;
}

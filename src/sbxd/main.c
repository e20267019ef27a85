/* sbxd: reads its settings, makes each runtime's image ready (a built-in
 * runtime's is built now, not on a client's first request), finds the
 * sessions of an earlier run, then serves until SIGTERM or SIGINT. */
#include "sbxd.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void
build_progress (const sbx_build_progress_t *p, void *ud)
{
  (void) ud;
  if (p->text)
    fprintf (stderr, "sbxd: build: %s\n", p->text);
}

/* The sandbox options of runtime RT: its image, the service's limits. */
static int
runtime_options (sbxd_config_t *c, sbxd_runtime_t *rt, sbx_error_t **err)
{
  rt->opts = sbx_options_new ();
  if (rt->opts == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  int r = 0;
  if (rt->image == NULL && strcmp (rt->alias, "default") == 0)
    {
      r = sbx_image_default (&rt->image, NULL, err);
      rt->description = strdup ("sbx's default image");
    }
  else if (rt->image == NULL)
    {
      /* A built-in runtime, its image built if need be. */
      sbx_runtime_t *builtin = NULL;
      sbx_runtime_image_t info = { 0 };
      r = sbx_runtime_builtin (rt->alias, &builtin, err);
      if (r == 0)
        r = sbx_runtime_ensure_image (builtin, build_progress, NULL, &rt->image, &info, err);
      if (r == 0)
        r = sbx_options_set_runtime (rt->opts, builtin, err);
      if (r == 0)
        {
          rt->builds = true;
          rt->description = strdup (sbx_runtime_description (builtin));
          if (info.built)
            fprintf (stderr, "sbxd: runtime %s: built %s in %.0f s\n", rt->alias, rt->image,
                     info.seconds);
        }
      sbx_runtime_image_clear (&info);
      sbx_runtime_free (builtin);
    }
  else
    rt->description = sbx_strdup_printf ("the image %s", rt->image);
  if (r == 0 && !rt->builds)
    r = sbx_options_set_image (rt->opts, rt->image, err);
  if (r == 0)
    r = sbx_options_set_memory (rt->opts, c->memory, err);
  if (r == 0)
    r = sbx_options_set_cpus (rt->opts, c->cpus, err);
  if (r == 0)
    r = sbx_options_set_pids (rt->opts, c->pids, err);
  if (r == 0)
    r = sbx_options_set_disk (rt->opts, c->disk, err);
  if (r == 0 && c->network)
    r = sbx_options_set_network (rt->opts, c->network, err);
  return r < 0 ? sbx_error_wrap (err, r, "runtime '%s'", rt->alias) : 0;
}

/* Nothing bounds what all of a workspace's files take together (the
 * engine's quotas are the containers', the kernel here may have no
 * project quotas): a workspace root on the host's own file system could
 * be filled by the sandboxes. Said at start, when it is so. */
static void
warn_shared_root (const sbxd_config_t *c)
{
  struct stat ws, host;
  if (c->workspace_root && stat (c->workspace_root, &ws) == 0 && stat ("/", &host) == 0
      && ws.st_dev == host.st_dev)
    fprintf (stderr,
             "sbxd: warning: the workspace root %s is on the file system of /: each file a "
             "sandbox writes is bounded (--disk), a workspace's total is not; give the "
             "workspace root a file system of its own\n",
             c->workspace_root);
}

int
main (int argc, char **argv)
{
  sbxd_config_t config;
  int r = sbxd_config_load (argc, argv, &config);
  if (r != 0)
    {
      sbxd_config_free (&config);
      return r > 0 ? 0 : 2;
    }
  sbx_error_t *err = NULL;
  for (size_t i = 0; r == 0 && i < config.n_runtimes; i++)
    r = runtime_options (&config, &config.runtimes[i], &err);
  sbxd_registry_t *reg = NULL;
  if (r == 0)
    r = sbxd_registry_open (&config, &reg, &err);
  if (r < 0)
    {
      fprintf (stderr, "sbxd: %s\n", sbx_error_message (err));
      sbx_error_free (err);
      sbxd_config_free (&config);
      return 1;
    }
  warn_shared_root (&config);
  for (size_t i = 0; i < config.n_runtimes; i++)
    fprintf (stderr, "sbxd: runtime %s%s: %s\n", config.runtimes[i].alias,
             i == 0 ? " (default)" : "", config.runtimes[i].image);
  sbxd_server_t srv = { .config = &config, .registry = reg };
  r = sbxd_http_serve (&srv);
  sbxd_mcp_close_all (&srv);
  sbxd_registry_close (reg, config.stop_on_exit);
  sbxd_config_free (&config);
  return r < 0 ? 1 : 0;
}

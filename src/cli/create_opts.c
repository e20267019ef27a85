/* The options that make a sandbox, shared by create, run and mcp: parsed
 * into the library's options (a runtime first, so that --workdir and --env
 * override its own), and the sandbox made from them. */
#include "cli.h"

#include <string.h>

void
cli_create_opts_init (struct cli_create_opts *co)
{
  memset (co, 0, sizeof *co);
  co->memory = -1;
  co->disk = -1;
  co->pids = -1;
  co->cpus = -1;
}

void
cli_create_opts_clear (struct cli_create_opts *co)
{
  cli_strv_free (&co->volumes);
  cli_strv_free (&co->env);
}

static int
apply_create_opts (sbx_options_t *o, const struct cli_create_opts *co, sbx_error_t **err)
{
  int r = 0;
  if (co->image)
    r = sbx_options_set_image (o, co->image, err);
  if (r == 0 && co->name)
    r = sbx_options_set_name (o, co->name, err);
  if (r == 0 && co->workdir)
    r = sbx_options_set_workdir (o, co->workdir, err);
  if (r == 0 && co->network)
    r = sbx_options_set_network (o, co->network, err);
  for (size_t i = 0; r == 0 && i < co->volumes.n; i++)
    r = sbx_options_add_volume (o, co->volumes.v[i], err);
  for (size_t i = 0; r == 0 && i < co->env.n; i++)
    r = sbx_options_add_env (o, co->env.v[i], err);
  if (r == 0 && co->memory >= 0)
    r = sbx_options_set_memory (o, co->memory, err);
  if (r == 0 && co->disk >= 0)
    r = sbx_options_set_disk (o, co->disk, err);
  if (r == 0 && co->pids >= 0)
    r = sbx_options_set_pids (o, co->pids, err);
  if (r == 0 && co->cpus >= 0)
    r = sbx_options_set_cpus (o, co->cpus, err);
  sbx_options_set_replace (o, co->replace);
  return r;
}

int
cli_sandbox_options (const struct cli_create_opts *co, sbx_options_t **out)
{
  sbx_error_t *err = NULL;
  sbx_runtime_t *rt = NULL;
  int status = cli_runtime_prepare (co, &rt);
  if (status != 0)
    return status;
  sbx_options_t *o = sbx_options_new ();
  if (o == NULL)
    {
      sbx_runtime_free (rt);
      return cli_fail (SBX_E_NOMEM, "out of memory");
    }
  /* The runtime first, so that --workdir and --env override its own. */
  int r = rt ? sbx_options_set_runtime (o, rt, &err) : 0;
  sbx_runtime_free (rt);
  if (r < 0 || apply_create_opts (o, co, &err) < 0)
    {
      sbx_options_free (o);
      return cli_error (err);
    }
  *out = o;
  return 0;
}

int
cli_create_sandbox (const struct cli_create_opts *co, sbx_sandbox_t **out)
{
  sbx_error_t *err = NULL;
  sbx_sandbox_t *sb = NULL;
  sbx_options_t *o = NULL;
  int r = cli_sandbox_options (co, &o);
  if (r != 0)
    return r;
  r = sbx_sandbox_new (o, &sb, &err);
  sbx_options_free (o);
  if (r == 0 && (r = sbx_sandbox_start (sb, &err)) < 0)
    {
      sbx_sandbox_free (sb);
      sb = NULL;
    }
  if (r < 0)
    return cli_error (err);
  *out = sb;
  return 0;
}

/* Runtimes inside libsbx: the pure part (runtime.c: definitions and
 * validation; runtime_json.c: the JSON form; runtime_dockerfile.c: the
 * Dockerfile and the tag) and the engine part (runtime_build.c: builds,
 * locking, progress, prune). */
#ifndef SBX_RUNTIME_H
#define SBX_RUNTIME_H

#include "engine.h"
#include "internal.h"

/* Bumped whenever the generated Dockerfile changes meaning for the same
 * definition, so that images built by an older sbx are not re-used. */
#define SBX_RUNTIME_FORMAT 1

/* Image labels on every runtime image sbx builds. */
#define SBX_LABEL_RUNTIME "io.sbx.runtime"
#define SBX_LABEL_RUNTIME_HASH "io.sbx.runtime-hash"
#define SBX_LABEL_RUNTIME_FLAVOUR "io.sbx.runtime-flavour"
#define SBX_RUNTIME_REPO "sbx-runtime"

/* The name of the extra file a build context carries when the host trusts
 * site CA certificates (see runtime_build.c). */
#define SBX_SITE_CA_FILE "sbx-site-ca.crt"

#define SBX_RUNTIME_MAX_ENV 128

enum package_manager
{
  PM_PIP,
  PM_NPM,
  PM_APT,
  PM_CARGO
};
extern const char *const sbx_runtime_pm_names[]; /* by enum package_manager */

/* The part of a definition a flavour may change. */
struct runtime_def
{
  char *description;
  char *image;      /* used as is */
  char *base_image; /* built on */
  char **packages;
  size_t npackages;
  enum package_manager pm;
  char **setup;
  size_t nsetup;
};

struct sbx_runtime
{
  char *name;
  struct runtime_def def[2]; /* [0]: the seed's, [1]: the offline flavour */
  bool has_offline;
  char **env_keys, **env_values; /* in the order they were first set */
  size_t nenv;
  char *workdir;
  bool cache;
  sbx_runtime_flavour pinned;
};

/* Setters of one flavour's definition, shared with the JSON reader; WHERE is
 * the field's prefix in messages ("" or "offline."), so that each error
 * names the field as the JSON file spells it. */
int sbx_runtime_def_set_description (struct runtime_def *d, const char *where, const char *text,
                                     sbx_error_t **err);
int sbx_runtime_def_set_image (struct runtime_def *d, const char *where, const char *field,
                               char **slot, const char *image, sbx_error_t **err);
int sbx_runtime_def_set_pm (struct runtime_def *d, const char *where, const char *name,
                            sbx_error_t **err);
int sbx_runtime_def_add_package (struct runtime_def *d, const char *where, const char *pkg,
                                 sbx_error_t **err);
int sbx_runtime_def_add_setup (struct runtime_def *d, const char *where, const char *cmd,
                               sbx_error_t **err);

/* What it takes to get one flavour of a runtime. */
struct sbx_runtime_plan
{
  sbx_runtime_flavour flavour; /* SEED or OFFLINE */
  char *image;                 /* the tag to build, or the image used as is; NULL: sbx's default */
  char *base;                  /* FROM of the build; NULL when nothing is built */
  char *dockerfile;            /* NULL when nothing is built */
  char hash[65];               /* hex SHA-256 the tag is cut from; "" when nothing is built */
};

/* Pure: the plan of FLAVOUR (SEED or OFFLINE) of RT, for a build context
 * that carries SITE_CA (LEN bytes of PEM, or NULL). Validates RT first. */
int sbx_runtime_plan (const sbx_runtime_t *rt, sbx_runtime_flavour flavour, const char *site_ca,
                      size_t site_ca_len, struct sbx_runtime_plan *plan, sbx_error_t **err);
void sbx_runtime_plan_clear (struct sbx_runtime_plan *plan);

/* Cross-field checks that setters one at a time cannot make (image and
 * base_image together, packages without a base image, ...). */
int sbx_runtime_validate (const sbx_runtime_t *rt, sbx_error_t **err);

/* The pinned flavour (AUTO when none) and whether the image may be re-used. */
sbx_runtime_flavour sbx_runtime_pinned_flavour (const sbx_runtime_t *rt);
bool sbx_runtime_cache (const sbx_runtime_t *rt);

/* Deep copy (options keep one); NULL when out of memory. */
sbx_runtime_t *sbx_runtime_dup (const sbx_runtime_t *rt);

/* Hex SHA-256 of the N bytes at DATA into HEX (65 bytes). */

/* Makes sure the image of RT exists on engine E (building it if needed) and
 * puts its name in *IMAGE; used by a sandbox's lazy start. */
int sbx_runtime_resolve (sbx_engine_t *e, const sbx_runtime_t *rt, sbx_build_progress_cb progress,
                         void *userdata, char **image, sbx_runtime_image_t *info,
                         sbx_error_t **err);

#endif

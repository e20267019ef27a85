/* Docker Engine REST API client (libcurl + jansson). Never runs the docker CLI. */
#ifndef SBX_ENGINE_H
#define SBX_ENGINE_H

#include "internal.h"

#include <jansson.h>
#include <stdio.h>

typedef struct sbx_engine sbx_engine_t;

/* The process's context for the engine DOCKER_HOST names (unix:///path, or
 * tcp://host:port with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH honoured;
 * default unix:///var/run/docker.sock): made on first use, when its API
 * version is negotiated (the lower of the server's and SBX_ENGINE_MAX_API),
 * then shared by every caller and thread, and never freed. Fails with
 * SBX_E_ENGINE and a sentence naming the address when no engine answers
 * (and tries again on the next call). */
#define SBX_ENGINE_MAX_API "1.43"
int sbx_engine_get (sbx_engine_t **out, sbx_error_t **err);
/* "unix:///var/run/docker.sock", for messages. */
const char *sbx_engine_address (const sbx_engine_t *e);
/* "1.41" */
const char *sbx_engine_api_version (const sbx_engine_t *e);
/* Whether the engine is on this machine (a Unix socket), so bind mounts of
 * host folders work. */
bool sbx_engine_is_local (const sbx_engine_t *e);

/* One request. PATH starts with '/' and excludes the version prefix; query
 * values must already be URL-escaped (see sbx_engine_escape). BODY may be
 * NULL. *RESPONSE (may be NULL to ignore) receives the parsed JSON body or
 * NULL when it was empty or not JSON. Returns 0 for any HTTP status (check
 * *STATUS); fails only when the engine could not be reached. */
int sbx_engine_request (sbx_engine_t *e, const char *method, const char *path, json_t *body,
                        long *status, json_t **response, sbx_error_t **err);
/* The engine's error text from a JSON {"message": ...} body, or "HTTP N". */
const char *sbx_engine_message (json_t *response, long status);
/* URL-escapes S for a query string; free() the result. */
char *sbx_engine_escape (sbx_engine_t *e, const char *s);

/* Containers. Engine errors come back as: 404 on a container -> SBX_E_GONE,
 * 404 "No such image" on create -> SBX_E_IMAGE_MISSING, 409 on create ->
 * SBX_E_EXISTS, anything else -> SBX_E_ENGINE with the engine's message. */
int sbx_engine_container_create (sbx_engine_t *e, const char *name, json_t *config, char **id,
                                 sbx_error_t **err);
int sbx_engine_container_start (sbx_engine_t *e, const char *id, sbx_error_t **err);
int sbx_engine_container_inspect (sbx_engine_t *e, const char *id, json_t **info,
                                  sbx_error_t **err);
/* One sample of the container's stats (GET /containers/ID/stats, one-shot). */
int sbx_engine_container_stats (sbx_engine_t *e, const char *id, json_t **stats, sbx_error_t **err);
int sbx_engine_container_stop (sbx_engine_t *e, const char *id, int timeout_seconds,
                               sbx_error_t **err);
/* Force-removes with its anonymous volumes; a missing container is not an error. */
int sbx_engine_container_remove (sbx_engine_t *e, const char *id, sbx_error_t **err);
/* All containers (running or not) carrying LABEL ("key" or "key=value"). */
int sbx_engine_container_list (sbx_engine_t *e, const char *label, json_t **list,
                               sbx_error_t **err);

/* Images. */
int sbx_engine_image_exists (sbx_engine_t *e, const char *image, bool *exists, sbx_error_t **err);
/* The engine's document about IMAGE in *INFO, or NULL when it is absent. */
int sbx_engine_image_inspect (sbx_engine_t *e, const char *image, json_t **info, sbx_error_t **err);
/* Top-level images (tagged or dangling) carrying LABEL ("key" or "key=value"). */
int sbx_engine_image_list (sbx_engine_t *e, const char *label, json_t **list, sbx_error_t **err);
/* Removes a name of an image (or an untagged image, by id) with its untagged
 * parents. Absent is not an error; used by a container (or a parent of
 * others) -> SBX_E_EXISTS. */
int sbx_engine_image_remove (sbx_engine_t *e, const char *image, sbx_error_t **err);
/* Pulls IMAGE ("name:tag"); errors in the progress stream -> SBX_E_IMAGE_MISSING. */
int sbx_engine_image_pull (sbx_engine_t *e, const char *image, sbx_progress_cb progress,
                           void *userdata, sbx_error_t **err);
/* Imports a root file system tarball from TAR (read to EOF) as REPO:TAG,
 * applying CHANGES (NULL-terminated Dockerfile instructions, may be NULL). */
int sbx_engine_image_import (sbx_engine_t *e, FILE *tar, const char *repo, const char *tag,
                             const char *const *changes, sbx_error_t **err);

/* One file of a build context. */
typedef struct sbx_build_file
{
  const char *name;
  const void *data;
  size_t len;
} sbx_build_file_t;

typedef struct sbx_engine_build
{
  const char *tag;     /* NAME:TAG given to the image once built */
  json_t *labels;      /* object of strings, or NULL */
  const char *network; /* for the build's RUN steps; NULL: the engine's default */
  bool nocache;
  const sbx_build_file_t *files; /* the build context: "Dockerfile" and what it copies */
  size_t nfiles;
  /* The build's output ("Step 2/5 : RUN ...", the steps' own output) as it
   * arrives, in pieces that need not end at line ends. */
  void (*on_output) (const char *text, void *userdata);
  void *userdata;
} sbx_engine_build_t;

/* POST /build (classic builder) with a tar of B->files made in memory. The
 * engine tags the image only when every step succeeded. 0 with *IMAGE_ID;
 * a failed step -> SBX_E_BUILD with the engine's words ("The command ...
 * returned a non-zero code: 100"); anything else -> SBX_E_ENGINE. */
int sbx_engine_image_build (sbx_engine_t *e, const sbx_engine_build_t *b, char **image_id,
                            sbx_error_t **err);

#endif

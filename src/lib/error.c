/* Errors: a code plus a sentence a user can act on. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct sbx_error
{
  int code;
  char *message;
};

static const char *const errc_names[] = {
  [SBX_OK] = "ok",
  [SBX_E_INVALID] = "invalid_argument",
  [SBX_E_NOMEM] = "out_of_memory",
  [SBX_E_ENGINE] = "engine_error",
  [SBX_E_IMAGE_MISSING] = "image_missing",
  [SBX_E_GONE] = "sandbox_gone",
  [SBX_E_OOM] = "out_of_memory_killed",
  [SBX_E_NOT_FOUND] = "not_found",
  [SBX_E_IS_DIR] = "is_a_directory",
  [SBX_E_NOT_DIR] = "not_a_directory",
  [SBX_E_NOT_TEXT] = "not_text",
  [SBX_E_PATTERN] = "invalid_pattern",
  [SBX_E_EDIT_NO_MATCH] = "edit_no_match",
  [SBX_E_EDIT_AMBIGUOUS] = "edit_ambiguous",
  [SBX_E_TOO_LARGE] = "too_large",
  [SBX_E_PROTOCOL] = "protocol_error",
  [SBX_E_AGENT] = "agent_error",
  [SBX_E_IO] = "io_error",
  [SBX_E_PERMISSION] = "permission_denied",
  [SBX_E_EXISTS] = "already_exists",
  [SBX_E_NO_PROCESS] = "no_such_process",
  [SBX_E_TIMEOUT] = "timeout",
  [SBX_E_BUILD] = "build_failed",
  [SBX_E_LIMIT] = "limit_reached",
};

SBX_EXPORT const char *
sbx_errc_name (int code)
{
  if (code < 0)
    code = -code;
  if ((size_t) code < sizeof errc_names / sizeof errc_names[0] && errc_names[code])
    return errc_names[code];
  return "unknown_error";
}

SBX_EXPORT int
sbx_error_code (const sbx_error_t *err)
{
  return err ? err->code : SBX_OK;
}

SBX_EXPORT const char *
sbx_error_message (const sbx_error_t *err)
{
  if (err == NULL)
    return "no error";
  return err->message ? err->message : "out of memory";
}

SBX_EXPORT void
sbx_error_free (sbx_error_t *err)
{
  if (err == NULL)
    return;
  free (err->message);
  free (err);
}

static int
fail_v (sbx_error_t **err, int code, const char *suffix, const char *fmt, va_list ap)
{
  if (err == NULL || *err != NULL)
    return -code;
  sbx_error_t *e = calloc (1, sizeof *e);
  if (e == NULL)
    return -code;
  char *msg = sbx_strdup_vprintf (fmt, ap);
  if (msg && suffix)
    {
      char *full = sbx_strdup_printf ("%s: %s", msg, suffix);
      free (msg);
      msg = full;
    }
  /* A NULL message reads as "out of memory" (see sbx_error_message). */
  e->code = msg ? code : SBX_E_NOMEM;
  e->message = msg;
  *err = e;
  return -code;
}

SBX_EXPORT int
sbx_error_set (sbx_error_t **err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = fail_v (err, code, NULL, fmt, ap);
  va_end (ap);
  return r;
}

SBX_EXPORT int
sbx_error_set_errno (sbx_error_t **err, int code, int errno_value, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = fail_v (err, code, strerror (errno_value), fmt, ap);
  va_end (ap);
  return r;
}

SBX_EXPORT int
sbx_error_wrap (sbx_error_t **err, int r, const char *fmt, ...)
{
  if (err == NULL || *err == NULL)
    return r;
  sbx_error_t *e = *err;
  va_list ap;
  va_start (ap, fmt);
  cleanup_free char *context = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  /* Out of memory, the message stays as it was: the code still tells. */
  char *msg = context && e->message ? sbx_strdup_printf ("%s: %s", context, e->message) : NULL;
  if (msg)
    {
      free (e->message);
      e->message = msg;
    }
  return r;
}

SBX_EXPORT int
sbx_error_propagate (sbx_error_t **dst, sbx_error_t *src)
{
  int code = src ? src->code : SBX_E_NOMEM;
  if (dst && *dst == NULL)
    *dst = src;
  else
    sbx_error_free (src);
  return -code;
}

/* sbx's state on the host: where it lives, folders below it, and lock files
 * that processes share. */
#ifndef SBX_STATE_H
#define SBX_STATE_H

#include "internal.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* $SBX_STATE_DIR, else /var/lib/sbx for root, else $XDG_STATE_HOME/sbx, else
 * $HOME/.local/state/sbx; each must be an absolute path. *ROOT is malloc'd. */
int sbx_state_root (char **root, sbx_error_t **err);
/* ROOT/SUB (SUB may hold '/'), made with mode MODE when CREATE. */
int sbx_state_dir (const char *sub, bool create, mode_t mode, char **path, sbx_error_t **err);

/* Removes PATH and everything below it without following symlinks or
 * entering other file systems (a mount left there stays). The number of
 * entries that could not be removed, or -1. */
int sbx_remove_tree (const char *path);
/* The same for NAME in the folder DFD. */
int sbx_remove_tree_at (int dfd, const char *name);

/* DOC written whole to PATH (mode 0644): to a temporary file beside it,
 * renamed over it, so a reader sees the old document or the new one. */
int sbx_json_write_file (const char *path, json_t *doc, sbx_error_t **err);
/* The JSON document in the regular file PATH (not a link) of at most MAX
 * bytes, or NULL with errno (ENOENT: there is none; EINVAL: not one). */
json_t *sbx_json_read_file (const char *path, size_t max);

/* A sandbox (container) name, or a user or session id: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. Names become
 * host paths, so this is checked wherever one comes from. */
bool sbx_valid_name (const char *name);

/* An exclusive lock that processes share: the file ROOT/DIR/NAME.lock, held
 * with flock, removed by its last holder. */
typedef struct sbx_lock
{
  int fd;
  char *path;
} sbx_lock_t;

#define SBX_LOCK_INIT                                                                              \
  {                                                                                                \
    -1, NULL                                                                                       \
  }

/* Takes the lock, waiting at most WAIT seconds for another holder; WAITING
 * (may be NULL) is called once if it has to wait. */
int sbx_lock_take (const char *dir, const char *name, double wait, void (*waiting) (void *ud),
                   void *ud, sbx_lock_t *lock, sbx_error_t **err);
void sbx_lock_release (sbx_lock_t *lock);

#endif

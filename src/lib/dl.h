/* Libraries that only some operations need, loaded on first use (as
 * systemd does for its optional ones): a process that only talks to a
 * sandbox's agent, `sbx exec` for one, never loads libcurl's or
 * libarchive's dozens of dependencies. */
#ifndef SBX_DL_H
#define SBX_DL_H

#include "internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>

/* The functions of libcurl that the engine client calls. */
struct sbx_curl_api
{
  __typeof__ (curl_global_init) *global_init;
  __typeof__ (curl_easy_init) *easy_init;
  __typeof__ (curl_easy_setopt) *easy_setopt;
  __typeof__ (curl_easy_perform) *easy_perform;
  __typeof__ (curl_easy_getinfo) *easy_getinfo;
  __typeof__ (curl_easy_reset) *easy_reset;
  __typeof__ (curl_easy_cleanup) *easy_cleanup;
  __typeof__ (curl_easy_strerror) *easy_strerror;
  __typeof__ (curl_slist_append) *slist_append;
  __typeof__ (curl_slist_free_all) *slist_free_all;
};

/* The functions of libarchive that image bootstraps call. */
struct sbx_archive_api
{
  __typeof__ (archive_error_string) *error_string;
  __typeof__ (archive_errno) *err_no;
  __typeof__ (archive_format) *format;
  __typeof__ (archive_write_new) *write_new;
  __typeof__ (archive_write_free) *write_free;
  __typeof__ (archive_write_close) *write_close;
  __typeof__ (archive_write_header) *write_header;
  __typeof__ (archive_write_data) *write_data;
  __typeof__ (archive_write_open_fd) *write_open_fd;
  __typeof__ (archive_write_open_FILE) *write_open_FILE;
  __typeof__ (archive_write_set_format_ustar) *write_set_format_ustar;
  __typeof__ (archive_write_set_format_pax_restricted) *write_set_format_pax_restricted;
  __typeof__ (archive_read_disk_new) *read_disk_new;
  __typeof__ (archive_read_disk_open) *read_disk_open;
  __typeof__ (archive_read_disk_descend) *read_disk_descend;
  __typeof__ (archive_read_disk_set_behavior) *read_disk_set_behavior;
  __typeof__ (archive_read_disk_set_symlink_physical) *read_disk_set_symlink_physical;
  __typeof__ (archive_read_next_header2) *read_next_header2;
  __typeof__ (archive_read_data_block) *read_data_block;
  __typeof__ (archive_read_free) *read_free;
  __typeof__ (archive_entry_new) *entry_new;
  __typeof__ (archive_entry_free) *entry_free;
  __typeof__ (archive_entry_clear) *entry_clear;
  __typeof__ (archive_entry_pathname) *entry_pathname;
  __typeof__ (archive_entry_copy_pathname) *entry_copy_pathname;
  __typeof__ (archive_entry_set_pathname) *entry_set_pathname;
  __typeof__ (archive_entry_size) *entry_size;
  __typeof__ (archive_entry_set_size) *entry_set_size;
  __typeof__ (archive_entry_set_perm) *entry_set_perm;
  __typeof__ (archive_entry_set_mtime) *entry_set_mtime;
  __typeof__ (archive_entry_filetype) *entry_filetype;
  __typeof__ (archive_entry_set_filetype) *entry_set_filetype;
  __typeof__ (archive_entry_hardlink) *entry_hardlink;
  __typeof__ (archive_entry_linkify) *entry_linkify;
  __typeof__ (archive_entry_linkresolver_new) *entry_linkresolver_new;
  __typeof__ (archive_entry_linkresolver_free) *entry_linkresolver_free;
  __typeof__ (archive_entry_linkresolver_set_strategy) *entry_linkresolver_set_strategy;
};

/* Filled once loaded; read only after sbx_dl_curl (or sbx_dl_archive) said
 * 0 in this process. */
extern struct sbx_curl_api sbx_curl;
extern struct sbx_archive_api sbx_archive;

/* Loads libcurl (once per process); 0, or SBX_E_ENGINE saying what to
 * install. */
int sbx_dl_curl (sbx_error_t **err);
/* The same for libarchive. */
int sbx_dl_archive (sbx_error_t **err);

#endif

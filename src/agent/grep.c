/* GREP: a PCRE2 search over the lines of one file or of every file below a
 * directory, in slices, with match limits so that no pattern can run away
 * and a deadline so that no content (a huge sparse file, endless lines)
 * can keep it going: at the deadline, the matches found so far come back
 * flagged truncated. */
#include "agent.h"
#include "glob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define DEFAULT_MAX_MATCHES 10000
#define MAX_LINE_OUT 4096
#define BLOCK_SIZE (64u << 10)
/* Lines are matched whole up to this length, longer ones on their start. */
#define MAX_LINE_MATCHED (8u << 20)
#define MATCH_LIMIT 1000000
#define DEPTH_LIMIT 10000
#define HEAP_LIMIT_KIB (64u << 10)
#define JIT_STACK_MAX (1u << 20)
#define GREP_DEADLINE_MS 30000

typedef struct grep
{
  conn_t *c;
  pcre2_code *re;
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  pcre2_jit_stack *jit_stack;
  sbx_glob_t *glob;
  bool glob_paths; /* the glob has a '/': it names relative paths */
  int64_t max, count, deadline;
  int64_t limit, sent; /* bytes of paths and lines: the bound (0: none), sent */
  bool truncated;
  bool list;    /* name the files, read nothing */
  bool walking; /* a directory is searched (else one file, or PATHS) */
  walk_t w;
  char *paths; /* the files asked for, NUL-separated, from paths_pos */
  size_t paths_len, paths_pos;
  /* The file being searched. */
  int fd;
  char *path;
  char *buf; /* lines being searched; grows up to MAX_LINE_MATCHED */
  size_t cap, len, pos;
  int64_t line_no;
  bool first, eof, skipping;
} grep_t;

/* Reports LINE if it matches; -1 to stop the search. */
static int
match_line (grep_t *g, const char *line, size_t n)
{
  g->line_no++;
  if (n && line[n - 1] == '\r')
    n--;
  /* No match, or a match limit hit on this line: the line is skipped. */
  if (pcre2_match (g->re, (PCRE2_SPTR) line, n, 0, 0, g->md, g->mctx) < 0)
    return 0;
  size_t cut = n;
  if (cut > MAX_LINE_OUT)
    {
      /* Not in the middle of a UTF-8 character. */
      cut = MAX_LINE_OUT;
      while (cut > 0 && ((unsigned char) line[cut] & 0xc0) == 0x80)
        cut--;
    }
  int64_t cost = (int64_t) (strlen (g->path) + cut) + ENTRY_OVERHEAD;
  if (g->count == g->max || (g->limit && g->sent + cost > g->limit))
    {
      g->truncated = true;
      return -1;
    }
  g->count++;
  g->sent += cost;
  sbx_frame_begin (&g->c->out, SBX_M_MATCH);
  sbx_frame_str (&g->c->out, SBX_T_PATH, g->path);
  sbx_frame_int (&g->c->out, SBX_T_LINE_NO, g->line_no);
  sbx_frame_bytes (&g->c->out, SBX_T_LINE, line, cut);
  sbx_frame_end (&g->c->out);
  return 0;
}

static void
file_done (grep_t *g)
{
  close_fd (&g->fd);
  free (g->path);
  g->path = NULL;
}

/* Starts searching the open file FD, named PATH. */
static void
file_start (grep_t *g, int fd, const char *path)
{
  g->path = strdup (path);
  if (g->path == NULL)
    {
      close (fd);
      return;
    }
  g->fd = fd;
  g->len = g->pos = 0;
  g->line_no = 0;
  g->first = true;
  g->eof = g->skipping = false;
}

/* Searches on in the current file, line by line, in large blocks (not
 * mmap: a file truncated under a mapping would kill the agent with
 * SIGBUS), until UNTIL or until the host is behind. 1 more to do, 0 the
 * file is done, -1 the search is over. Binary files are skipped. */
static int
search_some (grep_t *g, int64_t until)
{
  for (;;)
    {
      char *nl;
      while ((nl = memchr (g->buf + g->pos, '\n', g->len - g->pos)) != NULL)
        {
          const char *p = g->buf + g->pos;
          /* The end of an over-long line already matched on its start. */
          if (!g->skipping && match_line (g, p, (size_t) (nl - p)) < 0)
            return -1;
          g->skipping = false;
          g->pos = (size_t) (nl + 1 - g->buf);
          if (!conn_room (g->c))
            return 1;
        }
      size_t rest = g->len - g->pos;
      if (g->eof)
        return rest && !g->skipping && match_line (g, g->buf + g->pos, rest) < 0 ? -1 : 0;
      if (now_ms () >= until)
        return 1;
      if (rest == g->cap)
        {
          /* One line fills the buffer: grow it, or match what it holds. */
          char *nb = g->cap < MAX_LINE_MATCHED ? realloc (g->buf, g->cap * 2) : NULL;
          if (nb)
            {
              g->buf = nb;
              g->cap *= 2;
            }
          else
            {
              if (!g->skipping && match_line (g, g->buf, rest) < 0)
                return -1;
              g->skipping = true;
              rest = 0;
              g->pos = g->len;
            }
        }
      memmove (g->buf, g->buf + g->pos, rest);
      g->len = rest;
      g->pos = 0;
      ssize_t n = read_full (g->fd, g->buf + g->len, g->cap - g->len);
      if (n < 0)
        return 0; /* unreadable: skipped like binary files */
      g->eof = (size_t) n < g->cap - g->len;
      g->len += (size_t) n;
      if (g->first && looks_binary (g->buf, g->len))
        return 0;
      g->first = false;
    }
}

/* LIST: ENTRY{PATH} for a file a search would read; -1 once the bounds are
 * reached. */
static int
name_file (grep_t *g, const char *path, int64_t size)
{
  int64_t cost = (int64_t) strlen (path) + ENTRY_OVERHEAD;
  if (g->count == g->max || (g->limit && g->sent + cost > g->limit))
    {
      g->truncated = true;
      return -1;
    }
  g->count++;
  g->sent += cost;
  sbx_frame_begin (&g->c->out, SBX_M_ENTRY);
  sbx_frame_str (&g->c->out, SBX_T_PATH, path);
  sbx_frame_int (&g->c->out, SBX_T_KIND, SBX_KIND_FILE);
  sbx_frame_int (&g->c->out, SBX_T_SIZE, size);
  sbx_frame_end (&g->c->out);
  return 0;
}

/* The next of the files asked for (PATHS) that is a regular file, opened;
 * false when none is left. */
static bool
next_path (grep_t *g)
{
  while (g->paths_pos < g->paths_len)
    {
      const char *p = g->paths + g->paths_pos;
      g->paths_pos += strlen (p) + 1;
      if (p[0] != '/')
        continue;
      int fd = open (p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
      struct stat st;
      if (fd < 0)
        continue;
      if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode))
        {
          file_start (g, fd, p);
          if (g->fd >= 0)
            return true;
        }
      else
        close (fd);
    }
  return false;
}

static bool
grep_enter (walk_t *w, const char *rel)
{
  const grep_t *g = w->data;
  return sbx_glob_could_match_below (g->glob, rel);
}

static int
grep_visit (walk_t *w, int dirfd, const char *name, unsigned char type)
{
  grep_t *g = w->data;
  struct stat st;
  if (type != DT_REG && type != DT_LNK)
    return 0;
  if (g->glob && !sbx_glob_match (g->glob, g->glob_paths ? w->path + w->rel_off : name))
    return 0;
  /* Links to anything but regular files are not opened: devices and
     FIFOs can block or have side effects. */
  if (type == DT_LNK && (fstatat (dirfd, name, &st, 0) < 0 || !S_ISREG (st.st_mode)))
    return 0;
  int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return 0;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      return 0;
    }
  if (g->list)
    {
      close (fd);
      return name_file (g, w->path, st.st_size);
    }
  file_start (g, fd, w->path);
  return 1; /* search it before walking on */
}

static void
grep_free (grep_t *g)
{
  pcre2_code_free (g->re);
  pcre2_match_data_free (g->md);
  pcre2_match_context_free (g->mctx);
  pcre2_jit_stack_free (g->jit_stack);
  sbx_glob_free (g->glob);
  file_done (g);
  walk_end (&g->w);
  free (g->buf);
  free (g->paths);
  free (g);
}

static bool
grep_step (conn_t *c)
{
  grep_t *g = c->job_data;
  int64_t until = now_ms () + SLICE_MS;
  const char *why = NULL;
  for (;;)
    {
      if (!conn_room (c))
        {
          c->want_room = true;
          return false;
        }
      int64_t now = now_ms ();
      if (now >= g->deadline)
        {
          g->truncated = true;
          why = "the search ran past its time limit";
          break;
        }
      if (now >= until)
        {
          conn_wake (c);
          return false;
        }
      int r;
      if (g->fd >= 0)
        {
          if ((r = search_some (g, until)) < 0)
            break;
          if (r == 0)
            file_done (g);
        }
      else if (g->paths)
        {
          if (!next_path (g))
            break;
        }
      else if (!g->walking || (r = walk_step (&g->w, until)) == 0)
        break;
      else if (r < 0)
        break;
    }
  g->truncated |= g->w.truncated;
  reply_end (c, g->truncated, why);
  grep_free (g);
  return true;
}

static void
grep_abort (conn_t *c)
{
  grep_free (c->job_data);
}

static const job_ops_t grep_ops = { grep_step, NULL, grep_abort };

/* Compiles the pattern and sets up matching; replies ERR on failure. */
static int
grep_prepare (grep_t *g, const char *pattern, const char *glob, int64_t flags)
{
  int code;
  PCRE2_SIZE offset;
  uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (flags & SBX_F_ICASE ? PCRE2_CASELESS : 0);
  g->re = pcre2_compile ((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, opts, &code, &offset, NULL);
  if (g->re == NULL)
    {
      PCRE2_UCHAR msg[256];
      if (pcre2_get_error_message (code, msg, sizeof msg) < 0)
        strcpy ((char *) msg, "unknown error");
      reply_err (g->c, SBX_E_PATTERN, "invalid regular expression at offset %zu: %s",
                 (size_t) offset, (const char *) msg);
      return -1;
    }
  const char *error;
  if (glob && sbx_glob_compile (glob, &g->glob, &error) < 0)
    {
      reply_err (g->c, SBX_E_PATTERN, "%s", error);
      return -1;
    }
  g->glob_paths = glob && strchr (glob, '/');
  g->md = pcre2_match_data_create (1, NULL);
  g->mctx = pcre2_match_context_create (NULL);
  g->buf = malloc (BLOCK_SIZE);
  g->cap = BLOCK_SIZE;
  if (g->md == NULL || g->mctx == NULL || g->buf == NULL)
    {
      reply_err (g->c, SBX_E_IO, "out of memory");
      return -1;
    }
  pcre2_set_match_limit (g->mctx, MATCH_LIMIT);
  pcre2_set_depth_limit (g->mctx, DEPTH_LIMIT);
  pcre2_set_heap_limit (g->mctx, HEAP_LIMIT_KIB);
  /* JIT where the platform allows it; the interpreter otherwise. */
  if (pcre2_jit_compile (g->re, PCRE2_JIT_COMPLETE) == 0
      && (g->jit_stack = pcre2_jit_stack_create (32 * 1024, JIT_STACK_MAX, NULL)) != NULL)
    pcre2_jit_stack_assign (g->mctx, NULL, g->jit_stack);
  return 0;
}

void
handle_grep (conn_t *c, const sbx_msg_t *m)
{
  int64_t flags = 0, max = 0, limit = 0, deadline;
  cleanup_free char *path = req_path (c, m, SBX_T_PATH);
  cleanup_free char *pattern = path ? req_str (c, m, SBX_T_PATTERN, SBX_PROTO_MAX_BODY) : NULL;
  cleanup_free char *glob = pattern && sbx_msg_field (m, SBX_T_GLOB)
                                ? req_str (c, m, SBX_T_GLOB, SBX_PROTO_MAX_BODY)
                                : NULL;
  if (pattern == NULL || (sbx_msg_field (m, SBX_T_GLOB) && glob == NULL)
      || req_int (c, m, SBX_T_FLAGS, 0, INT32_MAX, &flags) < 0
      || req_int (c, m, SBX_T_MAX_RESULTS, 0, INT64_MAX, &max) < 0
      || req_int (c, m, SBX_T_LIMIT, 0, INT64_MAX, &limit) < 0
      || req_deadline (c, m, GREP_DEADLINE_MS, &deadline) < 0)
    return;
  grep_t *g = calloc (1, sizeof *g);
  if (g == NULL)
    {
      reply_err (c, SBX_E_IO, "out of memory");
      return;
    }
  *g = (grep_t){ .c = c,
                 .fd = -1,
                 .max = max ? max : DEFAULT_MAX_MATCHES,
                 .deadline = deadline,
                 .limit = limit,
                 .list = flags & SBX_F_LIST };
  struct stat st;
  const sbx_field_t *paths = sbx_msg_field (m, SBX_T_PATHS);
  if (grep_prepare (g, pattern, glob, flags) < 0)
    goto fail;
  if (paths)
    {
      /* The files asked for, NUL-terminated each. */
      if ((g->paths = malloc (paths->len + 1)) == NULL)
        {
          reply_err (c, SBX_E_IO, "out of memory");
          goto fail;
        }
      memcpy (g->paths, paths->data, paths->len);
      g->paths[paths->len] = '\0';
      g->paths_len = paths->len;
    }
  else if (stat (path, &st) < 0)
    {
      reply_errno (c, errno, "cannot search %s", path);
      goto fail;
    }
  else if (S_ISREG (st.st_mode) && g->list)
    {
      if (name_file (g, path, st.st_size) < 0)
        g->truncated = true;
    }
  else if (S_ISREG (st.st_mode))
    {
      /* A file named explicitly is searched whatever its name. */
      int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
      if (fd < 0)
        {
          reply_errno (c, errno, "cannot search %s", path);
          goto fail;
        }
      file_start (g, fd, path);
    }
  else if (S_ISDIR (st.st_mode))
    {
      int dfd = walk_open_root (c, path);
      if (dfd < 0)
        goto fail;
      g->w = (walk_t){ .hidden = flags & SBX_F_HIDDEN,
                       .enter = g->glob_paths ? grep_enter : NULL,
                       .visit = grep_visit,
                       .data = g };
      walk_start (&g->w, dfd, path);
      g->walking = true;
    }
  else
    {
      reply_err (c, SBX_E_INVALID, "%s is neither a file nor a directory", path);
      goto fail;
    }
  conn_start_job (c, &grep_ops, g);
  return;
fail:
  grep_free (g);
}

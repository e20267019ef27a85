/* Docker Engine REST API client: libcurl for HTTP, jansson for JSON.
 *
 * One engine context per process (per engine address, in fact: see
 * sbx_engine_get), shared by every sandbox, image and build: its address,
 * its negotiated API version, and a few curl easy handles kept between
 * requests so that their connections stay open (a request then costs a
 * round trip on the socket, not a connect). Threads take a handle each.
 * Never runs the docker CLI. */
#include "dl.h"
#include "engine.h"
#include "engine_addr.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Bounds on what the engine may send back: a whole body, and one line of a
 * streamed reply (pull and import progress). */
#define MAX_RESPONSE ((size_t) 64 << 20)
#define MAX_STREAM_LINE ((size_t) 1 << 20)
#define CONNECT_TIMEOUT_S 5L
/* Every request has a time limit (SBX_ENGINE_TIMEOUT overrides it), so that
 * an engine that accepts and never answers fails the call instead of
 * hanging it; streamed replies (builds, pulls, imports) may take long, but
 * fail after this long without a byte. */
#define DEFAULT_TIMEOUT_S 30L
#define MAX_TIMEOUT_S 3600L
#define STREAM_STALL_S 600L
/* A stop waits for the container's own grace period; give the engine this
 * much more before calling it hung. */
#define STOP_SLACK_S 30L
/* Docker 19.03. Older engines lack fields the rest of sbx relies on. */
#define MIN_API "1.40"
/* Idle curl handles a context keeps for the next requests. */
#define IDLE_HANDLES 4

struct sbx_engine
{
  char *key; /* the environment it was made from */
  sbx_engine_addr_t addr;
  char api[16];
  bool tls;
  char *ca, *cert, *key_file;
  struct curl_slist *json_headers;  /* requests with a JSON body */
  struct curl_slist *plain_headers; /* everything else */
  long timeout_s;                   /* for requests that set none */
  pthread_mutex_t lock;             /* the idle handles */
  CURL *idle[IDLE_HANDLES];
  int nidle;
  pid_t pid;               /* the process the idle handles belong to */
  struct sbx_engine *next; /* the process's other contexts */
};

/* ------------------------------------------------------------ plumbing */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void
curl_init_once (void)
{
  curl_init_result = sbx_curl.global_init (CURL_GLOBAL_DEFAULT);
}

/* Where response bytes go: a whole body, or (STREAM) newline-separated JSON
 * objects handed to ON_OBJECT as each line completes. */
struct sink
{
  char *buf;
  size_t len, cap, limit;
  bool too_large;
  bool stream;
  void (*on_object) (json_t *obj, void *ud);
  void *ud;
};

static bool
sink_append (struct sink *s, const char *data, size_t n)
{
  if (n > s->limit - s->len)
    {
      s->too_large = true;
      return false;
    }
  if (s->len + n + 1 > s->cap)
    {
      size_t cap = s->cap ? s->cap : 4096;
      while (cap < s->len + n + 1)
        cap *= 2;
      char *b = realloc (s->buf, cap);
      if (b == NULL)
        return false;
      s->buf = b;
      s->cap = cap;
    }
  memcpy (s->buf + s->len, data, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return true;
}

static void
sink_emit_line (struct sink *s, const char *line, size_t len)
{
  while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
    len--;
  if (len == 0)
    return;
  json_t *obj = json_loadb (line, len, 0, NULL);
  /* Lines that are not JSON objects carry nothing sbx acts on. */
  if (obj && json_is_object (obj))
    s->on_object (obj, s->ud);
  json_decref (obj);
}

/* Hands every complete line in the buffer to the handler and keeps the rest. */
static void
sink_drain_lines (struct sink *s, bool final)
{
  size_t start = 0;
  for (;;)
    {
      char *nl = memchr (s->buf + start, '\n', s->len - start);
      if (nl == NULL)
        break;
      sink_emit_line (s, s->buf + start, nl - (s->buf + start));
      start = nl + 1 - s->buf;
    }
  if (final && start < s->len)
    {
      sink_emit_line (s, s->buf + start, s->len - start);
      start = s->len;
    }
  memmove (s->buf, s->buf + start, s->len - start);
  s->len -= start;
}

static size_t
on_write (char *data, size_t size, size_t nmemb, void *userdata)
{
  struct sink *s = userdata;
  size_t n = size * nmemb;
  if (!sink_append (s, data, n))
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  if (s->stream)
    sink_drain_lines (s, false);
  return n;
}

struct upload
{
  FILE *file;
  bool failed;
  int error;
};

static size_t
on_read (char *buffer, size_t size, size_t nitems, void *userdata)
{
  struct upload *u = userdata;
  size_t n = fread (buffer, 1, size * nitems, u->file);
  if (n == 0 && ferror (u->file))
    {
      u->failed = true;
      u->error = errno;
      return CURL_READFUNC_ABORT;
    }
  return n;
}

struct call
{
  char *api_header; /* when set, receives the Api-Version header (16 bytes) */
  const char *method;
  const char *path; /* below the version prefix, or the full path if UNVERSIONED */
  bool unversioned;
  const char *body;       /* JSON text, or NULL */
  struct upload *upload;  /* streamed request body (a tar), or NULL */
  curl_off_t upload_size; /* -1: unknown, sent chunked */
  long timeout_s;         /* 0: the engine's default */
  struct sink *sink;
};

static int
fail_unreachable (sbx_engine_t *e, CURL *h, const char *errbuf, CURLcode rc, sbx_error_t **err)
{
  long os_errno = 0;
  sbx_curl.easy_getinfo (h, CURLINFO_OS_ERRNO, &os_errno);
  if (e->addr.kind == SBX_ADDR_UNIX && (os_errno == EACCES || os_errno == EPERM))
    return sbx_error_set (err, SBX_E_PERMISSION,
                          "permission denied on the Docker engine's socket %s; run as root, or add "
                          "your user to the docker group (`usermod -aG docker $USER`, then log in "
                          "again)",
                          e->addr.socket_path);
  /* For a Unix socket, curl's text names "localhost port 80", which misleads;
   * the system's reason ("No such file or directory") says what is wrong. */
  const char *reason;
  if (e->addr.kind == SBX_ADDR_UNIX && os_errno != 0)
    reason = strerror ((int) os_errno);
  else
    reason = errbuf[0] ? errbuf : sbx_curl.easy_strerror (rc);
  return sbx_error_set (
      err, SBX_E_ENGINE,
      "cannot reach the Docker engine at %s (%s); start dockerd (for example "
      "`dockerd &` or `systemctl start docker`) or point DOCKER_HOST at a running "
      "engine",
      e->addr.address, reason);
}

static size_t
on_header (char *data, size_t size, size_t nmemb, void *userdata)
{
  char *api = userdata;
  size_t n = size * nmemb;
  static const char name[] = "Api-Version:";
  if (n > sizeof name - 1 && strncasecmp (data, name, sizeof name - 1) == 0)
    {
      const char *v = data + sizeof name - 1, *end = data + n;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
      snprintf (api, 16, "%.*s", (int) (end - v), v);
    }
  return n;
}

/* Performs one request. Returns 0 once the engine has answered (any HTTP
 * status, in *STATUS), or fails when it could not be reached or the answer
 * could not be received. */
/* A handle of E's for one request: an idle one (its connection may still be
 * open), or a new one; NULL when out of memory. */
static CURL *
take_handle (sbx_engine_t *e)
{
  pthread_mutex_lock (&e->lock);
  /* After a fork, the idle handles' connections are the parent's too: two
     processes talking on one socket would mix their requests. */
  if (e->pid != getpid ())
    {
      for (int i = 0; i < e->nidle; i++)
        sbx_curl.easy_cleanup (e->idle[i]);
      e->nidle = 0;
      e->pid = getpid ();
    }
  CURL *h = e->nidle > 0 ? e->idle[--e->nidle] : NULL;
  pthread_mutex_unlock (&e->lock);
  return h ? h : sbx_curl.easy_init ();
}

static void
give_back (sbx_engine_t *e, CURL *h)
{
  pthread_mutex_lock (&e->lock);
  if (e->nidle < IDLE_HANDLES && e->pid == getpid ())
    {
      e->idle[e->nidle++] = h;
      h = NULL;
    }
  pthread_mutex_unlock (&e->lock);
  if (h)
    sbx_curl.easy_cleanup (h);
}

static int perform_on (sbx_engine_t *e, CURL *h, const struct call *c, long *status,
                       sbx_error_t **err);

static int
perform (sbx_engine_t *e, const struct call *c, long *status, sbx_error_t **err)
{
  CURL *h = take_handle (e);
  if (h == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory (starting libcurl)");
  int r = perform_on (e, h, c, status, err);
  give_back (e, h);
  return r;
}

static int
perform_on (sbx_engine_t *e, CURL *h, const struct call *c, long *status, sbx_error_t **err)
{
  char errbuf[CURL_ERROR_SIZE] = "";
  cleanup_free char *url = NULL;
  if (c->unversioned)
    url = sbx_strdup_printf ("%s%s", e->addr.base_url, c->path);
  else
    url = sbx_strdup_printf ("%s/v%s%s", e->addr.base_url, e->api, c->path);
  if (url == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");

  /* A reset keeps the open connection; it only forgets the last request's
   * options so none can leak into this one. */
  sbx_curl.easy_reset (h);
  bool ok = sbx_curl.easy_setopt (h, CURLOPT_URL, url) == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S) == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1)
                   == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_WRITEFUNCTION, on_write) == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_WRITEDATA, c->sink) == CURLE_OK
            && sbx_curl.easy_setopt (h, CURLOPT_CUSTOMREQUEST, c->method) == CURLE_OK;
  if (ok && e->addr.kind == SBX_ADDR_UNIX)
    /* Proxy variables must not divert a local socket's requests. */
    ok = sbx_curl.easy_setopt (h, CURLOPT_UNIX_SOCKET_PATH, e->addr.socket_path) == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_NOPROXY, "*") == CURLE_OK;
  if (ok && e->tls)
    ok = sbx_curl.easy_setopt (h, CURLOPT_CAINFO, e->ca) == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_SSLCERT, e->cert) == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_SSLKEY, e->key_file) == CURLE_OK;
  if (ok && e->addr.kind == SBX_ADDR_TCP)
    ok = sbx_curl.easy_setopt (h, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
  long limit = c->timeout_s ? c->timeout_s : e->timeout_s;
  if (ok && c->sink->stream)
    ok = sbx_curl.easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_LOW_SPEED_TIME, STREAM_STALL_S) == CURLE_OK;
  else if (ok)
    ok = sbx_curl.easy_setopt (h, CURLOPT_TIMEOUT, limit) == CURLE_OK;
  if (ok && c->api_header)
    ok = sbx_curl.easy_setopt (h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_HEADERDATA, c->api_header) == CURLE_OK;

  struct curl_slist *chunked = NULL;
  if (ok && c->upload)
    {
      ok = sbx_curl.easy_setopt (h, CURLOPT_POST, 1L) == CURLE_OK
           && sbx_curl.easy_setopt (h, CURLOPT_READFUNCTION, on_read) == CURLE_OK
           && sbx_curl.easy_setopt (h, CURLOPT_READDATA, c->upload) == CURLE_OK
           && sbx_curl.easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, c->upload_size) == CURLE_OK;
      /* Without a length, HTTP/1.1 needs chunked encoding; "Expect:" stops
       * curl waiting for a "100 Continue" before sending. */
      chunked = sbx_curl.slist_append (NULL, "Content-Type: application/x-tar");
      if (chunked)
        chunked = sbx_curl.slist_append (chunked, "Expect:");
      if (chunked && c->upload_size < 0)
        {
          struct curl_slist *l = sbx_curl.slist_append (chunked, "Transfer-Encoding: chunked");
          if (l == NULL)
            sbx_curl.slist_free_all (chunked);
          chunked = l;
        }
      if (chunked == NULL)
        {
          sbx_curl.easy_reset (h);
          return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
        }
      ok = ok && sbx_curl.easy_setopt (h, CURLOPT_HTTPHEADER, chunked) == CURLE_OK;
    }
  else if (ok && c->body)
    ok = sbx_curl.easy_setopt (h, CURLOPT_POSTFIELDS, c->body) == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen (c->body))
                == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_HTTPHEADER, e->json_headers) == CURLE_OK;
  else if (ok && strcmp (c->method, "POST") == 0)
    /* An explicit empty body, so the request carries Content-Length: 0. */
    ok = sbx_curl.easy_setopt (h, CURLOPT_POSTFIELDS, "") == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0) == CURLE_OK
         && sbx_curl.easy_setopt (h, CURLOPT_HTTPHEADER, e->plain_headers) == CURLE_OK;
  else if (ok)
    ok = sbx_curl.easy_setopt (h, CURLOPT_HTTPHEADER, e->plain_headers) == CURLE_OK;

  if (!ok)
    {
      sbx_curl.easy_reset (h);
      sbx_curl.slist_free_all (chunked);
      return sbx_error_set (err, SBX_E_ENGINE,
                            "libcurl rejected an option for the Docker engine request %s %s; "
                            "is libcurl older than 7.85?",
                            c->method, c->path);
    }

  CURLcode rc;
  /* A Unix socket whose queue of connections is full refuses at once
   * (EAGAIN) when the engine is busy accepting: nothing was sent, so trying
   * again a moment later is safe (for 1 s at most). */
  for (int attempt = 0;; attempt++)
    {
      rc = sbx_curl.easy_perform (h);
      long os_errno = 0;
      if (rc == CURLE_COULDNT_CONNECT && e->addr.kind == SBX_ADDR_UNIX && c->upload == NULL
          && attempt < 40)
        sbx_curl.easy_getinfo (h, CURLINFO_OS_ERRNO, &os_errno);
      if (os_errno != EAGAIN)
        break;
      usleep (25000);
    }
  /* The handle must not keep pointers into this call's stack or the list
   * freed below. */
  sbx_curl.easy_setopt (h, CURLOPT_HTTPHEADER, NULL);
  sbx_curl.easy_setopt (h, CURLOPT_ERRORBUFFER, NULL);
  sbx_curl.slist_free_all (chunked);
  if (c->sink->stream && rc == CURLE_OK)
    sink_drain_lines (c->sink, true);

  *status = 0;
  sbx_curl.easy_getinfo (h, CURLINFO_RESPONSE_CODE, status);
  if (rc == CURLE_OK)
    return 0;

  switch (rc)
    {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return fail_unreachable (e, h, errbuf, rc, err);
    case CURLE_OPERATION_TIMEDOUT:
      {
        double connected = 0;
        sbx_curl.easy_getinfo (h, CURLINFO_CONNECT_TIME, &connected);
        if (connected == 0)
          return fail_unreachable (e, h, errbuf, rc, err);
        if (c->sink->stream)
          return sbx_error_set (err, SBX_E_TIMEOUT,
                                "the Docker engine at %s sent nothing for %ld s during %s %.*s; it "
                                "may be overloaded or hung",
                                e->addr.address, STREAM_STALL_S, c->method,
                                (int) strcspn (c->path, "?"), c->path);
        return sbx_error_set (
            err, SBX_E_TIMEOUT,
            "the Docker engine at %s did not answer %s %.*s within %ld s; it may be "
            "overloaded or hung (SBX_ENGINE_TIMEOUT sets this limit)",
            e->addr.address, c->method, (int) strcspn (c->path, "?"), c->path, limit);
      }
    case CURLE_WRITE_ERROR:
      if (c->sink->too_large)
        return sbx_error_set (
            err, SBX_E_ENGINE,
            "engine response too large: %s of the reply to %s %.*s went past %zu MiB",
            c->sink->stream ? "a line" : "the body", c->method, (int) strcspn (c->path, "?"),
            c->path, (c->sink->stream ? MAX_STREAM_LINE : MAX_RESPONSE) >> 20);
      return sbx_error_set (err, SBX_E_NOMEM,
                            "out of memory while reading the Docker engine's reply");
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_READ_ERROR:
      if (c->upload && c->upload->failed)
        return sbx_error_set_errno (err, SBX_E_IO, c->upload->error,
                                    "could not read the data being sent to the Docker engine");
      break;
    default:
      break;
    }
  if (*status == 0)
    return fail_unreachable (e, h, errbuf, rc, err);
  return sbx_error_set (err, SBX_E_ENGINE,
                        "the connection to the Docker engine at %s failed during %s %s (%s); check "
                        "that dockerd is still running",
                        e->addr.address, c->method, c->path,
                        errbuf[0] ? errbuf : sbx_curl.easy_strerror (rc));
}

/* A request whose whole reply is read and parsed as JSON; API_HEADER (may
 * be NULL) receives the Api-Version header. */
static int
call_json_h (sbx_engine_t *e, const char *method, const char *path, bool unversioned, json_t *body,
             long timeout_s, char *api_header, long *status, json_t **response, sbx_error_t **err)
{
  if (response)
    *response = NULL;
  if (e == NULL || method == NULL || path == NULL || path[0] != '/')
    return sbx_error_set (err, SBX_E_INVALID, "internal error: bad Docker engine request path");
  for (const char *p = path; *p; p++)
    if ((unsigned char) *p <= ' ' || *p == 0x7f)
      return sbx_error_set (err, SBX_E_INVALID,
                            "internal error: the Docker engine request path contains a space or "
                            "control character");
  cleanup_free char *text = NULL;
  if (body)
    {
      text = json_dumps (body, JSON_COMPACT);
      if (text == NULL)
        return sbx_error_set (err, SBX_E_NOMEM, "out of memory (or invalid JSON) for %s %s", method,
                              path);
    }
  struct sink sink = { .limit = MAX_RESPONSE };
  struct call c = {
    .api_header = api_header,
    .method = method,
    .path = path,
    .unversioned = unversioned,
    .body = text,
    .upload_size = -1,
    .timeout_s = timeout_s,
    .sink = &sink,
  };
  long st = 0;
  int r = perform (e, &c, &st, err);
  if (r == 0 && response && sink.len > 0)
    *response = json_loadb (sink.buf, sink.len, 0, NULL);
  free (sink.buf);
  if (status)
    *status = st;
  return r;
}

static int
call_json (sbx_engine_t *e, const char *method, const char *path, bool unversioned, json_t *body,
           long timeout_s, long *status, json_t **response, sbx_error_t **err)
{
  return call_json_h (e, method, path, unversioned, body, timeout_s, NULL, status, response, err);
}

/* "M.N" -> M * 1000 + N; -1 when malformed. */
static long
api_number (const char *v)
{
  char *end;
  errno = 0;
  long major = strtol (v, &end, 10);
  if (end == v || *end != '.' || errno)
    return -1;
  const char *m = end + 1;
  long minor = strtol (m, &end, 10);
  if (end == m || *end != '\0' || errno || major < 0 || minor < 0 || minor >= 1000 || major > 1000)
    return -1;
  return major * 1000 + minor;
}

/* ------------------------------------------------------------- public */

const char *
sbx_engine_message (json_t *response, long status)
{
  const char *m = json_string_value (json_object_get (response, "message"));
  if (m && *m)
    return m;
  static __thread char buf[32];
  snprintf (buf, sizeof buf, "HTTP %ld", status);
  return buf;
}

/* Percent-encodes everything outside RFC 3986's unreserved set and KEEP. */
static char *
escape_keep (const char *s, const char *keep)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen (s);
  if (n > (SIZE_MAX - 1) / 3)
    return NULL;
  char *out = malloc (n * 3 + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
          || *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep && strchr (keep, *p)))
        *o++ = (char) *p;
      else
        {
          *o++ = '%';
          *o++ = hex[*p >> 4];
          *o++ = hex[*p & 15];
        }
    }
  *o = '\0';
  return out;
}

char *
sbx_engine_escape (sbx_engine_t *e, const char *s)
{
  (void) e;
  return s ? escape_keep (s, NULL) : NULL;
}

/* For a context that never made it into the process's list. */
static void
engine_free (sbx_engine_t *e)
{
  if (e == NULL)
    return;
  for (int i = 0; i < e->nidle; i++)
    sbx_curl.easy_cleanup (e->idle[i]);
  pthread_mutex_destroy (&e->lock);
  sbx_curl.slist_free_all (e->json_headers);
  sbx_curl.slist_free_all (e->plain_headers);
  sbx_engine_addr_clear (&e->addr);
  free (e->key);
  free (e->ca);
  free (e->cert);
  free (e->key_file);
  free (e);
}

const char *
sbx_engine_address (const sbx_engine_t *e)
{
  return e ? e->addr.address : SBX_ENGINE_DEFAULT_HOST;
}

const char *
sbx_engine_api_version (const sbx_engine_t *e)
{
  return e ? e->api : "";
}

bool
sbx_engine_is_local (const sbx_engine_t *e)
{
  return e && e->addr.kind == SBX_ADDR_UNIX;
}

static int
setup_tls (sbx_engine_t *e, sbx_error_t **err)
{
  const char *dir = getenv ("DOCKER_CERT_PATH");
  cleanup_free char *home_dir = NULL;
  if (dir == NULL || *dir == '\0')
    {
      const char *home = getenv ("HOME");
      if (home == NULL || *home == '\0')
        return sbx_error_set (
            err, SBX_E_INVALID,
            "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME is; "
            "set DOCKER_CERT_PATH to the folder holding ca.pem, cert.pem and key.pem");
      home_dir = sbx_strdup_printf ("%s/.docker", home);
      if (home_dir == NULL)
        return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
      dir = home_dir;
    }
  e->ca = sbx_strdup_printf ("%s/ca.pem", dir);
  e->cert = sbx_strdup_printf ("%s/cert.pem", dir);
  e->key_file = sbx_strdup_printf ("%s/key.pem", dir);
  if (!e->ca || !e->cert || !e->key_file)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  const char *files[] = { e->ca, e->cert, e->key_file };
  for (size_t i = 0; i < 3; i++)
    if (access (files[i], R_OK) < 0)
      return sbx_error_set_errno (err, SBX_E_INVALID, errno,
                                  "DOCKER_TLS_VERIFY is set but %s cannot be read; point "
                                  "DOCKER_CERT_PATH at the engine's client certificates",
                                  files[i]);
  e->tls = true;
  return 0;
}

/* A new context for the engine the environment names (KEY says how, see
 * sbx_engine_get), its API version negotiated. */
static int
engine_open (const char *key, sbx_engine_t **out, sbx_error_t **err)
{
  *out = NULL;
  sbx_engine_t *e = calloc (1, sizeof *e);
  if (e == NULL || (e->key = strdup (key)) == NULL)
    {
      free (e);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  pthread_mutex_init (&e->lock, NULL);
  e->pid = getpid ();

  const char *host = getenv ("DOCKER_HOST");
  const char *verify = getenv ("DOCKER_TLS_VERIFY");
  /* As the docker client: any non-empty DOCKER_TLS_VERIFY turns TLS on. */
  bool want_tls = verify && *verify;
  const char *why = NULL;
  int r = sbx_engine_addr_parse (host, want_tls, &e->addr, &why);
  if (r == -2)
    {
      engine_free (e);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
    }
  if (r < 0)
    {
      engine_free (e);
      return sbx_error_set (err, SBX_E_INVALID, "DOCKER_HOST=%s is not a valid engine address: %s",
                            host, why);
    }
  if (want_tls && e->addr.kind == SBX_ADDR_TCP && (r = setup_tls (e, err)) < 0)
    {
      engine_free (e);
      return r;
    }

  e->timeout_s = DEFAULT_TIMEOUT_S;
  const char *limit = getenv ("SBX_ENGINE_TIMEOUT");
  if (limit && *limit)
    {
      char *end;
      long v = strtol (limit, &end, 10);
      if (*end || v < 1 || v > MAX_TIMEOUT_S)
        {
          engine_free (e);
          return sbx_error_set (err, SBX_E_INVALID,
                                "SBX_ENGINE_TIMEOUT=%s is not a number of seconds "
                                "from 1 to %ld",
                                limit, MAX_TIMEOUT_S);
        }
      e->timeout_s = v;
    }
  e->json_headers = sbx_curl.slist_append (NULL, "Content-Type: application/json");
  if (e->json_headers)
    e->json_headers = sbx_curl.slist_append (e->json_headers, "Expect:");
  e->plain_headers = sbx_curl.slist_append (NULL, "Expect:");
  if (e->json_headers == NULL || e->plain_headers == NULL)
    {
      engine_free (e);
      return sbx_error_set (err, SBX_E_NOMEM, "out of memory (starting libcurl)");
    }

  /* The engine states its API version in a header of GET /_ping, which
   * costs a fraction of a millisecond; GET /version (several ms: it asks
   * containerd too) is the fallback for engines that do not. Neither path
   * takes a version prefix. */
  long status = 0;
  json_t *v = NULL;
  char api_header[16] = "";
  r = call_json_h (e, "GET", "/_ping", true, NULL, 0, api_header, &status, NULL, err);
  if (r == 0 && (status != 200 || api_number (api_header) < 0))
    r = call_json (e, "GET", "/version", true, NULL, 0, &status, &v, err);
  if (r < 0)
    {
      engine_free (e);
      return r;
    }
  const char *server = api_number (api_header) >= 0
                           ? api_header
                           : json_string_value (json_object_get (v, "ApiVersion"));
  long have = server ? api_number (server) : -1;
  if (status != 200 || have < 0)
    {
      r = sbx_error_set (err, SBX_E_ENGINE,
                         "the service at %s did not answer like a Docker engine (%s); "
                         "point DOCKER_HOST at a Docker engine",
                         e->addr.address,
                         status != 200 ? sbx_engine_message (v, status) : "no API version");
      json_decref (v);
      engine_free (e);
      return r;
    }
  if (have < api_number (MIN_API))
    {
      r = sbx_error_set (err, SBX_E_ENGINE,
                         "the Docker engine at %s speaks API %s, older than the %s sbx needs; "
                         "upgrade Docker to 19.03 or later",
                         e->addr.address, server, MIN_API);
      json_decref (v);
      engine_free (e);
      return r;
    }
  snprintf (e->api, sizeof e->api, "%s",
            have < api_number (SBX_ENGINE_MAX_API) ? server : SBX_ENGINE_MAX_API);
  json_decref (v);
  *out = e;
  return 0;
}

/* The process's contexts, one per engine environment; never freed: a
 * sandbox handle may hold one to the end. */
static pthread_mutex_t contexts_lock = PTHREAD_MUTEX_INITIALIZER;
static sbx_engine_t *contexts;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A fork may come while another thread holds a lock: the child, alone,
   starts with them free. */
static void
child_after_fork (void)
{
  pthread_mutex_init (&contexts_lock, NULL);
  for (sbx_engine_t *e = contexts; e; e = e->next)
    pthread_mutex_init (&e->lock, NULL);
}

static void
register_atfork (void)
{
  pthread_atfork (NULL, NULL, child_after_fork);
}

static sbx_engine_t *
find_context (const char *key)
{
  for (sbx_engine_t *e = contexts; e; e = e->next)
    if (strcmp (e->key, key) == 0)
      return e;
  return NULL;
}

int
sbx_engine_get (sbx_engine_t **out, sbx_error_t **err)
{
  *out = NULL;
  int loaded = sbx_dl_curl (err);
  if (loaded < 0)
    return loaded;
  pthread_once (&curl_once, curl_init_once);
  pthread_once (&atfork_once, register_atfork);
  if (curl_init_result != CURLE_OK)
    return sbx_error_set (err, SBX_E_ENGINE, "libcurl failed to initialise: %s",
                          sbx_curl.easy_strerror (curl_init_result));
  /* What picks and reaches the engine; a change (a test pointing
     DOCKER_HOST elsewhere) makes another context. */
  const char *vars[] = { "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                         "SBX_ENGINE_TIMEOUT" };
  cleanup_free char *key = sbx_strdup_printf ("%s\n%s\n%s\n%s", getenv (vars[0]) ?: "",
                                              getenv (vars[1]) ?: "", getenv (vars[2]) ?: "",
                                              getenv (vars[3]) ?: "");
  if (key == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  pthread_mutex_lock (&contexts_lock);
  sbx_engine_t *e = find_context (key);
  pthread_mutex_unlock (&contexts_lock);
  if (e)
    {
      *out = e;
      return 0;
    }
  /* Opened outside the lock (it asks the engine); a racing thread's twin
     is dropped. */
  int r = engine_open (key, &e, err);
  if (r < 0)
    return r;
  pthread_mutex_lock (&contexts_lock);
  sbx_engine_t *won = find_context (key);
  if (won == NULL)
    {
      e->next = contexts;
      contexts = e;
    }
  pthread_mutex_unlock (&contexts_lock);
  if (won)
    engine_free (e);
  *out = won ? won : e;
  return 0;
}

int
sbx_engine_request (sbx_engine_t *e, const char *method, const char *path, json_t *body,
                    long *status, json_t **response, sbx_error_t **err)
{
  long st = 0;
  int r = call_json (e, method, path, false, body, 0, &st, response, err);
  if (status)
    *status = st;
  return r;
}

/* ------------------------------------------------------------ containers */

/* "/containers/ID" + SUFFIX, with ID escaped as one path segment. */
static int
container_path (const char *id, const char *suffix, char **path, sbx_error_t **err)
{
  *path = NULL;
  if (id == NULL || *id == '\0')
    return sbx_error_set (err, SBX_E_INVALID, "no sandbox name or id was given");
  cleanup_free char *seg = escape_keep (id, NULL);
  if (seg)
    *path = sbx_strdup_printf ("/containers/%s%s", seg, suffix);
  if (*path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  return 0;
}

/* What the engine's answer to an operation means: one table per operation
 * (the first rule that matches wins; a 0 status matches any), instead of a
 * ladder of ifs in each. */
#define ENGINE_ABSENT 1000 /* the operation's object is not there: return 1 */
typedef struct engine_rule
{
  long status;         /* 0: any status */
  const char *needle;  /* the engine's message must hold it (any case), or NULL */
  int code;            /* SBX_OK, ENGINE_ABSENT, or the sbx_errc to fail with */
  bool of_object;      /* MESSAGE names the object, not what was done to it */
  const char *message; /* "%s" (what was done, or the object), then "%s" the engine's words */
} engine_rule_t;

/* 0, 1 (ENGINE_ABSENT), or the failure the answer means. WHAT says what was
 * asked ("remove image x"), OBJECT what it was asked of ("x"). */
static int
engine_outcome (const engine_rule_t *rules, long status, json_t *resp, const char *what,
                const char *object, sbx_error_t **err)
{
  const char *msg = sbx_engine_message (resp, status);
  const engine_rule_t *r = rules;
  for (; r->status; r++)
    if (r->status == status && (r->needle == NULL || strcasestr (msg, r->needle)))
      break;
  if (r->code == SBX_OK)
    return 0;
  if (r->code == ENGINE_ABSENT)
    return 1;
  return sbx_error_set (err, r->code, r->message, r->of_object ? object : what, msg);
}

#define ENGINE_REFUSED                                                                             \
  {                                                                                                \
    0, NULL, SBX_E_ENGINE, false, "the Docker engine could not %s: %s"                             \
  }

static const engine_rule_t create_rules[] = {
  { 201, NULL, SBX_OK, false, NULL },
  { 404, "no such image", SBX_E_IMAGE_MISSING, true,
    "image %s is not present; pull it, pick another image, or build sbx's base image with "
    "`sbx image bootstrap` (%s)" },
  { 409, NULL, SBX_E_EXISTS, false,
    "could not %s: a container of that name exists; pick another name or remove it (%s)" },
  ENGINE_REFUSED,
};

/* POST /containers/ID/start or stop: 304 says it already was so. */
static const engine_rule_t action_rules[] = {
  { 204, NULL, SBX_OK, false, NULL },
  { 304, NULL, SBX_OK, false, NULL },
  { 404, "no such container", SBX_E_GONE, true,
    "sandbox %s does not exist (it was removed or never created)" },
  ENGINE_REFUSED,
};

/* Gone already, or the engine is removing it (auto-remove after a stop):
 * either way the caller's wish is met. */
static const engine_rule_t remove_rules[] = {
  { 204, NULL, SBX_OK, false, NULL },
  { 404, NULL, SBX_OK, false, NULL },
  { 409, "in progress", SBX_OK, false, NULL },
  ENGINE_REFUSED,
};

static const engine_rule_t get_rules[] = {
  { 200, NULL, SBX_OK, false, NULL },
  { 404, NULL, ENGINE_ABSENT, false, NULL },
  ENGINE_REFUSED,
};

static const engine_rule_t list_rules[] = {
  { 200, NULL, SBX_OK, false, NULL },
  ENGINE_REFUSED,
};

static const engine_rule_t image_remove_rules[] = {
  { 200, NULL, SBX_OK, false, NULL },
  { 404, NULL, SBX_OK, false, NULL },
  { 409, NULL, SBX_E_EXISTS, true, "image %s is in use and was kept: %s" },
  ENGINE_REFUSED,
};

/* One request and what its answer means by RULES: 0 with *RESP (may be
 * NULL: not wanted), 1 (ENGINE_ABSENT), or the failure. WHAT says what
 * was asked ("remove image x", made with printf's FMT), OBJECT what it
 * was asked of; TIMEOUT_S 0 is the engine's default. */
static int engine_ask (sbx_engine_t *e, const char *method, const char *path, json_t *body,
                       long timeout_s, const engine_rule_t *rules, const char *object,
                       json_t **resp, sbx_error_t **err, const char *fmt, ...)
    __attribute__ ((format (printf, 10, 11)));

static int
engine_ask (sbx_engine_t *e, const char *method, const char *path, json_t *body, long timeout_s,
            const engine_rule_t *rules, const char *object, json_t **resp, sbx_error_t **err,
            const char *fmt, ...)
{
  long status = 0;
  json_t *reply = NULL;
  int r = call_json (e, method, path, false, body, timeout_s, &status, &reply, err);
  if (r < 0)
    return r;
  va_list ap;
  va_start (ap, fmt);
  cleanup_free char *what = sbx_strdup_vprintf (fmt, ap);
  va_end (ap);
  r = what ? engine_outcome (rules, status, reply, what, object, err)
           : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r == 0 && resp)
    *resp = steal_pointer (&reply);
  json_decref (reply);
  return r;
}

/* A sandbox asked for by id that the engine does not know. */
static int
fail_gone (const char *id, sbx_error_t **err)
{
  return sbx_error_set (err, SBX_E_GONE,
                        "sandbox %s does not exist (it was removed or never created)", id);
}

int
sbx_engine_container_create (sbx_engine_t *e, const char *name, json_t *config, char **id,
                             sbx_error_t **err)
{
  *id = NULL;
  if (!json_is_object (config))
    return sbx_error_set (err, SBX_E_INVALID, "internal error: container config is not an object");
  cleanup_free char *path = NULL;
  if (name)
    {
      cleanup_free char *n = escape_keep (name, NULL);
      path = n ? sbx_strdup_printf ("/containers/create?name=%s", n) : NULL;
    }
  else
    path = strdup ("/containers/create");
  if (path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");

  json_t *resp = NULL;
  const char *image = json_string_value (json_object_get (config, "Image"));
  int r = engine_ask (e, "POST", path, config, 0, create_rules, image ? image : "(none)", &resp,
                      err, "create sandbox %s", name ? name : "(unnamed)");
  const char *cid = json_string_value (json_object_get (resp, "Id"));
  if (r == 0 && (cid == NULL || *cid == '\0'))
    r = sbx_error_set (err, SBX_E_ENGINE,
                       "the Docker engine did not say the id of the container it made (sandbox "
                       "%s); check `docker ps -a`",
                       name ? name : "(unnamed)");
  else if (r == 0 && (*id = strdup (cid)) == NULL)
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  json_decref (resp);
  return r;
}

/* POST /containers/ID/ACTION[QUERY]: 204 done, 304 already so. */
static int
container_action (sbx_engine_t *e, const char *id, const char *action, const char *query,
                  long timeout_s, sbx_error_t **err)
{
  cleanup_free char *suffix = sbx_strdup_printf ("/%s%s", action, query);
  if (suffix == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  cleanup_free char *path = NULL;
  int r = container_path (id, suffix, &path, err);
  if (r < 0)
    return r;
  return engine_ask (e, "POST", path, NULL, timeout_s, action_rules, id, NULL, err, "%s sandbox %s",
                     action, id);
}

int
sbx_engine_container_start (sbx_engine_t *e, const char *id, sbx_error_t **err)
{
  return container_action (e, id, "start", "", 0, err);
}

int
sbx_engine_container_stop (sbx_engine_t *e, const char *id, int timeout_seconds, sbx_error_t **err)
{
  char query[32] = "";
  long limit = STOP_SLACK_S + 10; /* the engine's own default grace is 10 s */
  if (timeout_seconds >= 0)
    {
      snprintf (query, sizeof query, "?t=%d", timeout_seconds);
      limit = STOP_SLACK_S + timeout_seconds;
    }
  return container_action (e, id, "stop", query, limit, err);
}

/* GET PATH, whose reply must be a JSON object: 0 and *OBJ; 1 when the
 * engine says 404; otherwise an error "the Docker engine could not WHAT". */
static int
get_object (sbx_engine_t *e, const char *path, const char *what, json_t **obj, sbx_error_t **err)
{
  json_t *resp = NULL;
  *obj = NULL;
  int r = engine_ask (e, "GET", path, NULL, 0, get_rules, what, &resp, err, "%s", what);
  if (r == 0 && !json_is_object (resp))
    r = sbx_error_set (err, SBX_E_ENGINE,
                       "the Docker engine could not %s: its reply was not a "
                       "JSON object",
                       what);
  if (r == 0)
    *obj = steal_pointer (&resp);
  json_decref (resp);
  return r;
}

/* GET /containers/ID SUFFIX, a JSON object; WHAT (with ID) says what
 * for in an error; a 404 is the sandbox gone. */
static int
container_get (sbx_engine_t *e, const char *id, const char *suffix, const char *what, json_t **obj,
               sbx_error_t **err)
{
  *obj = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *text = sbx_strdup_printf ("%s %s", what, id);
  int r = container_path (id, suffix, &path, err);
  if (r < 0)
    return r;
  if (text == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  r = get_object (e, path, text, obj, err);
  return r == 1 ? fail_gone (id, err) : r;
}

int
sbx_engine_container_inspect (sbx_engine_t *e, const char *id, json_t **info, sbx_error_t **err)
{
  return container_get (e, id, "/json", "inspect sandbox", info, err);
}

int
sbx_engine_container_stats (sbx_engine_t *e, const char *id, json_t **stats, sbx_error_t **err)
{
  /* one-shot: the engine answers at once rather than after a second sample. */
  return container_get (e, id, "/stats?stream=false&one-shot=true", "read the usage of sandbox",
                        stats, err);
}

int
sbx_engine_container_remove (sbx_engine_t *e, const char *id, sbx_error_t **err)
{
  cleanup_free char *path = NULL;
  int r = container_path (id, "?force=1&v=1", &path, err);
  if (r < 0)
    return r;
  return engine_ask (e, "DELETE", path, NULL, 0, remove_rules, id, NULL, err, "remove sandbox %s",
                     id);
}

/* Lists containers or images carrying LABEL: both are a GET of
 * PREFIX filters=<label filter> answered by a JSON array.  KIND names the
 * objects in the internal error, WHAT in the engine's refusal. */
static int
list_by_label (sbx_engine_t *e, const char *prefix, const char *kind, const char *what,
               const char *label, json_t **list, sbx_error_t **err)
{
  *list = NULL;
  if (label == NULL || *label == '\0')
    return sbx_error_set (err, SBX_E_INVALID, "internal error: no label to list %s by", kind);
  json_t *filters = json_pack ("{s:[s]}", "label", label);
  cleanup_free char *text = filters ? json_dumps (filters, JSON_COMPACT) : NULL;
  json_decref (filters);
  cleanup_free char *esc = text ? escape_keep (text, NULL) : NULL;
  cleanup_free char *path = esc ? sbx_strdup_printf ("%sfilters=%s", prefix, esc) : NULL;
  if (path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  json_t *resp = NULL;
  int r = engine_ask (e, "GET", path, NULL, 0, list_rules, what, &resp, err, "list %s", what);
  if (r == 0 && !json_is_array (resp))
    r = sbx_error_set (err, SBX_E_ENGINE,
                       "the Docker engine could not list %s: its reply was "
                       "not a JSON array",
                       what);
  if (r == 0)
    *list = steal_pointer (&resp);
  json_decref (resp);
  return r;
}

int
sbx_engine_container_list (sbx_engine_t *e, const char *label, json_t **list, sbx_error_t **err)
{
  return list_by_label (e, "/containers/json?all=1&", "containers", "the sandboxes", label, list,
                        err);
}

/* ---------------------------------------------------------------- images */

/* Image references travel in paths and queries; refuse anything a reference
 * cannot contain rather than hand the engine surprises. */
static int
check_image_ref (const char *image, sbx_error_t **err)
{
  if (image == NULL || *image == '\0')
    return sbx_error_set (err, SBX_E_INVALID, "no image name was given");
  size_t n = strlen (image);
  if (n > 512)
    return sbx_error_set (err, SBX_E_INVALID, "image name %.40s... is too long", image);
  for (const char *p = image; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || strchr ("._-/:@", *p)))
      return sbx_error_set (err, SBX_E_INVALID,
                            "invalid image name '%s': only letters, digits and . _ - / : @ may "
                            "appear, as in python:3.12-slim",
                            image);
  if (image[0] == '/' || image[0] == ':' || image[0] == '@' || image[n - 1] == ':'
      || image[n - 1] == '/' || image[n - 1] == '@')
    return sbx_error_set (err, SBX_E_INVALID,
                          "invalid image name '%s'; expected NAME[:TAG], as in "
                          "python:3.12-slim",
                          image);
  return 0;
}

/* *PATH = "/images/IMAGE" + SUFFIX for a checked image reference. The engine
 * routes it with slashes in IMAGE left as they are. */
static int
image_path (const char *image, const char *suffix, char **path, sbx_error_t **err)
{
  int r = check_image_ref (image, err);
  if (r < 0)
    return r;
  cleanup_free char *seg = escape_keep (image, "/:@");
  *path = seg ? sbx_strdup_printf ("/images/%s%s", seg, suffix) : NULL;
  return *path ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
}

int
sbx_engine_image_inspect (sbx_engine_t *e, const char *image, json_t **info, sbx_error_t **err)
{
  *info = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *what = sbx_strdup_printf ("look up image %s", image);
  int r = image_path (image, "/json", &path, err);
  if (r < 0)
    return r;
  if (what == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  r = get_object (e, path, what, info, err);
  return r == 1 ? 0 : r; /* a missing image is not an error: *INFO stays NULL */
}

int
sbx_engine_image_exists (sbx_engine_t *e, const char *image, bool *exists, sbx_error_t **err)
{
  json_t *info = NULL;
  int r = sbx_engine_image_inspect (e, image, &info, err);
  *exists = info != NULL;
  json_decref (info);
  return r;
}

int
sbx_engine_image_list (sbx_engine_t *e, const char *label, json_t **list, sbx_error_t **err)
{
  return list_by_label (e, "/images/json?", "images", "images", label, list, err);
}

int
sbx_engine_image_remove (sbx_engine_t *e, const char *image, sbx_error_t **err)
{
  cleanup_free char *path = NULL;
  int r = image_path (image, "", &path, err);
  if (r < 0)
    return r;
  return engine_ask (e, "DELETE", path, NULL, 0, image_remove_rules, image, NULL, err,
                     "remove image %s", image);
}

/* What a streamed reply (pull, import) said. */
struct progress_state
{
  sbx_progress_cb progress;
  void *userdata;
  char *error;   /* the first error object's text */
  char *message; /* a plain {"message": ...} body (non-200 replies) */
  char *last_status;
};

static void
replace_str (char **slot, const char *s)
{
  char *d = strdup (s);
  if (d)
    {
      free (*slot);
      *slot = d;
    }
}

/* The text of an error object in a stream ({"error": ..., "errorDetail":
 * {"message": ...}}), or NULL when OBJ is no error. */
static const char *
stream_error (json_t *obj)
{
  json_t *detail = json_object_get (obj, "errorDetail");
  if (detail == NULL && json_object_get (obj, "error") == NULL)
    return NULL;
  const char *error = json_string_value (json_object_get (detail, "message"));
  if (error == NULL || *error == '\0')
    error = json_string_value (json_object_get (obj, "error"));
  return error && *error ? error : "unknown error";
}

static void
on_progress_object (json_t *obj, void *ud)
{
  struct progress_state *ps = ud;
  const char *error = stream_error (obj);
  if (error)
    {
      if (ps->error == NULL)
        replace_str (&ps->error, error);
      return;
    }
  const char *message = json_string_value (json_object_get (obj, "message"));
  if (message)
    {
      replace_str (&ps->message, message);
      return;
    }
  const char *status = json_string_value (json_object_get (obj, "status"));
  if (status == NULL)
    return;
  replace_str (&ps->last_status, status);
  /* Download and extraction bars repeat many times a second; the lines
   * without one ("Pull complete", "Digest: ...") tell the story. */
  const char *bar = json_string_value (json_object_get (obj, "progress"));
  if (ps->progress == NULL || (bar && *bar))
    return;
  const char *id = json_string_value (json_object_get (obj, "id"));
  cleanup_free char *line = id && *id ? sbx_strdup_printf ("%s: %s", id, status) : NULL;
  ps->progress (line ? line : status, ps->userdata);
}

static void
progress_state_clear (struct progress_state *ps)
{
  free (ps->error);
  free (ps->message);
  free (ps->last_status);
}

/* Runs a POST whose reply is a stream of JSON lines, each handed to
 * ON_OBJECT. Returns 0 when it completed, with *STATUS telling how. */
static int
post_stream (sbx_engine_t *e, const char *path, struct upload *upload, curl_off_t size,
             void (*on_object) (json_t *obj, void *ud), void *ud, long *status, sbx_error_t **err)
{
  struct sink sink = {
    .limit = MAX_STREAM_LINE,
    .stream = true,
    .on_object = on_object,
    .ud = ud,
  };
  struct call c = {
    .method = "POST",
    .path = path,
    .upload = upload,
    .upload_size = size,
    .sink = &sink,
  };
  int r = perform (e, &c, status, err);
  free (sink.buf);
  return r;
}

/* A streaming POST /images/create (pull, import). */
static int
images_create (sbx_engine_t *e, const char *path, struct upload *upload, curl_off_t size,
               struct progress_state *ps, long *status, sbx_error_t **err)
{
  return post_stream (e, path, upload, size, on_progress_object, ps, status, err);
}

int
sbx_engine_image_pull (sbx_engine_t *e, const char *image, sbx_progress_cb progress, void *userdata,
                       sbx_error_t **err)
{
  int r = check_image_ref (image, err);
  if (r < 0)
    return r;
  /* NAME[:TAG] or NAME@DIGEST; a ':' before the last '/' is a registry port.
   * The engine pulls every tag when none is given, so always give one. */
  cleanup_free char *name = NULL;
  const char *tag;
  const char *at = strchr (image, '@');
  const char *slash = strrchr (image, '/');
  const char *colon = strrchr (image, ':');
  if (at)
    {
      name = strndup (image, at - image);
      tag = at + 1;
    }
  else if (colon && (slash == NULL || colon > slash))
    {
      name = strndup (image, colon - image);
      tag = colon + 1;
    }
  else
    {
      name = strdup (image);
      tag = "latest";
    }
  cleanup_free char *ename = name ? escape_keep (name, NULL) : NULL;
  cleanup_free char *etag = escape_keep (tag, NULL);
  cleanup_free char *path = ename && etag ? sbx_strdup_printf ("/images/create?fromImage=%s&tag=%s",
                                                               ename, etag)
                                          : NULL;
  if (path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");

  struct progress_state ps = { .progress = progress, .userdata = userdata };
  long status = 0;
  r = images_create (e, path, NULL, -1, &ps, &status, err);
  if (r == 0 && (status != 200 || ps.error))
    {
      const char *why = ps.error     ? ps.error
                        : ps.message ? ps.message
                                     : sbx_engine_message (NULL, status);
      r = sbx_error_set (err, SBX_E_IMAGE_MISSING,
                         "image %s is not present and could not be pulled: %s", image, why);
    }
  progress_state_clear (&ps);
  return r;
}

int
sbx_engine_image_import (sbx_engine_t *e, FILE *tar, const char *repo, const char *tag,
                         const char *const *changes, sbx_error_t **err)
{
  if (tar == NULL || repo == NULL || tag == NULL)
    return sbx_error_set (err, SBX_E_INVALID,
                          "internal error: image import needs a tar, repo and tag");
  cleanup_free char *full = sbx_strdup_printf ("%s:%s", repo, tag);
  if (full == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  int r = check_image_ref (full, err);
  if (r < 0)
    return r;

  cleanup_free char *erepo = escape_keep (repo, NULL);
  cleanup_free char *etag = escape_keep (tag, NULL);
  cleanup_free char *path
      = erepo && etag ? sbx_strdup_printf ("/images/create?fromSrc=-&repo=%s&tag=%s", erepo, etag)
                      : NULL;
  for (size_t i = 0; path && changes && changes[i]; i++)
    {
      cleanup_free char *c = escape_keep (changes[i], NULL);
      char *p = c ? sbx_strdup_printf ("%s&changes=%s", path, c) : NULL;
      free (path);
      path = p;
    }
  if (path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");

  /* A known length spares the engine chunked decoding; pipes go chunked. */
  curl_off_t size = -1;
  struct stat st;
  if (fstat (fileno (tar), &st) == 0 && S_ISREG (st.st_mode))
    {
      off_t pos = ftello (tar);
      if (pos >= 0 && pos <= st.st_size)
        size = st.st_size - pos;
    }

  struct upload up = { .file = tar };
  struct progress_state ps = { 0 };
  long status = 0;
  r = images_create (e, path, &up, size, &ps, &status, err);
  if (r == 0 && (status != 200 || ps.error))
    r = sbx_error_set (err, SBX_E_ENGINE, "the Docker engine could not import the image as %s: %s",
                       full,
                       ps.error     ? ps.error
                       : ps.message ? ps.message
                                    : sbx_engine_message (NULL, status));
  progress_state_clear (&ps);
  return r;
}

/* ---------------------------------------------------------------- builds */

/* The build context: a tar of FILES, in memory. Fixed owners, modes and
 * times, so that the same files make the same context. */
static int
build_context (const sbx_build_file_t *files, size_t n, char **tar, size_t *len, sbx_error_t **err)
{
  *tar = NULL;
  *len = 0;
  int loaded = sbx_dl_archive (err);
  if (loaded < 0)
    return loaded;
  FILE *mem = open_memstream (tar, len);
  struct archive *a = mem ? sbx_archive.write_new () : NULL;
  struct archive_entry *entry = a ? sbx_archive.entry_new () : NULL;
  int r = entry ? 0 : sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r == 0
      && (sbx_archive.write_set_format_ustar (a) != ARCHIVE_OK
          || sbx_archive.write_open_FILE (a, mem) != ARCHIVE_OK))
    r = sbx_error_set (err, SBX_E_IO, "cannot make the build context: %s",
                       sbx_archive.error_string (a));
  for (size_t i = 0; r == 0 && i < n; i++)
    {
      sbx_archive.entry_clear (entry);
      sbx_archive.entry_set_pathname (entry, files[i].name);
      sbx_archive.entry_set_filetype (entry, AE_IFREG);
      sbx_archive.entry_set_perm (entry, 0644);
      sbx_archive.entry_set_size (entry, (la_int64_t) files[i].len);
      sbx_archive.entry_set_mtime (entry, 0, 0);
      if (sbx_archive.write_header (a, entry) != ARCHIVE_OK
          || sbx_archive.write_data (a, files[i].data, files[i].len) != (la_ssize_t) files[i].len)
        r = sbx_error_set (err, SBX_E_IO, "cannot add %s to the build context: %s", files[i].name,
                           sbx_archive.error_string (a));
    }
  if (r == 0 && sbx_archive.write_close (a) != ARCHIVE_OK)
    r = sbx_error_set (err, SBX_E_IO, "cannot finish the build context: %s",
                       sbx_archive.error_string (a));
  if (entry)
    sbx_archive.entry_free (entry);
  if (a)
    sbx_archive.write_free (a);
  if (mem && fclose (mem) != 0 && r == 0)
    r = sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  if (r < 0)
    {
      free (*tar);
      *tar = NULL;
    }
  return r;
}

/* What a build's reply said. */
struct build_state
{
  const sbx_engine_build_t *b;
  char *error;   /* the first error object's text */
  char *message; /* a plain {"message": ...} body (non-200 replies) */
  char *id;      /* aux.ID: the image built */
};

static void
on_build_object (json_t *obj, void *ud)
{
  struct build_state *bs = ud;
  const char *error = stream_error (obj);
  if (error)
    {
      if (bs->error == NULL)
        replace_str (&bs->error, error);
      return;
    }
  const char *text = json_string_value (json_object_get (obj, "stream"));
  if (text && bs->b->on_output)
    bs->b->on_output (text, bs->b->userdata);
  const char *id = json_string_value (json_object_get (json_object_get (obj, "aux"), "ID"));
  if (id && *id)
    replace_str (&bs->id, id);
  const char *message = json_string_value (json_object_get (obj, "message"));
  if (message && !text)
    replace_str (&bs->message, message);
}

/* "?t=...&labels=...": the query of POST /build; NULL when out of memory. */
static char *
build_path (const sbx_engine_build_t *b)
{
  cleanup_free char *tag = escape_keep (b->tag, NULL);
  cleanup_free char *labels_json = b->labels ? json_dumps (b->labels, JSON_COMPACT) : NULL;
  cleanup_free char *labels = labels_json ? escape_keep (labels_json, NULL) : NULL;
  cleanup_free char *network = b->network ? escape_keep (b->network, NULL) : NULL;
  if (tag == NULL || (b->labels && labels == NULL) || (b->network && network == NULL))
    return NULL;
  /* version=1: the classic builder, whose JSON stream is documented and
   * which needs no session. rm and forcerm: no container is left behind,
   * whatever happens to a step. */
  return sbx_strdup_printf ("/build?t=%s&rm=1&forcerm=1&version=1%s%s%s%s%s", tag,
                            labels ? "&labels=" : "", labels ? labels : "",
                            network ? "&networkmode=" : "", network ? network : "",
                            b->nocache ? "&nocache=1" : "");
}

int
sbx_engine_image_build (sbx_engine_t *e, const sbx_engine_build_t *b, char **image_id,
                        sbx_error_t **err)
{
  *image_id = NULL;
  int r = check_image_ref (b->tag, err);
  if (r < 0)
    return r;
  cleanup_free char *path = build_path (b);
  if (path == NULL)
    return sbx_error_set (err, SBX_E_NOMEM, "out of memory");
  cleanup_free char *tar = NULL;
  size_t len = 0;
  if ((r = build_context (b->files, b->nfiles, &tar, &len, err)) < 0)
    return r;
  FILE *body = fmemopen (tar, len, "r");
  if (body == NULL)
    return sbx_error_set_errno (err, SBX_E_NOMEM, errno, "cannot read the build context");

  struct upload up = { .file = body };
  struct build_state bs = { .b = b };
  long status = 0;
  r = post_stream (e, path, &up, (curl_off_t) len, on_build_object, &bs, &status, err);
  fclose (body);
  if (r == 0 && status == 200 && bs.error)
    r = sbx_error_set (err, SBX_E_BUILD, "%s", bs.error);
  else if (r == 0 && (status != 200 || bs.id == NULL))
    r = sbx_error_set (err, SBX_E_ENGINE, "the Docker engine could not build %s: %s", b->tag,
                       bs.error        ? bs.error
                       : bs.message    ? bs.message
                       : status == 200 ? "it ended without saying which image it built"
                                       : sbx_engine_message (NULL, status));
  if (r == 0)
    *image_id = steal_pointer (&bs.id);
  free (bs.error);
  free (bs.message);
  free (bs.id);
  return r;
}

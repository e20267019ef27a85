/* sbx._sbx: libsbx for Python, the layer under the seed's classes
 * (sbx/__init__.py). Every call that waits on a sandbox or the engine runs
 * with the GIL released; a handle is used by one thread at a time (its own
 * lock, taken with the GIL released, so that waiting never blocks other
 * threads). Errors are raised as sbx._sbx.Error(code, message). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <sbx.h>

#include <stdlib.h>
#include <string.h>

static PyObject *Error;

/* Raises ERR (freed) as Error; returns NULL. */
static PyObject *
raise_err (int r, sbx_error_t *err)
{
  int code = err ? sbx_error_code (err) : (r < 0 ? -r : SBX_E_IO);
  const char *msg = err ? sbx_error_message (err) : "unknown error";
  PyObject *text = PyUnicode_DecodeUTF8 (msg, (Py_ssize_t) strlen (msg), "replace");
  PyObject *e = text ? PyObject_CallOneArg (Error, text) : NULL;
  sbx_error_free (err);
  PyObject *name = PyUnicode_FromString (sbx_errc_name (code));
  if (e && name && PyObject_SetAttrString (e, "code", name) == 0)
    PyErr_SetObject (Error, e);
  Py_XDECREF (name);
  Py_XDECREF (e);
  Py_XDECREF (text);
  return NULL;
}

/* The UTF-8 of a str without NUL characters, or NULL with an exception. */
static const char *
utf8_arg (PyObject *v, const char *what)
{
  Py_ssize_t len = 0;
  const char *s = PyUnicode_Check (v) ? PyUnicode_AsUTF8AndSize (v, &len) : NULL;
  if (s && strlen (s) != (size_t) len)
    {
      PyErr_Format (PyExc_ValueError, "%s must not hold NUL characters", what);
      return NULL;
    }
  if (s == NULL && !PyErr_Occurred ())
    PyErr_Format (PyExc_TypeError, "%s must be a str", what);
  return s;
}

static void
str_vector_free (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

/* A sequence of str as a NULL-terminated vector of copies (free with
 * str_vector_free; copies, since the sequence may change while the GIL is
 * released), or NULL with an exception. None gives an empty one. */
static char **
str_vector (PyObject *seq, const char *what)
{
  if (seq && (PyUnicode_Check (seq) || PyBytes_Check (seq)))
    return (char **) PyErr_Format (PyExc_TypeError, "%s must be a list of str, not one str", what);
  PyObject *t = seq && seq != Py_None ? PySequence_Tuple (seq) : PyTuple_New (0);
  if (t == NULL)
    return NULL;
  Py_ssize_t n = PyTuple_GET_SIZE (t);
  char **v = calloc ((size_t) n + 1, sizeof *v);
  for (Py_ssize_t i = 0; v && i < n; i++)
    {
      PyObject *item = PyTuple_GET_ITEM (t, i);
      Py_ssize_t len = 0;
      const char *s = PyUnicode_Check (item) ? PyUnicode_AsUTF8AndSize (item, &len) : NULL;
      if (s == NULL || strlen (s) != (size_t) len || (v[i] = strdup (s)) == NULL)
        {
          if (!PyErr_Occurred ())
            PyErr_Format (s && strlen (s) != (size_t) len ? PyExc_ValueError : PyExc_TypeError,
                          "%s must be a list of str without NUL characters", what);
          str_vector_free (v);
          v = NULL;
        }
    }
  if (v == NULL && !PyErr_Occurred ())
    PyErr_NoMemory ();
  Py_DECREF (t);
  return v;
}

/* ------------------------------------------------------------- runtimes */

typedef struct
{
  PyObject_HEAD sbx_runtime_t *rt;
} RuntimeObject;

static void
runtime_dealloc (RuntimeObject *self)
{
  sbx_runtime_free (self->rt);
  Py_TYPE (self)->tp_free ((PyObject *) self);
}

static PyObject *
runtime_to_json (RuntimeObject *self, PyObject *unused)
{
  (void) unused;
  char *json = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_to_json (self->rt, &json, &err);
  if (r < 0)
    return raise_err (r, err);
  PyObject *s = PyUnicode_FromString (json);
  free (json);
  return s;
}

static PyMethodDef runtime_methods[] = {
  { "to_json", (PyCFunction) runtime_to_json, METH_NOARGS, "The definition as JSON." },
  { NULL, NULL, 0, NULL },
};

static PyTypeObject RuntimeType = {
  PyVarObject_HEAD_INIT (NULL, 0).tp_name = "sbx._sbx.Runtime",
  .tp_basicsize = sizeof (RuntimeObject),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "A runtime definition (libsbx's sbx_runtime_t).",
  .tp_dealloc = (destructor) runtime_dealloc,
  .tp_methods = runtime_methods,
};

static PyObject *
wrap_runtime (sbx_runtime_t *rt)
{
  RuntimeObject *o = PyObject_New (RuntimeObject, &RuntimeType);
  if (o == NULL)
    {
      sbx_runtime_free (rt);
      return NULL;
    }
  o->rt = rt;
  return (PyObject *) o;
}

static PyObject *
mod_runtime_builtin (PyObject *m, PyObject *args)
{
  (void) m;
  const char *name;
  if (!PyArg_ParseTuple (args, "s", &name))
    return NULL;
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_builtin (name, &rt, &err);
  return r < 0 ? raise_err (r, err) : wrap_runtime (rt);
}

static PyObject *
mod_runtime_from_json (PyObject *m, PyObject *args)
{
  (void) m;
  const char *text;
  if (!PyArg_ParseTuple (args, "s", &text))
    return NULL;
  sbx_runtime_t *rt = NULL;
  sbx_error_t *err = NULL;
  int r = sbx_runtime_from_json (text, &rt, &err);
  return r < 0 ? raise_err (r, err) : wrap_runtime (rt);
}

static PyObject *
mod_runtime_builtin_names (PyObject *m, PyObject *unused)
{
  (void) m, (void) unused;
  PyObject *list = PyList_New (0);
  for (const char *const *n = sbx_runtime_builtin_names (); list && *n; n++)
    {
      PyObject *s = PyUnicode_FromString (*n);
      if (s == NULL || PyList_Append (list, s) < 0)
        Py_CLEAR (list);
      Py_XDECREF (s);
    }
  return list;
}

/* -------------------------------------------------------------- options */

/* Sandbox options from keyword arguments (all optional): image, name,
 * workdir, volumes (["HOST:CTR[:ro]"]), env (["K=V"]), memory, disk (bytes),
 * cpus, pids, network, auto_remove, replace, runtime (a Runtime). */
static sbx_options_t *
options_from (PyObject *kw)
{
  static const char *const known[] = { "image",       "name",    "workdir", "volumes", "env",
                                       "memory",      "disk",    "cpus",    "pids",    "network",
                                       "auto_remove", "replace", "runtime", NULL };
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (kw && PyDict_Next (kw, &pos, &key, &value))
    {
      const char *k = PyUnicode_AsUTF8 (key);
      bool ok = false;
      for (const char *const *n = known; k && *n && !ok; n++)
        ok = strcmp (k, *n) == 0;
      if (!ok)
        {
          PyErr_Format (PyExc_TypeError, "unknown sandbox option %R", key);
          return NULL;
        }
    }
  sbx_options_t *o = sbx_options_new ();
  if (o == NULL)
    return (sbx_options_t *) PyErr_NoMemory ();
  sbx_error_t *err = NULL;
  int r = 0;
#define GET(name) (kw ? PyDict_GetItemString (kw, name) : NULL)
#define STR_OPT(name, setter)                                                                      \
  do                                                                                               \
    {                                                                                              \
      PyObject *v_ = GET (name);                                                                   \
      if (r == 0 && v_ && v_ != Py_None)                                                           \
        {                                                                                          \
          const char *s_ = utf8_arg (v_, name);                                                    \
          if (s_ == NULL)                                                                          \
            goto fail;                                                                             \
          r = setter (o, s_, &err);                                                                \
        }                                                                                          \
    }                                                                                              \
  while (0)
#define INT_OPT(name, setter)                                                                      \
  do                                                                                               \
    {                                                                                              \
      PyObject *v_ = GET (name);                                                                   \
      if (r == 0 && v_ && v_ != Py_None)                                                           \
        {                                                                                          \
          long long n_ = PyLong_AsLongLong (v_);                                                   \
          if (n_ == -1 && PyErr_Occurred ())                                                       \
            goto fail;                                                                             \
          r = setter (o, (int64_t) n_, &err);                                                      \
        }                                                                                          \
    }                                                                                              \
  while (0)
  STR_OPT ("image", sbx_options_set_image);
  STR_OPT ("name", sbx_options_set_name);
  STR_OPT ("network", sbx_options_set_network);
  INT_OPT ("memory", sbx_options_set_memory);
  INT_OPT ("disk", sbx_options_set_disk);
  INT_OPT ("pids", sbx_options_set_pids);
  PyObject *v = GET ("runtime");
  if (r == 0 && v && v != Py_None)
    {
      if (!PyObject_TypeCheck (v, &RuntimeType))
        goto type_error;
      r = sbx_options_set_runtime (o, ((RuntimeObject *) v)->rt, &err);
    }
  /* After the runtime, whose work dir and variables they override. */
  STR_OPT ("workdir", sbx_options_set_workdir);
  if (r == 0 && (v = GET ("cpus")) && v != Py_None)
    {
      double c = PyFloat_AsDouble (v);
      if (c == -1.0 && PyErr_Occurred ())
        goto fail;
      r = sbx_options_set_cpus (o, c, &err);
    }
  const char *lists[] = { "volumes", "env" };
  for (int i = 0; r == 0 && i < 2; i++)
    {
      char **vec = str_vector (GET (lists[i]), lists[i]);
      if (vec == NULL)
        goto fail;
      for (char **p = vec; r == 0 && *p; p++)
        r = i == 0 ? sbx_options_add_volume (o, *p, &err) : sbx_options_add_env (o, *p, &err);
      str_vector_free (vec);
    }
  int truth;
  if ((v = GET ("auto_remove")) && v != Py_None)
    {
      if ((truth = PyObject_IsTrue (v)) < 0)
        goto fail;
      sbx_options_set_auto_remove (o, truth);
    }
  if ((v = GET ("replace")) && v != Py_None)
    {
      if ((truth = PyObject_IsTrue (v)) < 0)
        goto fail;
      sbx_options_set_replace (o, truth);
    }
#undef GET
#undef STR_OPT
#undef INT_OPT
  if (r < 0)
    {
      raise_err (r, err); /* frees ERR */
      err = NULL;
      goto fail;
    }
  return o;
type_error:
  if (!PyErr_Occurred ())
    PyErr_SetString (PyExc_TypeError, "a sandbox option has the wrong type");
fail:
  sbx_error_free (err);
  sbx_options_free (o);
  return NULL;
}

/* ------------------------------------------------------------ sandboxes */

typedef struct
{
  PyObject_HEAD sbx_sandbox_t *sb;
  PyThread_type_lock lock;
  unsigned long owner; /* the thread in a call on SB, or 0 */
} SandboxObject;

/* Runs STMT with the GIL released and the handle's lock held; when another
 * thread closed the handle meanwhile, ON_CLOSED instead (with the GIL). */
#define UNLOCKED_OR(self, stmt, on_closed)                                                         \
  do                                                                                               \
    {                                                                                              \
      unsigned long me_ = PyThread_get_thread_ident ();                                            \
      bool closed_ = false;                                                                        \
      Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock ((self)->lock, WAIT_LOCK);                      \
      if ((self)->sb == NULL)                                                                      \
        closed_ = true;                                                                            \
      else                                                                                         \
        {                                                                                          \
          __atomic_store_n (&(self)->owner, me_, __ATOMIC_RELAXED);                                \
          stmt;                                                                                    \
          __atomic_store_n (&(self)->owner, 0, __ATOMIC_RELAXED);                                  \
        }                                                                                          \
      PyThread_release_lock ((self)->lock);                                                        \
      Py_END_ALLOW_THREADS if (closed_)                                                            \
      {                                                                                            \
        on_closed;                                                                                 \
      }                                                                                            \
    }                                                                                              \
  while (0)
#define UNLOCKED(self, stmt) UNLOCKED_OR (self, stmt, return closed_error ())

static PyObject *
closed_error (void)
{
  PyErr_SetString (Error, "this sandbox handle is closed");
  return NULL;
}

/* The handle is open, and not in a call of this thread's (an on_output
 * callback using its own sandbox would wait for itself for ever). */
static int
check_open (SandboxObject *self)
{
  if (__atomic_load_n (&self->sb, __ATOMIC_RELAXED) == NULL)
    PyErr_SetString (Error, "this sandbox handle is closed");
  else if (__atomic_load_n (&self->owner, __ATOMIC_RELAXED) == PyThread_get_thread_ident ())
    PyErr_SetString (Error, "this sandbox is running a command for this thread (is this an "
                            "on_output callback?); use it after the command, or from another "
                            "handle");
  else
    return 0;
  return -1;
}

static void
sandbox_dealloc (SandboxObject *self)
{
  /* The handle only: the container is the Python layer's business. */
  sbx_sandbox_free (self->sb);
  if (self->lock)
    PyThread_free_lock (self->lock);
  Py_TYPE (self)->tp_free ((PyObject *) self);
}

static PyTypeObject SandboxType;

static PyObject *
wrap_sandbox (sbx_sandbox_t *sb)
{
  SandboxObject *o = PyObject_New (SandboxObject, &SandboxType);
  if (o == NULL)
    {
      sbx_sandbox_free (sb);
      return NULL;
    }
  o->sb = sb;
  o->owner = 0;
  o->lock = PyThread_allocate_lock ();
  if (o->lock == NULL)
    {
      Py_DECREF (o);
      return PyErr_NoMemory ();
    }
  return (PyObject *) o;
}

static PyObject *
mod_new (PyObject *m, PyObject *args, PyObject *kw)
{
  (void) m;
  if (PyTuple_GET_SIZE (args) != 0)
    return PyErr_Format (PyExc_TypeError, "new() takes keyword arguments only");
  sbx_options_t *o = options_from (kw);
  if (o == NULL)
    return NULL;
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  int r;
  Py_BEGIN_ALLOW_THREADS r = sbx_sandbox_new (o, &sb, &err);
  Py_END_ALLOW_THREADS sbx_options_free (o);
  return r < 0 ? raise_err (r, err) : wrap_sandbox (sb);
}

static PyObject *
mod_open (PyObject *m, PyObject *args)
{
  (void) m;
  const char *id;
  if (!PyArg_ParseTuple (args, "s", &id))
    return NULL;
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  int r;
  Py_BEGIN_ALLOW_THREADS r = sbx_sandbox_open (id, &sb, &err);
  Py_END_ALLOW_THREADS return r < 0 ? raise_err (r, err) : wrap_sandbox (sb);
}

static PyObject *
str_or_none (const char *s)
{
  if (s)
    return PyUnicode_DecodeUTF8 (s, (Py_ssize_t) strlen (s), "replace");
  Py_RETURN_NONE;
}

static PyObject *
sandbox_id (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  return check_open (self) < 0 ? NULL : str_or_none (sbx_sandbox_id (self->sb));
}

static PyObject *
sandbox_image (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  return check_open (self) < 0 ? NULL : str_or_none (sbx_sandbox_image (self->sb));
}

static PyObject *
sandbox_workdir (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  return check_open (self) < 0 ? NULL : str_or_none (sbx_sandbox_workdir (self->sb));
}

static PyObject *
sandbox_notice (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  return check_open (self) < 0 ? NULL : str_or_none (sbx_sandbox_notice (self->sb));
}

/* start, stop, remove: no arguments, no result. */
static PyObject *
lifecycle (SandboxObject *self, int (*fn) (sbx_sandbox_t *, sbx_error_t **))
{
  if (check_open (self) < 0)
    return NULL;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = fn (self->sb, &err));
  if (r < 0)
    return raise_err (r, err);
  Py_RETURN_NONE;
}

static PyObject *
sandbox_start (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  return lifecycle (self, sbx_sandbox_start);
}

static PyObject *
sandbox_stop (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  return lifecycle (self, sbx_sandbox_stop);
}

static PyObject *
sandbox_remove (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  return lifecycle (self, sbx_sandbox_remove);
}

static PyObject *
sandbox_is_alive (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  if (check_open (self) < 0)
    return NULL;
  bool alive;
  UNLOCKED (self, alive = sbx_sandbox_is_alive (self->sb));
  return PyBool_FromLong (alive);
}

static PyObject *
sandbox_close (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  if (self->sb && check_open (self) < 0)
    return NULL;
  sbx_sandbox_t *sb;
  Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock (self->lock, WAIT_LOCK);
  sb = self->sb;
  __atomic_store_n (&self->sb, NULL, __ATOMIC_RELAXED);
  PyThread_release_lock (self->lock);
  Py_END_ALLOW_THREADS sbx_sandbox_free (sb);
  Py_RETURN_NONE;
}

/* Output as it comes, to a Python callable: (stream, bytes). Runs on the
 * calling thread, which takes the GIL back for it. */
struct stream_ctx
{
  PyObject *fn;
  PyObject *error; /* an exception the callable raised: type, value, tb */
  PyObject *etype, *etb;
};

static int
on_output (enum sbx_stream stream, const char *data, size_t len, void *userdata)
{
  struct stream_ctx *c = userdata;
  PyGILState_STATE g = PyGILState_Ensure ();
  int stop = 0;
  if (c->error == NULL)
    {
      PyObject *res = PyObject_CallFunction (c->fn, "iy#", stream == SBX_STDERR ? 2 : 1, data,
                                             (Py_ssize_t) len);
      if (res == NULL)
        {
          PyErr_Fetch (&c->etype, &c->error, &c->etb);
          if (c->error == NULL)
            c->error = Py_NewRef (Py_None);
          stop = 1;
        }
      else if (res != Py_None && (stop = PyObject_IsTrue (res)) < 0)
        {
          PyErr_Fetch (&c->etype, &c->error, &c->etb);
          if (c->error == NULL)
            c->error = Py_NewRef (Py_None);
          stop = 1;
        }
      Py_XDECREF (res);
    }
  PyGILState_Release (g);
  return stop;
}

static PyObject *
bytes_or_none (const char *data, size_t len)
{
  if (data)
    return PyBytes_FromStringAndSize (data, (Py_ssize_t) len);
  Py_RETURN_NONE;
}

/* Fills OPTS from the exec keywords; *ENV must be freed. */
static int
exec_opts_from (sbx_exec_opts_t *opts, const char *cwd, PyObject *env, double timeout,
                Py_ssize_t max_output, char ***envv)
{
  sbx_exec_opts_init (opts);
  opts->cwd = cwd;
  opts->timeout = timeout;
  if (max_output < 0)
    {
      PyErr_SetString (PyExc_ValueError, "max_output must not be negative");
      return -1;
    }
  opts->max_output = (size_t) max_output;
  *envv = NULL;
  if (env && env != Py_None)
    {
      if ((*envv = str_vector (env, "env")) == NULL)
        return -1;
      opts->env = (const char *const *) *envv;
    }
  return 0;
}

static PyObject *
sandbox_exec (SandboxObject *self, PyObject *args, PyObject *kw)
{
  static char *kwlist[] = { "command",  "timeout", "cwd",       "env", "max_output",
                            "separate", "stdin",   "on_output", NULL };
  const char *command, *cwd = NULL;
  double timeout = 0;
  Py_ssize_t max_output = 0;
  int separate = 0;
  PyObject *env = NULL, *callback = Py_None;
  Py_buffer in = { 0 };
  if (!PyArg_ParseTupleAndKeywords (args, kw, "s|dzOnpz*O", kwlist, &command, &timeout, &cwd, &env,
                                    &max_output, &separate, &in, &callback)
      || check_open (self) < 0)
    {
      PyBuffer_Release (&in);
      return NULL;
    }
  sbx_exec_opts_t opts;
  char **envv = NULL;
  if (exec_opts_from (&opts, cwd, env, timeout, max_output, &envv) < 0)
    {
      PyBuffer_Release (&in);
      return NULL;
    }
  opts.separate_streams = separate;
  opts.stdin_data = in.buf;
  opts.stdin_len = in.buf ? (size_t) in.len : 0;
  struct stream_ctx ctx = { .fn = callback };
  if (callback != Py_None)
    {
      if (!PyCallable_Check (callback))
        {
          str_vector_free (envv);
          PyBuffer_Release (&in);
          return PyErr_Format (PyExc_TypeError, "on_output must be callable");
        }
      opts.on_output = on_output;
      opts.userdata = &ctx;
    }
  sbx_exec_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED_OR (self, r = sbx_exec (self->sb, command, &opts, &res, &err), {
    str_vector_free (envv);
    PyBuffer_Release (&in);
    return closed_error ();
  });
  str_vector_free (envv);
  PyBuffer_Release (&in);
  if (ctx.error)
    {
      sbx_exec_result_free (&res);
      sbx_error_free (err);
      PyErr_Restore (ctx.etype, ctx.error, ctx.etb);
      return NULL;
    }
  if (r < 0)
    return raise_err (r, err);
  PyObject *out
      = Py_BuildValue ("(NNNiOOOO)", bytes_or_none (res.output, res.output_len),
                       bytes_or_none (res.stdout_data, res.stdout_len),
                       bytes_or_none (res.stderr_data, res.stderr_len), res.exit_code,
                       res.truncated ? Py_True : Py_False, res.timed_out ? Py_True : Py_False,
                       res.oom_killed ? Py_True : Py_False, res.cancelled ? Py_True : Py_False);
  sbx_exec_result_free (&res);
  return out;
}

static PyObject *
bg_tuple (const sbx_bg_info_t *i)
{
  return Py_BuildValue ("(NNLOi K)", str_or_none (i->id), str_or_none (i->command),
                        (long long) i->pid, i->running ? Py_True : Py_False, i->exit_code,
                        (unsigned long long) i->dropped);
}

static PyObject *
sandbox_bg_start (SandboxObject *self, PyObject *args, PyObject *kw)
{
  static char *kwlist[] = { "command", "cwd", "env", NULL };
  const char *command, *cwd = NULL;
  PyObject *env = NULL;
  if (!PyArg_ParseTupleAndKeywords (args, kw, "s|zO", kwlist, &command, &cwd, &env)
      || check_open (self) < 0)
    return NULL;
  sbx_exec_opts_t opts;
  char **envv = NULL;
  if (exec_opts_from (&opts, cwd, env, 0, 0, &envv) < 0)
    return NULL;
  char *id = NULL;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED_OR (self, r = sbx_bg_start (self->sb, command, &opts, &id, &err), {
    str_vector_free (envv);
    return closed_error ();
  });
  str_vector_free (envv);
  if (r < 0)
    return raise_err (r, err);
  PyObject *s = PyUnicode_FromString (id);
  free (id);
  return s;
}

static PyObject *
sandbox_bg_read (SandboxObject *self, PyObject *args)
{
  const char *id;
  if (!PyArg_ParseTuple (args, "s", &id) || check_open (self) < 0)
    return NULL;
  char *out = NULL;
  size_t len = 0;
  sbx_bg_info_t info = { 0 };
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_bg_read (self->sb, id, &out, &len, &info, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *t = Py_BuildValue ("(NN)", bytes_or_none (out ? out : "", len), bg_tuple (&info));
  free (out);
  sbx_bg_info_clear (&info);
  return t;
}

static PyObject *
sandbox_bg_kill (SandboxObject *self, PyObject *args)
{
  const char *id;
  if (!PyArg_ParseTuple (args, "s", &id) || check_open (self) < 0)
    return NULL;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_bg_kill (self->sb, id, &err));
  if (r < 0)
    return raise_err (r, err);
  Py_RETURN_NONE;
}

static PyObject *
sandbox_bg_list (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  if (check_open (self) < 0)
    return NULL;
  sbx_bg_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_bg_list (self->sb, &v, &n, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *list = PyList_New ((Py_ssize_t) n);
  for (size_t i = 0; list && i < n; i++)
    {
      PyObject *t = bg_tuple (&v[i]);
      if (t == NULL)
        Py_CLEAR (list);
      else
        PyList_SET_ITEM (list, (Py_ssize_t) i, t);
    }
  sbx_bg_info_list_free (v, n);
  return list;
}

static PyObject *
sandbox_kill_all (SandboxObject *self, PyObject *unused)
{
  (void) unused;
  if (check_open (self) < 0)
    return NULL;
  size_t killed = 0;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_sandbox_kill_all (self->sb, &killed, &err));
  return r < 0 ? raise_err (r, err) : PyLong_FromSize_t (killed);
}

static PyObject *
sandbox_resolve (SandboxObject *self, PyObject *args)
{
  const char *path;
  if (!PyArg_ParseTuple (args, "s", &path) || check_open (self) < 0)
    return NULL;
  sbx_path_info_t info = { 0 };
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_resolve (self->sb, path, &info, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *t = Py_BuildValue ("(NOOOK)", str_or_none (info.path), info.exists ? Py_True : Py_False,
                               info.is_dir ? Py_True : Py_False, info.is_file ? Py_True : Py_False,
                               (unsigned long long) info.size);
  sbx_path_info_clear (&info);
  return t;
}

/* [(name, path, is_dir, size)], truncated */
static PyObject *
file_list (sbx_file_list_t *l)
{
  PyObject *list = PyList_New ((Py_ssize_t) l->count);
  for (size_t i = 0; list && i < l->count; i++)
    {
      sbx_file_info_t *f = &l->items[i];
      PyObject *t = Py_BuildValue ("(NNOK)", str_or_none (f->name), str_or_none (f->path),
                                   f->is_dir ? Py_True : Py_False, (unsigned long long) f->size);
      if (t == NULL)
        Py_CLEAR (list);
      else
        PyList_SET_ITEM (list, (Py_ssize_t) i, t);
    }
  PyObject *out = list ? Py_BuildValue ("(NO)", list, l->truncated ? Py_True : Py_False) : NULL;
  sbx_file_list_free (l);
  return out;
}

static PyObject *
sandbox_ls (SandboxObject *self, PyObject *args)
{
  const char *path;
  if (!PyArg_ParseTuple (args, "s", &path) || check_open (self) < 0)
    return NULL;
  sbx_file_list_t l = { 0 };
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_ls (self->sb, path, NULL, &l, &err));
  return r < 0 ? raise_err (r, err) : file_list (&l);
}

static PyObject *
sandbox_glob (SandboxObject *self, PyObject *args)
{
  const char *pattern, *path = NULL;
  if (!PyArg_ParseTuple (args, "s|z", &pattern, &path) || check_open (self) < 0)
    return NULL;
  sbx_file_list_t l = { 0 };
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_glob (self->sb, pattern, path, NULL, &l, &err));
  return r < 0 ? raise_err (r, err) : file_list (&l);
}

static PyObject *
sandbox_read (SandboxObject *self, PyObject *args)
{
  const char *path;
  Py_ssize_t offset = 0, limit = 0;
  if (!PyArg_ParseTuple (args, "s|nn", &path, &offset, &limit) || check_open (self) < 0)
    return NULL;
  if (offset < 0 || limit < 0)
    return PyErr_Format (PyExc_ValueError, "offset and limit must not be negative");
  char *text = NULL;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_read (self->sb, path, (size_t) offset, (size_t) limit, &text, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *s = PyUnicode_DecodeUTF8 (text, (Py_ssize_t) strlen (text), "replace");
  free (text);
  return s;
}

static PyObject *
sandbox_read_bytes (SandboxObject *self, PyObject *args)
{
  const char *path;
  if (!PyArg_ParseTuple (args, "s", &path) || check_open (self) < 0)
    return NULL;
  void *data = NULL;
  size_t len = 0;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_read_bytes (self->sb, path, &data, &len, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *b = PyBytes_FromStringAndSize (data, (Py_ssize_t) len);
  free (data);
  return b;
}

static PyObject *
sandbox_write (SandboxObject *self, PyObject *args)
{
  const char *path;
  Py_buffer data;
  if (!PyArg_ParseTuple (args, "sy*", &path, &data))
    return NULL;
  if (check_open (self) < 0)
    {
      PyBuffer_Release (&data);
      return NULL;
    }
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED_OR (self, r = sbx_write (self->sb, path, data.buf, (size_t) data.len, &err), {
    PyBuffer_Release (&data);
    return closed_error ();
  });
  PyBuffer_Release (&data);
  if (r < 0)
    return raise_err (r, err);
  Py_RETURN_NONE;
}

static PyObject *
sandbox_edit (SandboxObject *self, PyObject *args)
{
  const char *path, *old_text, *new_text;
  int all = 0;
  if (!PyArg_ParseTuple (args, "sss|p", &path, &old_text, &new_text, &all) || check_open (self) < 0)
    return NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_edit (self->sb, path, old_text, new_text, all, &n, &err));
  return r < 0 ? raise_err (r, err) : PyLong_FromSize_t (n);
}

static PyObject *
sandbox_grep (SandboxObject *self, PyObject *args, PyObject *kw)
{
  static char *kwlist[] = { "pattern", "path", "glob", "include_hidden", "ignore_case", NULL };
  const char *pattern;
  sbx_grep_opts_t opts = { 0 };
  int hidden = 0, icase = 0;
  if (!PyArg_ParseTupleAndKeywords (args, kw, "s|zzpp", kwlist, &pattern, &opts.path, &opts.glob,
                                    &hidden, &icase)
      || check_open (self) < 0)
    return NULL;
  opts.include_hidden = hidden;
  opts.ignore_case = icase;
  sbx_grep_result_t res = { 0 };
  sbx_error_t *err = NULL;
  int r;
  UNLOCKED (self, r = sbx_grep (self->sb, pattern, &opts, &res, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *list = PyList_New ((Py_ssize_t) res.count);
  for (size_t i = 0; list && i < res.count; i++)
    {
      sbx_grep_match_t *g = &res.items[i];
      PyObject *t = Py_BuildValue ("(NKN)", str_or_none (g->path),
                                   (unsigned long long) g->line_number, str_or_none (g->line));
      if (t == NULL)
        Py_CLEAR (list);
      else
        PyList_SET_ITEM (list, (Py_ssize_t) i, t);
    }
  PyObject *out = list ? Py_BuildValue ("(NO)", list, res.truncated ? Py_True : Py_False) : NULL;
  sbx_grep_result_free (&res);
  return out;
}

static PyMethodDef sandbox_methods[] = {
  { "id", (PyCFunction) sandbox_id, METH_NOARGS, "The container's name (None before start)." },
  { "image", (PyCFunction) sandbox_image, METH_NOARGS, "The image (None before start)." },
  { "workdir", (PyCFunction) sandbox_workdir, METH_NOARGS, "The work dir." },
  { "notice", (PyCFunction) sandbox_notice, METH_NOARGS,
    "What sbx did otherwise than asked, or None." },
  { "start", (PyCFunction) sandbox_start, METH_NOARGS, "Start (create if needed)." },
  { "stop", (PyCFunction) sandbox_stop, METH_NOARGS, "Stop; remove when auto-remove." },
  { "remove", (PyCFunction) sandbox_remove, METH_NOARGS, "Remove the container." },
  { "is_alive", (PyCFunction) sandbox_is_alive, METH_NOARGS, "Whether it runs." },
  { "close", (PyCFunction) sandbox_close, METH_NOARGS, "Release the handle." },
  { "exec", (PyCFunction) (void (*) (void)) sandbox_exec, METH_VARARGS | METH_KEYWORDS,
    "exec(command, timeout, cwd, env, max_output, separate, stdin, on_output) -> (output, "
    "stdout, stderr, exit_code, truncated, timed_out, oom_killed, cancelled)" },
  { "bg_start", (PyCFunction) (void (*) (void)) sandbox_bg_start, METH_VARARGS | METH_KEYWORDS,
    "Start a background process; its id." },
  { "bg_read", (PyCFunction) sandbox_bg_read, METH_VARARGS, "New output and status." },
  { "bg_kill", (PyCFunction) sandbox_bg_kill, METH_VARARGS, "Kill a background process." },
  { "bg_list", (PyCFunction) sandbox_bg_list, METH_NOARGS, "The background processes." },
  { "kill_all", (PyCFunction) sandbox_kill_all, METH_NOARGS, "Kill every process but the agent." },
  { "resolve", (PyCFunction) sandbox_resolve, METH_VARARGS,
    "(path, exists, is_dir, is_file, size)" },
  { "ls", (PyCFunction) sandbox_ls, METH_VARARGS, "([(name, path, is_dir, size)], truncated)" },
  { "glob", (PyCFunction) sandbox_glob, METH_VARARGS, "Files matching a pattern." },
  { "read", (PyCFunction) sandbox_read, METH_VARARGS, "Numbered lines." },
  { "read_bytes", (PyCFunction) sandbox_read_bytes, METH_VARARGS, "The whole file." },
  { "write", (PyCFunction) sandbox_write, METH_VARARGS, "Write a file atomically." },
  { "edit", (PyCFunction) sandbox_edit, METH_VARARGS, "Replace text; the occurrences." },
  { "grep", (PyCFunction) (void (*) (void)) sandbox_grep, METH_VARARGS | METH_KEYWORDS,
    "([(path, line_number, line)], truncated)" },
  { NULL, NULL, 0, NULL },
};

static PyTypeObject SandboxType = {
  PyVarObject_HEAD_INIT (NULL, 0).tp_name = "sbx._sbx.Sandbox",
  .tp_basicsize = sizeof (SandboxObject),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "A handle on a sandbox (libsbx's sbx_sandbox_t).",
  .tp_dealloc = (destructor) sandbox_dealloc,
  .tp_methods = sandbox_methods,
};

/* ------------------------------------------------------------- managers */

typedef struct
{
  PyObject_HEAD sbx_manager_t *m;
  unsigned busy; /* calls in flight (counted with the GIL held): close waits for none */
} ManagerObject;

/* Runs STMT on the manager with the GIL released, counted in BUSY. */
#define MANAGER_CALL(self, stmt)                                                                   \
  do                                                                                               \
    {                                                                                              \
      (self)->busy++;                                                                              \
      Py_BEGIN_ALLOW_THREADS stmt;                                                                 \
      Py_END_ALLOW_THREADS (self)->busy--;                                                         \
    }                                                                                              \
  while (0)

static void
manager_dealloc (ManagerObject *self)
{
  sbx_manager_t *m = self->m;
  /* Joining its threads can wait on the engine. */
  Py_BEGIN_ALLOW_THREADS sbx_manager_free (m);
  Py_END_ALLOW_THREADS Py_TYPE (self)->tp_free ((PyObject *) self);
}

/* Manager(name=None, workspace_root=None, idle_timeout=0, max_sessions=0,
 * max_per_user=0, pool_size=0, **sandbox options) */
static int
manager_init (ManagerObject *self, PyObject *args, PyObject *kw)
{
  static const char *const own[] = {
    "name", "workspace_root", "idle_timeout", "max_sessions", "max_per_user", "pool_size", NULL
  };
  if (PyTuple_GET_SIZE (args) != 0)
    {
      PyErr_SetString (PyExc_TypeError, "Manager() takes keyword arguments only");
      return -1;
    }
  if (self->m)
    {
      PyErr_SetString (PyExc_RuntimeError, "this manager is made already");
      return -1;
    }
  PyObject *sandbox_kw = kw ? PyDict_Copy (kw) : PyDict_New ();
  if (sandbox_kw == NULL)
    return -1;
  sbx_manager_config_t c = { 0 };
  PyObject *v;
  for (const char *const *k = own; *k; k++)
    if ((v = PyDict_GetItemString (sandbox_kw, *k)) != NULL)
      {
        if (v != Py_None)
          {
            if (strcmp (*k, "name") == 0 || strcmp (*k, "workspace_root") == 0)
              {
                const char *s = utf8_arg (v, *k);
                if (s == NULL)
                  goto fail;
                *(strcmp (*k, "name") == 0 ? &c.name : &c.workspace_root) = s;
              }
            else if (strcmp (*k, "idle_timeout") == 0)
              {
                if ((c.idle_timeout = PyFloat_AsDouble (v)) == -1.0 && PyErr_Occurred ())
                  goto fail;
              }
            else
              {
                long long n = PyLong_AsLongLong (v);
                if (n == -1 && PyErr_Occurred ())
                  goto fail;
                if (n < 0)
                  {
                    PyErr_Format (PyExc_ValueError, "%s must not be negative", *k);
                    goto fail;
                  }
                *(strcmp (*k, "max_sessions") == 0   ? &c.max_sessions
                  : strcmp (*k, "max_per_user") == 0 ? &c.max_per_user
                                                     : &c.pool_size)
                    = (size_t) n;
              }
          }
      }
  /* The strings above are borrowed from KW, which outlives this call. */
  for (const char *const *k = own; *k; k++)
    if (PyDict_GetItemString (sandbox_kw, *k) && PyDict_DelItemString (sandbox_kw, *k) < 0)
      goto fail;
  sbx_options_t *o = options_from (sandbox_kw);
  if (o == NULL)
    goto fail;
  c.sandbox = o;
  sbx_error_t *err = NULL;
  int r;
  sbx_manager_t *made = NULL;
  MANAGER_CALL (self, r = sbx_manager_new (&c, &made, &err));
  sbx_options_free (o);
  Py_DECREF (sandbox_kw);
  if (r < 0)
    {
      raise_err (r, err);
      return -1;
    }
  if (self->m)
    {
      /* Another thread's __init__ won meanwhile. */
      Py_BEGIN_ALLOW_THREADS sbx_manager_free (made);
      Py_END_ALLOW_THREADS PyErr_SetString (PyExc_RuntimeError, "this manager is made already");
      return -1;
    }
  self->m = made;
  return 0;
fail:
  Py_DECREF (sandbox_kw);
  return -1;
}

static int
manager_check (ManagerObject *self)
{
  if (self->m)
    return 0;
  PyErr_SetString (Error, "this manager is closed");
  return -1;
}

static PyObject *
manager_create_session (ManagerObject *self, PyObject *args)
{
  const char *user;
  if (!PyArg_ParseTuple (args, "s", &user) || manager_check (self) < 0)
    return NULL;
  char *id = NULL;
  sbx_error_t *err = NULL;
  int r;
  MANAGER_CALL (self, r = sbx_manager_create_session (self->m, user, &id, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *s = PyUnicode_FromString (id);
  free (id);
  return s;
}

static PyObject *
manager_get_session (ManagerObject *self, PyObject *args)
{
  const char *id, *user = NULL;
  if (!PyArg_ParseTuple (args, "s|z", &id, &user) || manager_check (self) < 0)
    return NULL;
  sbx_sandbox_t *sb = NULL;
  sbx_error_t *err = NULL;
  int r;
  MANAGER_CALL (self, r = user ? sbx_manager_get_or_create (self->m, id, user, &sb, &err)
                               : sbx_manager_get_session (self->m, id, &sb, &err));
  return r < 0 ? raise_err (r, err) : wrap_sandbox (sb);
}

static PyObject *
manager_end_session (ManagerObject *self, PyObject *args)
{
  const char *id;
  int purge = 0;
  if (!PyArg_ParseTuple (args, "s|p", &id, &purge) || manager_check (self) < 0)
    return NULL;
  sbx_error_t *err = NULL;
  int r;
  MANAGER_CALL (self, r = sbx_manager_end_session (self->m, id, purge, &err));
  if (r < 0)
    return raise_err (r, err);
  Py_RETURN_NONE;
}

static PyObject *
manager_list (ManagerObject *self, PyObject *unused)
{
  (void) unused;
  if (manager_check (self) < 0)
    return NULL;
  sbx_session_info_t *v = NULL;
  size_t n = 0;
  sbx_error_t *err = NULL;
  int r;
  MANAGER_CALL (self, r = sbx_manager_list (self->m, &v, &n, &err));
  if (r < 0)
    return raise_err (r, err);
  PyObject *list = PyList_New ((Py_ssize_t) n);
  for (size_t i = 0; list && i < n; i++)
    {
      PyObject *t = Py_BuildValue ("(NNNddN)", str_or_none (v[i].id), str_or_none (v[i].user),
                                   str_or_none (v[i].sandbox), v[i].created, v[i].last_activity,
                                   str_or_none (v[i].state));
      if (t == NULL)
        Py_CLEAR (list);
      else
        PyList_SET_ITEM (list, (Py_ssize_t) i, t);
    }
  sbx_session_info_list_free (v, n);
  return list;
}

static PyObject *
manager_cleanup_idle (ManagerObject *self, PyObject *args)
{
  double max_idle = 0;
  if (!PyArg_ParseTuple (args, "|d", &max_idle) || manager_check (self) < 0)
    return NULL;
  size_t reaped = 0;
  sbx_error_t *err = NULL;
  int r;
  MANAGER_CALL (self, r = sbx_manager_cleanup_idle (self->m, max_idle, &reaped, &err));
  return r < 0 ? raise_err (r, err) : PyLong_FromSize_t (reaped);
}

static PyObject *
manager_start_reaper (ManagerObject *self, PyObject *args)
{
  double interval = 0;
  if (!PyArg_ParseTuple (args, "|d", &interval) || manager_check (self) < 0)
    return NULL;
  sbx_error_t *err = NULL;
  int r;
  /* It may wait for a stop's join (a cleanup in flight). */
  MANAGER_CALL (self, r = sbx_manager_start_reaper (self->m, interval, &err));
  if (r < 0)
    return raise_err (r, err);
  Py_RETURN_NONE;
}

static PyObject *
manager_stop_reaper (ManagerObject *self, PyObject *unused)
{
  (void) unused;
  if (manager_check (self) < 0)
    return NULL;
  MANAGER_CALL (self, sbx_manager_stop_reaper (self->m));
  Py_RETURN_NONE;
}

static PyObject *
manager_pool_ready (ManagerObject *self, PyObject *unused)
{
  (void) unused;
  return manager_check (self) < 0 ? NULL : PyLong_FromSize_t (sbx_manager_pool_ready (self->m));
}

static PyObject *
manager_shutdown (ManagerObject *self, PyObject *unused)
{
  (void) unused;
  if (manager_check (self) < 0)
    return NULL;
  size_t stopped = 0;
  sbx_error_t *err = NULL;
  int r;
  MANAGER_CALL (self, r = sbx_manager_shutdown (self->m, &stopped, &err));
  return r < 0 ? raise_err (r, err) : PyLong_FromSize_t (stopped);
}

static PyObject *
manager_close (ManagerObject *self, PyObject *unused)
{
  (void) unused;
  if (self->busy)
    return PyErr_Format (PyExc_RuntimeError,
                         "the manager is in use by %u call(s) of other threads; close it after",
                         self->busy);
  sbx_manager_t *m = self->m;
  self->m = NULL;
  Py_BEGIN_ALLOW_THREADS sbx_manager_free (m);
  Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyMethodDef manager_methods[] = {
  { "close", (PyCFunction) manager_close, METH_NOARGS,
    "Free the manager: its warm sandboxes are removed, its sessions keep running." },
  { "create_session", (PyCFunction) manager_create_session, METH_VARARGS, "A new session's id." },
  { "get_session", (PyCFunction) manager_get_session, METH_VARARGS,
    "get_session(id[, user]): the session's Sandbox (made for USER when missing)." },
  { "end_session", (PyCFunction) manager_end_session, METH_VARARGS, "end_session(id, purge)" },
  { "list", (PyCFunction) manager_list, METH_NOARGS,
    "[(id, user, sandbox, created, last_activity, state)]" },
  { "cleanup_idle", (PyCFunction) manager_cleanup_idle, METH_VARARGS, "Sessions reaped." },
  { "start_reaper", (PyCFunction) manager_start_reaper, METH_VARARGS, "A reaper thread." },
  { "stop_reaper", (PyCFunction) manager_stop_reaper, METH_NOARGS, "Stop the reaper." },
  { "pool_ready", (PyCFunction) manager_pool_ready, METH_NOARGS, "Warm sandboxes ready." },
  { "shutdown", (PyCFunction) manager_shutdown, METH_NOARGS, "Sessions stopped." },
  { NULL, NULL, 0, NULL },
};

static PyTypeObject ManagerType = {
  PyVarObject_HEAD_INIT (NULL, 0).tp_name = "sbx._sbx.Manager",
  .tp_basicsize = sizeof (ManagerObject),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "A session manager (libsbx's sbx_manager_t).",
  .tp_dealloc = (destructor) manager_dealloc,
  .tp_init = (initproc) manager_init,
  .tp_new = PyType_GenericNew,
  .tp_methods = manager_methods,
};

static PyObject *
mod_manager_delete (PyObject *m, PyObject *args)
{
  (void) m;
  const char *name;
  if (!PyArg_ParseTuple (args, "s", &name))
    return NULL;
  sbx_error_t *err = NULL;
  int r;
  Py_BEGIN_ALLOW_THREADS r = sbx_manager_delete (name, &err);
  Py_END_ALLOW_THREADS if (r < 0) return raise_err (r, err);
  Py_RETURN_NONE;
}

static PyObject *
mod_session_id_valid (PyObject *m, PyObject *args)
{
  (void) m;
  const char *id;
  if (!PyArg_ParseTuple (args, "s", &id))
    return NULL;
  return PyBool_FromLong (sbx_session_id_valid (id));
}

static PyObject *
mod_image_exists (PyObject *m, PyObject *args)
{
  (void) m;
  const char *image;
  if (!PyArg_ParseTuple (args, "s", &image))
    return NULL;
  bool exists = false;
  sbx_error_t *err = NULL;
  int r;
  Py_BEGIN_ALLOW_THREADS r = sbx_image_exists (image, &exists, &err);
  Py_END_ALLOW_THREADS return r < 0 ? raise_err (r, err) : PyBool_FromLong (exists);
}

static PyObject *
mod_set_error_class (PyObject *m, PyObject *cls)
{
  (void) m;
  if (!PyType_Check (cls)
      || !PyType_IsSubtype ((PyTypeObject *) cls, (PyTypeObject *) PyExc_Exception))
    return PyErr_Format (PyExc_TypeError, "an exception class is needed");
  Py_SETREF (Error, Py_NewRef (cls));
  Py_RETURN_NONE;
}

/* --------------------------------------------------------------- module */

static PyMethodDef module_methods[] = {
  { "new", (PyCFunction) (void (*) (void)) mod_new, METH_VARARGS | METH_KEYWORDS,
    "new(**options): a lazy Sandbox (nothing starts yet)." },
  { "open", (PyCFunction) mod_open, METH_VARARGS, "open(id): a Sandbox on an existing one." },
  { "runtime_builtin", (PyCFunction) mod_runtime_builtin, METH_VARARGS, "A built-in runtime." },
  { "runtime_from_json", (PyCFunction) mod_runtime_from_json, METH_VARARGS,
    "A runtime from its JSON definition." },
  { "runtime_builtin_names", (PyCFunction) mod_runtime_builtin_names, METH_NOARGS,
    "The built-in runtimes' names." },
  { "manager_delete", (PyCFunction) mod_manager_delete, METH_VARARGS,
    "Remove a manager's state once it has no session." },
  { "session_id_valid", (PyCFunction) mod_session_id_valid, METH_VARARGS,
    "Whether an id fits the grammar." },
  { "image_exists", (PyCFunction) mod_image_exists, METH_VARARGS, "Whether the engine has it." },
  { "set_error_class", (PyCFunction) mod_set_error_class, METH_O,
    "The exception class raised (the package's SbxError)." },
  { NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
  PyModuleDef_HEAD_INIT,
  "sbx._sbx",
  "libsbx for Python (see the sbx package).",
  -1,
  module_methods,
  NULL,
  NULL,
  NULL,
  NULL,
};

PyMODINIT_FUNC PyInit__sbx (void);

PyMODINIT_FUNC
PyInit__sbx (void)
{
  if (PyType_Ready (&SandboxType) < 0 || PyType_Ready (&ManagerType) < 0
      || PyType_Ready (&RuntimeType) < 0)
    return NULL;
  PyObject *m = PyModule_Create (&module);
  if (m == NULL)
    return NULL;
  Error = PyErr_NewExceptionWithDoc ("sbx._sbx.Error", "An sbx failure: args are (code, message).",
                                     NULL, NULL);
  if (Error == NULL || PyModule_AddObjectRef (m, "Error", Error) < 0
      || PyModule_AddObjectRef (m, "Sandbox", (PyObject *) &SandboxType) < 0
      || PyModule_AddObjectRef (m, "Manager", (PyObject *) &ManagerType) < 0
      || PyModule_AddObjectRef (m, "Runtime", (PyObject *) &RuntimeType) < 0
      || PyModule_AddStringConstant (m, "SEED_IMAGE", SBX_SEED_IMAGE) < 0
      || PyModule_AddStringConstant (m, "BASE_IMAGE", SBX_BASE_IMAGE) < 0
      || PyModule_AddIntConstant (m, "DEFAULT_MAX_OUTPUT", SBX_DEFAULT_MAX_OUTPUT) < 0)
    {
      Py_DECREF (m);
      return NULL;
    }
  return m;
}

/* statserver._speedups: compiled fast paths of statserver.wire.decode_protobuf, of
 * statserver.sinks.summary's per-stat set updates (summary_add) and of the common case of
 * statserver.aggregation.aggregator.Aggregator.record_many (aggregate_record_many), of
 * cutting a read into whole WebSocket data messages (split_frames), of admitting a frame's
 * stats of known names (admit_all) and of reading a revision's linear averages
 * (linear_averages), at the end.
 *
 * decode_protobuf(payload, received_at=None) reads a WireStatMessages frame
 * (statserver/wire/stat.proto) straight from the protobuf wire format into StatMessage
 * tuples, without the protobuf library's message objects. The pure-Python function in
 * statserver.wire.protostat is the reference: the same stats for every frame it accepts, and
 * the same FrameError (same reason text) for every frame it rejects. In particular, as
 * the protobuf library (upb) does:
 *   - a known field sent with another wire type, and any unknown field, is skipped
 *     (a singular field's "packed" form included);
 *   - a singular field sent twice keeps the last value; a message field sent twice is
 *     merged; WireStatMessages.messages appends an entry per occurrence;
 *   - a string field that is not valid UTF-8 fails the frame, even if sent again later;
 *   - field number 0, wire types 6 and 7, an end-group tag outside its group, a varint,
 *     tag or length that is too long or runs past its message, and groups nested deeper
 *     than the library's recursion limit (100, submessages included) fail the frame.
 * The points where protobuf releases differ (how many bytes a length varint may take,
 * whether field number 0 is allowed inside an unknown group) and the reason texts are
 * given by statserver.wire.protostat through configure(), which learns them from the protobuf
 * library in use.
 *
 * Plain C against the CPython API, no Cython: nothing beyond a C compiler is needed to
 * build it, and it is one short file.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX, READONLY */
#include <stdint.h>
#include <math.h>
#include <string.h>

/* configure()'s settings: new references, NULL until configured. */
static PyObject *frame_error;      /* FrameError(format, reason) */
static PyTypeObject *stat_type;    /* StatMessage, a tuple subclass of 11 fields */
static PyObject *format_name;      /* "protobuf" */
static PyObject *corrupt_reason;   /* the reason for a malformed frame */
static PyObject *utf8_reason;      /* the reason for a string that is not UTF-8 */
static int size_varint_bytes = 5;  /* the longest length varint accepted */
static int field_zero_in_group;    /* whether field 0 may appear inside a group */

/* One shared float for each whole value 0.0 to 255.0: most of a stat's fields are zero,
 * and Knative's request counts are whole numbers, mostly small. */
#define SMALL_FLOATS 256
static PyObject *small_floats[SMALL_FLOATS];
static PyObject *empty_str;
static PyObject *ns_per_s;         /* 1_000_000_000 as a Python int */

#define STAT_FIELDS 11
#define RECURSION_LIMIT 100

enum { OK = 0, CORRUPT = -1, BAD_UTF8 = -2, PY_ERROR = -3 };
enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_DELIMITED = 2, WT_START_GROUP = 3,
       WT_END_GROUP = 4, WT_FIXED32 = 5 };

typedef struct {
    const uint8_t *p;
    const uint8_t *end;        /* of the message being read */
    const uint8_t *frame_end;  /* of the whole frame */
} Reader;

/* The string last decoded for one field: consecutive stats of a frame mostly share
 * namespace, name and pod, and then share one str object (whose hash is cached too). */
typedef struct {
    const uint8_t *bytes;
    Py_ssize_t len;
    PyObject *str; /* borrowed from the entry that holds it, or from the output list */
} StringCache;

typedef struct {
    PyObject *namespace_, *name, *pod; /* new references or NULL (empty) */
    double values[5];
    int64_t timestamp;
    int has_stat;
} Entry;

static int
read_varint(Reader *r, int max_bytes, uint64_t *out)
{
    uint64_t value = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (r->p >= r->frame_end)
            return CORRUPT;
        uint8_t b = *r->p++;
        value |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = value;
            return OK;
        }
    }
    return CORRUPT;
}

static int
read_tag(Reader *r, uint32_t *field, int *wire_type)
{
    uint64_t tag;
    if (read_varint(r, 5, &tag) < 0 || tag > UINT32_MAX)
        return CORRUPT;
    *field = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    return OK;
}

/* A length-delimited field's bytes: *sub covers them and r moves past them. */
static int
read_delimited(Reader *r, Reader *sub)
{
    uint64_t size;
    if (read_varint(r, size_varint_bytes, &size) < 0 || size >= INT32_MAX
            || (Py_ssize_t)size > r->end - r->p)
        return CORRUPT;
    sub->p = r->p;
    sub->end = r->p + size;
    sub->frame_end = r->frame_end;
    r->p += size;
    return OK;
}

static int
skip_bytes(Reader *r, Py_ssize_t n)
{
    if (r->frame_end - r->p < n)
        return CORRUPT;
    r->p += n;
    return OK;
}

static int skip_field(Reader *r, uint32_t field, int wire_type, int depth);

/* The rest of a group opened by field `field`, up to and including its end tag. */
static int
skip_group(Reader *r, uint32_t field, int depth)
{
    if (--depth < 0)
        return CORRUPT;
    for (;;) {
        uint32_t inner;
        int wire_type;
        if (read_tag(r, &inner, &wire_type) < 0)
            return CORRUPT;
        if (wire_type == WT_END_GROUP)
            return inner == field ? OK : CORRUPT;
        if (inner == 0 && !field_zero_in_group)
            return CORRUPT;
        if (skip_field(r, inner, wire_type, depth) < 0)
            return CORRUPT;
    }
}

static int
skip_field(Reader *r, uint32_t field, int wire_type, int depth)
{
    uint64_t ignored;
    Reader sub;
    switch (wire_type) {
    case WT_VARINT:
        return read_varint(r, 10, &ignored);
    case WT_FIXED64:
        return skip_bytes(r, 8);
    case WT_DELIMITED:
        return read_delimited(r, &sub);
    case WT_START_GROUP:
        return skip_group(r, field, depth);
    case WT_FIXED32:
        return skip_bytes(r, 4);
    default: /* an end-group tag outside its group, or wire types 6 and 7 */
        return CORRUPT;
    }
}

/* The tag of a message's next field; CORRUPT for field 0 and for an end-group tag. */
static int
next_field(Reader *r, uint32_t *field, int *wire_type)
{
    if (read_tag(r, field, wire_type) < 0 || *field == 0 || *wire_type == WT_END_GROUP)
        return CORRUPT;
    return OK;
}

/* Decode a string field into *slot (replacing what it held). As upb does, a string
 * longer than its message but not than the frame is checked for UTF-8 before the
 * message's overrun is reported. */
/* Strings seen lately, in every frame: a fleet sends the same namespaces, names and pod
 * names second after second, and one str object for each (its hash cached) makes every
 * sink's dict and set lookups of them identity hits. A slot holds the last short ASCII
 * string whose bytes hash to it; at most RECENT_SLOTS * RECENT_MAX_LEN bytes of text. */
#define RECENT_SLOTS 1024
#define RECENT_MAX_LEN 64
static PyObject *recent_strings[RECENT_SLOTS];

static PyObject *
decode_string(const uint8_t *bytes, Py_ssize_t len)
{
    if (len > RECENT_MAX_LEN)
        return PyUnicode_DecodeUTF8((const char *)bytes, len, NULL);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < len; i++)
        h = (h ^ bytes[i]) * 16777619u;
    PyObject **slot = &recent_strings[(h ^ (h >> 16)) & (RECENT_SLOTS - 1)];
    PyObject *seen = *slot;
    if (seen != NULL && PyUnicode_GET_LENGTH(seen) == len
            && memcmp(PyUnicode_1BYTE_DATA(seen), bytes, len) == 0)
        return Py_NewRef(seen);
    PyObject *str = PyUnicode_DecodeUTF8((const char *)bytes, len, NULL);
    if (str != NULL && PyUnicode_IS_COMPACT_ASCII(str))
        Py_XSETREF(*slot, Py_NewRef(str));
    return str;
}

static int
read_string(Reader *r, PyObject **slot, StringCache *cache)
{
    uint64_t size;
    if (read_varint(r, size_varint_bytes, &size) < 0 || size >= INT32_MAX
            || size > (uint64_t)(r->frame_end - r->p))
        return CORRUPT;
    const uint8_t *bytes = r->p;
    Py_ssize_t len = (Py_ssize_t)size;
    int overrun = (Py_ssize_t)size > r->end - r->p;
    r->p += size;
    PyObject *str;
    if (!overrun && cache->str != NULL && cache->len == len
            && memcmp(cache->bytes, bytes, len) == 0) {
        str = cache->str;
        Py_INCREF(str);
    }
    else if (len == 0) {
        str = empty_str;
        Py_INCREF(str);
    }
    else {
        str = decode_string(bytes, len);
        if (str == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return PY_ERROR;
            PyErr_Clear();
            return BAD_UTF8;
        }
    }
    if (overrun) {
        Py_DECREF(str);
        return CORRUPT;
    }
    Py_XSETREF(*slot, str);
    cache->bytes = bytes;
    cache->len = len;
    cache->str = str;
    return OK;
}

static int
read_stat(Reader *r, Entry *e, StringCache *pods, int depth)
{
    if (--depth < 0)
        return CORRUPT;
    while (r->p < r->end) {
        uint32_t field;
        int wire_type, rc;
        if (next_field(r, &field, &wire_type) < 0)
            return CORRUPT;
        if (field == 1 && wire_type == WT_DELIMITED) {
            rc = read_string(r, &e->pod, pods);
        }
        else if (field >= 2 && field <= 6 && wire_type == WT_FIXED64) {
            if (r->frame_end - r->p < 8)
                return CORRUPT;
            uint64_t bits = 0;
            for (int i = 7; i >= 0; i--)
                bits = bits << 8 | r->p[i];
            memcpy(&e->values[field - 2], &bits, sizeof(double));
            r->p += 8;
            rc = OK;
        }
        else if (field == 7 && wire_type == WT_VARINT) {
            uint64_t value = 0;
            rc = read_varint(r, 10, &value);
            e->timestamp = (int64_t)value;
        }
        else {
            rc = skip_field(r, field, wire_type, depth);
        }
        if (rc < 0)
            return rc;
        if (r->p > r->end)
            return CORRUPT; /* the field ran past its message */
    }
    return OK;
}

static int
read_entry(Reader *r, Entry *e, StringCache caches[3], int depth)
{
    if (--depth < 0)
        return CORRUPT;
    while (r->p < r->end) {
        uint32_t field;
        int wire_type, rc;
        if (next_field(r, &field, &wire_type) < 0)
            return CORRUPT;
        if (field == 1 && wire_type == WT_DELIMITED) {
            rc = read_string(r, &e->namespace_, &caches[0]);
        }
        else if (field == 2 && wire_type == WT_DELIMITED) {
            rc = read_string(r, &e->name, &caches[1]);
        }
        else if (field == 3 && wire_type == WT_DELIMITED) {
            Reader sub;
            rc = read_delimited(r, &sub);
            if (rc == OK) {
                e->has_stat = 1;
                rc = read_stat(&sub, e, &caches[2], depth);
            }
        }
        else {
            rc = skip_field(r, field, wire_type, depth);
        }
        if (rc < 0)
            return rc;
        if (r->p > r->end)
            return CORRUPT; /* the field ran past its message */
    }
    return OK;
}

static PyObject *
new_float(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    if (bits == 0) /* +0.0 only: -0.0 keeps its sign */
        return Py_NewRef(small_floats[0]);
    if (value >= 1.0 && value < SMALL_FLOATS && value == (double)(int)value)
        return Py_NewRef(small_floats[(int)value]);
    return PyFloat_FromDouble(value);
}

/* The last timestamp made: a sender stamps a frame's stats with the same second, and
 * one int for all of them saves an allocation a stat and lets the aggregator see the
 * same object again (its time memo, and its "later than the last" test). */
static int64_t last_timestamp_seconds;
static PyObject *last_timestamp;

static PyObject *
new_timestamp(int64_t seconds)
{
    if (seconds == 0)
        Py_RETURN_NONE;
    if (seconds > -9000000000LL && seconds < 9000000000LL) {
        if (last_timestamp != NULL && seconds == last_timestamp_seconds)
            return Py_NewRef(last_timestamp);
        PyObject *ns = PyLong_FromLongLong(seconds * 1000000000LL);
        if (ns != NULL) {
            Py_XSETREF(last_timestamp, Py_NewRef(ns));
            last_timestamp_seconds = seconds;
        }
        return ns;
    }
    PyObject *s = PyLong_FromLongLong(seconds);
    if (s == NULL)
        return NULL;
    PyObject *ns = PyNumber_Multiply(s, ns_per_s);
    Py_DECREF(s);
    return ns;
}

static PyObject *
or_empty(PyObject *str)
{
    return str != NULL ? str : Py_NewRef(empty_str);
}

/* A StatMessage of the entry, stealing its strings; NULL with an exception set. */
static PyObject *
new_stat(Entry *e, PyObject *received_at)
{
    PyObject *stat = stat_type->tp_alloc(stat_type, STAT_FIELDS);
    if (stat == NULL)
        return NULL;
    PyTuple_SET_ITEM(stat, 0, or_empty(e->namespace_));
    PyTuple_SET_ITEM(stat, 1, or_empty(e->name));
    PyTuple_SET_ITEM(stat, 2, or_empty(e->pod));
    e->namespace_ = e->name = e->pod = NULL;
    for (int i = 0; i < 5; i++) {
        PyObject *value = new_float(e->values[i]);
        if (value == NULL) {
            Py_DECREF(stat);
            return NULL;
        }
        PyTuple_SET_ITEM(stat, 3 + i, value);
    }
    PyObject *timestamp = new_timestamp(e->timestamp);
    if (timestamp == NULL) {
        Py_DECREF(stat);
        return NULL;
    }
    PyTuple_SET_ITEM(stat, 8, timestamp);
    PyTuple_SET_ITEM(stat, 9, Py_NewRef(received_at));
    PyTuple_SET_ITEM(stat, 10, Py_NewRef(Py_None));
    /* Strings, floats, ints and None cannot hold a reference cycle: unless received_at
     * can, the cyclic GC need not see the stat (CPython untracks such plain tuples
     * itself, but not a subclass's). A 1 MiB frame's 262,140 stats otherwise cost the
     * collector several times their decoding. */
    if (!PyObject_GC_IsTracked(received_at))
        PyObject_GC_UnTrack(stat);
    return stat;
}

static void
clear_entry(Entry *e)
{
    Py_CLEAR(e->namespace_);
    Py_CLEAR(e->name);
    Py_CLEAR(e->pod);
}

/* The stats of the frame in `out`; OK, or why not. */
static int
decode(const uint8_t *data, Py_ssize_t size, PyObject *received_at, PyObject *out)
{
    Reader r = {data, data + size, data + size};
    StringCache caches[3] = {{NULL, 0, NULL}, {NULL, 0, NULL}, {NULL, 0, NULL}};
    const int depth = RECURSION_LIMIT;
    PyObject *previous = NULL; /* the last entry's stat, borrowed from out */
    const uint8_t *previous_bytes = NULL;
    Py_ssize_t previous_len = 0;
    while (r.p < r.end) {
        uint32_t field;
        int wire_type, rc;
        if (next_field(&r, &field, &wire_type) < 0)
            return CORRUPT;
        if (field != 1 || wire_type != WT_DELIMITED) {
            rc = skip_field(&r, field, wire_type, depth);
            if (rc < 0)
                return rc;
            continue;
        }
        Reader sub;
        if (read_delimited(&r, &sub) < 0)
            return CORRUPT;
        Py_ssize_t len = sub.end - sub.p;
        if (previous != NULL && len == previous_len && memcmp(sub.p, previous_bytes, len) == 0) {
            /* The same bytes as the entry before, which decoded alone (an entry that
             * decodes never reads past its end): the same, immutable, stat. */
            if (PyList_Append(out, previous) < 0)
                return PY_ERROR;
            continue;
        }
        previous = NULL;
        Entry e = {NULL, NULL, NULL, {0.0, 0.0, 0.0, 0.0, 0.0}, 0, 0};
        const uint8_t *entry_bytes = sub.p;
        rc = read_entry(&sub, &e, caches, depth);
        if (rc == OK && e.has_stat) {
            PyObject *stat = new_stat(&e, received_at);
            if (stat == NULL || PyList_Append(out, stat) < 0)
                rc = PY_ERROR;
            else {
                previous = stat;
                previous_bytes = entry_bytes;
                previous_len = len;
            }
            Py_XDECREF(stat); /* the list holds it, and the caches' strings with it */
        }
        else if (rc == OK) {
            /* No stat: its strings go, and must not be reused from the caches. */
            for (int i = 0; i < 3; i++)
                caches[i].str = NULL;
        }
        clear_entry(&e);
        if (rc < 0)
            return rc;
    }
    return OK;
}

static void
raise_frame_error(PyObject *reason)
{
    PyObject *exc = PyObject_CallFunctionObjArgs(frame_error, format_name, reason, NULL);
    if (exc == NULL)
        return;
    PyException_SetCause(exc, NULL); /* as `raise ... from None` */
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

static PyObject *
decode_protobuf(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *payload = nargs > 0 ? args[0] : NULL;
    PyObject *received_at = nargs > 1 ? args[1] : Py_None;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "decode_protobuf() takes from 1 to 2 positional arguments but %zd were given",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *value = args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(key, "payload") == 0 && payload == NULL) {
            payload = value;
        }
        else if (PyUnicode_CompareWithASCIIString(key, "received_at") == 0 && nargs < 2) {
            received_at = value;
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "decode_protobuf() got an unexpected or repeated keyword argument '%U'",
                         key);
            return NULL;
        }
    }
    if (payload == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "decode_protobuf() missing required argument 'payload'");
        return NULL;
    }
    if (stat_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "statserver._speedups is not configured");
        return NULL;
    }

    /* The pure function decodes bytes(payload): a buffer is read in place, anything
     * else goes through bytes() for the same outcome (and the same TypeError). */
    Py_buffer view;
    PyObject *copy = NULL;
    if (PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        copy = PyObject_CallOneArg((PyObject *)&PyBytes_Type, payload);
        if (copy == NULL)
            return NULL;
        if (PyObject_GetBuffer(copy, &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(copy);
            return NULL;
        }
    }
    PyObject *out = PyList_New(0);
    int rc = out == NULL ? PY_ERROR
                         : decode((const uint8_t *)view.buf, view.len, received_at, out);
    PyBuffer_Release(&view);
    Py_XDECREF(copy);
    if (rc == OK)
        return out;
    Py_XDECREF(out);
    if (rc == CORRUPT)
        raise_frame_error(corrupt_reason);
    else if (rc == BAD_UTF8)
        raise_frame_error(utf8_reason);
    return NULL;
}

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"frame_error", "stat_type", "format_name", "corrupt_reason",
                               "utf8_reason", "size_varint_bytes", "field_zero_in_group",
                               NULL};
    PyObject *error, *type, *name, *corrupt, *utf8;
    int size_bytes, zero_in_group;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOUUUip:configure", keywords, &error,
                                     &type, &name, &corrupt, &utf8, &size_bytes,
                                     &zero_in_group))
        return NULL;
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "stat_type must be a tuple subclass");
        return NULL;
    }
    if (size_bytes < 1 || size_bytes > 10) {
        PyErr_SetString(PyExc_ValueError, "size_varint_bytes must be 1 to 10");
        return NULL;
    }
    Py_XSETREF(frame_error, Py_NewRef(error));
    Py_XSETREF(stat_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(format_name, Py_NewRef(name));
    Py_XSETREF(corrupt_reason, Py_NewRef(corrupt));
    Py_XSETREF(utf8_reason, Py_NewRef(utf8));
    size_varint_bytes = size_bytes;
    field_zero_in_group = zero_in_group;
    Py_RETURN_NONE;
}

/* summary_add(stats, pods, revisions): what statserver.sinks.summary's pure add_stats does,
 * pods.update(s.pod_name for s in stats) without "" and revisions.update((s.namespace,
 * s.name) for s in stats), for a list or tuple of StatMessages; a stat with the same
 * objects as the one before (the decoder shares them) is not looked up again. */
/* A (namespace, name) tuple for one dict or set lookup. Allocating, hashing and freeing
 * a new tuple for every stat was a tenth of the sinks' time: take_key() refills a spare
 * one instead, while nothing but this file holds it and both items are exact str
 * (comparing those runs no Python code that could keep the tuple). give_back() takes it
 * back after the lookup, or drops it where anything else took a reference. Not where
 * tuples cache their hash, nor without the GIL. */
#if PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define REUSE_KEYS 1
#endif
static PyObject *spare_key; /* ours alone between lookups, or NULL */

static PyObject *
take_key(PyObject *namespace_, PyObject *name) /* new reference */
{
#ifdef REUSE_KEYS
    PyObject *key = spare_key;
    if (key != NULL && Py_REFCNT(key) == 1 && PyUnicode_CheckExact(namespace_)
            && PyUnicode_CheckExact(name)) {
        spare_key = NULL;
        PyObject *old_namespace = PyTuple_GET_ITEM(key, 0), *old_name = PyTuple_GET_ITEM(key, 1);
        PyTuple_SET_ITEM(key, 0, Py_NewRef(namespace_));
        PyTuple_SET_ITEM(key, 1, Py_NewRef(name));
        Py_DECREF(old_namespace);
        Py_DECREF(old_name);
        return key;
    }
#endif
    return PyTuple_Pack(2, namespace_, name);
}

static void
give_back(PyObject *key) /* steals the reference */
{
#ifdef REUSE_KEYS
    if (spare_key == NULL && Py_REFCNT(key) == 1 && PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 0))
            && PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 1))) {
        spare_key = key;
        return;
    }
#endif
    Py_DECREF(key);
}

static PyObject *
summary_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PySet_Check(args[1]) || !PySet_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "summary_add(stats, pods: set, revisions: set)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "summary_add: stats must be a sequence");
    if (seq == NULL)
        return NULL;
    PyObject *pods = args[1], *revisions = args[2];
    PyObject *last_pod = NULL, *last_namespace = NULL, *last_name = NULL;
    PyObject *result = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *stat = items[i];
        if (!PyTuple_Check(stat) || PyTuple_GET_SIZE(stat) < 3) {
            PyErr_SetString(PyExc_TypeError, "summary_add: stats must be StatMessages");
            goto done;
        }
        PyObject *namespace_ = PyTuple_GET_ITEM(stat, 0), *name = PyTuple_GET_ITEM(stat, 1);
        PyObject *pod = PyTuple_GET_ITEM(stat, 2);
        if (pod != last_pod) {
            if (PySet_Add(pods, pod) < 0)
                goto done;
            Py_XSETREF(last_pod, Py_NewRef(pod));
        }
        if (namespace_ != last_namespace || name != last_name) {
            PyObject *key = take_key(namespace_, name);
            if (key == NULL)
                goto done;
            int rc = PySet_Contains(revisions, key);
            give_back(key);
            if (rc == 0) { /* new this minute: a tuple of its own goes in */
                key = PyTuple_Pack(2, namespace_, name);
                rc = key == NULL ? -1 : PySet_Add(revisions, key);
                Py_XDECREF(key);
            }
            if (rc < 0)
                goto done;
            Py_XSETREF(last_namespace, Py_NewRef(namespace_));
            Py_XSETREF(last_name, Py_NewRef(name));
        }
    }
    /* As the pure function, which adds every pod and then discards "". */
    if (PySet_Discard(pods, empty_str) < 0)
        goto done;
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(last_pod);
    Py_XDECREF(last_namespace);
    Py_XDECREF(last_name);
    Py_DECREF(seq);
    return result;
}

/* ---- Aggregator.record_many ---- */

static PyObject *s_revisions, *s_record, *s_trim_pods, *s_max_skew;

/* RevisionBuckets and _Revision keep their fields in __slots__: configure_aggregate()
 * finds where, so that the hot loop reads and writes them directly. */
enum { B_LAST_WRITE, B_STABLE, B_CONCURRENCY, B_RPS, B_STABLE_CONCURRENCY_TOTAL,
       B_STABLE_RPS_TOTAL, B_PANIC_CONCURRENCY_TOTAL, B_PANIC_RPS_TOTAL, B_FIELDS };
enum { R_BUCKETS, R_PODS, R_PODS_LIMIT, R_LAST_STAT_TIME, R_LAST_RECEIVED, R_FIELDS };
static const char *const buckets_fields[B_FIELDS] = {
    "last_write", "stable", "concurrency", "rps", "stable_concurrency_total",
    "stable_rps_total", "panic_concurrency_total", "panic_rps_total"};
static const char *const revision_fields[R_FIELDS] = {
    "buckets", "pods", "pods_limit", "last_stat_time", "last_received"};
/* and what the averages read besides (linear_averages) */
enum { A_PANIC, A_STABLE_FIRST, A_PANIC_FIRST, A_WEIGHTED, A_FIELDS };
static const char *const averages_fields[A_FIELDS] = {
    "panic", "stable_first", "panic_first", "weighted"};
static PyTypeObject *buckets_type, *revision_type; /* NULL until configured */
static Py_ssize_t buckets_offsets[B_FIELDS], revision_offsets[R_FIELDS];
static Py_ssize_t averages_offsets[A_FIELDS];

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

static void
set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value) /* steals value */
{
    PyObject *old = SLOT(obj, offset);
    SLOT(obj, offset) = value;
    Py_XDECREF(old);
}

static int
slot_offsets(PyObject *type, const char *const *names, int count, Py_ssize_t *offsets)
{
    for (int i = 0; i < count; i++) {
        PyObject *descr = PyObject_GetAttrString(type, names[i]);
        if (descr == NULL)
            return -1;
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type)
            && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX
            && !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (ok)
            offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%R.%s is not a writable slot", type, names[i]);
            return -1;
        }
    }
    return 0;
}

static PyObject *
configure_aggregate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "configure_aggregate(RevisionBuckets, _Revision)");
        return NULL;
    }
    if (slot_offsets(args[0], buckets_fields, B_FIELDS, buckets_offsets) < 0
            || slot_offsets(args[0], averages_fields, A_FIELDS, averages_offsets) < 0
            || slot_offsets(args[1], revision_fields, R_FIELDS, revision_offsets) < 0)
        return NULL;
    Py_XSETREF(buckets_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_XSETREF(revision_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static int
int64_of(PyObject *obj, int64_t *out)
{
    if (obj == NULL || !PyLong_CheckExact(obj))
        return 0;
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow || (value == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = value;
    return 1;
}

/* The int64 value of the last int object int64_of read through it: a frame's stats
 * share their receive time, and their sender's time (new_timestamp). It holds a strong
 * reference, so the object cannot be freed and another take its address meanwhile. */
typedef struct {
    PyObject *obj;
    int64_t value;
} TimeMemo;

static int
int64_memo(TimeMemo *m, PyObject *obj, int64_t *out)
{
    if (obj != NULL && obj == m->obj) {
        *out = m->value;
        return 1;
    }
    if (!int64_of(obj, out))
        return 0;
    Py_XSETREF(m->obj, Py_NewRef(obj));
    m->value = *out;
    return 1;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* A stat's revision, the same object while consecutive stats carry the same namespace
 * and name objects (the decoder shares them). */
typedef struct {
    PyObject *namespace_, *name, *revision; /* new references */
} RevisionCache;

static void
clear_revision_cache(RevisionCache *c)
{
    Py_CLEAR(c->namespace_);
    Py_CLEAR(c->name);
    Py_CLEAR(c->revision);
}

/* Borrowed; NULL when absent (or on error: check PyErr_Occurred). */
static PyObject *
find_revision(PyObject *revisions, PyObject *namespace_, PyObject *name, RevisionCache *c)
{
    if (c->revision != NULL && c->namespace_ == namespace_ && c->name == name)
        return c->revision;
    PyObject *key = take_key(namespace_, name);
    if (key == NULL)
        return NULL;
    PyObject *revision = PyDict_GetItemWithError(revisions, key);
    give_back(key);
    if (revision == NULL)
        return NULL;
    clear_revision_cache(c);
    c->namespace_ = Py_NewRef(namespace_);
    c->name = Py_NewRef(name);
    c->revision = Py_NewRef(revision);
    return revision;
}

static PyObject *
float_sum(PyObject *a, double b)
{
    return PyFloat_FromDouble(PyFloat_AS_DOUBLE(a) + b);
}

/* Store value in a float slot or list item: in place where only that place holds the
 * float (nothing else can see it change), else as a new float. 0, or -1 on error. */
static int
store_float(PyObject **place, double value)
{
    PyObject *old = *place;
    if (Py_REFCNT(old) == 1 && PyFloat_CheckExact(old)) {
        ((PyFloatObject *)old)->ob_fval = value;
        return 0;
    }
    PyObject *fresh = new_float(value);
    if (fresh == NULL)
        return -1;
    *place = fresh;
    Py_DECREF(old);
    return 0;
}

static int
store_int(PyObject *obj, Py_ssize_t offset, int64_t value)
{
    PyObject *fresh = PyLong_FromLongLong(value);
    if (fresh == NULL)
        return -1;
    set_slot(obj, offset, fresh);
    return 0;
}

/* RevisionBuckets.record's cases of a stat in a later second than the newest (second >
 * last): the windows move on, the seconds they drop are subtracted from their totals
 * (the panic window's first, as the pure code does: it reads buckets the stable window
 * then zeroes), and the new second's bucket starts at the stat. The same float
 * operations in the same order as the pure method. 1 when done, 0 when the pure method
 * must do it (nothing changed then), -1 on error. */
static int
record_forward(PyObject *buckets, PyObject *const *fields, int64_t second, int64_t last,
               double concurrency, double rps)
{
    int64_t ns, np;
    PyObject *conc = fields[B_CONCURRENCY], *reqs = fields[B_RPS];
    if (!int64_of(fields[B_STABLE], &ns)
            || !int64_of(SLOT(buckets, averages_offsets[A_PANIC]), &np)
            || !(1 <= np && np <= ns) || ns > INT64_MAX / 4
            || last < INT64_MIN / 4 || second > INT64_MAX / 4
            || !PyList_CheckExact(conc) || !PyList_CheckExact(reqs)
            || PyList_GET_SIZE(conc) != ns || PyList_GET_SIZE(reqs) != ns)
        return 0;
    for (int f = B_STABLE_CONCURRENCY_TOTAL; f <= B_PANIC_RPS_TOTAL; f++)
        if (!PyFloat_CheckExact(fields[f]))
            return 0;
    int64_t gap = second - last;
    int64_t stable_from = gap >= ns ? 0 : last + 1, stable_to = gap >= ns ? ns : second + 1;
    int64_t panic_from = last + 1 - np, panic_to = gap >= np ? panic_from : second + 1 - np;
    /* everything read is a float, or nothing is changed */
    for (int64_t t = stable_from; t < stable_to; t++) {
        Py_ssize_t j = (Py_ssize_t)(((t % ns) + ns) % ns);
        if (!PyFloat_CheckExact(PyList_GET_ITEM(conc, j))
                || !PyFloat_CheckExact(PyList_GET_ITEM(reqs, j)))
            return 0;
    }
    for (int64_t t = panic_from; t < panic_to; t++) {
        Py_ssize_t j = (Py_ssize_t)(((t % ns) + ns) % ns);
        if (!PyFloat_CheckExact(PyList_GET_ITEM(conc, j))
                || !PyFloat_CheckExact(PyList_GET_ITEM(reqs, j)))
            return 0;
    }
    double pc = 0.0, pr = 0.0, sc = 0.0, sr = 0.0;
    if (gap < np) {
        pc = PyFloat_AS_DOUBLE(fields[B_PANIC_CONCURRENCY_TOTAL]);
        pr = PyFloat_AS_DOUBLE(fields[B_PANIC_RPS_TOTAL]);
        for (int64_t t = panic_from; t < panic_to; t++) {
            Py_ssize_t j = (Py_ssize_t)(((t % ns) + ns) % ns);
            pc -= PyFloat_AS_DOUBLE(PyList_GET_ITEM(conc, j));
            pr -= PyFloat_AS_DOUBLE(PyList_GET_ITEM(reqs, j));
        }
    }
    else if (store_int(buckets, averages_offsets[A_PANIC_FIRST], second) < 0)
        return -1;
    if (gap < ns) {
        sc = PyFloat_AS_DOUBLE(fields[B_STABLE_CONCURRENCY_TOTAL]);
        sr = PyFloat_AS_DOUBLE(fields[B_STABLE_RPS_TOTAL]);
    }
    else if (store_int(buckets, averages_offsets[A_STABLE_FIRST], second) < 0)
        return -1;
    for (int64_t t = stable_from; t < stable_to; t++) {
        Py_ssize_t j = (Py_ssize_t)(((t % ns) + ns) % ns);
        if (gap < ns) {
            sc -= PyFloat_AS_DOUBLE(PyList_GET_ITEM(conc, j));
            sr -= PyFloat_AS_DOUBLE(PyList_GET_ITEM(reqs, j));
        }
        if (store_float(&PyList_GET_ITEM(conc, j), 0.0) < 0
                || store_float(&PyList_GET_ITEM(reqs, j), 0.0) < 0)
            return -1;
    }
    Py_ssize_t i = (Py_ssize_t)(((second % ns) + ns) % ns);
    if (store_int(buckets, buckets_offsets[B_LAST_WRITE], second) < 0
            || store_float(&PyList_GET_ITEM(conc, i), 0.0 + concurrency) < 0
            || store_float(&PyList_GET_ITEM(reqs, i), 0.0 + rps) < 0
            || store_float(&SLOT(buckets, buckets_offsets[B_STABLE_CONCURRENCY_TOTAL]),
                           sc + concurrency) < 0
            || store_float(&SLOT(buckets, buckets_offsets[B_STABLE_RPS_TOTAL]), sr + rps) < 0
            || store_float(&SLOT(buckets, buckets_offsets[B_PANIC_CONCURRENCY_TOTAL]),
                           pc + concurrency) < 0
            || store_float(&SLOT(buckets, buckets_offsets[B_PANIC_RPS_TOTAL]), pr + rps) < 0)
        return -1;
    return 1;
}

/* One stat's Aggregator.record_many: 1 when done here, 0 when it must go to the pure
 * code instead (nothing has been changed then), -1 on error. */
static int
record_one(PyObject *revisions, PyObject *stat, RevisionCache *cache, TimeMemo *times,
           PyObject *aggregator, int64_t max_skew)
{
    if (!PyTuple_Check(stat) || PyTuple_GET_SIZE(stat) < 10)
        return 0;
    PyObject *namespace_ = PyTuple_GET_ITEM(stat, 0), *name = PyTuple_GET_ITEM(stat, 1);
    PyObject *pod = PyTuple_GET_ITEM(stat, 2);
    PyObject *at = PyTuple_GET_ITEM(stat, 8), *received = PyTuple_GET_ITEM(stat, 9);
    PyObject *const *counts = &PyTuple_GET_ITEM(stat, 3);
    int both = at != Py_None && received != Py_None;
    if (at == Py_None)
        at = received; /* an era without the sender's time */
    else if (received == Py_None)
        received = at;
    int64_t at_ns, received_ns, skew;
    if (!int64_memo(&times[0], at, &at_ns) || !int64_memo(&times[1], received, &received_ns))
        return 0; /* no time at all (refused), or not an int64 */
    if (both && (__builtin_sub_overflow(at_ns, received_ns, &skew)
                 || skew > max_skew || skew < -max_skew))
        return 0; /* the sender's clock is off: averaged at the receive time, counted */
    for (int i = 0; i < 4; i++)
        if (!PyFloat_CheckExact(counts[i]))
            return 0;
    double concurrency = PyFloat_AS_DOUBLE(counts[0]) - PyFloat_AS_DOUBLE(counts[1]);
    double rps = PyFloat_AS_DOUBLE(counts[2]) - PyFloat_AS_DOUBLE(counts[3]);
    if (!isfinite(concurrency) || !isfinite(rps))
        return 0; /* refused */
    PyObject *revision = find_revision(revisions, namespace_, name, cache);
    if (revision == NULL)
        return PyErr_Occurred() ? -1 : 0; /* a new revision */
    if (!Py_IS_TYPE(revision, revision_type))
        return 0;
    PyObject *buckets = SLOT(revision, revision_offsets[R_BUCKETS]);
    PyObject *pods = SLOT(revision, revision_offsets[R_PODS]);
    PyObject *last_stat_time = SLOT(revision, revision_offsets[R_LAST_STAT_TIME]);
    int64_t pods_limit;
    if (buckets == NULL || !Py_IS_TYPE(buckets, buckets_type) || pods == NULL
            || !PyDict_CheckExact(pods) || last_stat_time == NULL
            || !int64_of(SLOT(revision, revision_offsets[R_PODS_LIMIT]), &pods_limit))
        return 0;
    PyObject *fields[B_FIELDS];
    for (int i = 0; i < B_FIELDS; i++)
        if ((fields[i] = SLOT(buckets, buckets_offsets[i])) == NULL)
            return 0;
    int64_t last, ns, second = floor_div(at_ns, 1000000000LL);
    PyObject *conc = fields[B_CONCURRENCY], *reqs = fields[B_RPS];
    Py_ssize_t i = -1;
    if (int64_of(fields[B_LAST_WRITE], &last) && last == second
            && int64_of(fields[B_STABLE], &ns) && ns > 0
            && PyList_CheckExact(conc) && PyList_CheckExact(reqs)
            && PyList_GET_SIZE(conc) >= ns && PyList_GET_SIZE(reqs) >= ns) {
        i = (Py_ssize_t)(((second % ns) + ns) % ns);
        if (!PyFloat_CheckExact(PyList_GET_ITEM(conc, i))
                || !PyFloat_CheckExact(PyList_GET_ITEM(reqs, i)))
            i = -1;
        for (int f = B_STABLE_CONCURRENCY_TOTAL; f <= B_PANIC_RPS_TOTAL; f++)
            if (!PyFloat_CheckExact(fields[f]))
                i = -1;
    }
    if (i >= 0) {
        /* Another stat in the newest second: RevisionBuckets.record's first case. */
        PyObject **places[6] = {
            &PyList_GET_ITEM(conc, i), &PyList_GET_ITEM(reqs, i),
            &SLOT(buckets, buckets_offsets[B_STABLE_CONCURRENCY_TOTAL]),
            &SLOT(buckets, buckets_offsets[B_STABLE_RPS_TOTAL]),
            &SLOT(buckets, buckets_offsets[B_PANIC_CONCURRENCY_TOTAL]),
            &SLOT(buckets, buckets_offsets[B_PANIC_RPS_TOTAL]),
        };
        double adds[6] = {concurrency, rps, concurrency, rps, concurrency, rps};
        PyObject *sums[6];
        for (int k = 0; k < 6; k++) {
            /* a float only this list or slot holds is updated where it is (nothing else
             * can see it); a shared one (the initial 0.0) is replaced */
            PyObject *old = *places[k];
            sums[k] = Py_REFCNT(old) == 1 ? NULL : float_sum(old, adds[k]);
            if (Py_REFCNT(old) != 1 && sums[k] == NULL) {
                for (int j = 0; j < k; j++)
                    Py_XDECREF(sums[j]);
                return -1;
            }
        }
        for (int k = 0; k < 6; k++) {
            if (sums[k] == NULL) {
                ((PyFloatObject *)*places[k])->ob_fval += adds[k];
            } else {
                PyObject *old = *places[k];
                *places[k] = sums[k];
                Py_DECREF(old);
            }
        }
    }
    else if (int64_of(fields[B_LAST_WRITE], &last) && second > last) {
        int done = record_forward(buckets, fields, second, last, concurrency, rps);
        if (done < 0)
            return -1;
        if (!done)
            goto pure_record;
    }
    else {
    pure_record:;
        PyObject *conc_obj = PyFloat_FromDouble(concurrency);
        PyObject *rps_obj = conc_obj == NULL ? NULL : PyFloat_FromDouble(rps);
        PyObject *r = NULL;
        if (rps_obj != NULL) {
            PyObject *args[] = {buckets, at, conc_obj, rps_obj};
            Py_INCREF(buckets); /* the call may drop the revision's reference */
            r = PyObject_VectorcallMethod(s_record, args,
                                          4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            Py_DECREF(buckets);
        }
        Py_XDECREF(conc_obj);
        Py_XDECREF(rps_obj);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        last_stat_time = SLOT(revision, revision_offsets[R_LAST_STAT_TIME]);
        pods = SLOT(revision, revision_offsets[R_PODS]);
        if (last_stat_time == NULL || pods == NULL || !PyDict_CheckExact(pods)) {
            PyErr_SetString(PyExc_RuntimeError, "aggregate_record_many: revision changed");
            return -1;
        }
    }

    int later = at == last_stat_time ? 0 : PyObject_RichCompareBool(at, last_stat_time, Py_GT);
    if (later < 0)
        return -1;
    if (later)
        set_slot(revision, revision_offsets[R_LAST_STAT_TIME], Py_NewRef(at));
    set_slot(revision, revision_offsets[R_LAST_RECEIVED], Py_NewRef(received));
    if (PyDict_SetItem(pods, pod, at) < 0)
        return -1;
    if (PyDict_GET_SIZE(pods) > pods_limit) {
        PyObject *r = PyObject_CallMethodObjArgs(aggregator, s_trim_pods, revision, at, NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 1;
}

/* aggregate_record_many(aggregator, stats, pure_record_many): Aggregator.record_many, the
 * stats of known revisions with finite values and a time within aggregator._max_skew of
 * the receive time here, each other one by pure_record_many((stat,)) in its turn. */
static PyObject *
aggregate_record_many(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "aggregate_record_many(aggregator, stats, pure_record_many)");
        return NULL;
    }
    if (buckets_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "call configure_aggregate() first");
        return NULL;
    }
    PyObject *aggregator = args[0], *pure = args[2];
    PyObject *revisions = PyObject_GetAttr(aggregator, s_revisions);
    if (revisions == NULL)
        return NULL;
    if (!PyDict_Check(revisions)) {
        Py_DECREF(revisions);
        PyErr_SetString(PyExc_TypeError, "aggregate_record_many: _revisions is not a dict");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[1], "aggregate_record_many: stats must be a sequence");
    if (seq == NULL) {
        Py_DECREF(revisions);
        return NULL;
    }
    RevisionCache cache = {NULL, NULL, NULL};
    TimeMemo times[2] = {{NULL, 0}, {NULL, 0}}; /* the sender's time, the receive time */
    PyObject *result = NULL;
    int64_t max_skew = INT64_MAX;
    PyObject *skew = PyObject_GetAttr(aggregator, s_max_skew);
    if (skew == NULL || (!int64_of(skew, &max_skew) && PyErr_Occurred())) {
        Py_XDECREF(skew);
        goto done;
    }
    Py_DECREF(skew);
    if (max_skew < 0)
        max_skew = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *stat = PySequence_Fast_ITEMS(seq)[k];
        int rc = record_one(revisions, stat, &cache, times, aggregator, max_skew);
        if (rc < 0)
            goto done;
        if (rc == 0) {
            PyObject *one = PyTuple_Pack(1, stat);
            PyObject *r = one == NULL ? NULL : PyObject_CallOneArg(pure, one);
            Py_XDECREF(one);
            if (r == NULL)
                goto done;
            Py_DECREF(r);
            clear_revision_cache(&cache); /* it may have added or expired revisions */
        }
    }
    result = Py_NewRef(Py_None);
done:
    clear_revision_cache(&cache);
    Py_XDECREF(times[0].obj);
    Py_XDECREF(times[1].obj);
    Py_DECREF(seq);
    Py_DECREF(revisions);
    return result;
}

/* ---- split_frames: whole client data messages at the start of a read ----
 *
 * The pure function in statserver.server.framing (pure_split_frames) is the reference:
 * the same ([(payload, is_binary, end, frames), ...], more) for every input. A message
 * qualifies when it is one final frame, or a first frame and continuations up to a
 * final one, text or binary, every frame masked, without RSV bits, its length in its
 * shortest form (and under 2**63) and at most max_frame bytes, the message at most
 * max_message bytes (limits of 0 are none), and all of it in the buffer. more is true
 * when splitting stopped at a message that qualifies as far as the buffer goes. */

enum { HEADER_BAD = 0, HEADER_OK = 1, HEADER_SHORT = 2 };

static int
frame_header(const uint8_t *data, Py_ssize_t pos, Py_ssize_t n, Py_ssize_t *head,
             uint64_t *length)
{
    if (n - pos < 2)
        return HEADER_SHORT;
    uint8_t second = data[pos + 1];
    if (!(second & 0x80))
        return HEADER_BAD;
    uint64_t len = second & 0x7F;
    Py_ssize_t h;
    if (len < 126) {
        h = pos + 6;
    } else if (len == 126) {
        h = pos + 8;
        if (h > n)
            return HEADER_SHORT;
        len = ((uint64_t)data[pos + 2] << 8) | data[pos + 3];
        if (len < 126)
            return HEADER_BAD;
    } else {
        h = pos + 14;
        if (h > n)
            return HEADER_SHORT;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = (len << 8) | data[pos + i];
        if (len < 0x10000 || len > (uint64_t)INT64_MAX)
            return HEADER_BAD;
    }
    if (h > n)
        return HEADER_SHORT;
    *head = h;
    *length = len;
    return HEADER_OK;
}

static void
unmask_into(uint8_t *out, const uint8_t *in, const uint8_t *mask, Py_ssize_t size)
{
    uint32_t mask32;
    memcpy(&mask32, mask, 4);
    uint64_t mask64 = ((uint64_t)mask32 << 32) | mask32;
    Py_ssize_t i = 0;
    for (; i + 8 <= size; i += 8) {  /* a multiple of 4 in: the mask lines up again */
        uint64_t word;
        memcpy(&word, in + i, 8);
        word ^= mask64;
        memcpy(out + i, &word, 8);
    }
    for (; i < size; i++)
        out[i] = in[i] ^ mask[i & 3];
}

static PyObject *
split_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "split_frames(data, max_frame, max_message) takes 3 arguments");
        return NULL;
    }
    long long max_frame = PyLong_AsLongLong(args[1]);
    if (max_frame == -1 && PyErr_Occurred())
        return NULL;
    long long max_message = PyLong_AsLongLong(args[2]);
    if (max_message == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *messages = PyList_New(0);
    if (messages == NULL)
        goto fail;
    const uint8_t *data = view.buf;
    Py_ssize_t n = view.len, pos = 0;
    int more = 0;
    while (pos < n) {
        /* first pass: the message's frame headers, its size and whether it is all here */
        Py_ssize_t p = pos, count = 0, head;
        uint64_t size = 0, length;
        int is_binary = -1, stop = 0;
        for (;;) {
            if (p >= n) {
                more = stop = 1;
                break;
            }
            uint8_t first = data[p];
            if (is_binary < 0) {
                uint8_t opcode = first & 0x7F;
                if (opcode != 1 && opcode != 2) {
                    stop = 1;
                    break;
                }
                is_binary = opcode == 2;
            } else if (first & 0x7F) {
                stop = 1;
                break;
            }
            int h = frame_header(data, p, n, &head, &length);
            if (h != HEADER_OK) {
                more = h == HEADER_SHORT;
                stop = 1;
                break;
            }
            /* every frame counted before this one is in the buffer: no overflow */
            size += length;
            if ((max_frame > 0 && length > (uint64_t)max_frame)
                || (max_message > 0 && size > (uint64_t)max_message)) {
                stop = 1;
                break;
            }
            if (length > (uint64_t)(n - head)) {
                more = stop = 1;
                break;
            }
            count++;
            p = head + (Py_ssize_t)length;
            if (first & 0x80)
                break;
        }
        if (stop)
            break;
        /* second pass: each frame's payload unmasked into the message's */
        PyObject *payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
        if (payload == NULL)
            goto fail;
        uint8_t *out = (uint8_t *)PyBytes_AS_STRING(payload);
        Py_ssize_t q = pos;
        for (Py_ssize_t k = 0; k < count; k++) {
            frame_header(data, q, n, &head, &length);
            unmask_into(out, data + head, data + head - 4, (Py_ssize_t)length);
            out += length;
            q = head + (Py_ssize_t)length;
        }
        PyObject *item = Py_BuildValue("(NOnn)", payload, is_binary ? Py_True : Py_False,
                                       p, count);
        if (item == NULL || PyList_Append(messages, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
        pos = p;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(NO)", messages, more ? Py_True : Py_False);
fail:
    Py_XDECREF(messages);
    PyBuffer_Release(&view);
    return NULL;
}

/* ---- admit_all: a frame's stats all of known names and writable times ----
 *
 * The pure function in statserver.server.admission (pure_admit_all) is the reference:
 * True when every stat's namespace and name are in `names`, its pod name in `pods`, and
 * its timestamp (field 8) is None or within [tmin, tmax]; else False. */

static PyObject *
admit_all(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "admit_all(stats, names, pods, tmin, tmax) takes 5 arguments");
        return NULL;
    }
    PyObject *names = args[1], *pods = args[2], *tmin = args[3], *tmax = args[4];
    if (!PyAnySet_Check(names) || !PyAnySet_Check(pods)) {
        PyErr_SetString(PyExc_TypeError, "admit_all: names and pods must be sets");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "admit_all: stats must be a sequence");
    if (seq == NULL)
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *stat = PySequence_Fast_ITEMS(seq)[k];
        if (!PyTuple_Check(stat) || PyTuple_GET_SIZE(stat) < 9) {
            PyErr_SetString(PyExc_TypeError, "admit_all: a stat is a StatMessage tuple");
            goto done;
        }
        int rc = PySet_Contains(names, PyTuple_GET_ITEM(stat, 0));
        if (rc == 1)
            rc = PySet_Contains(names, PyTuple_GET_ITEM(stat, 1));
        if (rc == 1)
            rc = PySet_Contains(pods, PyTuple_GET_ITEM(stat, 2));
        if (rc == 1) {
            PyObject *t = PyTuple_GET_ITEM(stat, 8);
            if (t != Py_None) {
                rc = PyObject_RichCompareBool(tmin, t, Py_LE);
                if (rc == 1)
                    rc = PyObject_RichCompareBool(t, tmax, Py_LE);
            }
        }
        if (rc < 0)
            goto done;
        if (rc == 0) {
            result = Py_NewRef(Py_False);
            goto done;
        }
    }
    result = Py_NewRef(Py_True);
done:
    Py_DECREF(seq);
    return result;
}

/* ---- linear_averages: RevisionBuckets.averages for the linear aggregation ----
 *
 * The pure method (statserver.aggregation.windows.RevisionBuckets.averages, through
 * _linear and round_to_n_digits) is the reference: the same four floats, bit for bit,
 * with the same float operations in the same order. None where the pure code must
 * answer: not configured, weighted, a field that is not an int of int64 or a float, a
 * ring that is not a list of floats of the stable window's length, a window that is
 * not 1 <= panic <= stable, or a divisor under 1. */

static int64_t
floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

static double
round_digits(double f, double scale) /* round_to_n_digits: floored to the digits */
{
    double x = f * scale;
    if (x - x != 0.0) /* inf or nan: passed through as Go's Floor does */
        return x / scale;
    return floor(x) / scale;
}

/* One window's average; 0 on success, -1 when the pure code must answer. */
static int
linear_one(PyObject *ring, double total, int64_t first, int64_t n, int64_t ns,
           int64_t last, int64_t now, double scale, double *out)
{
    int64_t d = now - last;
    if (d <= 0) {
        int64_t span = last - first + 1;
        int64_t div = span < n ? span : n;
        if (div < 1)
            return -1;
        *out = round_digits(total / (double)div, scale);
        return 0;
    }
    if (d < n) {
        for (int64_t t = last + 1 - n; t < now + 1 - n; t++) {
            PyObject *v = PyList_GET_ITEM(ring, floor_mod(t, ns));
            if (!PyFloat_CheckExact(v))
                return -1;
            total -= PyFloat_AS_DOUBLE(v);
        }
        int64_t span = last - first + 1;
        int64_t div = span < n - d ? span : n - d;
        if (div < 1)
            return -1;
        *out = round_digits(total / (double)div, scale);
        return 0;
    }
    *out = 0.0;
    return 0;
}

static int
float_of(PyObject *obj, double *out)
{
    if (obj == NULL || !PyFloat_CheckExact(obj))
        return 0;
    *out = PyFloat_AS_DOUBLE(obj);
    return 1;
}

static PyObject *
linear_averages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "linear_averages(buckets, now_ns, scale) takes 3 arguments");
        return NULL;
    }
    PyObject *b = args[0];
    double scale = PyFloat_AsDouble(args[2]);
    if (scale == -1.0 && PyErr_Occurred())
        return NULL;
    int64_t now_ns, stable, panic, last, stable_first, panic_first;
    double sc, sr, pc, pr;
    if (buckets_type == NULL || !Py_IS_TYPE(b, buckets_type)
            || SLOT(b, averages_offsets[A_WEIGHTED]) != Py_False
            || !int64_of(args[1], &now_ns)
            || !int64_of(SLOT(b, buckets_offsets[B_STABLE]), &stable)
            || !int64_of(SLOT(b, averages_offsets[A_PANIC]), &panic)
            || !int64_of(SLOT(b, buckets_offsets[B_LAST_WRITE]), &last)
            || !int64_of(SLOT(b, averages_offsets[A_STABLE_FIRST]), &stable_first)
            || !int64_of(SLOT(b, averages_offsets[A_PANIC_FIRST]), &panic_first)
            || !float_of(SLOT(b, buckets_offsets[B_STABLE_CONCURRENCY_TOTAL]), &sc)
            || !float_of(SLOT(b, buckets_offsets[B_STABLE_RPS_TOTAL]), &sr)
            || !float_of(SLOT(b, buckets_offsets[B_PANIC_CONCURRENCY_TOTAL]), &pc)
            || !float_of(SLOT(b, buckets_offsets[B_PANIC_RPS_TOTAL]), &pr)
            || !(1 <= panic && panic <= stable))
        Py_RETURN_NONE;
    /* the loops' bounds stay well inside int64 */
    if (last < INT64_MIN / 4 || last > INT64_MAX / 4 || stable_first < INT64_MIN / 4
            || panic_first < INT64_MIN / 4 || stable > INT64_MAX / 4)
        Py_RETURN_NONE;
    PyObject *conc = SLOT(b, buckets_offsets[B_CONCURRENCY]);
    PyObject *rps = SLOT(b, buckets_offsets[B_RPS]);
    if (conc == NULL || rps == NULL || !PyList_CheckExact(conc) || !PyList_CheckExact(rps)
            || PyList_GET_SIZE(conc) != stable || PyList_GET_SIZE(rps) != stable)
        Py_RETURN_NONE;
    int64_t now = floor_div(now_ns, 1000000000LL);
    double out[4];
    if (linear_one(conc, sc, stable_first, stable, stable, last, now, scale, &out[0]) < 0
            || linear_one(conc, pc, panic_first, panic, stable, last, now, scale, &out[1]) < 0
            || linear_one(rps, sr, stable_first, stable, stable, last, now, scale, &out[2]) < 0
            || linear_one(rps, pr, panic_first, panic, stable, last, now, scale, &out[3]) < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(dddd)", out[0], out[1], out[2], out[3]);
}

/* decode_gob_stat(payload, start, top_tid, top, key, stat, received_at): a gob
 * StatMessage frame whose type definitions (payload[:start], read and checked by the
 * pure decoder) give the layouts: one code a wire field of the top struct, of its Key
 * struct and of its Stat struct (statserver/wire/gobstat.py, _layout). The StatMessage,
 * or None wherever the pure decoder must answer (nothing unusual is judged here): a
 * value message not alone after the definitions, another type, a field of no known
 * code, a non-ASCII string, a non-minimal number, a time the pure code would refuse. */
typedef struct {
    const uint8_t *p, *end;
} GobReader;

typedef struct {
    const uint8_t *strings[3]; /* namespace, name, pod */
    Py_ssize_t lengths[3];
    double values[5];
    int has_time;
    int64_t seconds, nanos, offset; /* offset: INT64_MIN for UTC */
} GobStat;

static int
gob_uint(GobReader *r, uint64_t *out)
{
    if (r->p >= r->end)
        return 0;
    uint8_t b = *r->p++;
    if (b < 128) {
        *out = b;
        return 1;
    }
    int n = 256 - b;
    if (n > 8 || r->end - r->p < n || r->p[0] == 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | r->p[i];
    r->p += n;
    if (v < 128)
        return 0;
    *out = v;
    return 1;
}

static int
gob_bytes(GobReader *r, const uint8_t **bytes, Py_ssize_t *len)
{
    uint64_t n;
    if (!gob_uint(r, &n) || n > (uint64_t)(r->end - r->p))
        return 0;
    *bytes = r->p;
    *len = (Py_ssize_t)n;
    r->p += n;
    return 1;
}

static int
gob_ascii(const uint8_t *bytes, Py_ssize_t len)
{
    for (Py_ssize_t i = 0; i < len; i++)
        if (bytes[i] >= 128)
            return 0;
    return 1;
}

static int64_t
be_int(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    if (n < 8 && (v >> (8 * n - 1)))
        v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    return (int64_t)v;
}

/* As statserver.gob.runtime's _time: versions 1 and 2 of time.Time's MarshalBinary. */
static int
gob_time(const uint8_t *b, Py_ssize_t len, GobStat *out)
{
    int64_t offset;
    if (len == 15 && b[0] == 1) {
        offset = be_int(b + 13, 2);
        offset = offset == -1 ? INT64_MIN : offset * 60;
    }
    else if (len == 16 && b[0] == 2) {
        offset = be_int(b + 13, 2) * 60 + b[15];
        offset = offset == -60 ? INT64_MIN : offset;
    }
    else
        return 0;
    int64_t sec = be_int(b + 1, 8), nsec = be_int(b + 9, 4);
    if (nsec < 0 || nsec >= 1000000000 || sec < INT64_MIN / 2 || sec > INT64_MAX / 2)
        return 0;
    out->has_time = 1;
    out->seconds = sec - 62135596800LL;
    out->nanos = nsec;
    out->offset = offset;
    return 1;
}

static int
gob_struct(GobReader *r, const char *layout, Py_ssize_t fields, const char *key,
           Py_ssize_t key_fields, const char *stat, Py_ssize_t stat_fields, GobStat *out)
{
    uint64_t field = (uint64_t)-1, delta;
    for (;;) {
        if (!gob_uint(r, &delta))
            return 0;
        if (delta == 0)
            return 1;
        field += delta;
        if (delta > (uint64_t)fields || field >= (uint64_t)fields)
            return 0;
        const uint8_t *bytes;
        Py_ssize_t len;
        uint64_t u;
        char code = layout[field];
        switch (code) {
        case 'k': /* the Key struct, or the Stat struct: one level down only */
        case 's':
            if (key == NULL)
                return 0;
            if (!(code == 'k' ? gob_struct(r, key, key_fields, NULL, 0, NULL, 0, out)
                              : gob_struct(r, stat, stat_fields, NULL, 0, NULL, 0, out)))
                return 0;
            break;
        case 'K': { /* a "namespace/name" key (before v0.8) */
            if (!gob_bytes(r, &bytes, &len) || !gob_ascii(bytes, len))
                return 0;
            const uint8_t *slash = memchr(bytes, '/', len);
            Py_ssize_t cut = slash == NULL ? len : slash - bytes;
            out->strings[0] = bytes;
            out->lengths[0] = cut;
            out->strings[1] = slash == NULL ? bytes + len : slash + 1;
            out->lengths[1] = slash == NULL ? 0 : len - cut - 1;
            break;
        }
        case 'n': case 'm': case 'p':
            if (!gob_bytes(r, &bytes, &len) || !gob_ascii(bytes, len))
                return 0;
            out->strings[code == 'n' ? 0 : code == 'm' ? 1 : 2] = bytes;
            out->lengths[code == 'n' ? 0 : code == 'm' ? 1 : 2] = len;
            break;
        case 't':
            if (!gob_bytes(r, &bytes, &len) || !gob_time(bytes, len, out))
                return 0;
            break;
        case '0': case '1': case '2': case '3': case '4': {
            if (!gob_uint(r, &u))
                return 0;
            uint64_t bits = __builtin_bswap64(u);
            memcpy(&out->values[code - '0'], &bits, sizeof(double));
            break;
        }
        case 'u':
            if (!gob_uint(r, &u))
                return 0;
            break;
        case 'b':
            if (!gob_bytes(r, &bytes, &len))
                return 0;
            break;
        default:
            return 0;
        }
    }
}

static PyObject *
gob_string(const uint8_t *bytes, Py_ssize_t len)
{
    return len == 0 ? Py_NewRef(empty_str) : decode_string(bytes, len);
}

static PyObject *
decode_gob_stat(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "decode_gob_stat(payload, start, top_tid, top, key, "
                                         "stat, received_at) takes 7 arguments");
        return NULL;
    }
    PyObject *payload = args[0], *received_at = args[6];
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    long long top_tid = PyLong_AsLongLong(args[2]);
    if ((start == -1 || top_tid == -1) && PyErr_Occurred())
        return NULL;
    if (!PyBytes_CheckExact(payload) || !PyBytes_CheckExact(args[3])
            || !PyBytes_CheckExact(args[4]) || !PyBytes_CheckExact(args[5]))
        Py_RETURN_NONE;
    if (stat_type == NULL || start < 0 || start > PyBytes_GET_SIZE(payload))
        Py_RETURN_NONE;
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(payload);
    GobReader r = {data + start, data + PyBytes_GET_SIZE(payload)};
    uint64_t length, tid;
    if (!gob_uint(&r, &length) || length != (uint64_t)(r.end - r.p) || !gob_uint(&r, &tid)
            || (tid & 1) || (long long)(tid >> 1) != top_tid)
        Py_RETURN_NONE;
    GobStat out = {{NULL, NULL, NULL}, {0, 0, 0}, {0.0, 0.0, 0.0, 0.0, 0.0}, 0, 0, 0, 0};
    if (!gob_struct(&r, PyBytes_AS_STRING(args[3]), PyBytes_GET_SIZE(args[3]),
                    PyBytes_AS_STRING(args[4]), PyBytes_GET_SIZE(args[4]),
                    PyBytes_AS_STRING(args[5]), PyBytes_GET_SIZE(args[5]), &out)
            || r.p != r.end)
        Py_RETURN_NONE;
    int64_t timestamp = 0;
    int has_timestamp = out.has_time && !(out.seconds == -62135596800LL && out.nanos == 0);
    if (has_timestamp && (__builtin_mul_overflow(out.seconds, 1000000000LL, &timestamp)
                          || __builtin_add_overflow(timestamp, out.nanos, &timestamp)))
        Py_RETURN_NONE; /* beyond int64 nanoseconds: the pure decoder's big int */
    PyObject *stat = stat_type->tp_alloc(stat_type, STAT_FIELDS);
    if (stat == NULL)
        return NULL;
    for (int i = 0; i < 3; i++) {
        PyObject *str = gob_string(out.strings[i], out.lengths[i]);
        if (str == NULL) {
            Py_DECREF(stat);
            return NULL;
        }
        PyTuple_SET_ITEM(stat, i, str);
    }
    for (int i = 0; i < 5; i++) {
        PyObject *value = new_float(out.values[i]);
        if (value == NULL) {
            Py_DECREF(stat);
            return NULL;
        }
        PyTuple_SET_ITEM(stat, 3 + i, value);
    }
    PyObject *ts = has_timestamp ? PyLong_FromLongLong(timestamp) : Py_NewRef(Py_None);
    PyObject *offset = !out.has_time || !has_timestamp || out.offset == INT64_MIN
        ? Py_NewRef(Py_None) : PyLong_FromLongLong(out.offset);
    if (ts == NULL || offset == NULL) {
        Py_XDECREF(ts);
        Py_XDECREF(offset);
        Py_DECREF(stat);
        return NULL;
    }
    PyTuple_SET_ITEM(stat, 8, ts);
    PyTuple_SET_ITEM(stat, 9, Py_NewRef(received_at));
    PyTuple_SET_ITEM(stat, 10, offset);
    if (!PyObject_GC_IsTracked(received_at))
        PyObject_GC_UnTrack(stat);
    return stat;
}

static PyMethodDef methods[] = {
    {"decode_gob_stat", (PyCFunction)(void (*)(void))decode_gob_stat, METH_FASTCALL,
     "decode_gob_stat(payload, start, top_tid, top, key, stat, received_at)\n--\n\n"
     "A gob StatMessage frame as statserver.wire.gobstat's decoder, or None where the pure "
     "decoder must answer."},
    {"decode_protobuf", (PyCFunction)(void (*)(void))decode_protobuf,
     METH_FASTCALL | METH_KEYWORDS,
     "decode_protobuf(payload, received_at=None)\n--\n\n"
     "The StatMessages of a WireStatMessages frame, as statserver.wire.decode_protobuf."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, frame_error, stat_type, format_name, corrupt_reason, utf8_reason,\n"
     "          size_varint_bytes, field_zero_in_group)\n--\n\n"
     "Set what decode_protobuf builds and raises, and the protobuf release's limits."},
    {"configure_aggregate", (PyCFunction)(void (*)(void))configure_aggregate, METH_FASTCALL,
     "configure_aggregate(RevisionBuckets, _Revision)\n--\n\n"
     "Where the fields aggregate_record_many updates are kept."},
    {"aggregate_record_many", (PyCFunction)(void (*)(void))aggregate_record_many,
     METH_FASTCALL,
     "aggregate_record_many(aggregator, stats, pure_record_many)\n--\n\n"
     "Aggregator.record_many: the common case here, each other stat by the pure code."},
    {"split_frames", (PyCFunction)(void (*)(void))split_frames, METH_FASTCALL,
     "split_frames(data, max_frame, max_message)\n--\n\n"
     "The whole masked data messages at the start of data, as\n"
     "statserver.server.framing.pure_split_frames."},
    {"admit_all", (PyCFunction)(void (*)(void))admit_all, METH_FASTCALL,
     "admit_all(stats, names, pods, tmin, tmax)\n--\n\n"
     "Whether every stat passes admission unchecked, as\n"
     "statserver.server.admission.pure_admit_all."},
    {"linear_averages", (PyCFunction)(void (*)(void))linear_averages, METH_FASTCALL,
     "linear_averages(buckets, now_ns, scale)\n--\n\n"
     "RevisionBuckets.averages(now_ns) of a linear RevisionBuckets, or None where the\n"
     "pure method must answer (scale: 10.0 ** windows.PRECISION)."},
    {"summary_add", (PyCFunction)(void (*)(void))summary_add, METH_FASTCALL,
     "summary_add(stats, pods, revisions)\n--\n\n"
     "Add the stats' pods (but \"\") and (namespace, name) pairs to the two sets."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "statserver._speedups",
    "Compiled fast paths of statserver (see statserver/_speedups.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    for (int i = 0; i < SMALL_FLOATS; i++)
        if ((small_floats[i] = PyFloat_FromDouble((double)i)) == NULL)
            return NULL;
    empty_str = PyUnicode_FromStringAndSize("", 0);
    ns_per_s = PyLong_FromLong(1000000000L);
    if (empty_str == NULL || ns_per_s == NULL)
        return NULL;
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_revisions, "_revisions");
    INTERN(s_record, "record");
    INTERN(s_trim_pods, "_trim_pods");
    INTERN(s_max_skew, "_max_skew");
#undef INTERN
    return PyModule_Create(&module_def);
}

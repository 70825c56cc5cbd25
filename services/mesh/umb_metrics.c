//  umb_metrics - counters, gauges and latency histograms, merged and rendered as Prometheus text
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "umb_metrics.h"
#include "umb_utf8.h"

#define S_BUCKETS     15            //  14 bounds plus +Inf
#define S_MAX_NAME    256
#define S_MAX_TEXT    65536         //  help and label text
#define S_MAX_LABELS  32            //  label pairs in one sample
#define S_MAX_SERIES  10000         //  label sets in one family
#define S_DROPPED     "umb_metrics_dropped_total"

static const double s_bounds [S_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
static const char *const s_le [S_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10", "+Inf"
};

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_type_t;
static const char *const s_type_names [] = { "counter", "gauge", "histogram" };

typedef struct {
    uint64_t count;                 //  counter value; histogram observations
    double   value;                 //  gauge value; histogram sum
    uint64_t buckets [S_BUCKETS];   //  histogram only, not cumulative
} s_value_t;

typedef struct {
    char     *labels;               //  full label text, service first
    s_value_t value;
} s_sample_t;

typedef struct {
    char     *name;
    char     *help;
    s_type_t  type;
    zhashx_t *samples;              //  caller's label text -> s_sample_t
} s_family_t;

struct _umb_metrics_t {
    pthread_mutex_t mutex;
    char     *service;              //  'service="auth"'
    zhashx_t *families;             //  name -> s_family_t
    uint64_t  dropped;              //  updates refused by S_MAX_SERIES or out of memory
};

//  A sample while rendering: strings are borrowed from the packed documents.
typedef struct {
    const char *labels;
    size_t      seq;                //  arrival order: the first of equal label sets wins
    s_value_t   value;
} s_row_t;

typedef struct {
    const char *name;
    const char *help;
    s_type_t    type;
    s_row_t    *rows;
    size_t      size;
    size_t      capacity;
} s_merged_t;

//  ---------------------------------------------------------------- text checks

static bool
s_is_alpha (int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
s_is_digit (int c)
{
    return c >= '0' && c <= '9';
}

static bool
s_name_valid (const char *name)
{
    if (!s_is_alpha (*name) && *name != ':')
        return false;
    size_t length = 1;
    for (const char *p = name + 1; *p; p++, length++)
        if (!s_is_alpha (*p) && !s_is_digit (*p) && *p != ':')
            return false;
    return length <= S_MAX_NAME;
}

//  Label text is pasted into the page, so a peer's must parse as
//  name="value"[,...] with only the escapes the format knows, no repeated
//  name and, in a histogram, no le of its own: anything else could forge
//  lines or make Prometheus refuse the whole page.
static bool
s_labels_valid (const char *text, bool histogram)
{
    const char *names [S_MAX_LABELS];
    size_t lengths [S_MAX_LABELS];
    size_t pairs = 0;
    if (histogram) {
        names [pairs] = "le";
        lengths [pairs++] = 2;
    }
    const char *p = text;
    if (*p == 0)
        return true;
    while (true) {
        const char *start = p;
        if (!s_is_alpha (*p))
            return false;
        while (s_is_alpha (*p) || s_is_digit (*p))
            p++;
        size_t length = (size_t) (p - start);
        for (size_t i = 0; i < pairs; i++)
            if (lengths [i] == length && memcmp (names [i], start, length) == 0)
                return false;
        if (pairs == S_MAX_LABELS)
            return false;
        names [pairs] = start;
        lengths [pairs++] = length;
        if (*p++ != '=' || *p++ != '"')
            return false;
        while (*p != '"') {
            if (*p == 0 || *p == '\n')
                return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return false;
            }
            p++;
        }
        p++;
        if (*p == 0)
            return true;
        if (*p++ != ',')
            return false;
    }
}

void
umb_metrics_label_escape (char *dst, size_t size, const char *value)
{
    assert (dst);
    assert (size > 0);
    assert (value);
    const unsigned char *s = (const unsigned char *) value;
    size_t used = 0;
    while (*s) {
        char unit [4];
        size_t in, out;
        if (*s == '\\' || *s == '"' || *s == '\n') {
            unit [0] = '\\';
            unit [1] = *s == '\n' ? 'n' : (char) *s;
            in = 1;
            out = 2;
        }
        else
        if ((in = umb_utf8_sequence (s, strlen ((const char *) s))) > 0) {
            memcpy (unit, s, in);
            out = in;
        }
        else {
            //  Prometheus refuses a page that is not UTF-8
            unit [0] = '?';
            in = out = 1;
        }
        //  never cut an escape or a character in half
        if (out > size - 1 - used)
            break;
        memcpy (dst + used, unit, out);
        used += out;
        s += in;
    }
    dst [used] = 0;
}

//  ---------------------------------------------------------------- registry

static void
s_sample_destroy (void **item)
{
    s_sample_t *sample = *item;
    free (sample->labels);
    free (sample);
    *item = NULL;
}

static void
s_family_destroy (void **item)
{
    s_family_t *family = *item;
    zhashx_destroy (&family->samples);
    free (family->name);
    free (family->help);
    free (family);
    *item = NULL;
}

static s_family_t *
s_family_new (const char *name, const char *help, s_type_t type)
{
    s_family_t *family = calloc (1, sizeof (s_family_t));
    if (!family)
        return NULL;
    family->name = strdup (name);
    family->help = strdup (help ? help : "");
    family->type = type;
    family->samples = zhashx_new ();
    if (!family->name || !family->help || !family->samples) {
        void *item = family;
        s_family_destroy (&item);
        return NULL;
    }
    zhashx_set_destructor (family->samples, s_sample_destroy);
    return family;
}

//  The sample to update, created on first use; NULL (and counted) when the
//  family is full or memory ran out. Called with the mutex held.
static s_sample_t *
s_sample (umb_metrics_t *self, const char *name, const char *help, const char *labels,
          s_type_t type)
{
    assert (name);
    if (!labels)
        labels = "";
    s_family_t *family = zhashx_lookup (self->families, name);
    if (!family) {
        assert (s_name_valid (name));
        family = s_family_new (name, help, type);
        if (!family) {
            self->dropped++;
            return NULL;
        }
        zhashx_insert (self->families, name, family);
    }
    assert (family->type == type);      //  a family has one type for life
    s_sample_t *sample = zhashx_lookup (family->samples, labels);
    if (sample)
        return sample;
    if (zhashx_size (family->samples) < S_MAX_SERIES)
        sample = calloc (1, sizeof (s_sample_t));
    if (sample
    &&  asprintf (&sample->labels, "%s%s%s", self->service, *labels ? "," : "", labels) < 0) {
        free (sample);
        sample = NULL;
    }
    if (!sample) {
        self->dropped++;
        return NULL;
    }
    zhashx_insert (family->samples, labels, sample);
    return sample;
}

umb_metrics_t *
umb_metrics_new (const char *service)
{
    assert (service);
    umb_metrics_t *self = calloc (1, sizeof (umb_metrics_t));
    if (!self)
        return NULL;
    if (pthread_mutex_init (&self->mutex, NULL)) {
        free (self);
        return NULL;
    }
    size_t size = 2 * strlen (service) + 1;     //  every byte escaped
    char *escaped = malloc (size);
    if (escaped) {
        umb_metrics_label_escape (escaped, size, service);
        if (asprintf (&self->service, "service=\"%s\"", escaped) < 0)
            self->service = NULL;
        free (escaped);
    }
    self->families = zhashx_new ();
    if (!self->service || !self->families) {
        umb_metrics_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->families, s_family_destroy);
    return self;
}

void
umb_metrics_destroy (umb_metrics_t **self_p)
{
    assert (self_p);
    umb_metrics_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->families);
        free (self->service);
        pthread_mutex_destroy (&self->mutex);
        free (self);
        *self_p = NULL;
    }
}

void
umb_metrics_count (umb_metrics_t *self, const char *family, const char *help,
                   const char *labels, uint64_t delta)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    s_sample_t *sample = s_sample (self, family, help, labels, S_COUNTER);
    if (sample)
        sample->value.count += delta;
    pthread_mutex_unlock (&self->mutex);
}

void
umb_metrics_gauge (umb_metrics_t *self, const char *family, const char *help,
                   const char *labels, double value)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    s_sample_t *sample = s_sample (self, family, help, labels, S_GAUGE);
    if (sample)
        sample->value.value = value;
    pthread_mutex_unlock (&self->mutex);
}

void
umb_metrics_observe (umb_metrics_t *self, const char *family, const char *help,
                     const char *labels, double seconds)
{
    assert (self);
    size_t bucket = 0;
    //  written so that NaN lands in +Inf, as in the reference clients
    while (bucket < S_BUCKETS - 1 && !(seconds <= s_bounds [bucket]))
        bucket++;
    pthread_mutex_lock (&self->mutex);
    s_sample_t *sample = s_sample (self, family, help, labels, S_HISTOGRAM);
    if (sample) {
        sample->value.buckets [bucket]++;
        sample->value.count++;
        sample->value.value += seconds;
    }
    pthread_mutex_unlock (&self->mutex);
}

static void
s_pack_sample (umb_w_t *w, s_type_t type, const char *labels, const s_value_t *value)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "labels", labels);
    if (type == S_COUNTER) {
        umb_w_key (w, "value");
        umb_w_uint (w, value->count);
    }
    else
    if (type == S_GAUGE)
        umb_w_kv_double (w, "value", value->value);
    else {
        umb_w_key (w, "buckets");
        umb_w_array_begin (w);
        for (size_t i = 0; i < S_BUCKETS; i++)
            umb_w_uint (w, value->buckets [i]);
        umb_w_array_end (w);
        umb_w_kv_double (w, "sum", value->value);
        umb_w_key (w, "count");
        umb_w_uint (w, value->count);
    }
    umb_w_map_end (w);
}

//  The sys.metrics "families" value, as umb_metrics_render reads it back:
//  [ { "name": str, "type": "counter" | "gauge" | "histogram", "help": str,
//      "samples": [ { "labels": str, "value": uint (counter) | double (gauge) }
//                 | { "labels": str, "buckets": [15 x uint, not cumulative, last +Inf],
//                     "sum": double, "count": uint } ] } ]
void
umb_metrics_pack (umb_metrics_t *self, umb_w_t *w)
{
    assert (self);
    assert (w);
    pthread_mutex_lock (&self->mutex);
    umb_w_array_begin (w);
    for (s_family_t *family = zhashx_first (self->families); family;
         family = zhashx_next (self->families)) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "name", family->name);
        umb_w_kv_str (w, "type", s_type_names [family->type]);
        umb_w_kv_str (w, "help", family->help);
        umb_w_key (w, "samples");
        umb_w_array_begin (w);
        for (s_sample_t *sample = zhashx_first (family->samples); sample;
             sample = zhashx_next (family->samples))
            s_pack_sample (w, family->type, sample->labels, &sample->value);
        umb_w_array_end (w);
        umb_w_map_end (w);
    }
    if (self->dropped) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "name", S_DROPPED);
        umb_w_kv_str (w, "type", "counter");
        umb_w_kv_str (w, "help", "Metric updates dropped: label set limit reached or out of memory");
        umb_w_key (w, "samples");
        umb_w_array_begin (w);
        s_pack_sample (w, S_COUNTER, self->service, &(s_value_t) { .count = self->dropped });
        umb_w_array_end (w);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    pthread_mutex_unlock (&self->mutex);
}

//  ---------------------------------------------------------------- merging peer input

//  A map's value by key, without recording an error in the document.
static umb_msg_t *
s_field (umb_msg_t *map, const char *key)
{
    const msgpack_object_map *pairs = &umb_msg_object (map)->via.map;
    size_t key_size = strlen (key);
    for (uint32_t i = 0; i < pairs->size; i++) {
        const msgpack_object *k = &pairs->ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_size
        &&  memcmp (k->via.str.ptr, key, key_size) == 0)
            return umb_msg_value_at (map, i);
    }
    return NULL;
}

static bool
s_uint (umb_msg_t *node, uint64_t *result)
{
    if (!node || umb_msg_type (node) != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *result = umb_msg_object (node)->via.u64;
    return true;
}

static bool
s_number (umb_msg_t *node, double *result)
{
    if (!node)
        return false;
    msgpack_object_type type = umb_msg_type (node);
    if (type != MSGPACK_OBJECT_POSITIVE_INTEGER && type != MSGPACK_OBJECT_NEGATIVE_INTEGER
    &&  type != MSGPACK_OBJECT_FLOAT32 && type != MSGPACK_OBJECT_FLOAT64)
        return false;
    *result = umb_msg_as_double (node, "value");
    return true;
}

static bool
s_parse_sample (umb_msg_t *sample, s_type_t type, s_row_t *row)
{
    if (!umb_msg_is_map (sample))
        return false;
    row->labels = umb_msg_str (sample, "labels", S_MAX_TEXT, true);
    if (!row->labels || !s_labels_valid (row->labels, type == S_HISTOGRAM))
        return false;
    if (type == S_COUNTER)
        return s_uint (s_field (sample, "value"), &row->value.count);
    if (type == S_GAUGE)
        return s_number (s_field (sample, "value"), &row->value.value);

    umb_msg_t *buckets = umb_msg_array (sample, "buckets", S_BUCKETS, true);
    if (!buckets || umb_msg_size (buckets) != S_BUCKETS)
        return false;
    uint64_t total = 0;
    for (size_t i = 0; i < S_BUCKETS; i++) {
        uint64_t *count = &row->value.buckets [i];
        if (!s_uint (umb_msg_at (buckets, i), count) || *count > UINT64_MAX - total)
            return false;
        total += *count;
    }
    return s_number (s_field (sample, "sum"), &row->value.value)
        && s_uint (s_field (sample, "count"), &row->value.count)
        && row->value.count == total;
}

static void
s_merged_destroy (void **item)
{
    s_merged_t *merged = *item;
    free (merged->rows);
    free (merged);
    *item = NULL;
}

static int
s_append (s_merged_t *merged, const s_row_t *row)
{
    if (merged->size == merged->capacity) {
        size_t capacity = merged->capacity ? 2 * merged->capacity : 16;
        s_row_t *rows = reallocarray (merged->rows, capacity, sizeof (s_row_t));
        if (!rows)
            return -1;
        merged->rows = rows;
        merged->capacity = capacity;
    }
    merged->rows [merged->size++] = *row;
    return 0;
}

//  Adds one packed registry to merged. Whatever does not validate is left
//  out, at the smallest unit that contains it: sample, family or source.
static int
s_merge (zhashx_t *merged, umb_msg_t *families, size_t *seq)
{
    if (!families || umb_msg_type (families) != MSGPACK_OBJECT_ARRAY)
        return 0;
    size_t size = umb_msg_size (families);
    for (size_t i = 0; i < size; i++) {
        umb_msg_t *family = umb_msg_at (families, i);
        if (!umb_msg_is_map (family))
            continue;
        const char *name = umb_msg_str (family, "name", S_MAX_NAME, true);
        const char *type_name = umb_msg_str (family, "type", 16, true);
        const char *help = umb_msg_str (family, "help", S_MAX_TEXT, true);
        umb_msg_t *samples = umb_msg_array (family, "samples", SIZE_MAX, true);
        if (!name || !type_name || !help || !samples || !s_name_valid (name))
            continue;
        int type = -1;
        for (int t = S_COUNTER; t <= S_HISTOGRAM; t++)
            if (streq (type_name, s_type_names [t]))
                type = t;
        if (type < 0)
            continue;
        s_merged_t *target = zhashx_lookup (merged, name);
        if (target && target->type != (s_type_t) type)
            continue;
        if (!target) {
            target = calloc (1, sizeof (s_merged_t));
            if (!target)
                return -1;
            *target = (s_merged_t) { .name = name, .help = help, .type = (s_type_t) type };
            zhashx_insert (merged, name, target);
        }
        size_t count = umb_msg_size (samples);
        for (size_t j = 0; j < count; j++) {
            s_row_t row = { .seq = (*seq)++ };
            if (s_parse_sample (umb_msg_at (samples, j), target->type, &row)
            &&  s_append (target, &row))
                return -1;
        }
    }
    return 0;
}

//  ---------------------------------------------------------------- rendering

static int
s_compare_families (const void *a, const void *b)
{
    const s_merged_t *x = *(const s_merged_t * const *) a;
    const s_merged_t *y = *(const s_merged_t * const *) b;
    return strcmp (x->name, y->name);
}

static int
s_compare_rows (const void *a, const void *b)
{
    const s_row_t *x = a;
    const s_row_t *y = b;
    int rc = strcmp (x->labels, y->labels);
    return rc ? rc : (x->seq > y->seq) - (x->seq < y->seq);
}

static void
s_format_uint (char *buffer, size_t size, uint64_t value)
{
    snprintf (buffer, size, "%" PRIu64, value);
}

static void
s_format_double (char *buffer, size_t size, double value)
{
    if (isnan (value))
        snprintf (buffer, size, "NaN");
    else
    if (isinf (value))
        snprintf (buffer, size, "%s", value > 0 ? "+Inf" : "-Inf");
    else
        snprintf (buffer, size, "%.17g", value);
}

static void
s_print_line (FILE *out, const char *name, const char *suffix, const char *labels,
              const char *le, const char *value)
{
    fprintf (out, "%s%s", name, suffix);
    if (*labels || le) {
        fprintf (out, "{%s", labels);
        if (le)
            fprintf (out, "%sle=\"%s\"", *labels ? "," : "", le);
        fputc ('}', out);
    }
    fprintf (out, " %s\n", value);
}

static void
s_print_family (FILE *out, s_merged_t *family)
{
    fprintf (out, "# HELP %s", family->name);
    if (*family->help) {
        fputc (' ', out);
        for (const char *p = family->help; *p; p++)
            if (*p == '\\')
                fputs ("\\\\", out);
            else
            if (*p == '\n')
                fputs ("\\n", out);
            else
                fputc (*p, out);
    }
    fprintf (out, "\n# TYPE %s %s\n", family->name, s_type_names [family->type]);

    qsort (family->rows, family->size, sizeof (s_row_t), s_compare_rows);
    for (size_t i = 0; i < family->size; i++) {
        const s_row_t *row = &family->rows [i];
        if (i > 0 && streq (row->labels, family->rows [i - 1].labels))
            continue;       //  Prometheus refuses a page that repeats a series
        char value [40];
        if (family->type == S_COUNTER) {
            s_format_uint (value, sizeof (value), row->value.count);
            s_print_line (out, family->name, "", row->labels, NULL, value);
        }
        else
        if (family->type == S_GAUGE) {
            s_format_double (value, sizeof (value), row->value.value);
            s_print_line (out, family->name, "", row->labels, NULL, value);
        }
        else {
            uint64_t cumulative = 0;
            for (size_t b = 0; b < S_BUCKETS; b++) {
                cumulative += row->value.buckets [b];
                s_format_uint (value, sizeof (value), cumulative);
                s_print_line (out, family->name, "_bucket", row->labels, s_le [b], value);
            }
            s_format_double (value, sizeof (value), row->value.value);
            s_print_line (out, family->name, "_sum", row->labels, NULL, value);
            s_format_uint (value, sizeof (value), row->value.count);
            s_print_line (out, family->name, "_count", row->labels, NULL, value);
        }
    }
}

static char *
s_print (zhashx_t *merged)
{
    size_t size = zhashx_size (merged);
    s_merged_t **families = calloc (size ? size : 1, sizeof (s_merged_t *));
    if (!families)
        return NULL;
    size_t used = 0;
    for (s_merged_t *family = zhashx_first (merged); family; family = zhashx_next (merged))
        if (family->size > 0)
            families [used++] = family;
    qsort (families, used, sizeof (s_merged_t *), s_compare_families);

    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream (&text, &length);
    if (out) {
        for (size_t i = 0; i < used; i++)
            s_print_family (out, families [i]);
        bool failed = ferror (out) != 0;
        if (fclose (out) || failed) {
            free (text);
            text = NULL;
        }
    }
    free (families);
    return text;
}

char *
umb_metrics_render (umb_metrics_t *self, umb_msg_t **packed, size_t count)
{
    assert (packed || count == 0);
    //  The own registry takes the same path as a peer's, so one set of
    //  checks guards the page, and the mutex is held only while packing.
    umb_w_t *w = NULL;
    umb_msg_t *own = NULL;
    if (self) {
        w = umb_w_new ();
        if (!w)
            return NULL;
        umb_metrics_pack (self, w);
        size_t size;
        const void *data = umb_w_data (w, &size);
        //  the document points into w's buffer, so w lives as long as it
        own = umb_msg_decode (data, size, NULL);
        if (!own) {
            umb_w_destroy (&w);
            return NULL;
        }
    }
    char *text = NULL;
    zhashx_t *merged = zhashx_new ();
    if (merged) {
        zhashx_set_destructor (merged, s_merged_destroy);
        size_t seq = 0;
        int rc = s_merge (merged, own, &seq);
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = s_merge (merged, packed [i], &seq);
        if (rc == 0)
            text = s_print (merged);
        zhashx_destroy (&merged);
    }
    umb_msg_destroy (&own);
    umb_w_destroy (&w);
    return text;
}

//  ---------------------------------------------------------------- selftest

//  The document borrows the writer's buffer: keep w until it is destroyed.
static umb_msg_t *
s_test_decode (umb_w_t *w)
{
    size_t size;
    const void *data = umb_w_data (w, &size);
    umb_msg_t *msg = umb_msg_decode (data, size, NULL);
    assert (msg);
    return msg;
}

static umb_msg_t *
s_test_pack (umb_metrics_t *metrics, umb_w_t *w)
{
    umb_w_reset (w);
    umb_metrics_pack (metrics, w);
    return s_test_decode (w);
}

static bool
s_test_has_line (const char *text, const char *line)
{
    size_t length = strlen (line);
    for (const char *p = text; (p = strstr (p, line)); p++)
        if ((p == text || p [-1] == '\n') && p [length] == '\n')
            return true;
    return false;
}

static size_t
s_test_count_prefix (const char *text, const char *prefix)
{
    size_t count = 0;
    size_t length = strlen (prefix);
    for (const char *p = text; *p; ) {
        if (strncmp (p, prefix, length) == 0)
            count++;
        const char *eol = strchr (p, '\n');
        assert (eol);
        p = eol + 1;
    }
    return count;
}

//  Parses the page line by line: each family once, in name order, HELP then
//  TYPE then only its own samples, every value a number. Returns the number
//  of families.
static size_t
s_test_check_page (const char *text)
{
    char *copy = strdup (text);
    assert (copy);
    assert (*text == 0 || text [strlen (text) - 1] == '\n');
    char family [S_MAX_NAME + 1] = "";
    char type [16] = "";
    bool expect_type = false;
    size_t families = 0;
    char *state = NULL;
    for (char *line = strtok_r (copy, "\n", &state); line; line = strtok_r (NULL, "\n", &state)) {
        if (strncmp (line, "# HELP ", 7) == 0) {
            assert (!expect_type);
            char name [S_MAX_NAME + 1];
            size_t length = strcspn (line + 7, " ");
            assert (length > 0 && length <= S_MAX_NAME);
            memcpy (name, line + 7, length);
            name [length] = 0;
            assert (s_name_valid (name));
            assert (strcmp (name, family) > 0);     //  sorted, so once each
            strcpy (family, name);
            expect_type = true;
            families++;
        }
        else
        if (strncmp (line, "# TYPE ", 7) == 0) {
            assert (expect_type);
            expect_type = false;
            size_t length = strlen (family);
            assert (strncmp (line + 7, family, length) == 0 && line [7 + length] == ' ');
            const char *name = line + 8 + length;
            assert (streq (name, "counter") || streq (name, "gauge") || streq (name, "histogram"));
            snprintf (type, sizeof (type), "%s", name);
        }
        else {
            assert (!expect_type && *family);
            assert (line [0] != '#');
            size_t length = strcspn (line, "{ ");
            size_t family_length = strlen (family);
            assert (length >= family_length && strncmp (line, family, family_length) == 0);
            const char *suffix = line + family_length;
            size_t suffix_length = length - family_length;
            if (streq (type, "histogram"))
                assert ((suffix_length == 7 && strncmp (suffix, "_bucket", 7) == 0)
                     || (suffix_length == 4 && strncmp (suffix, "_sum", 4) == 0)
                     || (suffix_length == 6 && strncmp (suffix, "_count", 6) == 0));
            else
                assert (suffix_length == 0);
            if (line [length] == '{') {
                const char *close = strrchr (line, '}');
                assert (close && close [1] == ' ');
                char *labels = strndup (line + length + 1, (size_t) (close - line - length - 1));
                assert (labels && s_labels_valid (labels, false));
                free (labels);
            }
            const char *value = strrchr (line, ' ') + 1;
            char *end;
            strtod (value, &end);
            assert (end != value && *end == 0);
        }
    }
    assert (!expect_type);
    free (copy);
    return families;
}

typedef struct {
    umb_metrics_t *metrics;
    int            rendered;
} s_test_thread_t;

static void *
s_test_thread (void *args)
{
    s_test_thread_t *thread = args;
    for (int i = 0; i < 10000; i++) {
        umb_metrics_count (thread->metrics, "umb_hits_total", "Hits", NULL, 1);
        if (i % 2500 == 0) {
            char *text = umb_metrics_render (thread->metrics, NULL, 0);
            assert (text);
            thread->rendered++;
            free (text);
        }
    }
    return NULL;
}

void
umb_metrics_test (bool verbose)
{
    if (verbose)
        printf (" * umb_metrics: ");

    //  Label escaping
    char buffer [64];
    umb_metrics_label_escape (buffer, sizeof (buffer), "a\\b\"c\nd");
    assert (streq (buffer, "a\\\\b\\\"c\\nd"));
    umb_metrics_label_escape (buffer, 4, "ab\"");
    assert (streq (buffer, "ab"));                  //  no half escape
    umb_metrics_label_escape (buffer, 2, "\xc3\xa9");
    assert (streq (buffer, ""));                    //  no half character
    umb_metrics_label_escape (buffer, 3, "\xc3\xa9");
    assert (streq (buffer, "\xc3\xa9"));
    umb_metrics_label_escape (buffer, sizeof (buffer), "x\xff\xc3y");
    assert (streq (buffer, "x??y"));
    umb_metrics_label_escape (buffer, 1, "abc");
    assert (streq (buffer, ""));

    assert (s_name_valid ("umb_requests_total") && s_name_valid (":a:b_9"));
    assert (!s_name_valid ("") && !s_name_valid ("9a") && !s_name_valid ("a-b") && !s_name_valid ("a b"));
    assert (s_labels_valid ("", true) && s_labels_valid ("a=\"\",b_2=\"x\\\"\\n\\\\\"", false));
    assert (!s_labels_valid ("a=\"1\",", false) && !s_labels_valid ("a=\"1\"b=\"2\"", false));
    assert (!s_labels_valid ("a=\"\\t\"", false) && !s_labels_valid ("a=\"\n\"", false));
    assert (!s_labels_valid ("a=\"1\",a=\"2\"", false) && !s_labels_valid ("le=\"1\"", true));
    assert (!s_labels_valid ("a=\"1", false) && !s_labels_valid ("a=1", false));

    //  Counters accumulate, gauges keep the last value, buckets land right
    umb_metrics_t *a = umb_metrics_new ("auth");
    assert (a);
    const char *users = "op=\"auth.users.get\",status=\"200\"";
    umb_metrics_count (a, "umb_requests_total", "Requests handled", users, 1);
    umb_metrics_count (a, "umb_requests_total", "ignored", users, 2);
    umb_metrics_count (a, "umb_requests_total", NULL, "op=\"auth.login\",status=\"401\"", 1);
    umb_metrics_count (a, "umb_big_total", "Big", NULL, UINT64_MAX);
    umb_metrics_gauge (a, "umb_sessions", "Open sessions", "", 1.5);
    umb_metrics_gauge (a, "umb_sessions", "Open sessions", "", 2.5);
    umb_metrics_gauge (a, "umb_odd", "Odd values", "v=\"inf\"", INFINITY);
    umb_metrics_gauge (a, "umb_odd", "Odd values", "v=\"-inf\"", -INFINITY);
    umb_metrics_gauge (a, "umb_odd", "Odd values", "v=\"nan\"", NAN);
    umb_metrics_observe (a, "umb_request_seconds", "Latency", "op=\"auth.login\"", 0.003);
    umb_metrics_observe (a, "umb_request_seconds", "Latency", "op=\"edge\"", 0.0005);
    umb_metrics_observe (a, "umb_request_seconds", "Latency", "op=\"edge\"", 100);
    umb_metrics_count (a, "umb_help_total", "back\\slash\nnew line", NULL, 1);

    char *text = umb_metrics_render (a, NULL, 0);
    assert (text);
    if (verbose)
        printf ("\n%s", text);
    assert (s_test_check_page (text) == 6);
    assert (s_test_has_line (text, "# HELP umb_requests_total Requests handled"));
    assert (s_test_has_line (text, "# TYPE umb_requests_total counter"));
    assert (s_test_has_line (text,
            "umb_requests_total{service=\"auth\",op=\"auth.users.get\",status=\"200\"} 3"));
    assert (s_test_has_line (text,
            "umb_requests_total{service=\"auth\",op=\"auth.login\",status=\"401\"} 1"));
    assert (s_test_has_line (text, "umb_big_total{service=\"auth\"} 18446744073709551615"));
    assert (s_test_has_line (text, "# TYPE umb_sessions gauge"));
    assert (s_test_has_line (text, "umb_sessions{service=\"auth\"} 2.5"));
    assert (s_test_has_line (text, "umb_odd{service=\"auth\",v=\"inf\"} +Inf"));
    assert (s_test_has_line (text, "umb_odd{service=\"auth\",v=\"-inf\"} -Inf"));
    assert (s_test_has_line (text, "umb_odd{service=\"auth\",v=\"nan\"} NaN"));
    assert (s_test_has_line (text, "# HELP umb_help_total back\\\\slash\\nnew line"));
    assert (s_test_has_line (text, "# TYPE umb_request_seconds histogram"));
    const char *login = "umb_request_seconds_bucket{service=\"auth\",op=\"auth.login\",le=";
    char line [256];
    snprintf (line, sizeof (line), "%s\"0.0025\"} 0", login);
    assert (s_test_has_line (text, line));
    snprintf (line, sizeof (line), "%s\"0.005\"} 1", login);
    assert (s_test_has_line (text, line));
    snprintf (line, sizeof (line), "%s\"10\"} 1", login);
    assert (s_test_has_line (text, line));
    snprintf (line, sizeof (line), "%s\"+Inf\"} 1", login);
    assert (s_test_has_line (text, line));
    snprintf (line, sizeof (line), "umb_request_seconds_sum{service=\"auth\",op=\"auth.login\"} %.17g",
              0.003);
    assert (s_test_has_line (text, line));
    assert (s_test_has_line (text, "umb_request_seconds_count{service=\"auth\",op=\"auth.login\"} 1"));
    assert (s_test_has_line (text,
            "umb_request_seconds_bucket{service=\"auth\",op=\"edge\",le=\"0.0005\"} 1"));
    assert (s_test_has_line (text,
            "umb_request_seconds_bucket{service=\"auth\",op=\"edge\",le=\"10\"} 1"));
    assert (s_test_has_line (text,
            "umb_request_seconds_bucket{service=\"auth\",op=\"edge\",le=\"+Inf\"} 2"));
    assert (s_test_has_line (text, "umb_request_seconds_count{service=\"auth\",op=\"edge\"} 2"));

    //  Merging two registries: one HELP/TYPE per family, all samples, stable
    umb_metrics_t *b = umb_metrics_new ("gate\"way");
    umb_metrics_count (b, "umb_requests_total", "Requests (gateway)", users, 5);
    umb_metrics_observe (b, "umb_request_seconds", "Latency", "op=\"auth.login\"", 0.3);
    char op [32];
    umb_metrics_label_escape (op, sizeof (op), "x\"} 1\nevil_total 1");
    snprintf (line, sizeof (line), "op=\"%s\"", op);
    umb_metrics_count (b, "umb_requests_total", NULL, line, 1);
    umb_msg_t *packed [4];
    umb_w_t *writers [3] = { umb_w_new (), umb_w_new (), umb_w_new () };
    packed [0] = s_test_pack (a, writers [0]);
    packed [1] = s_test_pack (b, writers [1]);
    char *merged = umb_metrics_render (NULL, packed, 2);
    assert (merged);
    assert (s_test_check_page (merged) == 6);
    assert (s_test_count_prefix (merged, "# HELP umb_requests_total ") == 1);
    assert (s_test_count_prefix (merged, "# TYPE umb_requests_total ") == 1);
    assert (s_test_count_prefix (merged, "# HELP umb_request_seconds ") == 1);
    assert (s_test_count_prefix (merged, "# TYPE umb_request_seconds ") == 1);
    assert (s_test_count_prefix (merged, "umb_requests_total{") == 4);
    assert (s_test_count_prefix (merged, "umb_request_seconds_count{") == 3);
    assert (s_test_count_prefix (merged, "evil") == 0);
    assert (s_test_has_line (merged, "# HELP umb_requests_total Requests handled"));
    assert (s_test_has_line (merged,
            "umb_requests_total{service=\"gate\\\"way\",op=\"auth.users.get\",status=\"200\"} 5"));
    assert (s_test_has_line (merged,
            "umb_requests_total{service=\"auth\",op=\"auth.users.get\",status=\"200\"} 3"));
    char *again = umb_metrics_render (a, packed + 1, 1);
    assert (again && streq (again, merged));
    free (again);
    //  The same registry twice is the same page: repeated series are left out
    again = umb_metrics_render (a, packed, 1);
    assert (again && streq (again, text));
    free (again);
    free (merged);
    free (text);
    umb_msg_destroy (&packed [1]);

    //  Malformed peer input is left out, never trusted, never fatal
    umb_w_t *w = writers [1];
    umb_w_reset (w);
    umb_w_array_begin (w);
    umb_w_int (w, 42);
    umb_w_str (w, "family");
    umb_w_map_begin (w);
    umb_w_map_end (w);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "name", 5);
    umb_w_kv_str (w, "type", "counter");
    umb_w_kv_str (w, "help", "");
    umb_w_key (w, "samples");
    umb_w_array_begin (w);
    umb_w_array_end (w);
    umb_w_map_end (w);
    const char *bad_names [] = { "bad name", "umb_summary", "umb_requests_total", "umb_nohelp" };
    const char *bad_types [] = { "counter", "summary", "gauge", "counter" };
    for (size_t i = 0; i < 4; i++) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "name", bad_names [i]);
        umb_w_kv_str (w, "type", bad_types [i]);
        if (i != 3)
            umb_w_kv_str (w, "help", "bad");
        umb_w_key (w, "samples");
        umb_w_array_begin (w);
        umb_w_map_begin (w);
        umb_w_kv_str (w, "labels", "service=\"evil\"");
        umb_w_kv_int (w, "value", 1);
        umb_w_map_end (w);
        umb_w_array_end (w);
        umb_w_map_end (w);
    }
    umb_w_map_begin (w);
    umb_w_kv_str (w, "name", "umb_bad_total");
    umb_w_kv_str (w, "type", "counter");
    umb_w_kv_str (w, "help", "Bad samples");
    umb_w_key (w, "samples");
    umb_w_array_begin (w);
    umb_w_int (w, 7);
    umb_w_map_begin (w); umb_w_kv_int (w, "labels", 5); umb_w_kv_int (w, "value", 1); umb_w_map_end (w);
    umb_w_map_begin (w); umb_w_kv_str (w, "labels", "a=\"1\""); umb_w_kv_double (w, "value", 1.5); umb_w_map_end (w);
    umb_w_map_begin (w); umb_w_kv_str (w, "labels", "a=\"2\""); umb_w_kv_int (w, "value", -1); umb_w_map_end (w);
    umb_w_map_begin (w); umb_w_kv_str (w, "labels", "a=\"3\""); umb_w_kv_str (w, "value", "1"); umb_w_map_end (w);
    umb_w_map_begin (w); umb_w_kv_str (w, "labels", "a=\"4\"} 1\nevil_total 1"); umb_w_kv_int (w, "value", 1); umb_w_map_end (w);
    umb_w_map_begin (w); umb_w_kv_str (w, "labels", "a=\"5\",a=\"6\""); umb_w_kv_int (w, "value", 1); umb_w_map_end (w);
    umb_w_map_begin (w); umb_w_kv_str (w, "labels", "a=\"7\""); umb_w_map_end (w);
    umb_w_map_begin (w); umb_w_kv_str (w, "labels", "a=\"ok\""); umb_w_kv_int (w, "value", 9); umb_w_map_end (w);
    umb_w_array_end (w);
    umb_w_map_end (w);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "name", "umb_bad_seconds");
    umb_w_kv_str (w, "type", "histogram");
    umb_w_kv_str (w, "help", "Bad histograms");
    umb_w_key (w, "samples");
    umb_w_array_begin (w);
    for (int variant = 0; variant < 6; variant++) {
        static const char *labels [] = {
            "a=\"short\"", "a=\"long\"", "a=\"count\"", "le=\"1\"", "a=\"type\"", "a=\"ok\""
        };
        size_t buckets = variant == 0 ? 3 : variant == 1 ? 16 : S_BUCKETS;
        umb_w_map_begin (w);
        umb_w_kv_str (w, "labels", labels [variant]);
        umb_w_key (w, "buckets");
        umb_w_array_begin (w);
        for (size_t i = 0; i < buckets; i++)
            if (variant == 4 && i == 3)
                umb_w_str (w, "1");
            else
                umb_w_uint (w, i == 9 ? 1 : 0);
        umb_w_array_end (w);
        umb_w_kv_double (w, "sum", 0.5);
        umb_w_kv_int (w, "count", variant == 2 ? 2 : 1);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_map_end (w);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "name", "umb_nosamples_total");
    umb_w_kv_str (w, "type", "counter");
    umb_w_kv_str (w, "help", "h");
    umb_w_kv_str (w, "samples", "none");
    umb_w_map_end (w);
    umb_w_array_end (w);
    packed [1] = s_test_decode (w);
    umb_w_map_begin (writers [2]);
    umb_w_kv_int (writers [2], "families", 1);
    umb_w_map_end (writers [2]);
    packed [2] = s_test_decode (writers [2]);
    packed [3] = NULL;
    text = umb_metrics_render (a, packed, 4);
    assert (text);
    assert (s_test_check_page (text) == 8);
    assert (!strstr (text, "evil") && !strstr (text, "bad name") && !strstr (text, "umb_summary"));
    assert (s_test_has_line (text, "# HELP umb_requests_total Requests handled"));
    assert (!strstr (text, "umb_nohelp") && !strstr (text, "umb_nosamples"));
    assert (s_test_has_line (text, "# TYPE umb_requests_total counter"));
    assert (s_test_count_prefix (text, "umb_bad_total") == 1);
    assert (s_test_has_line (text, "umb_bad_total{a=\"ok\"} 9"));
    assert (s_test_count_prefix (text, "umb_bad_seconds_count") == 1);
    assert (s_test_has_line (text, "umb_bad_seconds_bucket{a=\"ok\",le=\"0.25\"} 0"));
    assert (s_test_has_line (text, "umb_bad_seconds_bucket{a=\"ok\",le=\"0.5\"} 1"));
    assert (s_test_has_line (text, "umb_bad_seconds_bucket{a=\"ok\",le=\"+Inf\"} 1"));
    free (text);
    for (size_t i = 0; i < 3; i++) {
        umb_msg_destroy (&packed [i]);
        umb_w_destroy (&writers [i]);
    }

    //  Mutated packings either fail to decode or render a well-formed page
    w = umb_w_new ();
    umb_metrics_pack (b, w);
    size_t size;
    const void *data = umb_w_data (w, &size);
    unsigned char *mutant = malloc (size);
    assert (mutant);
    uint32_t seed = 42;
    for (int round = 0; round < 2000; round++) {
        memcpy (mutant, data, size);
        for (int flips = 0; flips < 1 + round % 4; flips++) {
            seed = seed * 1103515245 + 12345;
            size_t at = (seed >> 8) % size;
            seed = seed * 1103515245 + 12345;
            mutant [at] = (unsigned char) (seed >> 16);
        }
        umb_msg_t *msg = umb_msg_decode (mutant, size, NULL);
        if (msg) {
            text = umb_metrics_render (NULL, &msg, 1);
            assert (text);
            s_test_check_page (text);
            free (text);
            umb_msg_destroy (&msg);
        }
    }
    free (mutant);
    umb_w_destroy (&w);

    //  A family holds a bounded number of label sets; the rest is counted
    umb_metrics_t *capped = umb_metrics_new ("capped");
    for (int i = 0; i < S_MAX_SERIES + 5; i++) {
        snprintf (line, sizeof (line), "n=\"%d\"", i);
        umb_metrics_count (capped, "umb_many_total", "Many", line, 1);
    }
    text = umb_metrics_render (capped, NULL, 0);
    assert (text);
    assert (s_test_count_prefix (text, "umb_many_total{") == S_MAX_SERIES);
    assert (s_test_has_line (text, "umb_metrics_dropped_total{service=\"capped\"} 5"));
    free (text);
    umb_metrics_destroy (&capped);

    //  Concurrent updates are all counted
    umb_metrics_t *shared = umb_metrics_new ("threads");
    pthread_t threads [4];
    s_test_thread_t args [4];
    for (int i = 0; i < 4; i++) {
        args [i] = (s_test_thread_t) { .metrics = shared };
        int rc = pthread_create (&threads [i], NULL, s_test_thread, &args [i]);
        assert (rc == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join (threads [i], NULL);
        assert (args [i].rendered == 4);
    }
    text = umb_metrics_render (shared, NULL, 0);
    assert (s_test_has_line (text, "umb_hits_total{service=\"threads\"} 40000"));
    free (text);
    umb_metrics_destroy (&shared);

    text = umb_metrics_render (NULL, NULL, 0);
    assert (text && streq (text, ""));
    free (text);

    umb_metrics_destroy (&a);
    umb_metrics_destroy (&b);
    assert (a == NULL && b == NULL);
    umb_metrics_destroy (&a);

    if (verbose)
        printf ("OK\n");
}

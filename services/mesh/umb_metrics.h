//  umb_metrics - counters and latency histograms, exported in Prometheus text format
//
//  Each service owns one registry. Metrics are addressed by family name and
//  one label set rendered as text ('op="auth.users.get",status="200"').
//  Thread-safe: the gateway updates it from its HTTP threads.
//  A registry is packed into msgpack (sys.metrics) so the gateway can merge
//  the registries of every service into one /metrics page.
#ifndef UMB_METRICS_H_INCLUDED
#define UMB_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_mp.h"

typedef struct _umb_metrics_t umb_metrics_t;

//  service becomes a label on every sample ('service="auth"').
umb_metrics_t *umb_metrics_new (const char *service);
void           umb_metrics_destroy (umb_metrics_t **self_p);

//  Adds delta to counter family{labels}; creates it on first use. help is
//  used when the family is created.
void umb_metrics_count (umb_metrics_t *self, const char *family, const char *help,
                        const char *labels, uint64_t delta);
//  Sets a gauge.
void umb_metrics_gauge (umb_metrics_t *self, const char *family, const char *help,
                        const char *labels, double value);
//  Observes a latency in seconds into a histogram with fixed buckets
//  (0.0005 .. 10 s).
void umb_metrics_observe (umb_metrics_t *self, const char *family, const char *help,
                          const char *labels, double seconds);

//  Packs the registry into w as a msgpack array of families (the "families"
//  value of sys.metrics, proto/msgpack/envelope.md):
//  [ { "name": str, "type": "counter" | "gauge" | "histogram", "help": str,
//      "samples": [ { "labels": str, "value": uint (counter) | double (gauge) }
//                 | { "labels": str, "buckets": [15 x uint, not cumulative, last +Inf],
//                     "sum": double, "count": uint } ] } ]
//  "labels" is the full label text, service="..." first. Labels passed to the
//  update functions are already-escaped text (NULL or "" for none); a family
//  keeps at most 10000 label sets, later ones are dropped and counted.
void umb_metrics_pack (umb_metrics_t *self, umb_w_t *w);

//  Renders packed registries (values of "families" from sys.metrics replies,
//  each a umb_msg_t array) plus this registry into Prometheus text, one
//  HELP/TYPE header per family. Returns a string the caller frees.
char *umb_metrics_render (umb_metrics_t *self, umb_msg_t **packed, size_t count);

//  Escapes a label value (backslash, double quote, newline) for the text format.
void umb_metrics_label_escape (char *dst, size_t size, const char *value);

void umb_metrics_test (bool verbose);

#endif

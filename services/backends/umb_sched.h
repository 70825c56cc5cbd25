//  umb_sched - picks the TEE host for a new CVM, and keeps each host's reputation
//
//  Pure logic, no I/O, no clock: the caller passes `now` (milliseconds, any
//  monotonic or wall clock, used consistently).
//
//  A host is eligible when it is reachable, supports the requested TEE type
//  and has the vCPUs and memory free. Among eligible hosts (in the spirit of
//  COCOON's worker selection) the score is
//
//      score = capacity fit x reliability x latency factor
//
//      capacity fit  = 0.1 + 0.9 x min (vcpus left / vcpus total,
//                                       memory left / memory total)   after placing
//                      (spreads load; a host that ends up full still scores > 0)
//      reliability   = (successes + P x R0) / (successes + failures + P)
//                      over the host's recent CVM outcomes, each outcome's
//                      weight halving every half_life (P = prior weight,
//                      R0 = prior reliability, so a new host starts at R0 and a
//                      host that failed recovers towards R0 as failures age)
//      latency factor= L / (L + mean boot latency), the mean decayed and
//                      smoothed like reliability (prior: L)
//
//  The highest score wins; ties (scores within 1e-9) go to the host with
//  fewer CVMs, then to the smaller id (strcmp), then to the lower index:
//  the same inputs always give the same host.
//
//      umb_sched_t *sched = umb_sched_new (NULL);
//      umb_sched_request_t req = { .tee = UMB_DOMAIN_TEE_NONE, .vcpus = 2, .memory_mib = 1024 };
//      int index = umb_sched_pick (sched, hosts, count, &req, now, reason, sizeof reason);
//      if (index < 0)
//          refuse (reason);        //  e.g. "no reachable host supports tdx"
//      ...
//      umb_sched_record (sched, &hosts [index].rep, true, boot_seconds, now);
#ifndef UMB_SCHED_H_INCLUDED
#define UMB_SCHED_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_domain.h"

//  Bit of a TEE type in umb_sched_host_t.tee_mask
#define UMB_SCHED_TEE_BIT(tee)  (1u << (unsigned) (tee))

//  A host's reputation: decayed outcome weights. A value type the caller
//  keeps per host (zeroed = no history) and may persist as is.
typedef struct {
    double  successes;          //  decayed count of CVMs that booted
    double  failures;           //  decayed count of CVMs that failed to boot or crashed
    double  latency_sum;        //  decayed sum of boot latencies of successes (seconds)
    double  latency_weight;     //  decayed count behind latency_sum
    int64_t updated;            //  ms; the time the weights were last decayed to
} umb_sched_rep_t;

typedef struct {
    const char *id;             //  host id (borrowed), used for tie-breaks and reasons
    unsigned    tee_mask;       //  UMB_SCHED_TEE_BIT (UMB_DOMAIN_TEE_NONE) | ...
    unsigned    vcpus_total;
    unsigned    vcpus_free;
    uint64_t    memory_total_mib;
    uint64_t    memory_free_mib;
    unsigned    cvms;           //  CVMs on it now
    bool        reachable;
    umb_sched_rep_t rep;
} umb_sched_host_t;

typedef struct {
    umb_domain_tee_t tee;
    unsigned         vcpus;
    uint64_t         memory_mib;
} umb_sched_request_t;

//  Tuning; NULL or zero fields take the defaults
typedef struct {
    double half_life_s;         //  default 3600
    double prior_weight;        //  P, default 2
    double prior_reliability;   //  R0, default 0.9
    double latency_ref_s;       //  L, default 5
} umb_sched_config_t;

typedef struct _umb_sched_t umb_sched_t;

umb_sched_t *
    umb_sched_new (const umb_sched_config_t *config);
void
    umb_sched_destroy (umb_sched_t **self_p);

//  Index of the host to use, or -1 with the reason:
//    "no hosts are registered"
//    "every host is unreachable"
//    "no reachable host supports tdx"
//    "no host has 8 vCPUs free (most free: 4)"
//    "no host has 4096 MiB memory free (most free: 2048)"
//    "no host has both 8 vCPUs and 4096 MiB free"
//    "a CVM needs 1..256 vCPUs and 128..1048576 MiB" (bad request)
//  Hosts are not modified.
int
    umb_sched_pick (umb_sched_t *self, const umb_sched_host_t *hosts, size_t count,
                    const umb_sched_request_t *request, int64_t now,
                    char *reason, size_t reason_size);

//  The score umb_sched_pick gives host for request at now, 0 if not eligible
double
    umb_sched_score (umb_sched_t *self, const umb_sched_host_t *host,
                     const umb_sched_request_t *request, int64_t now);

//  Records a CVM outcome on rep: success (boot_seconds = create to agent
//  ready) or failure (boot_seconds ignored). Decays the old weights to now first.
void
    umb_sched_record (umb_sched_t *self, umb_sched_rep_t *rep, bool success,
                      double boot_seconds, int64_t now);

//  The reliability (0..1) and the smoothed mean boot latency (seconds) of rep at now
double
    umb_sched_reliability (umb_sched_t *self, const umb_sched_rep_t *rep, int64_t now);
double
    umb_sched_latency (umb_sched_t *self, const umb_sched_rep_t *rep, int64_t now);

//  Selftest
void
    umb_sched_test (bool verbose);

#endif

//  umb_backends_store - the backends service's SQL: hosts, CVMs and each
//  CVM's ordered event log (proto/msgpack/backends.md)
//
//  Rows travel as plain structs with fixed-size fields. Every function takes
//  an open store (umb_backends_store_open) and returns 0, UMB_STORE_NOT_FOUND
//  (1), UMB_STORE_CONSTRAINT (-2) for a unique name/URI, or -1 on a storage
//  error (logged by umb_store).
#ifndef UMB_BACKENDS_STORE_H_INCLUDED
#define UMB_BACKENDS_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_store.h"

typedef struct {
    char    id [32];
    char    workspace_id [64];
    char    name [72];
    char    uri [1040];
    char    driver [16];
    bool    insecure_dev;
    char    status [16];            //  up, unreachable
    char    error [256];
    char    tees [64];              //  comma-separated: none,sev-snp,tdx
    int64_t cpus;
    int64_t memory_mb;
    bool    kvm;
    char    created_by [64];
    int64_t created_at;
} umb_backends_host_t;

typedef struct {
    char    id [32];
    char    workspace_id [64];
    char    host_id [32];
    char    tee [16];
    int64_t vcpus;
    int64_t memory_mb;
    int64_t ttl_s;
    int64_t expires_at;
    char    state [16];
    char    reason [512];
    char    computation [136];
    char    agent [48];             //  pending, verified, insecure, none (test driver: no guest)
    char    agent_key [41];
    bool    insecure;
    char    agent_endpoint [128];
    char    attest_endpoint [128];
    char    mesh_cert [72];
    int64_t events;                 //  last event sequence number
    int64_t acked;                  //  subscriber's acknowledgement
    int64_t agent_seq;              //  last agent event stored (acknowledged to the agent)
    char    created_by [72];        //  user id (1..64 bytes)
    //  CURVE key (Z85) of the mesh service that created it with
    //  backends.run.create; "" for a CVM a user created
    char    service_key [41];
    int64_t created_at;
    int64_t updated_at;
} umb_backends_cvm_t;

typedef struct {
    int64_t     seq;
    int64_t     time;
    const char *source;             //  backends, agent
    const char *type;
    const char *state;
    const char *message;
    int64_t     agent_seq;          //  0 for the service's own events
} umb_backends_event_t;

typedef void (umb_backends_host_fn) (const umb_backends_host_t *host, void *arg);
typedef void (umb_backends_cvm_fn) (const umb_backends_cvm_t *cvm, void *arg);
typedef void (umb_backends_event_fn) (const umb_backends_event_t *event, void *arg);

umb_store_t *umb_backends_store_open (const char *path, umb_log_t *log);

//  Hosts
int umb_backends_store_host_insert (umb_store_t *store, const umb_backends_host_t *host);
//  By id or name within workspace_id.
int umb_backends_store_host_get (umb_store_t *store, const char *workspace_id, const char *id_or_name,
                                 umb_backends_host_t *host);
int umb_backends_store_host_by_id (umb_store_t *store, const char *id, umb_backends_host_t *host);
//  workspace_id NULL: every host. Ordered by name.
int umb_backends_store_host_each (umb_store_t *store, const char *workspace_id,
                                  umb_backends_host_fn *fn, void *arg);
int umb_backends_store_host_status (umb_store_t *store, const char *id, const char *status,
                                    const char *error);
//  Deletes the host with its (final) CVMs and their events, in one transaction.
int umb_backends_store_host_delete (umb_store_t *store, const char *id);
//  Live CVMs on the host and the vCPUs / memory they hold.
int umb_backends_store_host_load (umb_store_t *store, const char *id, int64_t *cvms,
                                  int64_t *vcpus, int64_t *memory_mb);
bool umb_backends_store_uri_taken (umb_store_t *store, const char *uri);

//  CVMs
int umb_backends_store_cvm_insert (umb_store_t *store, const umb_backends_cvm_t *cvm);
//  Writes every mutable field back (state, reason, agent ..., updated_at).
int umb_backends_store_cvm_update (umb_store_t *store, const umb_backends_cvm_t *cvm);
//  Places the CVM on another host (before its domain exists).
int umb_backends_store_cvm_move (umb_store_t *store, const char *id, const char *host_id);
//  workspace_id NULL: any workspace.
int umb_backends_store_cvm_get (umb_store_t *store, const char *workspace_id, const char *id,
                                umb_backends_cvm_t *cvm);
//  Newest first; state may be NULL; cursor "" for the first page; at most
//  limit rows; *more set when another page follows.
int umb_backends_store_cvm_list (umb_store_t *store, const char *workspace_id, const char *state,
                                 const char *cursor, int64_t limit, umb_backends_cvm_fn *fn,
                                 void *arg, bool *more);
//  Every CVM not Destroyed or Failed (all workspaces).
int umb_backends_store_cvm_live (umb_store_t *store, umb_backends_cvm_fn *fn, void *arg);
//  How many CVMs of the workspace are not Destroyed or Failed; -1 on error
int64_t umb_backends_store_cvm_live_count (umb_store_t *store, const char *workspace_id);

//  Events. Appends one event to cvm_id's log and bumps its events counter
//  (and agent_seq, for agent events) in one transaction; *seq gets its number.
int umb_backends_store_event_append (umb_store_t *store, const char *cvm_id,
                                     const umb_backends_event_t *event, int64_t *seq);
int umb_backends_store_events (umb_store_t *store, const char *cvm_id, int64_t after, int64_t max,
                               umb_backends_event_fn *fn, void *arg);
int umb_backends_store_ack (umb_store_t *store, const char *cvm_id, int64_t acked);

void umb_backends_store_test (bool verbose);

#endif

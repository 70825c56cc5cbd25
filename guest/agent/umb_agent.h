//  umb_agent - the agent inside the confidential VM (proto/msgpack/agent.md)
//
//  One actor, one zloop: the CURVE ROUTER of participants and control
//  (umb_service, ZAP domain umbra-open), the plain attestation ROUTER on its
//  own endpoint, the sandboxed run and the archive jobs. The computation is an
//  explicit state machine (Idle, ReceivingManifest, ReceivingAlgorithm,
//  ReceivingData, Running, ConsumingResults, Complete, Failed, Stopped).
//
//      umb_agent_config_t config = { .endpoint = "tcp://127.0.0.1:7002", ... };
//      zactor_t *agent = zactor_new (umb_agent_actor, &config);
//      char *ready = zstr_recv (agent);   //  "READY" or "FAIL"
//      //  READY: then the endpoint, the attestation endpoint and the key
//      //  FAIL: then the reason
//      //  later, with exit_when_done: "DONE" and the final state
//
//  The config (and everything it points to) is borrowed and must outlive the
//  actor. The agent's CURVE key pair is made at start and lives in memory only.
#ifndef UMB_AGENT_H_INCLUDED
#define UMB_AGENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <czmq.h>
#include "umb_log.h"
#include "umb_zap.h"

#define UMB_AGENT_CHUNK_SIZE     (512 * 1024)
#define UMB_AGENT_CREDIT         8
#define UMB_AGENT_OUTBOX_BYTES   (8 * 1024 * 1024)

typedef struct {
    const char *endpoint;           //  CURVE ROUTER; "tcp://127.0.0.1:*" allowed
    //  Plain ROUTER for agent.attestation; NULL: the endpoint's port + 1
    //  ("*" when the endpoint's port is "*")
    const char *attest_endpoint;
    const char *workdir;            //  created if missing (0700)
    const char *control_key;        //  Z85 of the control side, or NULL (no control)
    const char *manifest_path;      //  delivered at start (standalone), or NULL
    const char *manifest_json;      //  the same from memory (tests), or NULL
    const char *attestation;        //  "none", "snp", "tdx" or "auto"; NULL = "none"
    umb_zap_t  *zap;                //  the process's ZAP handler (borrowed); required
    umb_log_t  *log;                //  borrowed; may be NULL
    bool        exit_when_done;     //  send "DONE" on the pipe in a final state
    size_t      chunk_size;         //  0 = UMB_AGENT_CHUNK_SIZE
    int         credit;             //  0 = UMB_AGENT_CREDIT
    size_t      outbox_bytes;       //  0 = UMB_AGENT_OUTBOX_BYTES
    uid_t       run_uid;            //  0 = the sandbox's default (nobody)
    gid_t       run_gid;
} umb_agent_config_t;

void umb_agent_actor (zsock_t *pipe, void *args);

//  The state names as they travel on the wire ("ReceivingData", ...)
const char *umb_agent_state_name (int state);

void umb_agent_test (bool verbose);

#endif

//  umb_agent_client - the participants' side of the agent protocol
//  (proto/msgpack/agent.md): attested connection, signed uploads with
//  credit-based streaming, signed result downloads, status
//
//  A session:
//
//      umb_agent_client_t *client = umb_agent_client_new ("tcp://10.0.0.5:7002");
//      umb_agent_client_set_policy (client, "policy.json");
//      if (umb_agent_client_connect (client))      //  attestation, verify, pin, CURVE
//          die (umb_agent_client_reason (client));
//      if (umb_agent_client_upload (client, "dataset", "data.csv", key, NULL))
//          die (umb_agent_client_reason (client));
//      umb_agent_client_destroy (&client);
//
//  connect fetches evidence with a fresh 32-byte nonce from the attestation
//  endpoint (plain DEALER; default: the participant endpoint's port + 1),
//  checks the nonce echo and report_data = SHA-512 ("umbra-attest-v1" ||
//  agent key || nonce), verifies the evidence with umb_verify (the policy file,
//  and --insecure-dev only for platform "none"), pins the agent key and opens a
//  CURVE DEALER to the participant endpoint with a fresh client key.
//
//  Every call that can fail returns 0 on success, -1 when it failed or the
//  agent refused (umb_agent_client_reason says why, with the agent's status,
//  code and words), and connect/attest also -2 for a usage error (insecure-dev
//  asked for evidence of a real TEE). One client is used by one thread.
#ifndef UMB_AGENT_CLIENT_H_INCLUDED
#define UMB_AGENT_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "umb_mp.h"

#define UMB_AGENT_CLIENT_TIMEOUT_MS   60000     //  default for each request
#define UMB_AGENT_CLIENT_NONCE_SIZE   32
#define UMB_AGENT_CLIENT_MAX_CHUNK    (16 * 1024 * 1024)
//  Result chunk requests kept in flight
#define UMB_AGENT_CLIENT_DOWNLOAD_WINDOW 8

typedef struct _umb_agent_client_t umb_agent_client_t;

//  Called while a file is hashed (phase "hashing"), uploaded ("uploading") or
//  a result downloaded ("downloading"): done of total bytes so far.
typedef void (umb_agent_client_progress_fn) (void *arg, const char *phase, uint64_t done,
                                             uint64_t total);

//  endpoint is the participant endpoint (tcp://host:port). NULL if it is not
//  a tcp:// endpoint with a port.
umb_agent_client_t *
    umb_agent_client_new (const char *endpoint);
void
    umb_agent_client_destroy (umb_agent_client_t **self_p);

//  Settings, before connect. attest_endpoint NULL: port + 1 of the endpoint.
//  policy_path NULL: umb_verify's defaults. timeout_ms: each request's budget.
void umb_agent_client_set_attest_endpoint (umb_agent_client_t *self, const char *attest_endpoint);
void umb_agent_client_set_policy (umb_agent_client_t *self, const char *policy_path);
void umb_agent_client_set_insecure_dev (umb_agent_client_t *self, bool insecure_dev);
void umb_agent_client_set_timeout (umb_agent_client_t *self, int timeout_ms);
void umb_agent_client_set_progress (umb_agent_client_t *self,
                                    umb_agent_client_progress_fn *fn, void *arg);

//  Fetches and verifies the attestation (no CURVE connection yet). 0, -1, -2.
int  umb_agent_client_attest (umb_agent_client_t *self)
         __attribute__ ((warn_unused_result));
//  attest (unless done) and opens the CURVE channel; learns the computation id
//  from agent.status. 0, -1, -2.
int  umb_agent_client_connect (umb_agent_client_t *self)
         __attribute__ ((warn_unused_result));

//  The attestation as received (after attest; borrowed, NULL/0 before).
const char    *umb_agent_client_platform (umb_agent_client_t *self);
const char    *umb_agent_client_agent_key (umb_agent_client_t *self);      //  Z85
const uint8_t *umb_agent_client_nonce (umb_agent_client_t *self, size_t *size);
const uint8_t *umb_agent_client_report_data (umb_agent_client_t *self);   //  64 bytes
const uint8_t *umb_agent_client_evidence (umb_agent_client_t *self, size_t *size);
const char    *umb_agent_client_certs (umb_agent_client_t *self, size_t *size);
bool           umb_agent_client_insecure (umb_agent_client_t *self);
//  The verifier's warnings for people, one per line, or "" (after attest)
const char    *umb_agent_client_warnings (umb_agent_client_t *self);
//  The attestation reply's body as received (msgpack map), for saving it
const void    *umb_agent_client_attestation_raw (umb_agent_client_t *self, size_t *size);

//  agent.status; the decoded body is the caller's (umb_msg_destroy). NULL on
//  failure (reason set).
umb_msg_t *umb_agent_client_status (umb_agent_client_t *self);
//  The computation id (after connect; borrowed)
const char *umb_agent_client_computation (umb_agent_client_t *self);
//  The last agent state a reply named (upload.end, result.end), or NULL
const char *umb_agent_client_state (umb_agent_client_t *self);

//  Uploads the file at path as role ("algorithm" or "dataset"), signed with
//  key. hash: the file's SHA3-256 if the caller has it already, else NULL (the
//  file is hashed first). The file is read in chunk_size pieces; at most
//  `credit` chunks are unanswered at any time.
int  umb_agent_client_upload (umb_agent_client_t *self, const char *role, const char *path,
                              EVP_PKEY *key, const uint8_t *hash)
         __attribute__ ((warn_unused_result));

//  Fetches the result (a ustar of results/) signed with key into tar_path:
//  written to a temporary file beside it, its size and SHA3-256 checked
//  against what the agent announced, then renamed into place (an existing
//  tar_path is replaced); then confirms it with agent.result.end.
int  umb_agent_client_result (umb_agent_client_t *self, EVP_PKEY *key, const char *tar_path)
         __attribute__ ((warn_unused_result));

//  Why the last call failed (borrowed; "" if it did not)
const char *umb_agent_client_reason (umb_agent_client_t *self);
//  The agent's status and code for the last refusal (0 / NULL if the failure
//  was local: no connection, timeout, bad file)
int         umb_agent_client_refusal_status (umb_agent_client_t *self);
const char *umb_agent_client_refusal_code (umb_agent_client_t *self);

//  The attestation endpoint for endpoint: the same host, port + 1. Returns
//  the caller's string, or NULL if endpoint has no numeric port below 65535.
char *umb_agent_client_next_port (const char *endpoint);

//  The sender's window: may a client that has sent `sent` chunks, of which
//  `answered` are answered, with the agent's latest credit, send another?
bool umb_agent_client_window_open (uint64_t sent, uint64_t answered, int64_t credit);

void umb_agent_client_test (bool verbose);

#endif

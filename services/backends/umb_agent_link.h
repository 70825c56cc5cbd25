//  umb_agent_link - the host side of one CVM's guest link: the bridge's host
//  end, the agent's attestation, the control connection, the event pump
//
//  An actor per CVM (its calls block). It starts the host end of the bridge
//  on the CVM's link with the listeners `control` (a unix socket under the
//  service's directory), `agent` and `attest` (TCP on the participant
//  address, published for participants), then:
//
//  1. fetches agent.attestation over `attest` with a fresh nonce until the
//     agent answers (or the boot timeout passes), verifies the evidence with
//     umb_verify (platform none only when insecure_dev) and its binding of
//     the agent key and nonce;
//  2. connects an umb_client with the service's identity to `control`,
//     pinning the attested agent key;
//  3. pulls agent.events.pull (long-poll), hands the events to the service
//     and acknowledges them to the agent only once the service said they
//     are stored (the next pull's `after`).
//
//  Messages to the service (on the actor's pipe, string frames):
//      "ENDPOINTS" agent_endpoint attest_endpoint     once, at start
//      "READY" agent_key platform insecure(0|1)       attested and connected
//      "EVENTS" n, then n x (seq time type state message)
//                                                      the service answers "ACK" seq
//      "FAILED" reason                                 the link gave up; nothing follows
//      "REPLY" tag status code error agent_state       answer to MANIFEST / STOP
//  Commands from the service:
//      "ACK" seq            the events up to seq are stored
//      "MANIFEST" tag json  agent.control.manifest
//      "STOP" tag reason    agent.control.stop (best effort)
//      "$TERM"
#ifndef UMB_AGENT_LINK_H_INCLUDED
#define UMB_AGENT_LINK_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include "umb_log.h"

typedef struct {
    const char *cvm_id;
    const char *link;               //  bridge link spec ("fd:N", "unix-connect:PATH")
    const char *control_path;       //  unix socket path of the control listener
    const char *participant_address;//  host of the agent / attest listeners
    zcert_t    *identity;           //  the service's key pair (copied)
    bool        insecure_dev;       //  accept platform none
    int64_t     after;              //  agent events stored already (acknowledged)
    int         boot_timeout_ms;
    int         agent_timeout_ms;
    int         poll_ms;            //  long-poll wait (default 1000)
    umb_log_t  *log;                //  borrowed; outlives the actor
} umb_agent_link_config_t;

//  Starts the actor (the config is copied). NULL with the reason when the
//  bridge's listeners cannot be made.
zactor_t *umb_agent_link_new (const umb_agent_link_config_t *config, char *reason,
                              size_t reason_size);

void umb_agent_link_test (bool verbose);

#endif

//  umb_cvm - the lifecycle of one confidential VM as an explicit state machine
//
//  Requested -> Defining -> Booting -> AgentReady -> Running -> Stopping ->
//  Destroyed, or Failed (reason) from any live state. Each (state, event)
//  pair in the table gives the actions the service carries out and the next
//  state; a pair not in the table is refused with a reason for people.
//
//      umb_cvm_step_t step;
//      char reason [128];
//      if (umb_cvm_next (UMB_CVM_BOOTING, UMB_CVM_EV_AGENT_READY, &step, reason, sizeof reason))
//          return umb_req_fail (req, 409, "wrong_state", "%s", reason);
//      if (step.actions & UMB_CVM_DO_MANIFEST) ...
//
//  Pure logic: no I/O.
#ifndef UMB_CVM_H_INCLUDED
#define UMB_CVM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    UMB_CVM_REQUESTED = 0,
    UMB_CVM_DEFINING,
    UMB_CVM_BOOTING,
    UMB_CVM_AGENT_READY,
    UMB_CVM_RUNNING,
    UMB_CVM_STOPPING,
    UMB_CVM_DESTROYED,
    UMB_CVM_FAILED
} umb_cvm_state_t;
#define UMB_CVM_STATES 8

typedef enum {
    UMB_CVM_EV_SCHEDULED = 0,   //  a host was picked
    UMB_CVM_EV_DEFINED,         //  the domain (or process) is defined
    UMB_CVM_EV_STARTED,         //  ... and started; the agent is awaited
    UMB_CVM_EV_NO_AGENT,        //  started on a driver without a guest (test)
    UMB_CVM_EV_AGENT_READY,     //  attested, control connected
    UMB_CVM_EV_MANIFEST_OK,     //  the agent took the manifest
    UMB_CVM_EV_DESTROY,         //  asked to destroy
    UMB_CVM_EV_TTL,             //  its time is up
    UMB_CVM_EV_GONE,            //  the domain is destroyed and undefined
    UMB_CVM_EV_FAIL             //  anything that ends it against our will
} umb_cvm_event_t;
#define UMB_CVM_EVENTS 10

//  Actions, as bits
#define UMB_CVM_DO_DEFINE     0x01u   //  define and start the domain / spawn the children
#define UMB_CVM_DO_LINK       0x02u   //  connect the guest link, attest the agent
#define UMB_CVM_DO_MANIFEST   0x04u   //  deliver the manifest given at create, if any
#define UMB_CVM_DO_STOP_AGENT 0x08u   //  agent.control.stop, best effort
#define UMB_CVM_DO_TEARDOWN   0x10u   //  destroy + undefine / kill the children, drop the link
#define UMB_CVM_DO_CERTIFY    0x20u   //  ask certs for the agent's mesh certificate
#define UMB_CVM_DO_RECORD     0x40u   //  record a reputation outcome for the host

typedef struct {
    umb_cvm_state_t next;
    unsigned        actions;
} umb_cvm_step_t;

//  0 with the step, or -1 with why the event is refused in state.
int  umb_cvm_next (umb_cvm_state_t state, umb_cvm_event_t event, umb_cvm_step_t *step,
                   char *reason, size_t reason_size);

const char *umb_cvm_state_str (umb_cvm_state_t state);
//  The state of that name, or -1.
int         umb_cvm_state_parse (const char *name);
const char *umb_cvm_event_str (umb_cvm_event_t event);
//  Destroyed or Failed.
bool        umb_cvm_final (umb_cvm_state_t state);

void umb_cvm_test (bool verbose);

#endif

//  umb_run - a run's lifecycle: one table of (state, event) -> next state and
//  actions (proto/msgpack/computations.md, "Runs")
//
//      Pending --provision--> Provisioning --cvm_ready--> AwaitingAssets
//      AwaitingAssets --agent_running--> Running --agent_results--> ResultsReady
//      ResultsReady --agent_complete--> Completed
//      any live state --fail--> Failed, --stop--> Cancelled (the CVM is destroyed)
//
//  The agent may move faster than its events are read: a later agent event
//  also moves an earlier state on (AwaitingAssets --agent_results--> ResultsReady).
#ifndef UMB_RUN_H_INCLUDED
#define UMB_RUN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    UMB_RUN_PENDING = 0,
    UMB_RUN_PROVISIONING,
    UMB_RUN_AWAITING_ASSETS,
    UMB_RUN_RUNNING,
    UMB_RUN_RESULTS_READY,
    UMB_RUN_COMPLETED,
    UMB_RUN_FAILED,
    UMB_RUN_CANCELLED,
    UMB_RUN_STATES
} umb_run_state_t;

typedef enum {
    UMB_RUN_EV_PROVISION = 0,   //  the run may go ahead: the CVM is asked for
    UMB_RUN_EV_CVM_READY,       //  the CVM's agent took the manifest
    UMB_RUN_EV_AGENT_RUNNING,   //  the agent runs the algorithm
    UMB_RUN_EV_AGENT_RESULTS,   //  results are ready for the consumers
    UMB_RUN_EV_AGENT_COMPLETE,  //  every consumer fetched them
    UMB_RUN_EV_FAIL,
    UMB_RUN_EV_STOP,
    UMB_RUN_EVENTS
} umb_run_event_t;

//  Actions, as bits
#define UMB_RUN_DO_CREATE_CVM   (1u << 0)   //  backends.run.create with the manifest
#define UMB_RUN_DO_ENDPOINTS    (1u << 1)   //  read the CVM's participant endpoints
#define UMB_RUN_DO_CLEANUP      (1u << 2)   //  destroy the CVM (its agent certificate goes with it)

typedef struct {
    umb_run_state_t next;
    unsigned        actions;
} umb_run_step_t;

//  The step for event in state; 0, or -1 with the reason when the table has
//  no such transition (the event is refused).
int          umb_run_next (umb_run_state_t state, umb_run_event_t event, umb_run_step_t *step,
                           char *reason, size_t reason_size);
bool         umb_run_final (umb_run_state_t state);
const char  *umb_run_state_name (umb_run_state_t state);
int          umb_run_state_parse (const char *name);     //  -1 if unknown
const char  *umb_run_event_name (umb_run_event_t event);

//  What an agent state reported through backends means for a run: an event,
//  or -1 when it means nothing (Idle, Receiving...).
int          umb_run_event_of_agent_state (const char *agent_state);

void         umb_run_test (bool verbose);

#endif

//  umb_run - a run's lifecycle table
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "umb_run.h"
#include "umb_reason.h"

static const char *const s_states [UMB_RUN_STATES] = {
    "Pending", "Provisioning", "AwaitingAssets", "Running", "ResultsReady", "Completed",
    "Failed", "Cancelled"
};

static const char *const s_events [UMB_RUN_EVENTS] = {
    "provision", "cvm_ready", "agent_running", "agent_results", "agent_complete", "fail", "stop"
};

#define S_LIVE(state_) \
    { state_, UMB_RUN_EV_FAIL, UMB_RUN_FAILED, UMB_RUN_DO_CLEANUP }, \
    { state_, UMB_RUN_EV_STOP, UMB_RUN_CANCELLED, UMB_RUN_DO_CLEANUP }

static const struct {
    umb_run_state_t state;
    umb_run_event_t event;
    umb_run_state_t next;
    unsigned        actions;
} s_table [] = {
    { UMB_RUN_PENDING,         UMB_RUN_EV_PROVISION,      UMB_RUN_PROVISIONING,    UMB_RUN_DO_CREATE_CVM },
    { UMB_RUN_PROVISIONING,    UMB_RUN_EV_CVM_READY,      UMB_RUN_AWAITING_ASSETS, UMB_RUN_DO_ENDPOINTS },
    { UMB_RUN_AWAITING_ASSETS, UMB_RUN_EV_AGENT_RUNNING,  UMB_RUN_RUNNING,         0 },
    { UMB_RUN_AWAITING_ASSETS, UMB_RUN_EV_AGENT_RESULTS,  UMB_RUN_RESULTS_READY,   0 },
    { UMB_RUN_RUNNING,         UMB_RUN_EV_AGENT_RESULTS,  UMB_RUN_RESULTS_READY,   0 },
    { UMB_RUN_RESULTS_READY,   UMB_RUN_EV_AGENT_COMPLETE, UMB_RUN_COMPLETED,       UMB_RUN_DO_CLEANUP },
    S_LIVE (UMB_RUN_PENDING),
    S_LIVE (UMB_RUN_PROVISIONING),
    S_LIVE (UMB_RUN_AWAITING_ASSETS),
    S_LIVE (UMB_RUN_RUNNING),
    S_LIVE (UMB_RUN_RESULTS_READY),
};
#define S_TABLE (sizeof (s_table) / sizeof (s_table [0]))

int
umb_run_next (umb_run_state_t state, umb_run_event_t event, umb_run_step_t *step, char *reason,
              size_t reason_size)
{
    assert ((unsigned) state < UMB_RUN_STATES && (unsigned) event < UMB_RUN_EVENTS && step);
    for (size_t i = 0; i < S_TABLE; i++)
        if (s_table [i].state == state && s_table [i].event == event) {
            step->next = s_table [i].next;
            step->actions = s_table [i].actions;
            return 0;
        }
    if (umb_run_final (state))
        return umb_reason_set (reason, reason_size, "the run is %s, which is final", s_states [state]);
    return umb_reason_set (reason, reason_size, "%s does not happen to a run that is %s",
                           s_events [event], s_states [state]);
}

bool
umb_run_final (umb_run_state_t state)
{
    return state == UMB_RUN_COMPLETED || state == UMB_RUN_FAILED || state == UMB_RUN_CANCELLED;
}

const char *
umb_run_state_name (umb_run_state_t state)
{
    assert ((unsigned) state < UMB_RUN_STATES);
    return s_states [state];
}

int
umb_run_state_parse (const char *name)
{
    for (int i = 0; name && i < UMB_RUN_STATES; i++)
        if (strcmp (name, s_states [i]) == 0)
            return i;
    return -1;
}

const char *
umb_run_event_name (umb_run_event_t event)
{
    assert ((unsigned) event < UMB_RUN_EVENTS);
    return s_events [event];
}

int
umb_run_event_of_agent_state (const char *agent_state)
{
    static const struct {
        const char *state;
        int         event;
    } map [] = {
        { "Running", UMB_RUN_EV_AGENT_RUNNING },
        { "ConsumingResults", UMB_RUN_EV_AGENT_RESULTS },
        { "Complete", UMB_RUN_EV_AGENT_COMPLETE },
        { "Failed", UMB_RUN_EV_FAIL },
        { "Stopped", UMB_RUN_EV_FAIL },
    };
    for (size_t i = 0; agent_state && i < sizeof map / sizeof map [0]; i++)
        if (strcmp (agent_state, map [i].state) == 0)
            return map [i].event;
    return -1;
}

void
umb_run_test (bool verbose)
{
    if (verbose)
        printf (" * umb_run: ");
    char reason [128];
    umb_run_step_t step;
    //  The happy path, with its actions
    umb_run_state_t state = UMB_RUN_PENDING;
    const struct { umb_run_event_t event; umb_run_state_t next; unsigned actions; } path [] = {
        { UMB_RUN_EV_PROVISION, UMB_RUN_PROVISIONING, UMB_RUN_DO_CREATE_CVM },
        { UMB_RUN_EV_CVM_READY, UMB_RUN_AWAITING_ASSETS, UMB_RUN_DO_ENDPOINTS },
        { UMB_RUN_EV_AGENT_RUNNING, UMB_RUN_RUNNING, 0 },
        { UMB_RUN_EV_AGENT_RESULTS, UMB_RUN_RESULTS_READY, 0 },
        { UMB_RUN_EV_AGENT_COMPLETE, UMB_RUN_COMPLETED, UMB_RUN_DO_CLEANUP },
    };
    for (size_t i = 0; i < sizeof path / sizeof path [0]; i++) {
        assert (umb_run_next (state, path [i].event, &step, reason, sizeof reason) == 0);
        assert (step.next == path [i].next && step.actions == path [i].actions);
        state = step.next;
    }
    assert (umb_run_final (state));
    //  Final states take nothing; illegal events say why
    for (int event = 0; event < UMB_RUN_EVENTS; event++)
        for (int final = UMB_RUN_COMPLETED; final <= UMB_RUN_CANCELLED; final++) {
            assert (umb_run_next ((umb_run_state_t) final, (umb_run_event_t) event, &step, reason,
                                  sizeof reason) == -1);
            assert (strstr (reason, "which is final"));
        }
    assert (umb_run_next (UMB_RUN_PENDING, UMB_RUN_EV_AGENT_COMPLETE, &step, reason,
                          sizeof reason) == -1);
    assert (strcmp (reason, "agent_complete does not happen to a run that is Pending") == 0);
    //  Every live state fails or stops, cleaning up
    for (int live = UMB_RUN_PENDING; live <= UMB_RUN_RESULTS_READY; live++) {
        assert (umb_run_next ((umb_run_state_t) live, UMB_RUN_EV_FAIL, &step, NULL, 0) == 0);
        assert (step.next == UMB_RUN_FAILED && (step.actions & UMB_RUN_DO_CLEANUP));
        assert (umb_run_next ((umb_run_state_t) live, UMB_RUN_EV_STOP, &step, NULL, 0) == 0);
        assert (step.next == UMB_RUN_CANCELLED);
    }
    //  Results straight after the assets (the algorithm ran between two reads)
    assert (umb_run_next (UMB_RUN_AWAITING_ASSETS, UMB_RUN_EV_AGENT_RESULTS, &step, NULL, 0) == 0);
    assert (step.next == UMB_RUN_RESULTS_READY);
    for (int i = 0; i < UMB_RUN_STATES; i++)
        assert (umb_run_state_parse (umb_run_state_name ((umb_run_state_t) i)) == i);
    assert (umb_run_state_parse ("Done") == -1 && umb_run_state_parse (NULL) == -1);
    assert (umb_run_event_of_agent_state ("ConsumingResults") == UMB_RUN_EV_AGENT_RESULTS);
    assert (umb_run_event_of_agent_state ("ReceivingData") == -1);
    if (verbose)
        printf ("OK\n");
}

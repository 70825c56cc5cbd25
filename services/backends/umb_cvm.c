//  umb_cvm - the lifecycle of one confidential VM as an explicit state machine
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "umb_cvm.h"

static const char *const s_state_names [UMB_CVM_STATES] = {
    "Requested", "Defining", "Booting", "AgentReady", "Running", "Stopping", "Destroyed", "Failed"
};

static const char *const s_event_names [UMB_CVM_EVENTS] = {
    "scheduled", "defined", "started", "no_agent", "agent_ready", "manifest_ok", "destroy", "ttl",
    "gone", "fail"
};

typedef struct {
    umb_cvm_state_t state;
    umb_cvm_event_t event;
    umb_cvm_state_t next;
    unsigned        actions;
} s_row_t;

#define S_END_LIVE (UMB_CVM_DO_STOP_AGENT | UMB_CVM_DO_TEARDOWN)
#define S_FAIL     (UMB_CVM_DO_TEARDOWN | UMB_CVM_DO_RECORD)

//  The whole lifecycle. Anything not here is refused.
static const s_row_t s_table [] = {
    { UMB_CVM_REQUESTED,   UMB_CVM_EV_SCHEDULED,   UMB_CVM_DEFINING,    UMB_CVM_DO_DEFINE },
    { UMB_CVM_DEFINING,    UMB_CVM_EV_DEFINED,     UMB_CVM_BOOTING,     0 },
    { UMB_CVM_BOOTING,     UMB_CVM_EV_STARTED,     UMB_CVM_BOOTING,     UMB_CVM_DO_LINK },
    { UMB_CVM_BOOTING,     UMB_CVM_EV_NO_AGENT,    UMB_CVM_RUNNING,     UMB_CVM_DO_RECORD },
    { UMB_CVM_BOOTING,     UMB_CVM_EV_AGENT_READY, UMB_CVM_AGENT_READY,
      UMB_CVM_DO_CERTIFY | UMB_CVM_DO_MANIFEST | UMB_CVM_DO_RECORD },
    { UMB_CVM_AGENT_READY, UMB_CVM_EV_MANIFEST_OK, UMB_CVM_RUNNING,     0 },

    { UMB_CVM_REQUESTED,   UMB_CVM_EV_DESTROY,     UMB_CVM_STOPPING,    UMB_CVM_DO_TEARDOWN },
    { UMB_CVM_DEFINING,    UMB_CVM_EV_DESTROY,     UMB_CVM_STOPPING,    UMB_CVM_DO_TEARDOWN },
    { UMB_CVM_BOOTING,     UMB_CVM_EV_DESTROY,     UMB_CVM_STOPPING,    S_END_LIVE },
    { UMB_CVM_AGENT_READY, UMB_CVM_EV_DESTROY,     UMB_CVM_STOPPING,    S_END_LIVE },
    { UMB_CVM_RUNNING,     UMB_CVM_EV_DESTROY,     UMB_CVM_STOPPING,    S_END_LIVE },
    { UMB_CVM_FAILED,      UMB_CVM_EV_DESTROY,     UMB_CVM_DESTROYED,   UMB_CVM_DO_TEARDOWN },

    { UMB_CVM_REQUESTED,   UMB_CVM_EV_TTL,         UMB_CVM_STOPPING,    UMB_CVM_DO_TEARDOWN },
    { UMB_CVM_DEFINING,    UMB_CVM_EV_TTL,         UMB_CVM_STOPPING,    UMB_CVM_DO_TEARDOWN },
    { UMB_CVM_BOOTING,     UMB_CVM_EV_TTL,         UMB_CVM_STOPPING,    S_END_LIVE },
    { UMB_CVM_AGENT_READY, UMB_CVM_EV_TTL,         UMB_CVM_STOPPING,    S_END_LIVE },
    { UMB_CVM_RUNNING,     UMB_CVM_EV_TTL,         UMB_CVM_STOPPING,    S_END_LIVE },

    { UMB_CVM_STOPPING,    UMB_CVM_EV_GONE,        UMB_CVM_DESTROYED,   0 },

    { UMB_CVM_REQUESTED,   UMB_CVM_EV_FAIL,        UMB_CVM_FAILED,      S_FAIL },
    { UMB_CVM_DEFINING,    UMB_CVM_EV_FAIL,        UMB_CVM_FAILED,      S_FAIL },
    { UMB_CVM_BOOTING,     UMB_CVM_EV_FAIL,        UMB_CVM_FAILED,      S_FAIL },
    { UMB_CVM_AGENT_READY, UMB_CVM_EV_FAIL,        UMB_CVM_FAILED,      UMB_CVM_DO_TEARDOWN },
    { UMB_CVM_RUNNING,     UMB_CVM_EV_FAIL,        UMB_CVM_FAILED,      UMB_CVM_DO_TEARDOWN },
    { UMB_CVM_STOPPING,    UMB_CVM_EV_FAIL,        UMB_CVM_FAILED,      UMB_CVM_DO_TEARDOWN },
};

int
umb_cvm_next (umb_cvm_state_t state, umb_cvm_event_t event, umb_cvm_step_t *step,
              char *reason, size_t reason_size)
{
    assert ((unsigned) state < UMB_CVM_STATES && (unsigned) event < UMB_CVM_EVENTS && step);
    for (size_t index = 0; index < sizeof s_table / sizeof s_table [0]; index++)
        if (s_table [index].state == state && s_table [index].event == event) {
            step->next = s_table [index].next;
            step->actions = s_table [index].actions;
            return 0;
        }
    if (reason && reason_size)
        snprintf (reason, reason_size, "%s: a CVM that is %s cannot take '%s'",
                  s_event_names [event], s_state_names [state],
                  state == UMB_CVM_DESTROYED ? "anything: it is destroyed already"
                                             : s_event_names [event]);
    return -1;
}

const char *
umb_cvm_state_str (umb_cvm_state_t state)
{
    assert ((unsigned) state < UMB_CVM_STATES);
    return s_state_names [state];
}

int
umb_cvm_state_parse (const char *name)
{
    for (int index = 0; name && index < UMB_CVM_STATES; index++)
        if (streq (name, s_state_names [index]))
            return index;
    return -1;
}

const char *
umb_cvm_event_str (umb_cvm_event_t event)
{
    assert ((unsigned) event < UMB_CVM_EVENTS);
    return s_event_names [event];
}

bool
umb_cvm_final (umb_cvm_state_t state)
{
    return state == UMB_CVM_DESTROYED || state == UMB_CVM_FAILED;
}

void
umb_cvm_test (bool verbose)
{
    printf (" * umb_cvm: ");
    umb_cvm_step_t step;
    char reason [256];
    //  The happy path with an agent
    umb_cvm_state_t state = UMB_CVM_REQUESTED;
    static const umb_cvm_event_t path [] = {
        UMB_CVM_EV_SCHEDULED, UMB_CVM_EV_DEFINED, UMB_CVM_EV_STARTED, UMB_CVM_EV_AGENT_READY,
        UMB_CVM_EV_MANIFEST_OK, UMB_CVM_EV_DESTROY, UMB_CVM_EV_GONE
    };
    static const umb_cvm_state_t expect [] = {
        UMB_CVM_DEFINING, UMB_CVM_BOOTING, UMB_CVM_BOOTING, UMB_CVM_AGENT_READY, UMB_CVM_RUNNING,
        UMB_CVM_STOPPING, UMB_CVM_DESTROYED
    };
    for (size_t index = 0; index < sizeof path / sizeof path [0]; index++) {
        assert (umb_cvm_next (state, path [index], &step, reason, sizeof reason) == 0);
        assert (step.next == expect [index]);
        state = step.next;
    }
    assert (umb_cvm_next (UMB_CVM_REQUESTED, UMB_CVM_EV_SCHEDULED, &step, NULL, 0) == 0
            && (step.actions & UMB_CVM_DO_DEFINE));
    assert (umb_cvm_next (UMB_CVM_BOOTING, UMB_CVM_EV_AGENT_READY, &step, NULL, 0) == 0
            && (step.actions & UMB_CVM_DO_MANIFEST) && (step.actions & UMB_CVM_DO_CERTIFY));
    assert (umb_cvm_next (UMB_CVM_RUNNING, UMB_CVM_EV_DESTROY, &step, NULL, 0) == 0
            && (step.actions & UMB_CVM_DO_STOP_AGENT) && (step.actions & UMB_CVM_DO_TEARDOWN));
    //  The test driver has no agent
    assert (umb_cvm_next (UMB_CVM_BOOTING, UMB_CVM_EV_NO_AGENT, &step, NULL, 0) == 0
            && step.next == UMB_CVM_RUNNING);
    //  Failures from every live state tear down
    for (int live = UMB_CVM_REQUESTED; live <= UMB_CVM_STOPPING; live++) {
        assert (umb_cvm_next ((umb_cvm_state_t) live, UMB_CVM_EV_FAIL, &step, NULL, 0) == 0);
        assert (step.next == UMB_CVM_FAILED && (step.actions & UMB_CVM_DO_TEARDOWN));
        assert (!umb_cvm_final ((umb_cvm_state_t) live));
    }
    //  A failed CVM may still be destroyed (cleanup); nothing else happens to it
    assert (umb_cvm_next (UMB_CVM_FAILED, UMB_CVM_EV_DESTROY, &step, NULL, 0) == 0
            && step.next == UMB_CVM_DESTROYED);
    assert (umb_cvm_next (UMB_CVM_FAILED, UMB_CVM_EV_FAIL, &step, reason, sizeof reason) == -1);
    assert (umb_cvm_next (UMB_CVM_FAILED, UMB_CVM_EV_TTL, &step, reason, sizeof reason) == -1);
    //  Illegal events are refused with a reason
    assert (umb_cvm_next (UMB_CVM_DESTROYED, UMB_CVM_EV_DESTROY, &step, reason, sizeof reason)
            == -1);
    assert (strstr (reason, "Destroyed") && strstr (reason, "destroyed already"));
    assert (umb_cvm_next (UMB_CVM_RUNNING, UMB_CVM_EV_MANIFEST_OK, &step, reason, sizeof reason)
            == -1);
    assert (strstr (reason, "Running"));
    assert (umb_cvm_next (UMB_CVM_REQUESTED, UMB_CVM_EV_AGENT_READY, &step, reason,
                          sizeof reason) == -1);
    //  Every pair either steps or says why
    for (int s = 0; s < UMB_CVM_STATES; s++)
        for (int e = 0; e < UMB_CVM_EVENTS; e++) {
            reason [0] = 0;
            if (umb_cvm_next ((umb_cvm_state_t) s, (umb_cvm_event_t) e, &step, reason,
                              sizeof reason))
                assert (*reason);
        }
    //  Names
    for (int s = 0; s < UMB_CVM_STATES; s++)
        assert (umb_cvm_state_parse (umb_cvm_state_str ((umb_cvm_state_t) s)) == s);
    assert (umb_cvm_state_parse ("running") == -1 && umb_cvm_state_parse (NULL) == -1);
    assert (streq (umb_cvm_event_str (UMB_CVM_EV_TTL), "ttl"));
    assert (umb_cvm_final (UMB_CVM_DESTROYED) && umb_cvm_final (UMB_CVM_FAILED));
    if (verbose)
        printf ("(verbose) ");
    printf ("OK\n");
}

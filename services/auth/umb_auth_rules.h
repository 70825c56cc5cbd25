//  umb_auth_rules - workspace roles, the table of actions, and the rules that
//  usernames, passwords, emails and workspace names must follow
//
//  Pure functions over static tables: no state, no I/O. The validators return
//  true, or false with a reason for people in why ("username: at least 3
//  characters"), which the service sends back with a 422.
#ifndef UMB_AUTH_RULES_H_INCLUDED
#define UMB_AUTH_RULES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    UMB_ROLE_NONE   = 0,        //  not a member, or an unknown role name
    UMB_ROLE_VIEWER = 1,
    UMB_ROLE_MEMBER = 2,
    UMB_ROLE_ADMIN  = 3
} umb_role_t;

#define UMB_AUTH_USERNAME_MIN      3
#define UMB_AUTH_USERNAME_MAX      32
#define UMB_AUTH_PASSWORD_MAX      1024
#define UMB_AUTH_EMAIL_MAX         254
#define UMB_AUTH_WORKSPACE_MIN     3
#define UMB_AUTH_WORKSPACE_MAX     40
#define UMB_AUTH_DISPLAY_NAME_MAX  100
#define UMB_AUTH_KEY_NAME_MAX      64
#define UMB_AUTH_ACTION_MAX        32      //  longest action name
#define UMB_AUTH_ACTIONS_MAX       32      //  most actions one API key holds

//  "viewer" | "member" | "admin" -> role; anything else UMB_ROLE_NONE.
umb_role_t  umb_auth_role_parse (const char *name);
//  The role's name; "none" for UMB_ROLE_NONE.
const char *umb_auth_role_name (umb_role_t role);

//  The least role that holds action, or UMB_ROLE_NONE if the action is not in
//  the table (callers must then refuse: unknown actions fail closed).
umb_role_t  umb_auth_action_role (const char *action);
//  The index-th action of the table in its order; NULL past the end.
const char *umb_auth_action_at (size_t index);
//  True if action is one item of list, a comma-separated list of actions.
bool        umb_auth_actions_has (const char *list, const char *action);

//  Validators for well-typed values; false with a reason in why.
bool umb_auth_username_valid (const char *username, char *why, size_t why_size);
bool umb_auth_password_valid (const char *password, size_t min_length, char *why, size_t why_size);
bool umb_auth_email_valid (const char *email, char *why, size_t why_size);
bool umb_auth_workspace_name_valid (const char *name, char *why, size_t why_size);
//  Display names and API key names: 1..max bytes, no control characters.
bool umb_auth_label_valid (const char *what, const char *label, size_t max, char *why,
                           size_t why_size);

void umb_auth_rules_test (bool verbose);

#endif

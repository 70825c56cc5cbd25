//  umb_auth_rules - workspace roles, the table of actions, and naming rules
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "umb_auth_rules.h"

static const char *const s_roles [] = { "none", "viewer", "member", "admin" };

//  Every action a service may ask about, and the least role that holds it.
//  proto/msgpack/auth.md lists the same table; keep them equal.
static const struct {
    const char *action;
    umb_role_t  role;
} s_actions [] = {
    { "workspace.read",     UMB_ROLE_VIEWER },
    { "workspace.update",   UMB_ROLE_ADMIN },
    { "workspace.delete",   UMB_ROLE_ADMIN },
    { "members.read",       UMB_ROLE_VIEWER },
    { "members.manage",     UMB_ROLE_ADMIN },
    { "apikeys.manage",     UMB_ROLE_ADMIN },
    { "computations.read",  UMB_ROLE_VIEWER },
    { "computations.write", UMB_ROLE_MEMBER },
    { "computations.run",   UMB_ROLE_MEMBER },
    { "certs.read",         UMB_ROLE_VIEWER },
    { "certs.issue",        UMB_ROLE_MEMBER },
    { "certs.revoke",       UMB_ROLE_ADMIN },
    { "backends.read",      UMB_ROLE_VIEWER },
    { "backends.manage",    UMB_ROLE_ADMIN },
    { "cvms.read",          UMB_ROLE_VIEWER },
    { "cvms.manage",        UMB_ROLE_MEMBER },
    { "billing.read",       UMB_ROLE_VIEWER },
    { "billing.manage",     UMB_ROLE_ADMIN },
};

#define S_ACTIONS (sizeof (s_actions) / sizeof (s_actions [0]))

umb_role_t
umb_auth_role_parse (const char *name)
{
    if (!name)
        return UMB_ROLE_NONE;
    for (int role = UMB_ROLE_VIEWER; role <= UMB_ROLE_ADMIN; role++)
        if (strcmp (name, s_roles [role]) == 0)
            return (umb_role_t) role;
    return UMB_ROLE_NONE;
}

const char *
umb_auth_role_name (umb_role_t role)
{
    assert (role >= UMB_ROLE_NONE && role <= UMB_ROLE_ADMIN);
    return s_roles [role];
}

umb_role_t
umb_auth_action_role (const char *action)
{
    for (size_t index = 0; action && index < S_ACTIONS; index++)
        if (strcmp (action, s_actions [index].action) == 0)
            return s_actions [index].role;
    return UMB_ROLE_NONE;
}

const char *
umb_auth_action_at (size_t index)
{
    return index < S_ACTIONS ? s_actions [index].action : NULL;
}

bool
umb_auth_actions_has (const char *list, const char *action)
{
    assert (list && action);
    size_t length = strlen (action);
    if (length == 0)
        return false;
    for (const char *item = list; *item; ) {
        const char *comma = strchr (item, ',');
        size_t item_length = comma ? (size_t) (comma - item) : strlen (item);
        if (item_length == length && memcmp (item, action, length) == 0)
            return true;
        if (!comma)
            break;
        item = comma + 1;
    }
    return false;
}

//  ---------------------------------------------------------------- validators

static bool
s_refuse (char *why, size_t why_size, const char *what, const char *reason)
{
    snprintf (why, why_size, "%s: %s", what, reason);
    return false;
}

static bool
s_lower_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool
umb_auth_username_valid (const char *username, char *why, size_t why_size)
{
    assert (username);
    size_t length = strlen (username);
    if (length < UMB_AUTH_USERNAME_MIN)
        return s_refuse (why, why_size, "username", "at least 3 characters");
    if (length > UMB_AUTH_USERNAME_MAX)
        return s_refuse (why, why_size, "username", "at most 32 characters");
    if (!s_lower_alnum (username [0]))
        return s_refuse (why, why_size, "username", "must start with a-z or 0-9");
    for (const char *c = username; *c; c++)
        if (!s_lower_alnum (*c) && *c != '_' && *c != '.' && *c != '-')
            return s_refuse (why, why_size, "username",
                             "only lowercase a-z, 0-9, '_', '.' and '-' are allowed");
    //  "user" fields take an id or a username: the two must never look alike
    if (strncmp (username, "usr_", 4) == 0)
        return s_refuse (why, why_size, "username", "'usr_' is reserved for user ids");
    return true;
}

bool
umb_auth_password_valid (const char *password, size_t min_length, char *why, size_t why_size)
{
    assert (password);
    size_t length = strlen (password);
    if (length < min_length) {
        snprintf (why, why_size, "password: at least %zu bytes", min_length);
        return false;
    }
    if (length > UMB_AUTH_PASSWORD_MAX)
        return s_refuse (why, why_size, "password", "at most 1024 bytes");
    return true;
}

bool
umb_auth_email_valid (const char *email, char *why, size_t why_size)
{
    assert (email);
    size_t length = strlen (email);
    if (length == 0)
        return s_refuse (why, why_size, "email", "empty");
    if (length > UMB_AUTH_EMAIL_MAX)
        return s_refuse (why, why_size, "email", "at most 254 characters");
    const char *at = strchr (email, '@');
    if (!at || strchr (at + 1, '@'))
        return s_refuse (why, why_size, "email", "needs exactly one '@'");
    if (at == email || at [1] == 0)
        return s_refuse (why, why_size, "email", "needs a name before and a domain after '@'");
    for (const unsigned char *c = (const unsigned char *) email; *c; c++)
        if (*c <= ' ' || *c == 0x7f)
            return s_refuse (why, why_size, "email", "no spaces or control characters");
    return true;
}

bool
umb_auth_workspace_name_valid (const char *name, char *why, size_t why_size)
{
    assert (name);
    size_t length = strlen (name);
    if (length < UMB_AUTH_WORKSPACE_MIN)
        return s_refuse (why, why_size, "name", "at least 3 characters");
    if (length > UMB_AUTH_WORKSPACE_MAX)
        return s_refuse (why, why_size, "name", "at most 40 characters");
    if (!s_lower_alnum (name [0]))
        return s_refuse (why, why_size, "name", "must start with a-z or 0-9");
    for (const char *c = name; *c; c++)
        if (!s_lower_alnum (*c) && *c != '-')
            return s_refuse (why, why_size, "name", "only lowercase a-z, 0-9 and '-' are allowed");
    return true;
}

bool
umb_auth_label_valid (const char *what, const char *label, size_t max, char *why, size_t why_size)
{
    assert (what && label);
    size_t length = strlen (label);
    if (length == 0)
        return s_refuse (why, why_size, what, "empty");
    if (length > max) {
        snprintf (why, why_size, "%s: at most %zu bytes", what, max);
        return false;
    }
    for (const unsigned char *c = (const unsigned char *) label; *c; c++)
        if (*c < ' ' || *c == 0x7f)
            return s_refuse (why, why_size, what, "no control characters");
    return true;
}

//  ---------------------------------------------------------------- selftest

void
umb_auth_rules_test (bool verbose)
{
    if (verbose)
        printf (" * umb_auth_rules: ");
    char why [128];
    assert (umb_auth_role_parse ("viewer") == UMB_ROLE_VIEWER);
    assert (umb_auth_role_parse ("admin") == UMB_ROLE_ADMIN);
    assert (umb_auth_role_parse ("owner") == UMB_ROLE_NONE);
    assert (umb_auth_role_parse ("none") == UMB_ROLE_NONE);
    assert (umb_auth_role_parse (NULL) == UMB_ROLE_NONE);
    assert (strcmp (umb_auth_role_name (UMB_ROLE_MEMBER), "member") == 0);
    assert (umb_auth_action_role ("members.manage") == UMB_ROLE_ADMIN);
    assert (umb_auth_action_role ("computations.run") == UMB_ROLE_MEMBER);
    assert (umb_auth_action_role ("workspace.read") == UMB_ROLE_VIEWER);
    assert (umb_auth_action_role ("workspace.*") == UMB_ROLE_NONE);
    assert (umb_auth_action_role ("") == UMB_ROLE_NONE);
    size_t count = 0;
    while (umb_auth_action_at (count))
        assert (strlen (umb_auth_action_at (count++)) <= UMB_AUTH_ACTION_MAX);
    assert (count == 18);

    assert (umb_auth_actions_has ("workspace.read,members.read", "members.read"));
    assert (umb_auth_actions_has ("workspace.read,members.read", "workspace.read"));
    assert (!umb_auth_actions_has ("workspace.read,members.read", "members"));
    assert (!umb_auth_actions_has ("workspace.read,members.readx", "members.read"));
    assert (!umb_auth_actions_has ("", "members.read"));
    assert (!umb_auth_actions_has ("a,b", ""));

    assert (umb_auth_username_valid ("alice", why, sizeof why));
    assert (umb_auth_username_valid ("0a_b.c-d", why, sizeof why));
    assert (!umb_auth_username_valid ("al", why, sizeof why) && strstr (why, "at least 3"));
    assert (!umb_auth_username_valid ("Alice", why, sizeof why));
    assert (!umb_auth_username_valid ("_alice", why, sizeof why));
    assert (!umb_auth_username_valid ("al ice", why, sizeof why));
    assert (!umb_auth_username_valid ("usr_0123456789abcdef", why, sizeof why));
    assert (!umb_auth_username_valid ("a23456789012345678901234567890123", why, sizeof why));
    assert (umb_auth_username_valid ("a2345678901234567890123456789012", why, sizeof why));

    assert (umb_auth_password_valid ("0123456789", 10, why, sizeof why));
    assert (!umb_auth_password_valid ("012345678", 10, why, sizeof why) && strstr (why, "10"));
    char long_password [UMB_AUTH_PASSWORD_MAX + 2];
    memset (long_password, 'x', sizeof long_password - 1);
    long_password [sizeof long_password - 1] = 0;
    assert (!umb_auth_password_valid (long_password, 10, why, sizeof why));
    long_password [UMB_AUTH_PASSWORD_MAX] = 0;
    assert (umb_auth_password_valid (long_password, 10, why, sizeof why));

    assert (umb_auth_email_valid ("a@b.c", why, sizeof why));
    assert (!umb_auth_email_valid ("ab.c", why, sizeof why));
    assert (!umb_auth_email_valid ("a@b@c", why, sizeof why));
    assert (!umb_auth_email_valid ("@b", why, sizeof why));
    assert (!umb_auth_email_valid ("a@", why, sizeof why));
    assert (!umb_auth_email_valid ("a b@c", why, sizeof why));

    assert (umb_auth_workspace_name_valid ("team-1", why, sizeof why));
    assert (!umb_auth_workspace_name_valid ("-team", why, sizeof why));
    assert (!umb_auth_workspace_name_valid ("te", why, sizeof why));
    assert (!umb_auth_workspace_name_valid ("team_1", why, sizeof why));
    assert (!umb_auth_workspace_name_valid ("Team", why, sizeof why));

    assert (umb_auth_label_valid ("name", "CI key", 64, why, sizeof why));
    assert (!umb_auth_label_valid ("name", "", 64, why, sizeof why));
    assert (!umb_auth_label_valid ("name", "a\nb", 64, why, sizeof why));
    if (verbose)
        printf ("OK\n");
}

//  umb_cli_billing - `umbra billing` through the gateway's REST API
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "umb_cli_billing.h"
#include "umb_cli_rest.h"
#include "umb_http_client.h"

#define S_EXIT_OK      UMB_CLI_REST_EXIT_OK
#define S_EXIT_FAILED  UMB_CLI_REST_EXIT_FAILED
#define S_EXIT_USAGE   UMB_CLI_REST_EXIT_USAGE

#define S_MICRO        1000000      //  micro-credits in a credit
#define S_DECIMALS     6            //  of a credit, in AMOUNT and in what is printed
#define S_LEDGER_MAX   1000         //  ledger entries the service gives in one answer at most

//  Options; a subcommand lists those it takes.
enum {
    S_OPT_WORKSPACE = 1 << 0,
    S_OPT_JSON      = 1 << 1,
    S_OPT_CSV       = 1 << 2,
    S_OPT_AFTER     = 1 << 3,
    S_OPT_LIMIT     = 1 << 4,
    S_OPT_PAGE_SIZE = 1 << 5,
    S_OPT_REFERENCE = 1 << 6
};

static const struct option s_options [] = {
    { "help",      no_argument,       NULL, 'h' },
    { "url",       required_argument, NULL, 'u' },
    { "token",     required_argument, NULL, 'T' },
    { "config",    required_argument, NULL, 'c' },
    { "workspace", required_argument, NULL, 'w' },
    { "json",      no_argument,       NULL, 'j' },
    { "csv",       no_argument,       NULL, 'C' },
    { "after",     required_argument, NULL, 'a' },
    { "limit",     required_argument, NULL, 'l' },
    { "page-size", required_argument, NULL, 'S' },
    { "reference", required_argument, NULL, 'r' },
    { NULL, 0, NULL, 0 }
};

//  The options a command may or may not take, by the letter getopt gives:
//  their bit, and how a required one is named when it is missing
static const struct {
    int         letter;
    unsigned    bit;
    const char *required;
} s_bits [] = {
    { 'w', S_OPT_WORKSPACE, "--workspace WS" }, { 'j', S_OPT_JSON, NULL },
    { 'C', S_OPT_CSV, NULL }, { 'a', S_OPT_AFTER, NULL }, { 'l', S_OPT_LIMIT, NULL },
    { 'S', S_OPT_PAGE_SIZE, NULL }, { 'r', S_OPT_REFERENCE, "--reference REF" }, { 0 }
};

//  The plans' limits, in the order the contract lists them
static const char *const s_limits [] = {
    "computations", "runs_per_month", "concurrent_cvms", "vcpu_hours_per_month", "members", NULL
};

//  One run of a command: what was asked, and where to say things.
typedef struct _s_command_t s_command_t;

typedef struct {
    const s_command_t *command;
    const char        *argument;    //  MONTH, PLAN or AMOUNT
    int64_t            amount;      //  AMOUNT, in micro-credits
    const char        *workspace;
    const char        *reference;
    int64_t            after;
    int64_t            limit;       //  0 when not given
    int64_t            page_size;   //  0 when not given
    bool               csv;
    bool               json;
    unsigned           given;       //  the options given, by bit
    const char        *url;         //  --url, --config, --token (owned; wiped)
    const char        *config_path;
    char              *token;
    umb_cli_rest_t    *rest;        //  the gateway's client, once the command runs
    FILE              *out;
    FILE              *err;
} s_cli_t;

typedef int (s_run_fn) (s_cli_t *cli);

struct _s_command_t {
    const char *name;
    s_run_fn   *run;
    unsigned    options;
    unsigned    required;
    const char *argument;           //  the one positional argument it takes; NULL: none
    const char *usage;
};

static int s_plans (s_cli_t *cli);
static int s_show (s_cli_t *cli);
static int s_statements (s_cli_t *cli);
static int s_statement (s_cli_t *cli);
static int s_ledger (s_cli_t *cli);
static int s_set_plan (s_cli_t *cli);
static int s_credit (s_cli_t *cli);

#define S_WS (S_OPT_WORKSPACE | S_OPT_JSON)

static const s_command_t s_commands [] = {
    { "plans", s_plans, S_OPT_JSON, 0, NULL,
      "plans      [--json]\n"
      "           the plans with their limits, and the prices per TEE type (credits)" },
    { "show", s_show, S_WS, S_OPT_WORKSPACE, NULL,
      "show       --workspace WS [--json]\n"
      "           the workspace's plan, its limits against this month's usage, and its\n"
      "           balance: available, reserved for runs, total" },
    { "statements", s_statements, S_WS, S_OPT_WORKSPACE, NULL,
      "statements --workspace WS [--json]\n"
      "           one line a month that has entries, newest first: opening, credits,\n"
      "           charges, closing" },
    { "statement", s_statement, S_WS | S_OPT_CSV, S_OPT_WORKSPACE, "MONTH",
      "statement  --workspace WS MONTH [--csv | --json]\n"
      "           the statement of MONTH (YYYY-MM, UTC) with its lines; --csv writes it\n"
      "           as CSV (times in UTC, amounts in micro-credits)" },
    { "ledger", s_ledger, S_WS | S_OPT_AFTER | S_OPT_LIMIT | S_OPT_PAGE_SIZE, S_OPT_WORKSPACE,
      NULL,
      "ledger     --workspace WS [--after N] [--limit N | --page-size N] [--json]\n"
      "           the workspace's ledger entries after N, one a line: SEQ TIME KIND\n"
      "           ACCOUNT AMOUNT TXN REF; with --limit one page of N (at most 1000), else\n"
      "           every page, --page-size (default 1000) entries a request" },
    { "set-plan", s_set_plan, S_WS, S_OPT_WORKSPACE, "PLAN",
      "set-plan   --workspace WS PLAN [--json]   (platform administrators)\n"
      "           puts the workspace on PLAN (`umbra billing plans` lists them)" },
    { "credit", s_credit, S_WS | S_OPT_REFERENCE, S_OPT_WORKSPACE | S_OPT_REFERENCE, "AMOUNT",
      "credit     --workspace WS AMOUNT --reference REF [--json]   (platform administrators)\n"
      "           adds AMOUNT, credits with up to 6 decimals (2.5) or micro-credits with\n"
      "           a 'u' (2500000u); REF (a payment id) is added once: the same again adds\n"
      "           nothing" },
    { NULL }
};

static void
s_usage (FILE *stream)
{
    umb_cli_rest_usage_group (stream, "billing");
    for (const s_command_t *command = s_commands; command->name; command++)
        umb_cli_rest_usage (stream, command->usage);
    umb_cli_rest_usage_common (stream);
}

//  "/workspaces/WS/billing" and suffix (escaped already). Caller frees.
static char *
s_path (s_cli_t *cli, const char *suffix)
{
    char *workspace = umb_http_client_escape (cli->workspace);
    char *path = NULL;
    if (asprintf (&path, "/workspaces/%s/billing%s", workspace, suffix) < 0)
        path = NULL;
    assert (path);
    free (workspace);
    return path;
}

//  Sends method to path (freed) with body (taken; may be NULL), then prints the
//  answer as JSON or, for people, with print.
static int
s_call (s_cli_t *cli, const char *method, char *path, json_t *body,
        void (*print) (s_cli_t *cli, json_t *root))
{
    json_t *root = umb_cli_rest_call_json (cli->rest, method, path, body);
    free (path);
    json_decref (body);
    if (root && !cli->json)
        print (cli, root);
    return umb_cli_rest_answer (cli->out, cli->json, root);
}

//  ---------------------------------------------------------------- amounts

typedef struct {
    char text [32];
} s_credits_t;

//  amount (micro-credits) in credits with 6 decimals: "1.500000", "-0.000001"
static s_credits_t
s_credits (long long amount)
{
    s_credits_t credits;
    unsigned long long magnitude = amount < 0 ? 0ULL - (unsigned long long) amount
                                              : (unsigned long long) amount;
    snprintf (credits.text, sizeof (credits.text), "%s%llu.%06llu", amount < 0 ? "-" : "",
              magnitude / S_MICRO, magnitude % S_MICRO);
    return credits;
}

//  The amount at key, in credits
static s_credits_t
s_credits_at (json_t *object, const char *key)
{
    return s_credits (umb_cli_rest_int (object, key));
}

//  AMOUNT in micro-credits: credits with up to 6 decimals ("2.5") or
//  micro-credits with a 'u' ("2500000u"). 0 with *amount, or -1 having said
//  why on err.
static int
s_amount (FILE *err, const char *text, int64_t *amount)
{
    const char *digits = text + (*text == '-');
    size_t length = strlen (digits);
    bool micro = length > 0 && digits [length - 1] == 'u';
    size_t end = micro ? length - 1 : length;
    uint64_t value = 0;
    int decimals = -1;              //  digits after the point; -1 before it
    bool valid = end > 0 && isdigit ((unsigned char) digits [0]);
    bool too_large = false;
    for (size_t i = 0; valid && !too_large && i < end; i++) {
        if (digits [i] == '.' && decimals < 0 && !micro)
            decimals = 0;
        else
        if (!isdigit ((unsigned char) digits [i]) || decimals == S_DECIMALS)
            valid = false;
        else
        if (value > (uint64_t) INT64_MAX / 10)
            too_large = true;
        else {
            value = value * 10 + (uint64_t) (digits [i] - '0');
            decimals += decimals >= 0;
        }
    }
    valid &= decimals != 0;         //  a point with no digits after it
    //  Credits to micro-credits: as many zeros as decimals are missing
    for (int i = decimals < 0 ? 0 : decimals; valid && !micro && i < S_DECIMALS; i++) {
        too_large |= value > (uint64_t) INT64_MAX / 10;
        value *= 10;
    }
    if (!valid) {
        fprintf (err, "umbra: AMOUNT is credits with up to %d decimals (2.5) or micro-credits "
                 "with a 'u' (2500000u), not '%s'\n", S_DECIMALS, text);
        return -1;
    }
    if (too_large || value > (uint64_t) INT64_MAX) {
        fprintf (err, "umbra: AMOUNT '%s' is too large\n", text);
        return -1;
    }
    if (value == 0 || digits != text) {
        fprintf (err, "umbra: AMOUNT must be above 0, not '%s'\n", text);
        return -1;
    }
    *amount = (int64_t) value;
    return 0;
}

//  ---------------------------------------------------------------- plans

//  A limit in a column of width: the number, "unlimited" (null), or "-"
static void
s_print_limit (s_cli_t *cli, json_t *limits, const char *key, int width)
{
    json_t *value = json_object_get (limits, key);
    if (json_is_integer (value))
        fprintf (cli->out, "  %*lld", width, (long long) json_integer_value (value));
    else
        fprintf (cli->out, "  %*s", width, json_is_null (value) ? "unlimited" : "-");
}

//  A limit's column: its name's width, room for "unlimited"
static int
s_limit_width (const char *key)
{
    return strlen (key) > 9 ? (int) strlen (key) : 9;
}

#define S_PRICE_ROW "%-8s  %13s  %12s  %12s\n"

static void
s_print_plans (s_cli_t *cli, json_t *root)
{
    fprintf (cli->out, "%-12s", "PLAN");
    for (size_t i = 0; s_limits [i]; i++) {
        char heading [32];
        size_t length = strlen (s_limits [i]);
        for (size_t c = 0; c <= length; c++)
            heading [c] = (char) toupper ((unsigned char) s_limits [i][c]);
        fprintf (cli->out, "  %*s", s_limit_width (s_limits [i]), heading);
    }
    fputc ('\n', cli->out);
    const char *default_plan = umb_cli_rest_str (root, "default_plan");
    size_t index;
    json_t *plan;
    json_array_foreach (json_object_get (root, "plans"), index, plan) {
        const char *name = umb_cli_rest_str (plan, "name");
        fprintf (cli->out, "%-12s", name);
        for (size_t i = 0; s_limits [i]; i++)
            s_print_limit (cli, json_object_get (plan, "limits"), s_limits [i],
                           s_limit_width (s_limits [i]));
        fprintf (cli->out, "%s\n", strcmp (name, default_plan) ? "" : "  (default)");
    }
    fprintf (cli->out, "\nprices in credits\n" S_PRICE_ROW, "TEE", "PER_VCPU_HOUR",
             "PER_GIB_HOUR", "PER_RUN");
    const char *tee;
    json_t *price;
    json_object_foreach (json_object_get (root, "prices"), tee, price)
        fprintf (cli->out, S_PRICE_ROW, tee, s_credits_at (price, "vcpu_hour").text,
                 s_credits_at (price, "memory_gib_hour").text, s_credits_at (price, "run").text);
}

static int
s_plans (s_cli_t *cli)
{
    char *path = strdup ("/billing/plans");
    assert (path);
    return s_call (cli, "GET", path, NULL, s_print_plans);
}

//  ---------------------------------------------------------------- a workspace's account

//  What the workspace uses of limit this month, in a column of 12
static void
s_print_used (s_cli_t *cli, json_t *account, const char *limit)
{
    json_t *usage = json_object_get (account, "usage");
    json_t *gauge = json_object_get (json_object_get (account, "reported"), limit);
    if (strcmp (limit, "runs_per_month") == 0)
        fprintf (cli->out, "%12lld", umb_cli_rest_int (usage, "runs")
                                     + umb_cli_rest_int (usage, "open_reservations"));
    else
    if (strcmp (limit, "vcpu_hours_per_month") == 0)
        fprintf (cli->out, "%12.2f", json_number_value (json_object_get (usage, "vcpu_hours")));
    else
    if (json_is_integer (gauge))
        fprintf (cli->out, "%12lld", (long long) json_integer_value (gauge));
    else
        fprintf (cli->out, "%12s", "-");    //  not reported since billing started
}

static void
s_print_account (s_cli_t *cli, json_t *account)
{
    json_t *balance = json_object_get (account, "balance");
    fprintf (cli->out, "workspace   %s\nplan        %s", umb_cli_rest_str (account, "workspace_id"),
             umb_cli_rest_str (account, "plan"));
    if (umb_cli_rest_int (account, "plan_since") > 0) {
        char since [32];
        umb_cli_rest_time (account, "plan_since", since, sizeof (since));
        fprintf (cli->out, " (since %s)\n", since);
    }
    else
        fprintf (cli->out, " (the default)\n");
    fprintf (cli->out, "\n%-20s  %12s  %12s   (%s)\n", "LIMIT", "USED", "ALLOWED",
             umb_cli_rest_str (json_object_get (account, "usage"), "month"));
    for (size_t i = 0; s_limits [i]; i++) {
        fprintf (cli->out, "%-20s  ", s_limits [i]);
        s_print_used (cli, account, s_limits [i]);
        s_print_limit (cli, json_object_get (account, "limits"), s_limits [i], 12);
        fputc ('\n', cli->out);
    }
    fprintf (cli->out,
             "\navailable   %s\n"
             "reserved    %s\n"
             "total       %s\n", s_credits_at (balance, "available").text,
             s_credits_at (balance, "reserved").text, s_credits_at (balance, "total").text);
}

static int
s_show (s_cli_t *cli)
{
    return s_call (cli, "GET", s_path (cli, ""), NULL, s_print_account);
}

//  ---------------------------------------------------------------- statements

#define S_MONTH_ROW "%-7s  %16s  %16s  %16s  %16s\n"

static void
s_print_statements (s_cli_t *cli, json_t *root)
{
    fprintf (cli->out, S_MONTH_ROW, "MONTH", "OPENING", "CREDITS", "CHARGES", "CLOSING");
    size_t index;
    json_t *item;
    json_array_foreach (json_object_get (root, "items"), index, item)
        fprintf (cli->out, S_MONTH_ROW, umb_cli_rest_str (item, "month"),
                 s_credits_at (item, "opening").text, s_credits_at (item, "credits").text,
                 s_credits_at (item, "charges").text, s_credits_at (item, "closing").text);
}

static int
s_statements (s_cli_t *cli)
{
    return s_call (cli, "GET", s_path (cli, "/statements"), NULL, s_print_statements);
}

#define S_LINE_ROW "%-20s  %-8s  %14s  %14s  %14s  %-20s  "

static void
s_print_statement (s_cli_t *cli, json_t *statement)
{
    json_t *usage = json_object_get (statement, "usage");
    fprintf (cli->out,
             "statement   %s of %s (plan %s)\n"
             "opening     %s\n"
             "credits     %s\n"
             "charges     %s\n"
             "reserved    %s (change over the month)\n"
             "closing     %s\n"
             "usage       %lld runs, %.2f vCPU-hours, %lld CVM-seconds\n\n",
             umb_cli_rest_str (statement, "month"), umb_cli_rest_str (statement, "workspace_id"),
             umb_cli_rest_str (statement, "plan"), s_credits_at (statement, "opening").text,
             s_credits_at (statement, "credits").text, s_credits_at (statement, "charges").text,
             s_credits_at (statement, "reserved_change").text,
             s_credits_at (statement, "closing").text, umb_cli_rest_int (usage, "runs"),
             json_number_value (json_object_get (usage, "vcpu_hours")),
             umb_cli_rest_int (usage, "cvm_seconds"));
    fprintf (cli->out, S_LINE_ROW "%s\n", "TIME", "KIND", "AVAILABLE", "RESERVED", "CHARGE", "TXN",
             "REF");
    size_t index;
    json_t *line;
    json_array_foreach (json_object_get (statement, "lines"), index, line) {
        char time [32];
        umb_cli_rest_time (line, "time", time, sizeof (time));
        fprintf (cli->out, S_LINE_ROW, time, umb_cli_rest_str (line, "kind"),
                 s_credits_at (line, "available").text, s_credits_at (line, "reserved").text,
                 s_credits_at (line, "charge").text, umb_cli_rest_str (line, "txn"));
        umb_cli_rest_print_text (cli->out, umb_cli_rest_str (line, "ref"));
        fputc ('\n', cli->out);
    }
}

//  GETs path and writes the answer's body, as it came, to out; the answer
//  must be of content type (the gateway serves an error as JSON). S_EXIT_OK,
//  or S_EXIT_FAILED having said why.
static int
s_get_verbatim (s_cli_t *cli, const char *path, const char *content_type)
{
    umb_http_response_t response;
    if (umb_cli_rest_call (cli->rest, "GET", path, NULL, &response))
        return S_EXIT_FAILED;
    const char *type = response.content_type ? response.content_type : "";
    size_t length = strlen (content_type);
    int rc = S_EXIT_OK;
    if (strncasecmp (type, content_type, length) != 0
    ||  (type [length] != 0 && type [length] != ';')) {
        fprintf (cli->err, "umbra: GET %s answered %s, not %s\n", path,
                 *type ? type : "with no content type", content_type);
        rc = S_EXIT_FAILED;
    }
    else
    if (fwrite (response.body, 1, response.size, cli->out) != response.size
    ||  fflush (cli->out) != 0) {
        fprintf (cli->err, "umbra: cannot write the answer: %s\n", strerror (errno));
        rc = S_EXIT_FAILED;
    }
    umb_http_response_clear (&response);
    return rc;
}

static int
s_statement (s_cli_t *cli)
{
    char *month = umb_http_client_escape (cli->argument);
    char *suffix = NULL;
    if (asprintf (&suffix, "/statements/%s%s", month, cli->csv ? "/csv" : "") < 0)
        suffix = NULL;
    assert (suffix);
    char *path = s_path (cli, suffix);
    free (suffix);
    free (month);
    if (!cli->csv)
        return s_call (cli, "GET", path, NULL, s_print_statement);
    int rc = s_get_verbatim (cli, path, "text/csv");
    free (path);
    return rc;
}

//  ---------------------------------------------------------------- the ledger

static void
s_print_entry (s_cli_t *cli, json_t *entry)
{
    char time [32];
    umb_cli_rest_time (entry, "time", time, sizeof (time));
    fprintf (cli->out, "%lld  %s  %-8s  %-36s  %16s  %-20s  ", umb_cli_rest_int (entry, "seq"),
             time, umb_cli_rest_str (entry, "kind"), umb_cli_rest_str (entry, "account"),
             s_credits_at (entry, "amount").text, umb_cli_rest_str (entry, "txn"));
    umb_cli_rest_print_text (cli->out, umb_cli_rest_str (entry, "ref"));
    fputc ('\n', cli->out);
}

//  With --limit one page; else pages (a full one may have more after it)
//  until one is not full.
static int
s_ledger (s_cli_t *cli)
{
    int64_t page = cli->limit ? cli->limit : cli->page_size ? cli->page_size : S_LEDGER_MAX;
    int64_t after = cli->after;
    json_t *entries = json_array ();
    bool more = true;
    int rc = S_EXIT_OK;
    while (more && rc == S_EXIT_OK) {
        char *path = s_path (cli, "/ledger");
        umb_cli_rest_query_int (&path, "after", after);
        umb_cli_rest_query_int (&path, "limit", page);
        json_t *root = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
        free (path);
        json_t *got = json_object_get (root, "entries");
        if (!json_is_array (got) || !json_is_integer (json_object_get (root, "last"))) {
            if (root)
                fprintf (cli->err, "umbra: the answer holds no entries\n");
            rc = S_EXIT_FAILED;
        }
        else {
            //  last grows, else the same page would be asked for forever
            int64_t last = umb_cli_rest_int (root, "last");
            more = !cli->limit && (int64_t) json_array_size (got) == page && last > after;
            after = last > after ? last : after;
            json_array_extend (entries, got);
        }
        json_decref (root);
    }
    if (rc == S_EXIT_OK && cli->json) {
        json_t *answer = json_pack ("{s:O, s:I}", "entries", entries, "last", (json_int_t) after);
        umb_cli_rest_print_json (cli->out, answer);
        json_decref (answer);
    }
    else
    if (rc == S_EXIT_OK) {
        size_t index;
        json_t *entry;
        json_array_foreach (entries, index, entry)
            s_print_entry (cli, entry);
    }
    json_decref (entries);
    return rc;
}

//  ---------------------------------------------------------------- administrators

static void
s_print_plan_set (s_cli_t *cli, json_t *account)
{
    fprintf (cli->out, "%s is on plan %s\n", umb_cli_rest_str (account, "workspace_id"),
             umb_cli_rest_str (account, "plan"));
}

static int
s_set_plan (s_cli_t *cli)
{
    json_t *body = json_object ();
    if (json_object_set_new (body, "plan", json_string (cli->argument))) {
        fprintf (cli->err, "umbra: PLAN must be UTF-8 text\n");
        json_decref (body);
        return S_EXIT_USAGE;
    }
    return s_call (cli, "PUT", s_path (cli, "/plan"), body, s_print_plan_set);
}

static void
s_print_credit (s_cli_t *cli, json_t *root)
{
    if (json_is_true (json_object_get (root, "replayed")))
        fprintf (cli->out, "reference %s was added before (%s): nothing more was added",
                 umb_cli_rest_str (root, "reference"), umb_cli_rest_str (root, "txn"));
    else
        fprintf (cli->out, "added %s credits to %s (%s, reference %s)",
                 s_credits_at (root, "amount").text, umb_cli_rest_str (root, "workspace_id"),
                 umb_cli_rest_str (root, "txn"), umb_cli_rest_str (root, "reference"));
    fprintf (cli->out, "; available %s\n",
             s_credits_at (json_object_get (root, "balance"), "available").text);
}

static int
s_credit (s_cli_t *cli)
{
    json_t *body = json_object ();
    json_object_set_new (body, "amount", json_integer (cli->amount));
    if (json_object_set_new (body, "reference", json_string (cli->reference))) {
        fprintf (cli->err, "umbra: --reference must be UTF-8 text\n");
        json_decref (body);
        return S_EXIT_USAGE;
    }
    return s_call (cli, "POST", s_path (cli, "/credits"), body, s_print_credit);
}

//  ---------------------------------------------------------------- command line

//  The bit of the option getopt gave as letter; 0 for those of every command
static unsigned
s_bit (int letter)
{
    for (size_t i = 0; s_bits [i].letter; i++)
        if (s_bits [i].letter == letter)
            return s_bits [i].bit;
    return 0;
}

//  Whether arg is an option whose value is the next argument ("-w", "--reference")
static bool
s_takes_value (const char *arg)
{
    if (strcmp (arg, "-w") == 0)
        return true;
    if (strncmp (arg, "--", 2) != 0 || strchr (arg, '='))
        return false;
    for (const struct option *option = s_options; option->name; option++)
        if (option->has_arg == required_argument && strcmp (arg + 2, option->name) == 0)
            return true;
    return false;
}

//  A negative AMOUNT ("-1") before "--" looks like an option to getopt: -1
//  having said what it is
static int
s_negative_amount (FILE *err, int argc, char **argv)
{
    for (int i = 2; i < argc && strcmp (argv [i], "--") != 0; i++)
        if (argv [i][0] == '-' && (isdigit ((unsigned char) argv [i][1]) || argv [i][1] == '.')
        &&  !s_takes_value (argv [i - 1])) {
            fprintf (err, "umbra: AMOUNT must be above 0, not '%s'\n", argv [i]);
            return -1;
        }
    return 0;
}

//  "YYYY-MM" in shape (the service checks the month is one)
static bool
s_month_valid (const char *month)
{
    for (size_t i = 0; i < 7; i++)
        if (i == 4 ? month [i] != '-' : !isdigit ((unsigned char) month [i]))
            return false;
    return month [7] == 0;
}

//  The values given, against each other and the command. S_EXIT_OK, or
//  S_EXIT_USAGE having said why.
static int
s_check_values (s_cli_t *cli)
{
    const char *values [] = { cli->workspace, cli->argument, cli->reference };
    for (size_t i = 0; i < sizeof (values) / sizeof (values [0]); i++)
        if (values [i] && !*values [i]) {
            fprintf (cli->err, "umbra: an empty value\n");
            return S_EXIT_USAGE;
        }
    const char *exclusive = cli->limit && cli->page_size ? "--limit and --page-size"
                          : cli->csv && cli->json ? "--csv and --json" : NULL;
    if (exclusive) {
        fprintf (cli->err, "umbra: %s exclude each other\n", exclusive);
        return S_EXIT_USAGE;
    }
    int64_t page = cli->limit ? cli->limit : cli->page_size;
    if (page > S_LEDGER_MAX) {
        fprintf (cli->err, "umbra: %s is at most %d, not %" PRId64 "\n",
                 cli->limit ? "--limit" : "--page-size", S_LEDGER_MAX, page);
        return S_EXIT_USAGE;
    }
    if (cli->command->run == s_statement && !s_month_valid (cli->argument)) {
        fprintf (cli->err, "umbra: MONTH is YYYY-MM, not '%s'\n", cli->argument);
        return S_EXIT_USAGE;
    }
    if (cli->command->run == s_credit && s_amount (cli->err, cli->argument, &cli->amount))
        return S_EXIT_USAGE;
    return S_EXIT_OK;
}

//  `umbra billing COMMAND ...` into cli, zeroed first: S_EXIT_OK when the
//  command is to run, -1 when help was given as asked, else the exit code
static int
s_parse (s_cli_t *cli, int argc, char **argv, FILE *out, FILE *err)
{
    *cli = (s_cli_t) { .err = err, .out = out };
    assert (argc >= 1 && argv && out && err);
    if (argc < 2 || umb_cli_rest_is_help (argv [1])) {
        s_usage (argc < 2 ? err : out);
        return argc < 2 ? S_EXIT_USAGE : -1;
    }
    const s_command_t *command = s_commands;
    while (command->name && strcmp (command->name, argv [1]) != 0)
        command++;
    if (!command->name) {
        fprintf (err, "umbra: unknown billing command '%s'\n", argv [1]);
        s_usage (err);
        return S_EXIT_USAGE;
    }
    cli->command = command;
    int rc = command->run == s_credit && s_negative_amount (err, argc, argv) ? S_EXIT_USAGE
                                                                             : S_EXIT_OK;
    umb_cli_rest_getopt_start (&argc, &argv);
    char name [64];                 //  how the user wrote the option, for messages
    int option;
    while (rc == S_EXIT_OK
       &&  (option = umb_cli_rest_getopt (argc, argv, ":w:j", s_options, name,
                                          sizeof (name))) != -1) {
        int64_t *number = NULL;     //  where a number option's value goes
        //  umb_cli_rest_getopt names a short option by its argument, which
        //  for "-w WS" is WS: the one short option with a value is -w
        if (option == 'w' && strncmp (name, "--", 2) != 0)
            snprintf (name, sizeof (name), "-w");
        switch (option) {
            case 'w': cli->workspace = optarg; break;
            case 'j': cli->json = true; break;
            case 'C': cli->csv = true; break;
            case 'a': number = &cli->after; break;
            case 'l': number = &cli->limit; break;
            case 'S': number = &cli->page_size; break;
            case 'r': cli->reference = optarg; break;
            case 'u': cli->url = optarg; break;
            case 'T': umb_cli_rest_take_secret (&cli->token, optarg); break;
            case 'c': cli->config_path = optarg; break;
            case 'h':
                umb_cli_rest_usage_command (out, "billing", command->usage);
                umb_cli_rest_usage_common (out);
                rc = -1;
                break;
            default:
                rc = umb_cli_rest_option_error (err, option, argv [optind - 1], "billing",
                                                command->name);
                break;
        }
        //  --after may be 0, the other numbers not
        if (number && umb_cli_rest_number (err, name, optarg, number != &cli->after, number))
            rc = S_EXIT_USAGE;
        unsigned bit = s_bit (option);
        if (rc == S_EXIT_OK && bit && !(command->options & bit)) {
            fprintf (err, "umbra: billing %s does not take '%s'\n", command->name, name);
            rc = S_EXIT_USAGE;
        }
        if (rc == S_EXIT_OK && (cli->given & bit)) {
            fprintf (err, "umbra: '%s' is given twice\n", name);
            rc = S_EXIT_USAGE;
        }
        cli->given |= bit;
    }
    if (rc == -1)
        return rc;
    //  Positional: the one argument the command takes, nothing else
    int positional = argc - optind;
    if (rc == S_EXIT_OK && positional != (command->argument ? 1 : 0)) {
        if (command->argument)
            fprintf (err, "umbra: billing %s takes one %s\n", command->name, command->argument);
        else
            fprintf (err, "umbra: billing %s takes no arguments\n", command->name);
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && positional)
        cli->argument = argv [optind];
    for (size_t i = 0; rc == S_EXIT_OK && s_bits [i].letter; i++)
        if ((command->required & ~cli->given & s_bits [i].bit) != 0) {
            fprintf (err, "umbra: billing %s needs %s\n", command->name, s_bits [i].required);
            rc = S_EXIT_USAGE;
        }
    if (rc == S_EXIT_OK)
        rc = s_check_values (cli);
    if (rc)
        umb_cli_rest_usage_command (err, "billing", command->usage);
    return rc;
}

int
umb_cli_billing_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    assert (envp);
    s_cli_t cli;
    int rc = s_parse (&cli, argc, argv, out, err);
    //  Settings, then the gateway's client (NULL having said why), then the command
    if (rc == S_EXIT_OK)
        cli.rest = umb_cli_rest_new (cli.config_path, envp, cli.url, cli.token, err, &rc);
    if (cli.rest)
        rc = cli.command->run (&cli);
    umb_cli_rest_destroy (&cli.rest);
    umb_cli_rest_wipe (&cli.token);
    return rc < 0 ? S_EXIT_OK : rc;
}

int
umb_cli_billing (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_billing_run (argc, argv, environ, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest
//  The commands against the real gateway, auth and billing services in this
//  process.
#include <stdarg.h>
#include <time.h>
#include <czmq.h>
#include "umb_cli_testkit.h"

#define S_TEST_WS    "lab"
//  Nobody listens there: a command that exits 2 with it sent nothing
#define S_TEST_DEAD  "http://127.0.0.1:1"

UMB_CLI_TESTKIT_RUNNER (s_test_run, umb_cli_billing_run, "billing")

//  Runs the command and checks it, in one.
#define S_EXPECT UMB_CLI_TESTKIT_EXPECT

//  The platform administrator's access token (the testkit's admin.* settings)
static char *
s_test_root (const char *url)
{
    umb_http_client_t *client = umb_http_client_new (url, NULL);
    assert (client);
    char *token = umb_cli_testkit_post (client, "/users/tokens",
                                        "{\"username\": \"root\", \"password\": "
                                        "\"root-password-0123\"}", 201, "access_token");
    assert (token && *token);
    umb_http_client_destroy (&client);
    return token;
}

//  How many times text holds part
static size_t
s_test_count (const char *text, const char *part)
{
    size_t count = 0;
    for (const char *at = strstr (text, part); at; at = strstr (at + strlen (part), part))
        count++;
    return count;
}

//  The run's out as JSON (the caller's), having checked its exit code was 0
static json_t *
s_test_json (umb_cli_testkit_run_t run)
{
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    json_t *root = umb_cli_testkit_json (&run);
    umb_cli_testkit_run_free (&run);
    return root;
}

//  The integer at the path of keys (NULL-terminated) in root
static long long
s_test_int (json_t *root, ...)
{
    va_list keys;
    va_start (keys, root);
    json_t *value = root;
    for (const char *key = va_arg (keys, const char *); key; key = va_arg (keys, const char *))
        value = json_object_get (value, key);
    va_end (keys);
    assert (json_is_integer (value));
    return (long long) json_integer_value (value);
}

//  Amounts, as AMOUNT reads them and as they are printed
static void
s_test_amounts (void)
{
    FILE *err = tmpfile ();
    assert (err);
    const struct {
        const char *text;
        int64_t     amount;
    } good [] = {
        { "2.5", 2500000 }, { "2500000u", 2500000 }, { "1", 1000000 }, { "0.000001", 1 },
        { "1u", 1 }, { "007.10", 7100000 }, { "9223372036854.775807", INT64_MAX },
        { "9223372036854775807u", INT64_MAX }, { NULL }
    };
    for (size_t i = 0; good [i].text; i++) {
        int64_t amount = -1;
        assert (s_amount (err, good [i].text, &amount) == 0);
        assert (amount == good [i].amount);
    }
    const char *bad [] = { "", "u", "-", ".5", "1.", "1.1234567", "2.5u", "1,5", " 1", "1 ",
                           "1e6", "0x10", "+1", "1uu", "0", "0u", "0.000000", "-1", "-0.5",
                           "9223372036854.775808", "9223372036854775808u", "99999999999999999999",
                           NULL };
    for (size_t i = 0; bad [i]; i++) {
        int64_t amount = -1;
        assert (s_amount (err, bad [i], &amount) == -1);
        assert (amount == -1);
    }
    char *text = umb_cli_testkit_slurp (err, NULL);
    assert (strstr (text, "umbra: AMOUNT is credits with up to 6 decimals (2.5) or micro-credits "
                          "with a 'u' (2500000u), not '1.1234567'\n"));
    assert (strstr (text, "umbra: AMOUNT must be above 0, not '0.000000'\n"));
    assert (strstr (text, "umbra: AMOUNT must be above 0, not '-0.5'\n"));
    assert (strstr (text, "umbra: AMOUNT '9223372036854.775808' is too large\n"));
    assert (strstr (text, "umbra: AMOUNT '99999999999999999999' is too large\n"));
    free (text);
    fclose (err);
    assert (streq (s_credits (1500000).text, "1.500000"));
    assert (streq (s_credits (0).text, "0.000000"));
    assert (streq (s_credits (-1).text, "-0.000001"));
    assert (streq (s_credits (-2500000).text, "-2.500000"));
    assert (streq (s_credits (INT64_MAX).text, "9223372036854.775807"));
    assert (streq (s_credits (INT64_MIN).text, "-9223372036854.775808"));
}

void
umb_cli_billing_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_billing: ");
    s_test_amounts ();

    //  Auth and billing alone, billing on its built-in plans with free as the
    //  default, and a welcome credit of 1.5 credits
    const char *services [] = { NULL };
    const char *const settings [] [2] = {
        { "billing.default_plan", "free" }, { "billing.welcome_credit", "1500000" }, { NULL }
    };
    umb_cli_testkit_t *kit = umb_cli_testkit_new ("umb-cli-billing", services, settings);
    const char *url = umb_cli_testkit_url (kit);

    //  root administers the platform; alice administers lab, bob is a member,
    //  carol is outside
    char *root = s_test_root (url);
    char *alice = umb_cli_testkit_user (url, "alice");
    char *bob = umb_cli_testkit_user (url, "bob");
    char *carol = umb_cli_testkit_user (url, "carol");
    umb_cli_testkit_workspace (url, S_TEST_WS, alice, "bob", bob);
    char month [16];
    time_t now = time (NULL);
    struct tm tm;
    assert (gmtime_r (&now, &tm));
    strftime (month, sizeof (month), "%Y-%m", &tm);

    //  Usage errors: exit 2, nothing sent
    S_EXPECT (s_test_run (S_TEST_DEAD, root, NULL), 2, NULL, "usage: umbra billing COMMAND");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "help", NULL), 0, "usage: umbra billing COMMAND",
              NULL);
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "credit", "--help", NULL), 0,
              "credit     --workspace WS AMOUNT --reference REF", NULL);
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "refund", NULL), 2, NULL,
              "umbra: unknown billing command 'refund'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "show", NULL), 2, NULL,
              "umbra: billing show needs --workspace WS");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "show", "-w", S_TEST_WS, "--bogus", NULL), 2, NULL,
              "umbra: unknown option '--bogus' for billing show");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "show", "-w", S_TEST_WS, "--workspace", S_TEST_WS,
                          NULL), 2, NULL, "umbra: '--workspace' is given twice");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "show", "-w", S_TEST_WS, "extra", NULL), 2, NULL,
              "umbra: billing show takes no arguments");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "show", "-w", "", NULL), 2, NULL,
              "umbra: an empty value");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "plans", "-w", S_TEST_WS, NULL), 2, NULL,
              "umbra: billing plans does not take '-w'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "statement", "-w", S_TEST_WS, NULL), 2, NULL,
              "umbra: billing statement takes one MONTH");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "statement", "-w", S_TEST_WS, "2024-5", NULL), 2,
              NULL, "umbra: MONTH is YYYY-MM, not '2024-5'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "statement", "-w", S_TEST_WS, "2024-05x", NULL), 2,
              NULL, "umbra: MONTH is YYYY-MM, not '2024-05x'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "statement", "-w", S_TEST_WS, month, "--csv",
                          "--json", NULL), 2, NULL, "umbra: --csv and --json exclude each other");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "statements", "-w", S_TEST_WS, "--csv", NULL), 2,
              NULL, "umbra: billing statements does not take '--csv'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "ledger", "-w", S_TEST_WS, "--limit", "0", NULL), 2,
              NULL, "umbra: --limit takes a number above 0, not '0'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "ledger", "-w", S_TEST_WS, "--limit", "1001", NULL),
              2, NULL, "umbra: --limit is at most 1000, not 1001");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "ledger", "-w", S_TEST_WS, "--page-size", "5000",
                          NULL), 2, NULL, "umbra: --page-size is at most 1000, not 5000");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "ledger", "-w", S_TEST_WS, "--limit", "1",
                          "--page-size", "1", NULL), 2, NULL,
              "umbra: --limit and --page-size exclude each other");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "ledger", "-w", S_TEST_WS, "--after", "-1", NULL), 2,
              NULL, "umbra: --after takes a number, not '-1'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "ledger", "-w", S_TEST_WS, "--after", NULL), 2, NULL,
              "umbra: --after needs a value");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "set-plan", "-w", S_TEST_WS, NULL), 2, NULL,
              "umbra: billing set-plan takes one PLAN");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "set-plan", "-w", S_TEST_WS, "team", "free", NULL), 2,
              NULL, "umbra: billing set-plan takes one PLAN");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "credit", "-w", S_TEST_WS, "1", NULL), 2, NULL,
              "umbra: billing credit needs --reference REF");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "credit", "-w", S_TEST_WS, "1", "--reference", "",
                          NULL), 2, NULL, "umbra: an empty value");
    const struct {
        const char *amount;
        const char *reason;
    } amounts [] = {
        { "0", "umbra: AMOUNT must be above 0, not '0'" },
        { "0u", "umbra: AMOUNT must be above 0, not '0u'" },
        { "-1", "umbra: AMOUNT must be above 0, not '-1'" },
        { "-2.5", "umbra: AMOUNT must be above 0, not '-2.5'" },
        { "-.5", "umbra: AMOUNT must be above 0, not '-.5'" },
        { "1.2345678", "umbra: AMOUNT is credits with up to 6 decimals (2.5) or micro-credits with "
                       "a 'u' (2500000u), not '1.2345678'" },
        { "ten", "not 'ten'" }, { "2.5u", "not '2.5u'" }, { "1.", "not '1.'" },
        { "10000000000000", "umbra: AMOUNT '10000000000000' is too large" },
        { NULL }
    };
    for (size_t i = 0; amounts [i].amount; i++) {
        umb_cli_testkit_run_t run = s_test_run (S_TEST_DEAD, root, "credit", "-w", S_TEST_WS,
                                                amounts [i].amount, "--reference", "pay-0", NULL);
        umb_cli_testkit_expect (&run, 2, NULL, amounts [i].reason);
        assert (strstr (run.err, "usage: umbra billing\n  credit     --workspace WS AMOUNT"));
        umb_cli_testkit_run_free (&run);
    }
    //  ...the same after "--", and a value that only looks negative
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "credit", "-w", S_TEST_WS, "--reference", "pay-0",
                          "--", "-1", NULL), 2, NULL, "umbra: AMOUNT must be above 0, not '-1'");
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "credit", "-w", S_TEST_WS, "1", "--reference", "-1",
                          NULL), 1, NULL, "umbra: cannot reach " S_TEST_DEAD);
    //  A good amount is sent (and, nobody there, fails): the runs above sent nothing
    S_EXPECT (s_test_run (S_TEST_DEAD, root, "credit", "-w", S_TEST_WS, "2.5", "--reference",
                          "pay-0", NULL), 1, NULL, "umbra: cannot reach " S_TEST_DEAD);
    S_EXPECT (s_test_run (url, NULL, "plans", NULL), 1, NULL, "umbra: 401 ");

    //  Plans: limits ("unlimited" for none) and prices in credits
    umb_cli_testkit_run_t run = s_test_run (url, bob, "plans", NULL);
    umb_cli_testkit_expect (&run, 0, "PLAN          COMPUTATIONS  RUNS_PER_MONTH  CONCURRENT_CVMS"
                            "  VCPU_HOURS_PER_MONTH    MEMBERS\n", NULL);
    assert (strstr (run.out, "\nfree                     5              50                2"
                             "                    20          5  (default)\n"));
    assert (strstr (run.out, "\nteam                   100            2000               20"
                             "                  2000         50\n"));
    const char *enterprise = strstr (run.out, "\nenterprise  ");
    assert (enterprise);
    char *line = strndup (enterprise + 1, strcspn (enterprise + 1, "\n"));
    assert (s_test_count (line, "unlimited") == 5 && !strstr (line, "(default)"));
    free (line);
    assert (strstr (run.out, "\nTEE       PER_VCPU_HOUR  PER_GIB_HOUR       PER_RUN\n"));
    assert (strstr (run.out, "\nnone           0.020000      0.005000      0.000000\n"));
    assert (strstr (run.out, "\nsev-snp        0.040000      0.008000      0.010000\n"));
    assert (strstr (run.out, "\ntdx            0.040000      0.008000      0.010000\n"));
    umb_cli_testkit_run_free (&run);
    json_t *root_json = s_test_json (s_test_run (url, bob, "plans", "--json", NULL));
    assert (streq (umb_cli_rest_str (root_json, "default_plan"), "free"));
    assert (json_array_size (json_object_get (root_json, "plans")) == 3);
    assert (s_test_int (root_json, "prices", "tdx", "run", NULL) == 10000);
    json_decref (root_json);

    //  Show: the default plan, limits against usage, the welcome credit
    run = s_test_run (url, bob, "show", "-w", S_TEST_WS, NULL);
    umb_cli_testkit_expect (&run, 0, "\nplan        free (the default)\n", NULL);
    assert (strncmp (run.out, "workspace   ws_", 15) == 0);
    line = zsys_sprintf ("LIMIT                         USED       ALLOWED   (%s)\n", month);
    assert (strstr (run.out, line));
    zstr_free (&line);
    assert (strstr (run.out, "\nruns_per_month                   0            50\n"));
    assert (strstr (run.out, "\nvcpu_hours_per_month          0.00            20\n"));
    assert (strstr (run.out, "\nconcurrent_cvms                  -             2\n"));
    assert (strstr (run.out, "\navailable   1.500000\nreserved    0.000000\ntotal       1.500000\n"));
    umb_cli_testkit_run_free (&run);
    root_json = s_test_json (s_test_run (url, bob, "show", "-w", S_TEST_WS, "--json", NULL));
    char *workspace_id = strdup (umb_cli_rest_str (root_json, "workspace_id"));
    assert (strncmp (workspace_id, "ws_", 3) == 0);
    assert (s_test_int (root_json, "balance", "available", NULL) == 1500000);
    assert (s_test_int (root_json, "balance", "total", NULL) == 1500000);
    assert (s_test_int (root_json, "limits", "members", NULL) == 5);
    assert (s_test_int (root_json, "plan_since", NULL) == 0);
    json_decref (root_json);
    S_EXPECT (s_test_run (url, carol, "show", "-w", S_TEST_WS, NULL), 1, NULL, "umbra: 404 ");

    //  Credit: platform administrators only, once per reference
    S_EXPECT (s_test_run (url, bob, "credit", "-w", S_TEST_WS, "2.5", "--reference", "pay-1",
                          NULL), 1, NULL, "umbra: 403 forbidden: 'billing.credits.add' is for "
                                          "platform administrators");
    S_EXPECT (s_test_run (url, alice, "credit", "-w", S_TEST_WS, "2.5", "--reference", "pay-1",
                          NULL), 1, NULL, "umbra: 403 forbidden: 'billing.credits.add' is for "
                                          "platform administrators");
    run = s_test_run (url, root, "credit", "-w", S_TEST_WS, "2.5", "--reference", "pay-1", NULL);
    line = zsys_sprintf ("added 2.500000 credits to %s (", workspace_id);
    umb_cli_testkit_expect (&run, 0, line, NULL);
    assert (strstr (run.out, ", reference pay-1); available 4.000000\n"));
    zstr_free (&line);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, root, "credit", "-w", S_TEST_WS, "2500000u", "--reference",
                          "pay-1", NULL), 0, "reference pay-1 was added before (",
              NULL);
    S_EXPECT (s_test_run (url, root, "credit", "-w", S_TEST_WS, "2.5", "--reference", "pay-1",
                          NULL), 0, "nothing more was added; available 4.000000\n", NULL);
    S_EXPECT (s_test_run (url, root, "credit", "-w", S_TEST_WS, "1u", "--reference", "pay-1",
                          NULL), 1, NULL, "umbra: 409 duplicate_reference: reference 'pay-1' "
                                          "already added 2500000 ");
    root_json = s_test_json (s_test_run (url, root, "credit", "-w", S_TEST_WS, "2500000u",
                                         "--reference", "pay-2", "--json", NULL));
    assert (s_test_int (root_json, "amount", NULL) == 2500000);
    assert (s_test_int (root_json, "balance", "available", NULL) == 6500000);
    assert (streq (umb_cli_rest_str (root_json, "reference"), "pay-2"));
    assert (!json_object_get (root_json, "replayed"));
    json_decref (root_json);
    S_EXPECT (s_test_run (url, root, "credit", "-w", "nowhere", "1", "--reference", "pay-3", NULL),
              1, NULL, "umbra: 404 not_found: no workspace 'nowhere'");
    S_EXPECT (s_test_run (url, root, "credit", "-w", S_TEST_WS, "1", "--reference", "pay 3", NULL),
              1, NULL, "umbra: 422 invalid_argument: reference: ");
    S_EXPECT (s_test_run (url, root, "credit", "-w", S_TEST_WS, "1000000000.000001",
                          "--reference", "pay-3", NULL), 1, NULL,
              "umbra: 422 invalid_argument: amount: ");
    S_EXPECT (s_test_run (url, bob, "show", "-w", S_TEST_WS, NULL), 0,
              "\navailable   6.500000\nreserved    0.000000\ntotal       6.500000\n", NULL);

    //  Set-plan: platform administrators only, to a plan there is
    S_EXPECT (s_test_run (url, alice, "set-plan", "-w", S_TEST_WS, "team", NULL), 1, NULL,
              "umbra: 403 forbidden: 'billing.plan.set' is for platform administrators");
    run = s_test_run (url, root, "set-plan", "-w", S_TEST_WS, "gold", NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 422 invalid_argument: plan: 'gold' is not one "
                                           "of ");
    assert (strstr (run.err, "free") && strstr (run.err, "team") && strstr (run.err, "enterprise"));
    assert (!*run.out);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, root, "set-plan", "-w", "nowhere", "team", NULL), 1, NULL,
              "umbra: 404 ");
    line = zsys_sprintf ("%s is on plan team\n", workspace_id);
    S_EXPECT (s_test_run (url, root, "set-plan", "-w", S_TEST_WS, "team", NULL), 0, line, NULL);
    zstr_free (&line);
    run = s_test_run (url, bob, "show", "-w", S_TEST_WS, NULL);
    umb_cli_testkit_expect (&run, 0, "\nplan        team (since 20", NULL);
    assert (strstr (run.out, "\nruns_per_month                   0          2000\n"));
    umb_cli_testkit_run_free (&run);
    root_json = s_test_json (s_test_run (url, root, "set-plan", "-w", S_TEST_WS, "enterprise",
                                         "--json", NULL));
    assert (streq (umb_cli_rest_str (root_json, "plan"), "enterprise"));
    assert (s_test_int (root_json, "plan_since", NULL) > 0);
    assert (json_is_null (json_object_get (json_object_get (root_json, "limits"), "members")));
    json_decref (root_json);
    run = s_test_run (url, bob, "show", "-w", S_TEST_WS, NULL);
    umb_cli_testkit_expect (&run, 0, "\nruns_per_month                   0     unlimited\n", NULL);
    assert (s_test_count (run.out, "unlimited") == 5);
    umb_cli_testkit_run_free (&run);

    //  Statements: the month's, with the welcome credit and the two credits
    run = s_test_run (url, bob, "statements", "-w", S_TEST_WS, NULL);
    umb_cli_testkit_expect (&run, 0, "MONTH             OPENING           CREDITS           CHARGES"
                            "           CLOSING\n", NULL);
    line = zsys_sprintf ("\n%s          0.000000          6.500000          0.000000"
                         "          6.500000\n", month);
    assert (strstr (run.out, line) && s_test_count (run.out, "\n") == 2);
    zstr_free (&line);
    umb_cli_testkit_run_free (&run);
    root_json = s_test_json (s_test_run (url, bob, "statements", "-w", S_TEST_WS, "--json", NULL));
    json_t *item = json_array_get (json_object_get (root_json, "items"), 0);
    assert (json_array_size (json_object_get (root_json, "items")) == 1);
    assert (streq (umb_cli_rest_str (item, "month"), month));
    assert (s_test_int (item, "credits", NULL) == 6500000);
    assert (s_test_int (item, "closing", NULL) == 6500000);
    json_decref (root_json);
    S_EXPECT (s_test_run (url, carol, "statements", "-w", S_TEST_WS, NULL), 1, NULL,
              "umbra: 404 ");

    run = s_test_run (url, bob, "statement", "-w", S_TEST_WS, month, NULL);
    line = zsys_sprintf ("statement   %s of %s (plan enterprise)\n", month, workspace_id);
    umb_cli_testkit_expect (&run, 0, line, NULL);
    zstr_free (&line);
    assert (strstr (run.out, "\nopening     0.000000\ncredits     6.500000\ncharges     0.000000\n"
                             "reserved    0.000000 (change over the month)\n"
                             "closing     6.500000\n"));
    assert (strstr (run.out, "\nusage       0 runs, 0.00 vCPU-hours, 0 CVM-seconds\n"));
    assert (strstr (run.out, "\nTIME                  KIND           AVAILABLE        RESERVED"));
    assert (strstr (run.out, "Z  grant           1.500000        0.000000        0.000000  "));
    assert (strstr (run.out, "Z  credit          2.500000        0.000000        0.000000  "));
    assert (s_test_count (run.out, "  credit  ") == 2 && s_test_count (run.out, ":pay-1\n") == 1
            && s_test_count (run.out, ":pay-2\n") == 1);
    umb_cli_testkit_run_free (&run);
    root_json = s_test_json (s_test_run (url, bob, "statement", "-w", S_TEST_WS, month, "--json",
                                         NULL));
    assert (json_array_size (json_object_get (root_json, "lines")) == 3);
    assert (s_test_int (root_json, "credits", NULL) == 6500000);
    assert (!json_object_get (root_json, "csv"));
    json_decref (root_json);
    run = s_test_run (url, bob, "statement", "-w", S_TEST_WS, month, "--csv", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (strncmp (run.out, "time,txn,kind,ref,available,reserved,charge\r\n", 45) == 0);
    assert (s_test_count (run.out, "\r\n") == 4 && !*run.err);
    assert (s_test_count (run.out, ",grant,") == 1 && s_test_count (run.out, ",credit,") == 2);
    assert (strstr (run.out, ":pay-1,2500000,0,0\r\n") && strstr (run.out, ":pay-2,2500000,0,0\r\n"));
    umb_cli_testkit_run_free (&run);
    root_json = s_test_json (s_test_run (url, bob, "statement", "-w", S_TEST_WS, "2001-01",
                                         "--json", NULL));
    assert (json_array_size (json_object_get (root_json, "lines")) == 0);
    assert (s_test_int (root_json, "closing", NULL) == 0);
    json_decref (root_json);
    S_EXPECT (s_test_run (url, bob, "statement", "-w", S_TEST_WS, "2001-01", "--csv", NULL), 0,
              "time,txn,kind,ref,available,reserved,charge\r\n", NULL);
    S_EXPECT (s_test_run (url, bob, "statement", "-w", S_TEST_WS, "2024-13", NULL), 1, NULL,
              "umbra: 422 invalid_argument: month: expected YYYY-MM");
    S_EXPECT (s_test_run (url, bob, "statement", "-w", S_TEST_WS, "2024-13", "--csv", NULL), 1,
              NULL, "umbra: 422 invalid_argument: month: expected YYYY-MM");
    S_EXPECT (s_test_run (url, carol, "statement", "-w", S_TEST_WS, month, "--csv", NULL), 1,
              NULL, "umbra: 404 ");

    //  Ledger: both entries of each of the workspace's transactions, in pages
    //  of one, after N, one page
    root_json = s_test_json (s_test_run (url, bob, "ledger", "-w", S_TEST_WS, "--json", NULL));
    json_t *entries = json_object_get (root_json, "entries");
    assert (json_array_size (entries) == 6);
    const char *kinds [] = { "grant", "credit", "credit" };
    const long long credited [] = { 1500000, 2500000, 2500000 };
    char *available = zsys_sprintf ("ws:%s:available", workspace_id);
    long long seqs [6];
    for (size_t i = 0; i < 6; i++) {
        json_t *entry = json_array_get (entries, i);
        assert (streq (umb_cli_rest_str (entry, "kind"), kinds [i / 2]));
        assert (s_test_int (entry, "amount", NULL) == (i % 2 ? 1 : -1) * credited [i / 2]);
        assert (streq (umb_cli_rest_str (entry, "account"), i % 2 ? available : "platform:credit"));
        seqs [i] = s_test_int (entry, "seq", NULL);
        assert (i == 0 || seqs [i] > seqs [i - 1]);
    }
    assert (s_test_int (root_json, "last", NULL) == seqs [5]);
    json_t *paged = s_test_json (s_test_run (url, bob, "ledger", "-w", S_TEST_WS, "--page-size",
                                             "1", "--json", NULL));
    assert (json_equal (paged, root_json));
    json_decref (paged);
    json_decref (root_json);
    run = s_test_run (url, bob, "ledger", "-w", S_TEST_WS, NULL);
    line = zsys_sprintf ("%lld  20", seqs [0]);
    umb_cli_testkit_expect (&run, 0, line, NULL);
    assert (strncmp (run.out, line, strlen (line)) == 0 && s_test_count (run.out, "\n") == 6);
    zstr_free (&line);
    line = zsys_sprintf ("Z  credit    %-36s  %16s  txn_", available, "2.500000");
    assert (s_test_count (run.out, line) == 2);
    zstr_free (&line);
    line = zsys_sprintf ("Z  credit    %-36s  %16s  txn_", "platform:credit", "-2.500000");
    assert (s_test_count (run.out, line) == 2);
    zstr_free (&line);
    assert (s_test_count (run.out, ":pay-2\n") == 2);
    umb_cli_testkit_run_free (&run);
    char *after = zsys_sprintf ("%lld", seqs [1]);
    run = s_test_run (url, bob, "ledger", "-w", S_TEST_WS, "--after", after, NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (s_test_count (run.out, "\n") == 4 && !strstr (run.out, "grant"));
    umb_cli_testkit_run_free (&run);
    root_json = s_test_json (s_test_run (url, bob, "ledger", "-w", S_TEST_WS, "--limit", "1",
                                         "--after", after, "--json", NULL));
    assert (json_array_size (json_object_get (root_json, "entries")) == 1);
    assert (s_test_int (root_json, "last", NULL) == seqs [2]);
    json_decref (root_json);
    zstr_free (&after);
    after = zsys_sprintf ("%lld", seqs [5]);
    run = s_test_run (url, bob, "ledger", "-w", S_TEST_WS, "--after", after, NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (!*run.out && !*run.err);
    umb_cli_testkit_run_free (&run);
    zstr_free (&after);
    zstr_free (&available);
    S_EXPECT (s_test_run (url, carol, "ledger", "-w", S_TEST_WS, NULL), 1, NULL, "umbra: 404 ");

    //  The gateway gone: a clear reason, exit 1, never the token
    umb_cli_testkit_stop_gateway (kit);
    run = s_test_run (url, bob, "show", "-w", S_TEST_WS, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: cannot reach http://127.0.0.1:");
    assert (!strstr (run.err, bob) && !*run.out);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, bob, "statement", "-w", S_TEST_WS, month, "--csv", NULL), 1, NULL,
              "umbra: cannot reach http://127.0.0.1:");

    free (workspace_id);
    free (root);
    free (alice);
    free (bob);
    free (carol);
    umb_cli_testkit_destroy (&kit);
    if (verbose)
        printf ("OK\n");
}

//  umb_runtime - what the service actors of one process share
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "umb_runtime.h"
#include "umb_testkit.h"
#include "umb_keys.h"

//  Every mesh identity has a key pair from the first start on, so processes
//  started separately on one state directory admit each other.
static const char *s_identities [] = {
    "auth", "certs", "gateway", "backends", "computations", "billing", NULL
};

struct _umb_runtime_t {
    umb_config_t *config;
    umb_log_t    *log;
    umb_zap_t    *zap;
    char         *state_dir;
    char         *keys_dir;
    bool          make_keys;        //  mesh.make_keys: missing key pairs are made
    char         *service_keys [sizeof (s_identities) / sizeof (s_identities [0])];
};

const char *const *
umb_runtime_identities (void)
{
    return (const char *const *) s_identities;
}

int
umb_runtime_make_dirs (const char *path)
{
    char *copy = strdup (path);
    assert (copy);
    for (char *slash = strchr (copy + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (mkdir (copy, 0700) && errno != EEXIST) {
            free (copy);
            return -1;
        }
        *slash = '/';
    }
    int rc = mkdir (copy, 0700) && errno != EEXIST ? -1 : 0;
    free (copy);
    return rc;
}

static char *
s_default_state_dir (void)
{
    const char *xdg = getenv ("XDG_DATA_HOME");
    if (xdg && *xdg == '/')
        return zsys_sprintf ("%s/umbra", xdg);
    const char *home = getenv ("HOME");
    return zsys_sprintf ("%s/.local/share/umbra", home && *home ? home : ".");
}

char *
umb_runtime_state_path (umb_config_t *config)
{
    const char *state = umb_config_str (config, "state_dir");
    return *state ? strdup (state) : s_default_state_dir ();
}

char *
umb_runtime_keys_path (umb_config_t *config)
{
    const char *keys = umb_config_str (config, "mesh.keys_dir");
    if (*keys)
        return strdup (keys);
    char *state = umb_runtime_state_path (config);
    char *path = zsys_sprintf ("%s/keys", state);
    zstr_free (&state);
    return path;
}

umb_runtime_t *
umb_runtime_new (umb_config_t **config_p, char **error)
{
    assert (config_p && *config_p && error);
    *error = NULL;
    umb_runtime_t *self = calloc (1, sizeof (umb_runtime_t));
    assert (self);
    self->config = *config_p;
    *config_p = NULL;
    umb_config_t *config = self->config;
    const char *level = umb_config_str (config, "log.level");
    self->log = umb_log_new ("umbra", umb_log_level_parse (level),
                             streq (umb_config_str (config, "log.format"), "json"));
    self->state_dir = umb_runtime_state_path (config);
    self->keys_dir = umb_runtime_keys_path (config);
    if (umb_runtime_make_dirs (self->state_dir) || umb_runtime_make_dirs (self->keys_dir)) {
        *error = zsys_sprintf ("cannot create state directory %s: %s", self->state_dir,
                               strerror (errno));
        umb_runtime_destroy (&self);
        return NULL;
    }
    //  Every identity's public key; the key pairs are made here on first start
    //  unless mesh.make_keys is off (`umbra init` made them, and each service
    //  holds only its own secret key)
    self->make_keys = umb_config_bool (config, "mesh.make_keys");
    for (size_t i = 0; s_identities [i]; i++) {
        const char *name = s_identities [i];
        zcert_t *cert = self->make_keys ? umb_keys_load (self->keys_dir, name, true, self->log)
                                        : NULL;
        self->service_keys [i] = cert ? strdup (zcert_public_txt (cert))
                               : self->make_keys ? NULL : umb_runtime_public_key (self, name);
        zcert_destroy (&cert);
        if (!self->service_keys [i]) {
            *error = self->make_keys
                   ? zsys_sprintf ("cannot load or create the key pair of '%s' in %s", name,
                                   self->keys_dir)
                   : zsys_sprintf ("no public key of mesh identity '%s' in %s (%s.public_key, or "
                                   "run `umbra init`)", name, self->keys_dir, name);
            umb_runtime_destroy (&self);
            return NULL;
        }
    }
    self->zap = umb_zap_new (self->log);
    if (!self->zap) {
        *error = strdup ("a ZAP handler already runs in this process");
        umb_runtime_destroy (&self);
        return NULL;
    }
    int admitted = 0;
    for (size_t i = 0; self->service_keys [i]; i++)
        admitted += umb_zap_allow (self->zap, self->service_keys [i], s_identities [i]) == 0;
    const char *allow_dir = umb_config_str (config, "mesh.allow_dir");
    if (*allow_dir) {
        int extra = umb_zap_allow_dir (self->zap, allow_dir);
        if (extra < 0) {
            *error = zsys_sprintf ("mesh.allow_dir %s cannot be read", allow_dir);
            umb_runtime_destroy (&self);
            return NULL;
        }
        admitted += extra;
    }
    umb_log_info (self->log, "state in %s; %d mesh identities admitted", self->state_dir, admitted);
    return self;
}

void
umb_runtime_destroy (umb_runtime_t **self_p)
{
    assert (self_p);
    umb_runtime_t *self = *self_p;
    if (self) {
        umb_zap_destroy (&self->zap);
        umb_config_destroy (&self->config);
        umb_log_destroy (&self->log);
        free (self->state_dir);
        free (self->keys_dir);
        for (size_t i = 0; self->service_keys [i]; i++)
            free (self->service_keys [i]);
        free (self);
        *self_p = NULL;
    }
}

umb_config_t *umb_runtime_config (umb_runtime_t *self)    { assert (self); return self->config; }
umb_zap_t    *umb_runtime_zap (umb_runtime_t *self)       { assert (self); return self->zap; }
umb_log_t    *umb_runtime_log (umb_runtime_t *self)       { assert (self); return self->log; }
const char   *umb_runtime_state_dir (umb_runtime_t *self) { assert (self); return self->state_dir; }
const char   *umb_runtime_keys_dir (umb_runtime_t *self)  { assert (self); return self->keys_dir; }

zcert_t *
umb_runtime_identity (umb_runtime_t *self, const char *name)
{
    assert (self && name);
    zcert_t *cert = umb_keys_load (self->keys_dir, name, self->make_keys, self->log);
    if (cert)
        umb_zap_allow (self->zap, zcert_public_txt (cert), name);
    return cert;
}

const char *const *
umb_runtime_service_keys (umb_runtime_t *self)
{
    assert (self);
    return (const char *const *) self->service_keys;
}

char *
umb_runtime_public_key (umb_runtime_t *self, const char *name)
{
    assert (self && name);
    char key [96];
    snprintf (key, sizeof (key), "%s.public_key", name);
    const char *configured = umb_config_declared (self->config, key)
                           ? umb_config_str (self->config, key) : "";
    if (*configured)
        return strdup (configured);
    return umb_keys_public (self->keys_dir, name);
}

char *
umb_runtime_db_path (umb_runtime_t *self, const char *name, const char *dir)
{
    assert (self && name && dir);
    char key [96];
    snprintf (key, sizeof key, "%s.db", name);
    const char *configured = umb_config_str (self->config, key);
    return *configured ? strdup (configured) : zsys_sprintf ("%s/%s.db", dir, name);
}

umb_client_t *
umb_runtime_client (umb_runtime_t *self, const char *name, zcert_t *identity)
{
    assert (self && name && identity);
    char key [96];
    snprintf (key, sizeof (key), "%s.endpoint", name);
    const char *endpoint = umb_config_str (self->config, key);
    char *public_key = umb_runtime_public_key (self, name);
    umb_client_t *client = public_key ? umb_client_new (endpoint, public_key, identity) : NULL;
    if (!client)
        umb_log_error (self->log, "cannot make a client of '%s' at %s%s", name, endpoint,
                       public_key ? "" : ": its public key is unknown");
    free (public_key);
    return client;
}

char *
umb_runtime_service_dir (umb_runtime_t *self, const char *name)
{
    assert (self && name);
    char *dir = zsys_sprintf ("%s/%s", self->state_dir, name);
    if (dir && umb_runtime_make_dirs (dir)) {
        umb_log_error (self->log, "cannot create %s: %s", dir, strerror (errno));
        zstr_free (&dir);
    }
    return dir;
}

void
umb_runtime_test (bool verbose)
{
    if (verbose)
        printf (" * umb_runtime: ");
    char dir [] = "/tmp/umb-runtime-XXXXXX";
    assert (mkdtemp (dir));
    char *state = zsys_sprintf ("%s/deep/state", dir);
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    assert (umb_config_set (config, "state_dir", state, &error) == 0);
    assert (umb_config_set (config, "log.level", "error", &error) == 0);
    umb_runtime_t *runtime = umb_runtime_new (&config, &error);
    assert (runtime && !error && !config);
    assert (streq (umb_runtime_state_dir (runtime), state));
    struct stat st;
    assert (stat (state, &st) == 0 && (st.st_mode & 0777) == 0700);

    //  Every identity exists from the first start, and its key is public
    char *auth_key = umb_runtime_public_key (runtime, "auth");
    assert (auth_key && strlen (auth_key) == 40);
    char *auth_pub = strdup (auth_key);
    char *gateway_key = umb_runtime_public_key (runtime, "gateway");     //  no setting: the file
    assert (gateway_key && strlen (gateway_key) == 40);
    free (gateway_key);
    const char *const *service_keys = umb_runtime_service_keys (runtime);
    assert (streq (service_keys [0], auth_key) && service_keys [5] && !service_keys [6]);
    zcert_t *gateway = umb_runtime_identity (runtime, "gateway");
    assert (gateway);
    umb_client_t *client = umb_runtime_client (runtime, "auth", gateway);
    assert (client);
    umb_client_destroy (&client);
    char *service_dir = umb_runtime_service_dir (runtime, "auth");
    assert (service_dir && stat (service_dir, &st) == 0 && S_ISDIR (st.st_mode));

    //  A second runtime in the same process cannot start its own ZAP handler
    umb_config_t *second = umb_config_new ();
    assert (umb_config_set (second, "state_dir", state, &error) == 0);
    assert (umb_runtime_new (&second, &error) == NULL);
    assert (error && strstr (error, "ZAP"));
    zstr_free (&error);

    zcert_destroy (&gateway);
    zstr_free (&auth_key);
    zstr_free (&service_dir);
    umb_runtime_destroy (&runtime);
    assert (!runtime);

    //  With mesh.make_keys off, a state holding every public key and one
    //  secret key (what `umbra init` gives a service) serves that identity
    //  only, and makes nothing
    char *split = zsys_sprintf ("%s/split", dir);
    char *keys = zsys_sprintf ("%s/keys", split);
    assert (mkdir (split, 0700) == 0 && mkdir (keys, 0700) == 0);
    for (size_t i = 0; s_identities [i]; i++) {
        char *from = zsys_sprintf ("%s/keys/%s.pub", state, s_identities [i]);
        char *to = zsys_sprintf ("%s/%s.pub", keys, s_identities [i]);
        assert (link (from, to) == 0);
        zstr_free (&from);
        zstr_free (&to);
    }
    char *from = zsys_sprintf ("%s/keys/billing.key", state);
    char *to = zsys_sprintf ("%s/billing.key", keys);
    assert (link (from, to) == 0);
    config = umb_config_new ();
    assert (umb_config_set (config, "state_dir", split, &error) == 0);
    assert (umb_config_set (config, "log.level", "error", &error) == 0);
    assert (umb_config_set (config, "mesh.make_keys", "false", &error) == 0);
    runtime = umb_runtime_new (&config, &error);
    assert (runtime && !error);
    assert (streq (umb_runtime_service_keys (runtime) [0], auth_pub));
    zcert_t *billing = umb_runtime_identity (runtime, "billing");
    assert (billing);
    zcert_destroy (&billing);
    assert (umb_runtime_identity (runtime, "auth") == NULL);
    char *made = zsys_sprintf ("%s/auth.key", keys);
    assert (stat (made, &st) != 0);
    umb_runtime_destroy (&runtime);
    //  ...and without a public key it does not start, naming it
    char *public_path = zsys_sprintf ("%s/computations.pub", keys);
    assert (unlink (public_path) == 0);
    config = umb_config_new ();
    assert (umb_config_set (config, "state_dir", split, &error) == 0);
    assert (umb_config_set (config, "mesh.make_keys", "false", &error) == 0);
    assert (umb_runtime_new (&config, &error) == NULL);
    assert (error && strstr (error, "'computations'") && strstr (error, "umbra init"));
    zstr_free (&error);
    umb_config_destroy (&config);
    zstr_free (&public_path);
    zstr_free (&made);
    zstr_free (&from);
    zstr_free (&to);
    zstr_free (&keys);
    zstr_free (&split);
    zstr_free (&auth_pub);
    umb_testkit_remove_dir (dir);
    zstr_free (&state);
    if (verbose)
        printf ("OK\n");
}

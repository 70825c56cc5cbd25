//  umb_config - typed settings from defaults, an INI-style file and UMBRA_* environment variables
//
//  Every setting is declared once in the schema table in umb_config.c with its
//  type, default, bounds and whether it is secret. A key "auth.endpoint" is read
//  from "[auth] endpoint = ..." in the file and from UMBRA_AUTH_ENDPOINT in the
//  environment (the environment wins). Unknown keys and invalid values are errors.
#ifndef UMB_CONFIG_H_INCLUDED
#define UMB_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct _umb_config_t umb_config_t;

//  A config holding every default.
umb_config_t *umb_config_new (void);
void          umb_config_destroy (umb_config_t **self_p);

//  Each returns 0, or -1 with a message for people in *error (caller frees),
//  naming the file, line and key. On error nothing of that file/environment is applied.
int  umb_config_load_file (umb_config_t *self, const char *path, char **error);
//  envp is a NULL-terminated "NAME=value" array (pass environ).
int  umb_config_load_env (umb_config_t *self, char **envp, char **error);
int  umb_config_set (umb_config_t *self, const char *key, const char *value, char **error);

//  True if key is a setting of the schema.
bool        umb_config_declared (umb_config_t *self, const char *key);

//  Accessors assert that key is declared with the matching type (a programming error).
const char *umb_config_str  (umb_config_t *self, const char *key);   //  borrowed; "" if unset
int64_t     umb_config_int  (umb_config_t *self, const char *key);
bool        umb_config_bool (umb_config_t *self, const char *key);
//  True if the value came from a file, the environment or umb_config_set.
bool        umb_config_is_set (umb_config_t *self, const char *key);

//  Writes "key = value" for every setting (secrets shown as "(set)"/"(unset)") to fd.
void        umb_config_dump (umb_config_t *self, int fd);
//  Every setting as a Markdown table: setting, UMBRA_* variable, default,
//  meaning (docs/settings.md is this table).
void        umb_config_dump_table (umb_config_t *self, int fd);

void        umb_config_test (bool verbose);

#endif

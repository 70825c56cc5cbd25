//  umb_certs_status - the OCSP status table: serials, revocations, one mutex
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "umb_certs_status.h"

typedef struct {
    int64_t revoked_at;             //  0: good
    int     reason;
    char    issuer [41];            //  the serial of the issuing CA that signed it
} s_entry_t;

struct _umb_certs_status_t {
    pthread_mutex_t mutex;
    zhashx_t       *serials;        //  serial -> s_entry_t *
};

static void
s_entry_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

umb_certs_status_t *
umb_certs_status_new (void)
{
    umb_certs_status_t *self = calloc (1, sizeof (umb_certs_status_t));
    assert (self);
    pthread_mutex_init (&self->mutex, NULL);
    self->serials = zhashx_new ();
    assert (self->serials);
    zhashx_set_destructor (self->serials, s_entry_destroy);
    return self;
}

void
umb_certs_status_destroy (umb_certs_status_t **self_p)
{
    assert (self_p);
    umb_certs_status_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->serials);
        pthread_mutex_destroy (&self->mutex);
        free (self);
        *self_p = NULL;
    }
}

void
umb_certs_status_set (umb_certs_status_t *self, const char *serial, const char *issuer,
                      int64_t revoked_at, int reason)
{
    assert (self && serial && issuer);
    s_entry_t *entry = malloc (sizeof (s_entry_t));
    assert (entry);
    entry->revoked_at = revoked_at;
    entry->reason = reason;
    snprintf (entry->issuer, sizeof (entry->issuer), "%s", issuer);
    pthread_mutex_lock (&self->mutex);
    zhashx_update (self->serials, serial, entry);
    pthread_mutex_unlock (&self->mutex);
}

size_t
umb_certs_status_size (umb_certs_status_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t size = zhashx_size (self->serials);
    pthread_mutex_unlock (&self->mutex);
    return size;
}

umb_ocsp_status_t
umb_certs_status_lookup (void *state, const char *issuer, const char *serial, int64_t *revoked_at,
                         int *reason)
{
    umb_certs_status_t *self = state;
    assert (self && issuer && serial);
    umb_ocsp_status_t status = UMB_OCSP_UNKNOWN;
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = zhashx_lookup (self->serials, serial);
    //  A serial asked of another issuer than the one that signed it is not
    //  one that issuer knows
    if (entry && strcmp (entry->issuer, issuer) == 0) {
        status = entry->revoked_at ? UMB_OCSP_REVOKED : UMB_OCSP_GOOD;
        if (revoked_at)
            *revoked_at = entry->revoked_at;
        if (reason)
            *reason = entry->reason;
    }
    pthread_mutex_unlock (&self->mutex);
    return status;
}

//  ---------------------------------------------------------------- selftest

typedef struct {
    umb_certs_status_t *table;
    int                 base;
} s_test_writer_t;

static void *
s_test_writer (void *arg)
{
    s_test_writer_t *writer = arg;
    char serial [16];
    for (int index = 0; index < 2000; index++) {
        snprintf (serial, sizeof serial, "%x", writer->base + index);
        umb_certs_status_set (writer->table, serial, "a1", index % 2 ? 100 : 0, 1);
        int64_t at = -1;
        umb_ocsp_status_t status = umb_certs_status_lookup (writer->table, "a1", serial, &at, NULL);
        assert (status == (index % 2 ? UMB_OCSP_REVOKED : UMB_OCSP_GOOD));
    }
    return NULL;
}

void
umb_certs_status_test (bool verbose)
{
    if (verbose)
        printf (" * umb_certs_status: ");
    umb_certs_status_t *table = umb_certs_status_new ();
    int64_t revoked_at = -1;
    int reason = -1;
    assert (umb_certs_status_lookup (table, "a1", "1f", &revoked_at, &reason) == UMB_OCSP_UNKNOWN);
    assert (revoked_at == -1 && reason == -1);
    umb_certs_status_set (table, "1f", "a1", 0, 0);
    assert (umb_certs_status_lookup (table, "a1", "1f", &revoked_at, &reason) == UMB_OCSP_GOOD);
    //  Asked of another issuing CA, the serial is not known
    assert (umb_certs_status_lookup (table, "b2", "1f", &revoked_at, &reason) == UMB_OCSP_UNKNOWN);
    umb_certs_status_set (table, "1f", "a1", 1700000000, UMB_CA_REASON_KEY_COMPROMISE);
    assert (umb_certs_status_lookup (table, "a1", "1f", &revoked_at, &reason) == UMB_OCSP_REVOKED);
    assert (revoked_at == 1700000000 && reason == UMB_CA_REASON_KEY_COMPROMISE);
    assert (umb_certs_status_lookup (table, "a1", "1F", NULL, NULL) == UMB_OCSP_UNKNOWN);
    assert (umb_certs_status_size (table) == 1);

    //  Writers and readers on several threads at once
    pthread_t threads [4];
    s_test_writer_t writers [4];
    for (int index = 0; index < 4; index++) {
        writers [index] = (s_test_writer_t) { table, 0x10000 * (index + 1) };
        assert (pthread_create (&threads [index], NULL, s_test_writer, &writers [index]) == 0);
    }
    for (int index = 0; index < 4; index++)
        pthread_join (threads [index], NULL);
    assert (umb_certs_status_size (table) == 1 + 4 * 2000);
    umb_certs_status_destroy (&table);
    umb_certs_status_destroy (&table);
    if (verbose)
        printf ("OK\n");
}

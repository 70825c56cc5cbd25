//  umb_selftest - runs the selftest of every module: all of them, or those named
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "umb_log.h"
#include "umb_config.h"
#include "umb_utf8.h"
#include "umb_address.h"
#include "umb_percent.h"
#include "umb_reason.h"
#include "umb_hex.h"
#include "umb_worker.h"
#include "umb_mp.h"
#include "umb_envelope.h"
#include "umb_store.h"
#include "umb_metrics.h"
#include "umb_keys.h"
#include "umb_zap.h"
#include "umb_client.h"
#include "umb_service.h"
#include "umb_jwt.h"
#include "umb_runtime.h"
#include "umb_trust.h"
#include "umb_testkit.h"
#include "umb_auth.h"
#include "umb_auth_client.h"
#include "umb_ca.h"
#include "umb_ocsp.h"
#include "umb_certs_store.h"
#include "umb_certs_status.h"
#include "umb_certs_http.h"
#include "umb_certs.h"
#include "umb_json.h"
#include "umb_routes.h"
#include "umb_sse.h"
#include "umb_gateway.h"
#include "umb_http_client.h"
#include "umb_cli_certs.h"
#include "umb_cli_rest.h"
#include "umb_cli_testkit.h"
#include "umb_cli_backends.h"
#include "umb_x509.h"
#include "umb_snp.h"
#include "umb_cgroup.h"
#include "umb_seccomp.h"
#include "umb_sandbox.h"
#include "umb_agent_client.h"
#include "umb_cli_agent.h"
#include "umb_tdx.h"
#include "umb_policy.h"
#include "umb_verify.h"
#include "umb_provider.h"
#include "umb_cli_attest.h"
#include "umb_outbox.h"
#include "umb_upload.h"
#include "umb_agent.h"
#include "umb_sig.h"
#include "umb_manifest.h"
#include "umb_cli_keys.h"
#include "umb_link.h"
#include "umb_bridge.h"
#include "umb_virt.h"
#include "umb_domain.h"
#include "umb_sched.h"
#include "umb_backends_store.h"
#include "umb_cvm.h"
#include "umb_driver.h"
#include "umb_agent_link.h"
#include "umb_backends.h"
#include "umb_audit.h"
#include "umb_cli_audit.h"
#include "umb_cli_computations.h"
#include "umb_cli_billing.h"
#include "umb_cli_init.h"
#include "umb_cli_status.h"
#include "umb_cli_demo.h"
#include "umb_cli_backup.h"
#include "umb_computation.h"
#include "umb_computation_cache.h"
#include "umb_run.h"
#include "umb_computations_store.h"
#include "umb_computations.h"
#include "umb_billing.h"
#include "umb_meter.h"

static const struct {
    const char *name;
    void (*test) (bool verbose);
} s_tests [] = {
    { "log",      umb_log_test },
    { "config",   umb_config_test },
    { "utf8",     umb_utf8_test },
    { "address",  umb_address_test },
    { "percent",  umb_percent_test },
    { "reason",   umb_reason_test },
    { "hex",      umb_hex_test },
    { "worker",   umb_worker_test },
    { "mp",       umb_mp_test },
    { "envelope", umb_envelope_test },
    { "store",    umb_store_test },
    { "metrics",  umb_metrics_test },
    { "keys",     umb_keys_test },
    { "zap",      umb_zap_test },
    { "client",   umb_client_test },
    { "service",  umb_service_test },
    { "jwt",      umb_jwt_test },
    { "runtime",  umb_runtime_test },
    { "trust",    umb_trust_test },
    { "testkit",  umb_testkit_test },
    { "auth",     umb_auth_test },
    { "auth_client", umb_auth_client_test },
    { "ca",       umb_ca_test },
    { "ocsp",     umb_ocsp_test },
    { "certs_store", umb_certs_store_test },
    { "certs_status", umb_certs_status_test },
    { "certs_http", umb_certs_http_test },
    { "certs",    umb_certs_test },
    { "json",     umb_json_test },
    { "sse",      umb_sse_test },
    { "routes",   umb_routes_test },
    { "gateway",  umb_gateway_test },
    { "http_client", umb_http_client_test },
    { "cli_rest", umb_cli_rest_test },
    { "cli_testkit", umb_cli_testkit_test },
    { "cli_certs", umb_cli_certs_test },
    { "cli_backends", umb_cli_backends_test },
    { "x509",     umb_x509_test },
    { "snp",      umb_snp_test },
    { "cgroup",   umb_cgroup_test },
    { "seccomp",  umb_seccomp_test },
    { "sandbox",  umb_sandbox_test },
    { "agent_client", umb_agent_client_test },
    { "cli_agent", umb_cli_agent_test },
    { "tdx",      umb_tdx_test },
    { "policy",   umb_policy_test },
    { "verify",   umb_verify_test },
    { "provider", umb_provider_test },
    { "cli_attest", umb_cli_attest_test },
    { "outbox",   umb_outbox_test },
    { "upload",   umb_upload_test },
    { "agent",    umb_agent_test },
    { "sig",      umb_sig_test },
    { "manifest", umb_manifest_test },
    { "cli_keys", umb_cli_keys_test },
    { "link",     umb_link_test },
    { "bridge",   umb_bridge_test },
    { "virt",     umb_virt_test },
    { "domain",   umb_domain_test },
    { "sched",    umb_sched_test },
    { "backends_store", umb_backends_store_test },
    { "cvm",      umb_cvm_test },
    { "driver",   umb_driver_test },
    { "agent_link", umb_agent_link_test },
    { "meter", umb_meter_test },
    { "backends", umb_backends_test },
    { "audit",    umb_audit_test },
    { "cli_audit", umb_cli_audit_test },
    { "cli_computations", umb_cli_computations_test },
    { "cli_billing", umb_cli_billing_test },
    { "cli_init", umb_cli_init_test },
    { "cli_status", umb_cli_status_test },
    { "cli_demo", umb_cli_demo_test },
    { "cli_backup", umb_cli_backup_test },
    { "computation", umb_computation_test },
    { "computation_cache", umb_computation_cache_test },
    { "run",      umb_run_test },
    { "computations_store", umb_computations_store_test },
    { "billing", umb_billing_test },
    { NULL }
};

int
main (int argc, char **argv)
{
    if (argc > 1 && streq (argv [1], "--list")) {
        for (size_t i = 0; s_tests [i].name; i++)
            printf ("%s\n", s_tests [i].name);
        return 0;
    }
    //  As in every umbra program (umb_program): a closed peer is an error, not a signal
    signal (SIGPIPE, SIG_IGN);
    //  Selftests log only what they expect to fail loudly
    zsys_init ();
    zsys_set_logstream (NULL);
    int run = 0;
    for (size_t i = 0; s_tests [i].name; i++) {
        bool wanted = argc == 1;
        for (int arg = 1; arg < argc; arg++)
            if (streq (argv [arg], s_tests [i].name))
                wanted = true;
        if (wanted) {
            s_tests [i].test (true);
            run++;
        }
    }
    if (run == 0) {
        fprintf (stderr, "umb_selftest: no test named so; see --list\n");
        return 2;
    }
    return 0;
}

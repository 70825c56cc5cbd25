//  umb_snp - AMD SEV-SNP attestation reports: parser, signature, chain and TCB checks
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "umb_snp.h"
#include "umb_bytes.h"
#include "umb_x509.h"
#include "umb_hex.h"
#include "umb_reason.h"

//  Field offsets (SEV-SNP ABI, ATTESTATION_REPORT)
#define S_VERSION          0x000
#define S_GUEST_SVN        0x004
#define S_POLICY           0x008
#define S_FAMILY_ID        0x010
#define S_IMAGE_ID         0x020
#define S_VMPL             0x030
#define S_SIGNATURE_ALGO   0x034
#define S_CURRENT_TCB      0x038
#define S_PLATFORM_INFO    0x040
#define S_SIGNER_INFO      0x048
#define S_REPORT_DATA      0x050
#define S_MEASUREMENT      0x090
#define S_HOST_DATA        0x0C0
#define S_ID_KEY_DIGEST    0x0E0
#define S_AUTHOR_KEY_DIGEST 0x110
#define S_REPORT_ID        0x140
#define S_REPORT_ID_MA     0x160
#define S_REPORTED_TCB     0x180
#define S_CPUID_FAM_ID     0x188
#define S_CPUID_MOD_ID     0x189
#define S_CPUID_STEP       0x18A
#define S_CHIP_ID          0x1A0
#define S_COMMITTED_TCB    0x1E0
#define S_LAUNCH_TCB       0x1F0
#define S_SIGNATURE        0x2A0
#define S_SIG_R            0x2A0
#define S_SIG_S            (0x2A0 + 72)
#define S_SIG_RESERVED     (0x2A0 + 144)

#define S_P384_SIZE        48

struct _umb_snp_report_t {
    uint8_t data [UMB_SNP_REPORT_SIZE];
};

//  The AMD root keys (ARK) this library trusts: public root certificates as
//  published by AMD KDS (https://kdsintf.amd.com/vcek/v1/<product>/cert_chain)
static const char s_ark_milan [] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIGYzCCBBKgAwIBAgIDAQAAMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
    "BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
    "BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
    "Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
    "Y2VzMRIwEAYDVQQDDAlBUkstTWlsYW4wHhcNMjAxMDIyMTcyMzA1WhcNNDUxMDIy\n"
    "MTcyMzA1WjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
    "BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
    "ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJQVJLLU1pbGFuMIICIjANBgkqhkiG\n"
    "9w0BAQEFAAOCAg8AMIICCgKCAgEA0Ld52RJOdeiJlqK2JdsVmD7FktuotWwX1fNg\n"
    "W41XY9Xz1HEhSUmhLz9Cu9DHRlvgJSNxbeYYsnJfvyjx1MfU0V5tkKiU1EesNFta\n"
    "1kTA0szNisdYc9isqk7mXT5+KfGRbfc4V/9zRIcE8jlHN61S1ju8X93+6dxDUrG2\n"
    "SzxqJ4BhqyYmUDruPXJSX4vUc01P7j98MpqOS95rORdGHeI52Naz5m2B+O+vjsC0\n"
    "60d37jY9LFeuOP4Meri8qgfi2S5kKqg/aF6aPtuAZQVR7u3KFYXP59XmJgtcog05\n"
    "gmI0T/OitLhuzVvpZcLph0odh/1IPXqx3+MnjD97A7fXpqGd/y8KxX7jksTEzAOg\n"
    "bKAeam3lm+3yKIcTYMlsRMXPcjNbIvmsBykD//xSniusuHBkgnlENEWx1UcbQQrs\n"
    "+gVDkuVPhsnzIRNgYvM48Y+7LGiJYnrmE8xcrexekBxrva2V9TJQqnN3Q53kt5vi\n"
    "Qi3+gCfmkwC0F0tirIZbLkXPrPwzZ0M9eNxhIySb2npJfgnqz55I0u33wh4r0ZNQ\n"
    "eTGfw03MBUtyuzGesGkcw+loqMaq1qR4tjGbPYxCvpCq7+OgpCCoMNit2uLo9M18\n"
    "fHz10lOMT8nWAUvRZFzteXCm+7PHdYPlmQwUw3LvenJ/ILXoQPHfbkH0CyPfhl1j\n"
    "WhJFZasCAwEAAaN+MHwwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSFrBrRQ/fI\n"
    "rFXUxR1BSKvVeErUUzAPBgNVHRMBAf8EBTADAQH/MDoGA1UdHwQzMDEwL6AtoCuG\n"
    "KWh0dHBzOi8va2RzaW50Zi5hbWQuY29tL3ZjZWsvdjEvTWlsYW4vY3JsMEYGCSqG\n"
    "SIb3DQEBCjA5oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZI\n"
    "AWUDBAICBQCiAwIBMKMDAgEBA4ICAQC6m0kDp6zv4Ojfgy+zleehsx6ol0ocgVel\n"
    "ETobpx+EuCsqVFRPK1jZ1sp/lyd9+0fQ0r66n7kagRk4Ca39g66WGTJMeJdqYriw\n"
    "STjjDCKVPSesWXYPVAyDhmP5n2v+BYipZWhpvqpaiO+EGK5IBP+578QeW/sSokrK\n"
    "dHaLAxG2LhZxj9aF73fqC7OAJZ5aPonw4RE299FVarh1Tx2eT3wSgkDgutCTB1Yq\n"
    "zT5DuwvAe+co2CIVIzMDamYuSFjPN0BCgojl7V+bTou7dMsqIu/TW/rPCX9/EUcp\n"
    "KGKqPQ3P+N9r1hjEFY1plBg93t53OOo49GNI+V1zvXPLI6xIFVsh+mto2RtgEX/e\n"
    "pmMKTNN6psW88qg7c1hTWtN6MbRuQ0vm+O+/2tKBF2h8THb94OvvHHoFDpbCELlq\n"
    "HnIYhxy0YKXGyaW1NjfULxrrmxVW4wcn5E8GddmvNa6yYm8scJagEi13mhGu4Jqh\n"
    "3QU3sf8iUSUr09xQDwHtOQUVIqx4maBZPBtSMf+qUDtjXSSq8lfWcd8bLr9mdsUn\n"
    "JZJ0+tuPMKmBnSH860llKk+VpVQsgqbzDIvOLvD6W1Umq25boxCYJ+TuBoa4s+HH\n"
    "CViAvgT9kf/rBq1d+ivj6skkHxuzcxbk1xv6ZGxrteJxVH7KlX7YRdZ6eARKwLe4\n"
    "AFZEAwoKCQ==\n"
    "-----END CERTIFICATE-----\n";

static const char s_ark_genoa [] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIGYzCCBBKgAwIBAgIDAgAAMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
    "BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
    "BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
    "Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
    "Y2VzMRIwEAYDVQQDDAlBUkstR2Vub2EwHhcNMjIwMTI2MTUzNDM3WhcNNDcwMTI2\n"
    "MTUzNDM3WjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
    "BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
    "ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJQVJLLUdlbm9hMIICIjANBgkqhkiG\n"
    "9w0BAQEFAAOCAg8AMIICCgKCAgEA3Cd95S/uFOuRIskW9vz9VDBF69NDQF79oRhL\n"
    "/L2PVQGhK3YdfEBgpF/JiwWFBsT/fXDhzA01p3LkcT/7LdjcRfKXjHl+0Qq/M4dZ\n"
    "kh6QDoUeKzNBLDcBKDDGWo3v35NyrxbA1DnkYwUKU5AAk4P94tKXLp80oxt84ahy\n"
    "HoLmc/LqsGsp+oq1Bz4PPsYLwTG4iMKVaaT90/oZ4I8oibSru92vJhlqWO27d/Rx\n"
    "c3iUMyhNeGToOvgx/iUo4gGpG61NDpkEUvIzuKcaMx8IdTpWg2DF6SwF0IgVMffn\n"
    "vtJmA68BwJNWo1E4PLJdaPfBifcJpuBFwNVQIPQEVX3aP89HJSp8YbY9lySS6PlV\n"
    "EqTBBtaQmi4ATGmMR+n2K/e+JAhU2Gj7jIpJhOkdH9firQDnmlA2SFfJ/Cc0mGNz\n"
    "W9RmIhyOUnNFoclmkRhl3/AQU5Ys9Qsan1jT/EiyT+pCpmnA+y9edvhDCbOG8F2o\n"
    "xHGRdTBkylungrkXJGYiwGrR8kaiqv7NN8QhOBMqYjcbrkEr0f8QMKklIS5ruOfq\n"
    "lLMCBw8JLB3LkjpWgtD7OpxkzSsohN47Uom86RY6lp72g8eXHP1qYrnvhzaG1S70\n"
    "vw6OkbaaC9EjiH/uHgAJQGxon7u0Q7xgoREWA/e7JcBQwLg80Hq/sbRuqesxz7wB\n"
    "WSY254cCAwEAAaN+MHwwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSfXfn+Ddjz\n"
    "WtAzGiXvgSlPvjGoWzAPBgNVHRMBAf8EBTADAQH/MDoGA1UdHwQzMDEwL6AtoCuG\n"
    "KWh0dHBzOi8va2RzaW50Zi5hbWQuY29tL3ZjZWsvdjEvR2Vub2EvY3JsMEYGCSqG\n"
    "SIb3DQEBCjA5oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZI\n"
    "AWUDBAICBQCiAwIBMKMDAgEBA4ICAQAdIlPBC7DQmvH7kjlOznFx3i21SzOPDs5L\n"
    "7SgFjMC9rR07292GQCA7Z7Ulq97JQaWeD2ofGGse5swj4OQfKfVv/zaJUFjvosZO\n"
    "nfZ63epu8MjWgBSXJg5QE/Al0zRsZsp53DBTdA+Uv/s33fexdenT1mpKYzhIg/cK\n"
    "tz4oMxq8JKWJ8Po1CXLzKcfrTphjlbkh8AVKMXeBd2SpM33B1YP4g1BOdk013kqb\n"
    "7bRHZ1iB2JHG5cMKKbwRCSAAGHLTzASgDcXr9Fp7Z3liDhGu/ci1opGmkp12QNiJ\n"
    "uBbkTU+xDZHm5X8Jm99BX7NEpzlOwIVR8ClgBDyuBkBC2ljtr3ZSaUIYj2xuyWN9\n"
    "5KFY49nWxcz90CFa3Hzmy4zMQmBe9dVyls5eL5p9bkXcgRMDTbgmVZiAf4afe8DL\n"
    "dmQcYcMFQbHhgVzMiyZHGJgcCrQmA7MkTwEIds1wx/HzMcwU4qqNBAoZV7oeIIPx\n"
    "dqFXfPqHqiRlEbRDfX1TG5NFVaeByX0GyH6jzYVuezETzruaky6fp2bl2bczxPE8\n"
    "HdS38ijiJmm9vl50RGUeOAXjSuInGR4bsRufeGPB9peTa9BcBOeTWzstqTUB/F/q\n"
    "aZCIZKr4X6TyfUuSDz/1JDAGl+lxdM0P9+lLaP9NahQjHCVf0zf1c1salVuGFk2w\n"
    "/wMz1R1BHg==\n"
    "-----END CERTIFICATE-----\n";

static const char s_ark_turin [] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIGYzCCBBKgAwIBAgIDAwAAMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
    "BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
    "BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
    "Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
    "Y2VzMRIwEAYDVQQDDAlBUkstVHVyaW4wHhcNMjMwNTE1MjAwMzEyWhcNNDgwNTE1\n"
    "MjAwMzEyWjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
    "BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
    "ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJQVJLLVR1cmluMIICIjANBgkqhkiG\n"
    "9w0BAQEFAAOCAg8AMIICCgKCAgEAwaAriB7EIuVc4ZB1wD3YfDxL+9eyS7+izm0J\n"
    "j3W772NINCWl8Bj3w/JD2ZjmbRxWdIq/4d9iarCKorXloJUB1jRdgxqccTx1aOoi\n"
    "g4+2w1XhVVJT7K457wT5ZLNJgQaxqa9Etkwjd6+9sOhlCDE9l43kQ0R2BikVJa/u\n"
    "yyVOSwEk5w5tXKOuG9jvq6QtAMJasW38wlqRDaKEGtZ9VUgGon27ZuL4sTJuC/az\n"
    "z9/iQBw8kEilzOl95AiTkeY5jSEBDWbAqnZk5qlM7kISKG20kgQm14mhNKDI2p2o\n"
    "ua+zuAG7i52epoRF2GfU0TYk/yf+vCNB2tnechFQuP2e8bLk95ZdqPi9/UWw4JXj\n"
    "tdEA4u2JYplSSUPQVAXKt6LVqujtJcM59JKr2u0XQ75KwxcMp15gSXhBfInvPAwu\n"
    "AY4dEwwGqT8oIg4esPHwEsmChhYeDIxPG9R4fx9O0q6p8Gb+HXlTiS47P9YNeOpi\n"
    "dOUKzDl/S1OvyhDtSL8LJc24QATFydo/iD/KUdvFTRlD0crkAMkZLoWQ8hLDGc6B\n"
    "ZJXsdd7Zf2e4UW3tI/1oh/2t23Ot3zyhTcv5gDbABu0LjVe98uRnS15SMwK//lJt\n"
    "9e5BqKvgABkSoABf+B4VFtPVEX0ygrYaFaI9i5ABrxnVBmzXpRb21iI1NlNCfOGU\n"
    "PIhVpWECAwEAAaN+MHwwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBRkoF9x4wwK\n"
    "ZNg7deUBWZ4r7gYDRDAPBgNVHRMBAf8EBTADAQH/MDoGA1UdHwQzMDEwL6AtoCuG\n"
    "KWh0dHBzOi8va2RzaW50Zi5hbWQuY29tL3ZjZWsvdjEvVHVyaW4vY3JsMEYGCSqG\n"
    "SIb3DQEBCjA5oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZI\n"
    "AWUDBAICBQCiAwIBMKMDAgEBA4ICAQA/i6Mz4IETMK8YU/HxP7Bfej5i4aXhenJo\n"
    "TuiDX0nqx5CDJm9ELhskxAkJ/oLA1O92UoLybfFk4gEpKFtyfiUYex9LogZj5ix0\n"
    "sb2qfSSy9CRnOktGqfpel4e3KAhLgF5n2qZrqyq/8EPPldtSjEXn78sZMlIlUcQK\n"
    "SnnNCQZVFpktDfDiEiGNuitux3ghHUrcVuxSbZcrXDbsbMF7NDdfLUUS9TijrL33\n"
    "lrCXJs7m8kggGyCusiRQKHli1AEswiA4xU+8xsZrByYTopiGYtbJK8s0UCCXylyO\n"
    "uKSubvdAnMDJ5GDD0+DX46LSfv7fgGNSG+LOBWdif7KoQf9cIhKJtxGxZCn/tvHm\n"
    "wMzu4Jnx8N2vRnT+8DpBqhxtNvdXmrZUelSeQakx4djMKvmTR8Gd25EnC4RppCkj\n"
    "bmPxY3zPd1X7raalTn34EOF9DeLsC9JfzkDuojxpHWMm30wKnDo20mlDQk/zKCDa\n"
    "2Zc+YjtsTZCrTbvdgCukTKNZOUUVlWRu+sO/OwrmS2p16seHTIqHEbE1LntPv3gk\n"
    "CcHGDSUAKx9c0Aol+Dj9xpb2nmGqoDeJ59Ja6REkHCdw5TduXyqqMqfD1AX0/QDN\n"
    "devCMKlWBRCQ7DFlog3H1a+r/kuMUZ/Ij9yyKlSgYZMJ4VgNKDgTQdcsAL0MCEMr\n"
    "zpacMwFusA==\n"
    "-----END CERTIFICATE-----\n";

static const char *const s_arks [] = { s_ark_milan, s_ark_genoa, s_ark_turin };
#define S_ARK_COUNT (sizeof (s_arks) / sizeof (s_arks [0]))

umb_snp_report_t *
umb_snp_report_parse (const uint8_t *data, size_t size, char *reason, size_t reason_size)
{
    if (!data || size != UMB_SNP_REPORT_SIZE) {
        umb_reason_set (reason, reason_size, "report size is %zu bytes, expected %d", size, UMB_SNP_REPORT_SIZE);
        return NULL;
    }
    uint32_t version = umb_bytes_le32 (data + S_VERSION);
    if (version != 2 && version != 3 && version != 5) {
        umb_reason_set (reason, reason_size, "unsupported report version %u", version);
        return NULL;
    }
    uint32_t algo = umb_bytes_le32 (data + S_SIGNATURE_ALGO);
    if (algo != UMB_SNP_SIG_ALGO_ECDSA_P384_SHA384) {
        umb_reason_set (reason, reason_size, "unsupported signature algorithm %u", algo);
        return NULL;
    }
    uint32_t signer_info = umb_bytes_le32 (data + S_SIGNER_INFO);
    int signing_key = (signer_info >> 2) & 7;
    const char *nonzero = NULL;
    if (signer_info >> 5)
        nonzero = "signer_info bits 5..31";
    else
    if (signing_key != UMB_SNP_SIGNING_KEY_VCEK && signing_key != UMB_SNP_SIGNING_KEY_VLEK
    &&  signing_key != UMB_SNP_SIGNING_KEY_NONE) {
        umb_reason_set (reason, reason_size, "unknown signing key selector %d", signing_key);
        return NULL;
    }
    else
    if (!umb_bytes_is_zero (data + 0x04C, 4))
        nonzero = "0x04C..0x04F";
    else
    if (version == 2 && !umb_bytes_is_zero (data + 0x188, 0x1A0 - 0x188))
        nonzero = "0x188..0x19F";
    else
    if (version >= 3 && !umb_bytes_is_zero (data + 0x18B, 0x1A0 - 0x18B))
        nonzero = "0x18B..0x19F";
    else
    if (data [0x1EB] || data [0x1EF])
        nonzero = "0x1EB, 0x1EF";
    else
    if (version < 5 && !umb_bytes_is_zero (data + 0x1F8, S_SIGNATURE - 0x1F8))
        nonzero = "0x1F8..0x29F";
    else
    if (version >= 5 && !umb_bytes_is_zero (data + 0x208, S_SIGNATURE - 0x208))
        nonzero = "0x208..0x29F";
    else
    if (!umb_bytes_is_zero (data + S_SIG_RESERVED, UMB_SNP_REPORT_SIZE - S_SIG_RESERVED))
        nonzero = "signature 0x330..0x49F";
    if (nonzero) {
        umb_reason_set (reason, reason_size, "reserved field %s is not zero", nonzero);
        return NULL;
    }
    umb_snp_report_t *self = (umb_snp_report_t *) malloc (sizeof (umb_snp_report_t));
    if (!self) {
        umb_reason_set (reason, reason_size, "out of memory");
        return NULL;
    }
    memcpy (self->data, data, UMB_SNP_REPORT_SIZE);
    return self;
}

void
umb_snp_report_destroy (umb_snp_report_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

#define S_U32_GETTER(name, offset) \
    uint32_t umb_snp_report_##name (umb_snp_report_t *self) \
    { assert (self); return umb_bytes_le32 (self->data + (offset)); }
#define S_U64_GETTER(name, offset) \
    uint64_t umb_snp_report_##name (umb_snp_report_t *self) \
    { assert (self); return umb_bytes_le64 (self->data + (offset)); }
#define S_BYTES_GETTER(name, offset) \
    const uint8_t *umb_snp_report_##name (umb_snp_report_t *self) \
    { assert (self); return self->data + (offset); }

S_U32_GETTER (version, S_VERSION)
S_U32_GETTER (guest_svn, S_GUEST_SVN)
S_U64_GETTER (policy, S_POLICY)
S_U32_GETTER (vmpl, S_VMPL)
S_U32_GETTER (signature_algo, S_SIGNATURE_ALGO)
S_U64_GETTER (current_tcb, S_CURRENT_TCB)
S_U64_GETTER (reported_tcb, S_REPORTED_TCB)
S_U64_GETTER (committed_tcb, S_COMMITTED_TCB)
S_U64_GETTER (launch_tcb, S_LAUNCH_TCB)
S_U64_GETTER (platform_info, S_PLATFORM_INFO)
S_U32_GETTER (signer_info, S_SIGNER_INFO)
S_BYTES_GETTER (family_id, S_FAMILY_ID)
S_BYTES_GETTER (image_id, S_IMAGE_ID)
S_BYTES_GETTER (report_data, S_REPORT_DATA)
S_BYTES_GETTER (measurement, S_MEASUREMENT)
S_BYTES_GETTER (host_data, S_HOST_DATA)
S_BYTES_GETTER (id_key_digest, S_ID_KEY_DIGEST)
S_BYTES_GETTER (author_key_digest, S_AUTHOR_KEY_DIGEST)
S_BYTES_GETTER (report_id, S_REPORT_ID)
S_BYTES_GETTER (report_id_ma, S_REPORT_ID_MA)
S_BYTES_GETTER (chip_id, S_CHIP_ID)
S_BYTES_GETTER (sig_r, S_SIG_R)
S_BYTES_GETTER (sig_s, S_SIG_S)

bool
umb_snp_report_author_key_en (umb_snp_report_t *self)
{
    return (umb_snp_report_signer_info (self) & 1) != 0;
}

bool
umb_snp_report_mask_chip_id (umb_snp_report_t *self)
{
    return (umb_snp_report_signer_info (self) & 2) != 0;
}

int
umb_snp_report_signing_key (umb_snp_report_t *self)
{
    return (umb_snp_report_signer_info (self) >> 2) & 7;
}

bool
umb_snp_report_cpuid (umb_snp_report_t *self, uint8_t *family, uint8_t *model, uint8_t *stepping)
{
    assert (self);
    bool known = umb_snp_report_version (self) >= 3;
    if (family)
        *family = known? self->data [S_CPUID_FAM_ID]: 0;
    if (model)
        *model = known? self->data [S_CPUID_MOD_ID]: 0;
    if (stepping)
        *stepping = known? self->data [S_CPUID_STEP]: 0;
    return known;
}

const uint8_t *
umb_snp_report_signed (umb_snp_report_t *self, size_t *size)
{
    assert (self);
    if (size)
        *size = UMB_SNP_SIGNED_SIZE;
    return self->data;
}

//  A little-endian 72-byte scalar as a BIGNUM; NULL unless it fits in 48 bytes
static BIGNUM *
s_scalar (const uint8_t *little_endian)
{
    if (!umb_bytes_is_zero (little_endian + S_P384_SIZE, UMB_SNP_SIG_COMPONENT_SIZE - S_P384_SIZE))
        return NULL;
    return BN_lebin2bn (little_endian, S_P384_SIZE, NULL);
}

static bool
s_is_p384 (EVP_PKEY *key)
{
    char group [32];
    return key && EVP_PKEY_get_base_id (key) == EVP_PKEY_EC
        && EVP_PKEY_get_group_name (key, group, sizeof group, NULL) == 1
        && streq (group, "secp384r1");
}

int
umb_snp_verify_signature (umb_snp_report_t *report, X509 *vcek, char *reason, size_t size)
{
    if (!report)
        return umb_reason_set (reason, size, "no report");
    if (!vcek)
        return umb_reason_set (reason, size, "no VCEK/VLEK certificate");
    if (umb_snp_report_signing_key (report) == UMB_SNP_SIGNING_KEY_NONE)
        return umb_reason_set (reason, size, "report is not signed (signing key selector 7)");
    EVP_PKEY *key = X509_get0_pubkey (vcek);
    if (!s_is_p384 (key))
        return umb_reason_set (reason, size, "certificate key is not ECDSA P-384");

    int rc = -1;
    uint8_t *der = NULL;
    EVP_MD_CTX *ctx = NULL;
    BIGNUM *r = s_scalar (report->data + S_SIG_R);
    BIGNUM *s = s_scalar (report->data + S_SIG_S);
    ECDSA_SIG *sig = ECDSA_SIG_new ();
    if (!r || !s || !sig) {
        umb_reason_set (reason, size, "malformed signature (r or s out of range)");
        goto done;
    }
    if (ECDSA_SIG_set0 (sig, r, s) != 1) {
        umb_reason_set (reason, size, "malformed signature");
        goto done;
    }
    r = s = NULL;           //  owned by sig now
    int der_size = i2d_ECDSA_SIG (sig, &der);
    ctx = EVP_MD_CTX_new ();
    if (der_size <= 0 || !ctx
    ||  EVP_DigestVerifyInit (ctx, NULL, EVP_sha384 (), NULL, key) != 1) {
        umb_reason_set (reason, size, "cannot set up signature verification");
        goto done;
    }
    if (EVP_DigestVerify (ctx, der, (size_t) der_size, report->data, UMB_SNP_SIGNED_SIZE) != 1) {
        umb_reason_set (reason, size, "report signature does not verify");
        goto done;
    }
    rc = 0;
done:
    ERR_clear_error ();
    EVP_MD_CTX_free (ctx);
    OPENSSL_free (der);
    ECDSA_SIG_free (sig);
    BN_free (r);
    BN_free (s);
    return rc;
}

//  Checks that cert is signed by issuer with RSASSA-PSS/SHA-384 and is valid at when
static int
s_check_link (X509 *cert, X509 *issuer, const char *what, time_t when, char *reason, size_t size)
{
    if (X509_get_signature_nid (cert) != NID_rsassaPss)
        return umb_reason_set (reason, size, "%s is not signed with RSASSA-PSS", what);
    int md_nid = NID_undef;
    if (X509_get_signature_info (cert, &md_nid, NULL, NULL, NULL) != 1 || md_nid != NID_sha384)
        return umb_reason_set (reason, size, "%s is not signed with SHA-384", what);
    if (X509_NAME_cmp (X509_get_issuer_name (cert), X509_get_subject_name (issuer)) != 0)
        return umb_reason_set (reason, size, "%s issuer name does not match its issuer", what);
    return umb_x509_check_signed (cert, X509_get0_pubkey (issuer), what, when, reason, size);
}

#define S_MAX_BUNDLE 8

int
umb_snp_verify_chain (X509 *vcek, const char *ask_ark_pem, int64_t at_time, char *reason, size_t size)
{
    if (!vcek)
        return umb_reason_set (reason, size, "no VCEK/VLEK certificate");
    if (!ask_ark_pem)
        return umb_reason_set (reason, size, "no ASK/ARK certificates");
    time_t when = at_time? (time_t) at_time: time (NULL);

    int rc = -1;
    X509 *bundle [S_MAX_BUNDLE] = { NULL };
    X509 *arks [S_ARK_COUNT] = { NULL };
    size_t count = umb_x509_read_pem (ask_ark_pem, bundle, S_MAX_BUNDLE);
    if (count == 0) {
        umb_reason_set (reason, size, "no certificate in the ASK/ARK bundle");
        goto done;
    }
    for (size_t i = 0; i < S_ARK_COUNT; i++)
        if (!(arks [i] = umb_x509_from_pem (s_arks [i]))) {
            umb_reason_set (reason, size, "cannot load the built-in AMD roots");
            goto done;
        }
    //  A root in the bundle must be one of ours
    for (size_t i = 0; i < count; i++) {
        if (X509_NAME_cmp (X509_get_subject_name (bundle [i]), X509_get_issuer_name (bundle [i])) != 0)
            continue;
        bool known = false;
        for (size_t j = 0; j < S_ARK_COUNT; j++)
            known |= umb_x509_same (bundle [i], arks [j]);
        if (!known) {
            umb_reason_set (reason, size, "the bundle holds a root that is not a built-in AMD ARK");
            goto done;
        }
    }
    for (size_t i = 0; i < S_ARK_COUNT; i++)
        if (umb_x509_same (vcek, arks [i])) {
            umb_reason_set (reason, size, "the VCEK/VLEK is an ARK");
            goto done;
        }
    //  The intermediate: a non-root of the bundle whose subject is the VCEK's issuer
    X509 *ask = NULL;
    for (size_t i = 0; i < count && !ask; i++)
        if (X509_NAME_cmp (X509_get_subject_name (bundle [i]), X509_get_issuer_name (vcek)) == 0
        &&  X509_NAME_cmp (X509_get_subject_name (bundle [i]), X509_get_issuer_name (bundle [i])) != 0)
            ask = bundle [i];
    if (!ask) {
        umb_reason_set (reason, size, "no ASK/ASVK in the bundle issued the VCEK/VLEK");
        goto done;
    }
    X509 *ark = NULL;
    for (size_t i = 0; i < S_ARK_COUNT && !ark; i++)
        if (X509_NAME_cmp (X509_get_subject_name (arks [i]), X509_get_issuer_name (ask)) == 0)
            ark = arks [i];
    if (!ark) {
        umb_reason_set (reason, size, "the ASK/ASVK was not issued by a built-in AMD ARK");
        goto done;
    }
    if (s_check_link (ark, ark, "ARK", when, reason, size)
    ||  s_check_link (ask, ark, "ASK/ASVK", when, reason, size)
    ||  s_check_link (vcek, ask, "VCEK/VLEK", when, reason, size))
        goto done;
    if (!s_is_p384 (X509_get0_pubkey (vcek))) {
        umb_reason_set (reason, size, "VCEK/VLEK key is not ECDSA P-384");
        goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; i < count; i++)
        X509_free (bundle [i]);
    for (size_t i = 0; i < S_ARK_COUNT; i++)
        X509_free (arks [i]);
    ERR_clear_error ();
    return rc;
}

//  The content of vcek's extension oid, or NULL; *size set
static const uint8_t *
s_extension (X509 *cert, const char *oid, int *size)
{
    ASN1_OBJECT *object = OBJ_txt2obj (oid, 1);
    int index = object? X509_get_ext_by_OBJ (cert, object, -1): -1;
    ASN1_OBJECT_free (object);
    if (index < 0)
        return NULL;
    //  A second copy of the same extension is ambiguous
    object = OBJ_txt2obj (oid, 1);
    int again = X509_get_ext_by_OBJ (cert, object, index);
    ASN1_OBJECT_free (object);
    if (again >= 0)
        return NULL;
    ASN1_OCTET_STRING *value = X509_EXTENSION_get_data (X509_get_ext (cert, index));
    *size = ASN1_STRING_length (value);
    return ASN1_STRING_get0_data (value);
}

//  An SPL extension (DER INTEGER 0..255) -> 0..255, -1 if absent, -2 if malformed
static int
s_spl (X509 *cert, const char *oid)
{
    int size = 0;
    const uint8_t *data = s_extension (cert, oid, &size);
    if (!data)
        return -1;
    const uint8_t *cursor = data;
    ASN1_INTEGER *integer = d2i_ASN1_INTEGER (NULL, &cursor, size);
    int64_t value = -1;
    int rc = -2;
    if (integer && cursor == data + size && ASN1_INTEGER_get_int64 (&value, integer) == 1
    &&  value >= 0 && value <= 255)
        rc = (int) value;
    ASN1_INTEGER_free (integer);
    ERR_clear_error ();
    return rc;
}

#define S_OID_BL_SPL    "1.3.6.1.4.1.3704.1.3.1"
#define S_OID_TEE_SPL   "1.3.6.1.4.1.3704.1.3.2"
#define S_OID_SNP_SPL   "1.3.6.1.4.1.3704.1.3.3"
#define S_OID_UCODE_SPL "1.3.6.1.4.1.3704.1.3.8"
#define S_OID_FMC_SPL   "1.3.6.1.4.1.3704.1.3.9"
#define S_OID_HWID      "1.3.6.1.4.1.3704.1.4"

int
umb_snp_check_tcb (umb_snp_report_t *report, X509 *vcek, char *reason, size_t size)
{
    if (!report)
        return umb_reason_set (reason, size, "no report");
    if (!vcek)
        return umb_reason_set (reason, size, "no VCEK/VLEK certificate");
    int signing_key = umb_snp_report_signing_key (report);
    const char *expected_cn = signing_key == UMB_SNP_SIGNING_KEY_VCEK? "SEV-VCEK":
                              signing_key == UMB_SNP_SIGNING_KEY_VLEK? "SEV-VLEK": NULL;
    if (!expected_cn)
        return umb_reason_set (reason, size, "report is not signed by a VCEK or VLEK");
    char cn [64] = "";
    if (X509_NAME_get_text_by_NID (X509_get_subject_name (vcek), NID_commonName, cn, sizeof cn) <= 0
    ||  !streq (cn, expected_cn))
        return umb_reason_set (reason, size, "report names a %s but the certificate is '%s'", expected_cn, cn);

    int bl = s_spl (vcek, S_OID_BL_SPL);
    int tee = s_spl (vcek, S_OID_TEE_SPL);
    int snp = s_spl (vcek, S_OID_SNP_SPL);
    int ucode = s_spl (vcek, S_OID_UCODE_SPL);
    int fmc = s_spl (vcek, S_OID_FMC_SPL);
    if (bl < 0 || tee < 0 || snp < 0 || ucode < 0 || fmc == -2)
        return umb_reason_set (reason, size, "certificate TCB extensions are missing or malformed");
    uint8_t family = 0;
    bool turin = fmc >= 0;
    if (umb_snp_report_cpuid (report, &family, NULL, NULL) && (family == 0x1A) != turin)
        return umb_reason_set (reason, size, "certificate and report disagree on the product (CPU family 0x%x)", family);

    const uint8_t *tcb = report->data + S_REPORTED_TCB;
    bool match = turin
        ?   tcb [0] == fmc && tcb [1] == bl && tcb [2] == tee && tcb [3] == snp && tcb [7] == ucode
        :   tcb [0] == bl && tcb [1] == tee && tcb [6] == snp && tcb [7] == ucode;
    if (!match)
        return umb_reason_set (reason, size, "reported TCB 0x%016llx does not match the certificate"
                               " (bl=%d tee=%d snp=%d ucode=%d fmc=%d)",
                               (unsigned long long) umb_bytes_le64 (tcb), bl, tee, snp, ucode, fmc);

    int hwid_size = 0;
    const uint8_t *hwid = s_extension (vcek, S_OID_HWID, &hwid_size);
    if (signing_key == UMB_SNP_SIGNING_KEY_VCEK) {
        if (!hwid || (hwid_size != 64 && hwid_size != 8))
            return umb_reason_set (reason, size, "VCEK has no valid hwID extension");
        if (hwid_size == 8 && !turin)
            return umb_reason_set (reason, size, "VCEK has an 8-byte hwID but is not a Turin VCEK");
        if (memcmp (hwid, report->data + S_CHIP_ID, (size_t) hwid_size) != 0)
            return umb_reason_set (reason, size, "report chip_id does not match the VCEK hwID");
    }
    else
    if (hwid)
        return umb_reason_set (reason, size, "VLEK carries a hwID extension");
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest: known answers from ../shared/vectors/sev-snp (EXPECTED_SNP.json)

typedef struct {
    const char *report;
    const char *cert;
    uint32_t version, guest_svn;
    uint64_t policy;
    uint32_t vmpl, signature_algo;
    uint64_t platform_info;
    uint32_t signer_info;
    const char *current_tcb, *reported_tcb, *committed_tcb, *launch_tcb;
    const char *family_id, *image_id, *report_data, *measurement, *host_data;
    const char *id_key_digest, *author_key_digest, *report_id, *report_id_ma, *chip_id;
    uint8_t cpuid_family, cpuid_model, cpuid_step;
    const char *sig_r, *sig_s, *signed_sha384;
    int signing_key;
} s_case_t;

static const s_case_t s_cases [] = {
    {   "go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer",
        2, 0, 0xb0000, 0, 1, 0x1, 0x0,
        "0200000000000544",
        "0200000000000544",
        "0200000000000544",
        "0200000000000544",
        "00000000000000000000000000000000",
        "00000000000000000000000000000000",
        "01020304050000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d",
        0, 0, 0,
        "4f8e8b5ab8f8f969ca4f27b6bba65faa5313ae72f66b893874bce5d62d3b08babb321ac2c990a5d24b50a232999cc821000000000000000000000000000000000000000000000000",
        "e689246ba09566b6b6f91c3004a15f8f34bd65020b7e16f447f876428bd7e90adb2c157fc9311becf6119498555d10e0000000000000000000000000000000000000000000000000",
        "2241aba7c08be142e1b66585376539b6d16fa8dafd185f7b9ccdaf4e9d8551e51bcef29cf32ad0b913fb2af3f49196ae",
        UMB_SNP_SIGNING_KEY_VCEK },
    {   "virtee-sev/report_milan.bin", "virtee-sev/vcek_milan.der",
        2, 0, 0x30000, 0, 1, 0x1, 0x0,
        "0300000000000873",
        "0300000000000873",
        "0300000000000873",
        "0300000000000873",
        "00000000000000000000000000000000",
        "00000000000000000000000000000000",
        "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd",
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "92b3b47d59f0a2a10a74c5678868a80238cf593c01a82f3cffb878e904c28d5b",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6",
        0, 0, 0,
        "61ab4f11aa661997625f233df42a4ad54440eeb7a96ea63de170cbc29c37c005cb54054881ec7d2bee569b02d07f8272000000000000000000000000000000000000000000000000",
        "209d7eb9be919a1d0baf1d57fe6ebfeabbc53b778c6e977e40b15ca931bb6d44c5ab9e30cfdc7346cb41ac083b90bf49000000000000000000000000000000000000000000000000",
        "4a0a381698d41e9ed56d29569d7808992893cee54351d8382716326fa7593b92665526eb1ca93891ff247c68548b69c4",
        UMB_SNP_SIGNING_KEY_VCEK },
    {   "trustee/test-report.bin", "trustee/test-vcek.der",
        2, 4, 0x3001f, 0, 1, 0x1, 0x0,
        "03000000000008ce",
        "0300000000000873",
        "0300000000000873",
        "0300000000000873",
        "01000000000000000000000000000000",
        "02000000000000000000000000000000",
        "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e20000000000000000000000000000000000000000000000000000000000000000",
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "385eba81216de4776548fcb86f8ead03c1ebc92b6207f3210d9ccebb89c99005",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e",
        0, 0, 0,
        "06ebdc4f4e4143cc62fe15b9f2d1ec2d54d4ab17669e51282216165eb31b5f59e16201aadca4fbdcd941f13268390850000000000000000000000000000000000000000000000000",
        "406378d41a26623c5bad9ab8ce98d6cd3143902b916bc7a334bcd16a81d6c714a13056a79214b5bc5570f9b5145dcfe4000000000000000000000000000000000000000000000000",
        "429dfccd12fa1ad399ae2d25ddc05ed608f64cd351c1a946068d41a6c78a2a8a24fe9d15d6b2c95a20944f6dac223311",
        UMB_SNP_SIGNING_KEY_VCEK },
    {   "trustee/test-vlek-report.bin", "trustee/test-vlek.der",
        3, 0, 0x30000, 1, 1, 0x27, 0x4,
        "04000000000018dc",
        "04000000000018d9",
        "04000000000018db",
        "04000000000018db",
        "00000000000000000000000000000000",
        "00000000000000000000000000000000",
        "819770b7e6ea6df8dd8fd4dd146b073c0bf4f3ce5b0977ecac486e3a05ed1bd54e2a7ac1f5d1ca02e7d7d5ef9f73b8574fd9359e3a480d741a4478e8a7bc27ca",
        "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "62e04fba700afd93b3a0cc0649b633ee36587fa8a8c2eb5d9b7cd7bc5f4bb057",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        25, 1, 1,
        "bc5688f13b2d3df6fef925555ceacf9fe31dc94c5eb4014e07fa2bbe2f14ae90213bf0e584416f0fdf9c22ee7c94445f000000000000000000000000000000000000000000000000",
        "e0fb397a86fad16bc2bc91f1e73e4140b78a3a89b9bb1c11b94bdb3753f9cd5d26cfce131c56f418e14ac2e6cd0bc4c2000000000000000000000000000000000000000000000000",
        "e1cc57b0d0218878e5100e601cc4df9ccd671e0cb63de7c6742659805b61330ac5b88b620fc7d13447fc15d96e453276",
        UMB_SNP_SIGNING_KEY_VLEK },
};

//  Chains each genuine VCEK/VLEK must pass with, and when
typedef struct {
    const char *cert;
    const char *bundle;
    int64_t at_time;
} s_chain_t;

#define S_VLEK_VALID_AT 1748736000     //  2025-06-01, inside test-vlek.der's validity

static const s_chain_t s_chains [] = {
    { "go-sev-guest/vcek.testcer",  "go-sev-guest/ask_ark_milan.pem", 0 },
    { "go-sev-guest/vcek.testcer",  "go-sev-guest/milan.testcer", 0 },
    { "go-sev-guest/vcek.testcer",  "trustee/milan_ask_ark_asvk.pem", 0 },
    { "go-sev-guest/vcek.testcer",  "virtee-sev/cert_chain_milan", 0 },
    { "go-sev-guest/vcek.testcer",  "amd-roots/SEV-Milan.pem", 0 },
    { "virtee-sev/vcek_milan.der",  "virtee-sev/cert_chain_milan", 0 },
    { "virtee-sev/vcek_milan.der",  "virtee-sev/milan_ask.pem", 0 },
    { "trustee/test-vcek.der",      "trustee/milan_ask_ark_asvk.pem", 0 },
    { "trustee/test-vcek.der",      "go-sev-guest/ask_ark_milan.pem", 0 },
    { "virtee-sev/vcek_turin.der",  "virtee-sev/cert_chain_turin", 0 },
    { "virtee-sev/vcek_turin.der",  "go-sev-guest/ask_ark_turin_vcek.pem", 0 },
    { "virtee-sev/vcek_turin.der",  "trustee/turin_ask_ark_asvk.pem", 0 },
    { "trustee/test-vlek.der",      "trustee/milan_ask_ark_asvk.pem", S_VLEK_VALID_AT },
    { "trustee/test-vlek.der",      "go-sev-guest/ask_ark_milan_vlek.pem", S_VLEK_VALID_AT },
    { "trustee/test-vlek.der",      "go-sev-guest/milanvlek.testcer", S_VLEK_VALID_AT },
    { "trustee/test-vlek.der",      "amd-roots/SEV-VLEK-Milan.pem", S_VLEK_VALID_AT },
};

static uint8_t *
s_load (const char *name, size_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/sev-snp/%s", UMB_VECTORS_DIR, name);
    FILE *file = fopen (path, "rb");
    assert (file);
    uint8_t *data = (uint8_t *) malloc (1 << 16);
    assert (data);
    *size = fread (data, 1, (1 << 16) - 1, file);
    data [*size] = 0;           //  so PEM files are strings
    fclose (file);
    return data;
}

static X509 *
s_load_x509 (const char *name)
{
    size_t size;
    uint8_t *data = s_load (name, &size);
    const uint8_t *cursor = data;
    X509 *cert = d2i_X509 (NULL, &cursor, (long) size);
    if (!cert)
        cert = umb_x509_from_pem ((const char *) data);
    ERR_clear_error ();
    free (data);
    return cert;
}

static void
s_assert_hex (const uint8_t *data, size_t size, const char *expected)
{
    char hex [2 * 72 + 1];
    assert (size <= 72);
    umb_hex_encode (data, size, hex);
    if (strlen (expected) != 2 * size || strcmp (hex, expected) != 0) {
        fprintf (stderr, "umb_snp: got %s, expected %s\n", hex, expected);
        assert (false);
    }
}

static void
s_assert_tcb (uint64_t tcb, const char *expected)
{
    uint8_t bytes [8];
    for (int i = 0; i < 8; i++)
        bytes [i] = (uint8_t) (tcb >> (8 * i));
    s_assert_hex (bytes, 8, expected);
}

static void
s_assert_refused (const uint8_t *data, size_t size, const char *why)
{
    char reason [256] = "";
    umb_snp_report_t *report = umb_snp_report_parse (data, size, reason, sizeof reason);
    assert (!report);
    if (!strstr (reason, why)) {
        fprintf (stderr, "umb_snp: reason '%s' does not say '%s'\n", reason, why);
        assert (false);
    }
}

static void
s_test_case (const s_case_t *test, bool verbose)
{
    char reason [256] = "";
    size_t size;
    uint8_t *data = s_load (test->report, &size);
    umb_snp_report_t *report = umb_snp_report_parse (data, size, reason, sizeof reason);
    if (!report)
        fprintf (stderr, "umb_snp: %s: %s\n", test->report, reason);
    assert (report);
    assert (umb_snp_report_version (report) == test->version);
    assert (umb_snp_report_guest_svn (report) == test->guest_svn);
    assert (umb_snp_report_policy (report) == test->policy);
    assert (umb_snp_report_vmpl (report) == test->vmpl);
    assert (umb_snp_report_signature_algo (report) == test->signature_algo);
    assert (umb_snp_report_platform_info (report) == test->platform_info);
    assert (umb_snp_report_signer_info (report) == test->signer_info);
    assert (umb_snp_report_signing_key (report) == test->signing_key);
    assert (!umb_snp_report_author_key_en (report));
    assert (!umb_snp_report_mask_chip_id (report));
    s_assert_tcb (umb_snp_report_current_tcb (report), test->current_tcb);
    s_assert_tcb (umb_snp_report_reported_tcb (report), test->reported_tcb);
    s_assert_tcb (umb_snp_report_committed_tcb (report), test->committed_tcb);
    s_assert_tcb (umb_snp_report_launch_tcb (report), test->launch_tcb);
    s_assert_hex (umb_snp_report_family_id (report), 16, test->family_id);
    s_assert_hex (umb_snp_report_image_id (report), 16, test->image_id);
    s_assert_hex (umb_snp_report_report_data (report), 64, test->report_data);
    s_assert_hex (umb_snp_report_measurement (report), 48, test->measurement);
    s_assert_hex (umb_snp_report_host_data (report), 32, test->host_data);
    s_assert_hex (umb_snp_report_id_key_digest (report), 48, test->id_key_digest);
    s_assert_hex (umb_snp_report_author_key_digest (report), 48, test->author_key_digest);
    s_assert_hex (umb_snp_report_report_id (report), 32, test->report_id);
    s_assert_hex (umb_snp_report_report_id_ma (report), 32, test->report_id_ma);
    s_assert_hex (umb_snp_report_chip_id (report), 64, test->chip_id);
    s_assert_hex (umb_snp_report_sig_r (report), 72, test->sig_r);
    s_assert_hex (umb_snp_report_sig_s (report), 72, test->sig_s);
    uint8_t family = 0xFF, model = 0xFF, stepping = 0xFF;
    assert (umb_snp_report_cpuid (report, &family, &model, &stepping) == (test->version >= 3));
    assert (family == test->cpuid_family && model == test->cpuid_model && stepping == test->cpuid_step);
    size_t signed_size = 0;
    const uint8_t *signed_region = umb_snp_report_signed (report, &signed_size);
    assert (signed_region && signed_size == 0x2A0);
    uint8_t digest [48];
    unsigned int digest_size = 0;
    assert (EVP_Digest (signed_region, signed_size, digest, &digest_size, EVP_sha384 (), NULL) == 1);
    s_assert_hex (digest, digest_size, test->signed_sha384);

    //  Genuine: signature and TCB/chip binding hold
    X509 *cert = s_load_x509 (test->cert);
    assert (cert);
    int rc = umb_snp_verify_signature (report, cert, reason, sizeof reason);
    if (rc)
        fprintf (stderr, "umb_snp: %s: %s\n", test->report, reason);
    assert (rc == 0);
    rc = umb_snp_check_tcb (report, cert, reason, sizeof reason);
    if (rc)
        fprintf (stderr, "umb_snp: %s: %s\n", test->report, reason);
    assert (rc == 0);
    umb_snp_report_destroy (&report);
    assert (report == NULL);
    umb_snp_report_destroy (&report);

    //  One flipped bit anywhere in the signed region: refused by the parser
    //  (version, algorithm, reserved) or by the signature
    for (size_t i = 0; i < 0x2A0; i++) {
        data [i] ^= (uint8_t) (1 << (i % 8));
        report = umb_snp_report_parse (data, size, reason, sizeof reason);
        if (report) {
            assert (umb_snp_verify_signature (report, cert, reason, sizeof reason) == -1);
            assert (strstr (reason, "does not verify"));
            umb_snp_report_destroy (&report);
        }
        data [i] ^= (uint8_t) (1 << (i % 8));
    }
    //  Flipped signature bytes: r, s, their zero high bytes, the reserved tail
    const size_t sig_offsets [] = { 0x2A0, 0x2A0 + 47, 0x2A0 + 48, 0x2A0 + 72, 0x2A0 + 119, 0x2A0 + 143 };
    for (size_t i = 0; i < sizeof sig_offsets / sizeof sig_offsets [0]; i++) {
        data [sig_offsets [i]] ^= 0x01;
        report = umb_snp_report_parse (data, size, reason, sizeof reason);
        assert (report);
        assert (umb_snp_verify_signature (report, cert, reason, sizeof reason) == -1);
        umb_snp_report_destroy (&report);
        data [sig_offsets [i]] ^= 0x01;
    }
    data [0x400] ^= 0x80;
    s_assert_refused (data, size, "reserved");
    data [0x400] ^= 0x80;

    //  The report checked against a certificate that is not its own
    const char *other = strstr (test->cert, "test-vcek.der")? "go-sev-guest/vcek.testcer": "trustee/test-vcek.der";
    X509 *stranger = s_load_x509 (other);
    assert (stranger);
    report = umb_snp_report_parse (data, size, reason, sizeof reason);
    assert (report);
    assert (umb_snp_verify_signature (report, stranger, reason, sizeof reason) == -1);
    assert (umb_snp_check_tcb (report, stranger, reason, sizeof reason) == -1);
    assert (umb_snp_verify_signature (report, NULL, reason, sizeof reason) == -1);
    assert (umb_snp_check_tcb (report, NULL, reason, sizeof reason) == -1);
    assert (umb_snp_verify_signature (NULL, cert, reason, sizeof reason) == -1);
    umb_snp_report_destroy (&report);

    //  A reported TCB other than the certificate's is refused
    data [S_REPORTED_TCB + 7] ^= 0x01;
    report = umb_snp_report_parse (data, size, reason, sizeof reason);
    assert (report);
    assert (umb_snp_check_tcb (report, cert, reason, sizeof reason) == -1);
    assert (strstr (reason, "reported TCB"));
    umb_snp_report_destroy (&report);
    data [S_REPORTED_TCB + 7] ^= 0x01;
    if (test->signing_key == UMB_SNP_SIGNING_KEY_VCEK) {
        data [S_CHIP_ID + 63] ^= 0x01;
        report = umb_snp_report_parse (data, size, reason, sizeof reason);
        assert (report);
        assert (umb_snp_check_tcb (report, cert, reason, sizeof reason) == -1);
        assert (strstr (reason, "chip_id"));
        umb_snp_report_destroy (&report);
        data [S_CHIP_ID + 63] ^= 0x01;
    }
    X509_free (stranger);
    X509_free (cert);
    free (data);
    if (verbose)
        printf (" * snp: %s verified\n", test->report);
}

static void
s_test_malformed (void)
{
    size_t size;
    uint8_t *data = s_load ("trustee/test-vlek-report.bin", &size);
    char reason [256];
    assert (size == UMB_SNP_REPORT_SIZE);
    s_assert_refused (data, size - 1, "size");
    s_assert_refused (data, size + 1, "size");      //  the buffer has room
    s_assert_refused (data, 0, "size");
    s_assert_refused (NULL, size, "size");
    assert (!umb_snp_report_parse (data, 100, NULL, 0));
    const uint32_t bad_versions [] = { 0, 1, 4, 6, 0x100, 0xFFFFFFFF };
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions [0]; i++) {
        uint8_t copy [UMB_SNP_REPORT_SIZE];
        memcpy (copy, data, sizeof copy);
        for (int byte = 0; byte < 4; byte++)
            copy [S_VERSION + byte] = (uint8_t) (bad_versions [i] >> (8 * byte));
        s_assert_refused (copy, sizeof copy, "version");
    }
    const uint32_t bad_algos [] = { 0, 2, 0x101 };
    for (size_t i = 0; i < sizeof bad_algos / sizeof bad_algos [0]; i++) {
        uint8_t copy [UMB_SNP_REPORT_SIZE];
        memcpy (copy, data, sizeof copy);
        copy [S_SIGNATURE_ALGO] = (uint8_t) bad_algos [i];
        copy [S_SIGNATURE_ALGO + 1] = (uint8_t) (bad_algos [i] >> 8);
        s_assert_refused (copy, sizeof copy, "signature algorithm");
    }
    const size_t reserved [] = { 0x4C, 0x18B, 0x19F, 0x1EB, 0x1EF, 0x1F8, 0x29F, 0x330, 0x49F };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved [0]; i++) {
        data [reserved [i]] ^= 0x10;
        s_assert_refused (data, size, "reserved");
        data [reserved [i]] ^= 0x10;
    }
    //  signer_info: unknown key selector, reserved bits
    data [S_SIGNER_INFO] = 2 << 2;
    s_assert_refused (data, size, "signing key");
    data [S_SIGNER_INFO] = 0x04;
    data [S_SIGNER_INFO + 2] = 0x01;
    s_assert_refused (data, size, "reserved");
    data [S_SIGNER_INFO + 2] = 0;
    //  An unsigned report (selector 7) parses but never verifies
    data [S_SIGNER_INFO] = 7 << 2;
    umb_snp_report_t *report = umb_snp_report_parse (data, size, reason, sizeof reason);
    assert (report);
    X509 *vlek = s_load_x509 ("trustee/test-vlek.der");
    assert (umb_snp_verify_signature (report, vlek, reason, sizeof reason) == -1);
    assert (umb_snp_check_tcb (report, vlek, reason, sizeof reason) == -1);
    umb_snp_report_destroy (&report);
    //  A VLEK-signed report with a VCEK, a VCEK-signed one with a VLEK
    data [S_SIGNER_INFO] = 0;
    report = umb_snp_report_parse (data, size, reason, sizeof reason);
    assert (report);
    assert (umb_snp_check_tcb (report, vlek, reason, sizeof reason) == -1);
    assert (strstr (reason, "SEV-VCEK"));
    umb_snp_report_destroy (&report);
    //  Version 5 is accepted, with its mitigation vectors at 0x1F8..0x207
    data [S_VERSION] = 5;
    data [0x1F8] = 1;
    report = umb_snp_report_parse (data, size, reason, sizeof reason);
    assert (report);
    assert (umb_snp_report_version (report) == 5);
    umb_snp_report_destroy (&report);
    X509_free (vlek);
    free (data);
}

static void
s_test_chains (bool verbose)
{
    char reason [256] = "";
    for (size_t i = 0; i < sizeof s_chains / sizeof s_chains [0]; i++) {
        X509 *cert = s_load_x509 (s_chains [i].cert);
        size_t size;
        char *bundle = (char *) s_load (s_chains [i].bundle, &size);
        assert (cert);
        int rc = umb_snp_verify_chain (cert, bundle, s_chains [i].at_time, reason, sizeof reason);
        if (rc)
            fprintf (stderr, "umb_snp: %s with %s: %s\n", s_chains [i].cert, s_chains [i].bundle, reason);
        assert (rc == 0);
        if (verbose)
            printf (" * snp: chain %s -> %s verified\n", s_chains [i].cert, s_chains [i].bundle);
        X509_free (cert);
        free (bundle);
    }
    size_t size;
    char *milan = (char *) s_load ("trustee/milan_ask_ark_asvk.pem", &size);
    char *genoa = (char *) s_load ("trustee/genoa_ask_ark_asvk.pem", &size);
    char *turin = (char *) s_load ("go-sev-guest/ask_ark_turin_vcek.pem", &size);
    char *ark_only = (char *) s_load ("amd-roots/ARK-Milan.pem", &size);

    //  The expired VLEK: refused now, accepted inside its validity
    X509 *vlek = s_load_x509 ("trustee/test-vlek.der");
    assert (umb_snp_verify_chain (vlek, milan, 0, reason, sizeof reason) == -1);
    assert (strstr (reason, "expired"));
    assert (umb_snp_verify_chain (vlek, milan, 1733800000, reason, sizeof reason) == -1);
    assert (strstr (reason, "not yet valid"));
    assert (umb_snp_verify_chain (vlek, milan, S_VLEK_VALID_AT, reason, sizeof reason) == 0);
    X509_free (vlek);

    //  The deliberately invalid VCEKs
    const char *invalid [] = { "trustee/test-vcek-invalid-legacy.der", "trustee/test-vcek-invalid-new.der" };
    for (size_t i = 0; i < 2; i++) {
        X509 *cert = s_load_x509 (invalid [i]);
        if (cert) {
            assert (umb_snp_verify_chain (cert, milan, 0, reason, sizeof reason) == -1);
            if (verbose)
                printf (" * snp: %s refused: %s\n", invalid [i], reason);
            X509_free (cert);
        }
    }
    //  Wrong product, no intermediate, garbage, NULLs, an ARK as the leaf
    X509 *vcek = s_load_x509 ("trustee/test-vcek.der");
    assert (umb_snp_verify_chain (vcek, genoa, 0, reason, sizeof reason) == -1);
    assert (umb_snp_verify_chain (vcek, turin, 0, reason, sizeof reason) == -1);
    assert (umb_snp_verify_chain (vcek, ark_only, 0, reason, sizeof reason) == -1);
    assert (umb_snp_verify_chain (vcek, "garbage", 0, reason, sizeof reason) == -1);
    assert (umb_snp_verify_chain (vcek, "", 0, reason, sizeof reason) == -1);
    assert (umb_snp_verify_chain (vcek, NULL, 0, reason, sizeof reason) == -1);
    assert (umb_snp_verify_chain (NULL, milan, 0, reason, sizeof reason) == -1);
    //  After the VCEK's notAfter (2030-01-24) it expires
    assert (umb_snp_verify_chain (vcek, milan, 1900000000, reason, sizeof reason) == -1);
    assert (strstr (reason, "expired"));
    X509 *ark = umb_x509_from_pem (s_ark_milan);
    assert (umb_snp_verify_chain (ark, milan, 0, reason, sizeof reason) == -1);
    X509_free (ark);
    //  A self-signed root that is not AMD's is refused even beside a good chain
    EVP_PKEY *key = EVP_EC_gen ("P-384");
    X509 *rogue = X509_new ();
    assert (key && rogue);
    X509_set_version (rogue, 2);
    X509_NAME_add_entry_by_txt (X509_get_subject_name (rogue), "CN", MBSTRING_ASC,
                                (const uint8_t *) "ARK-Milan", -1, -1, 0);
    X509_set_issuer_name (rogue, X509_get_subject_name (rogue));
    X509_gmtime_adj (X509_getm_notBefore (rogue), 0);
    X509_gmtime_adj (X509_getm_notAfter (rogue), 3600);
    X509_set_pubkey (rogue, key);
    assert (X509_sign (rogue, key, EVP_sha384 ()) > 0);
    BIO *bio = BIO_new (BIO_s_mem ());
    PEM_write_bio_X509 (bio, rogue);
    BIO_puts (bio, milan);
    BIO_write (bio, "", 1);
    char *rogue_bundle = NULL;
    BIO_get_mem_data (bio, &rogue_bundle);
    assert (umb_snp_verify_chain (vcek, rogue_bundle, 0, reason, sizeof reason) == -1);
    assert (strstr (reason, "not a built-in"));
    //  An EC P-384 leaf signed by nobody AMD
    assert (umb_snp_verify_chain (rogue, milan, 0, reason, sizeof reason) == -1);
    BIO_free (bio);
    X509_free (rogue);
    EVP_PKEY_free (key);
    X509_free (vcek);
    free (milan);
    free (genoa);
    free (turin);
    free (ark_only);
}

void
umb_snp_test (bool verbose)
{
    printf (" * umb_snp: ");
    if (verbose)
        printf ("\n");
    //  umb_bytes, which every field read relies on
    const uint8_t bytes [9] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88, 0 };
    assert (umb_bytes_le16 (bytes) == 0x0201);
    assert (umb_bytes_le32 (bytes) == 0x04030201);
    assert (umb_bytes_le64 (bytes) == 0x8807060504030201ull);
    assert (umb_bytes_is_zero (bytes + 8, 1) && umb_bytes_is_zero (bytes, 0));
    assert (!umb_bytes_is_zero (bytes, 9) && !umb_bytes_is_zero (bytes + 7, 2));
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases [0]; i++)
        s_test_case (&s_cases [i], verbose);
    s_test_malformed ();
    s_test_chains (verbose);
    printf ("OK\n");
}

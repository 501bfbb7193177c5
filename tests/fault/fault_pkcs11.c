/*
 * A fault-injecting PKCS#11 module for hsm-demo's tests: it loads the real module
 * named in its configuration and passes every call through, except that around
 * C_SetPIN it can
 *   kill-before-setpin         SIGKILL the calling process as C_SetPIN is called, before
 *                              the token sees it
 *   kill-after-setpin          SIGKILL the calling process right after C_SetPIN succeeded
 *   kill-parent-after-setpin   SIGKILL the parent (the ceremony) right after C_SetPIN
 *   logout-fails-after-setpin  make every C_Logout after a successful C_SetPIN fail
 *                              (CKR_DEVICE_ERROR), as a network HSM dropping the link
 *   revert-after-proof         set the old PIN back at the second C_Logout after
 *                              C_SetPIN (after the process proved the new PIN), as a
 *                              token store rewritten from a stale copy
 *   record-env                 write the environment of the process that calls
 *                              C_SetPIN to <this library's path>.env
 *   no-eddsa                   leave CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA out of
 *                              C_GetMechanismList, as a token without EdDSA
 *   kryoptic-uninit            as kryoptic 1.5: C_GetMechanismList on a slot whose token
 *                              is not initialized returns 0x208 (CKR_TOKEN_NOT_INITIALIZED,
 *                              a PKCS#11 3.x code), and ulMaxPinLen is 0
 *                              (CK_EFFECTIVELY_INFINITE)
 *   tpm-nul-padding            as tpm2-pkcs11: CK_TOKEN_INFO's text fields padded with
 *                              NULs instead of blanks
 *   tpm-template               as tpm2-pkcs11: C_GenerateKeyPair refuses a private key
 *                              template with CKA_DECRYPT false (CKR_GENERAL_ERROR)
 *   kill-on-sign               SIGKILL the process when the token is asked to sign (C_Sign,
 *                              C_SignFinal): an operation killed between its record and
 *                              its signature
 *   no-pin-functions           as AWS CloudHSM's SDK 5 library documents: no C_InitToken,
 *                              C_InitPIN or C_SetPIN (their function list entries empty)
 *   no-hash-rsa                leave the hash-and-sign RSA mechanisms (CKM_SHA*_RSA_PKCS,
 *                              their PSS forms, MD5/SHA1) out, as opencryptoki's soft
 *                              token: only CKM_RSA_PKCS and CKM_RSA_PKCS_PSS remain
 * The configuration is the file <this library's path>.conf, lines "real=PATH" and
 * "mode=NAME": the ceremony's SO step runs with a cleared environment.
 *
 * Only C_GetFunctionList is exported (PKCS#11 v2.40 §5.2); the function list is the
 * real module's, copied, with entries 11 (C_SetPIN) and 19 (C_Logout) replaced: the
 * v2.40 CK_FUNCTION_LIST order.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;
typedef CK_ULONG CK_SESSION_HANDLE;
typedef unsigned char CK_BYTE;

#define CKR_OK 0UL
#define CKR_DEVICE_ERROR 0x30UL
#define CKR_GENERAL_ERROR 0x05UL
#define N_FUNCTIONS 68
#define IDX_GET_FUNCTION_LIST 3
#define IDX_GET_TOKEN_INFO 6
#define IDX_GET_MECHANISM_LIST 7
#define IDX_GENERATE_KEY_PAIR 59
#define CKA_DECRYPT 0x105UL
#define CKF_TOKEN_INITIALIZED 0x400UL
#define CKR_TOKEN_NOT_INITIALIZED 0x208UL
#define CKM_EC_EDWARDS_KEY_PAIR_GEN 0x1055UL
#define CKM_EDDSA 0x1057UL
#define IDX_SIGN 43
#define IDX_SIGN_FINAL 45
#define IDX_INIT_TOKEN 9
#define IDX_INIT_PIN 10
#define IDX_SET_PIN 11
#define IDX_LOGOUT 19
#define IDX_CREATE_OBJECT 20

struct function_list {
    CK_BYTE major, minor;
    void *f[N_FUNCTIONS];
};

typedef CK_RV (*get_list_fn)(struct function_list **);
typedef CK_RV (*set_pin_fn)(CK_SESSION_HANDLE, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG);
typedef CK_RV (*logout_fn)(CK_SESSION_HANDLE);
typedef CK_RV (*mechanism_list_fn)(CK_ULONG, CK_ULONG *, CK_ULONG *);
/* CK_TOKEN_INFO up to its flags: label, manufacturerID, model, serialNumber. */
struct token_info_head {
    CK_BYTE text[32 + 32 + 16 + 16];
    CK_ULONG flags;
    CK_ULONG session_counts[4];
    CK_ULONG max_pin_len;
    CK_ULONG min_pin_len;
    CK_BYTE rest[512];
};
typedef CK_RV (*token_info_fn)(CK_ULONG, struct token_info_head *);

static struct function_list ours;
static struct function_list *real;
extern char **environ;
static char real_path[4096];
static char env_path[4200];
static char mode[64];
static int set_pin_done;
static int logouts_after;
static CK_BYTE old_pin[256], new_pin[256];
static CK_ULONG old_len, new_len;

CK_RV C_GetFunctionList(struct function_list **out);

static int load_config(void) {
    Dl_info info;
    char path[4200], line[4200];
    if (!dladdr((void *)load_config, &info) || !info.dli_fname)
        return 0;
    snprintf(path, sizeof path, "%s.conf", info.dli_fname);
    snprintf(env_path, sizeof env_path, "%s.env", info.dli_fname);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "real=", 5))
            snprintf(real_path, sizeof real_path, "%s", line + 5);
        else if (!strncmp(line, "mode=", 5))
            snprintf(mode, sizeof mode, "%s", line + 5);
    }
    fclose(f);
    return real_path[0] != 0;
}

static CK_RV w_set_pin(CK_SESSION_HANDLE h, CK_BYTE *o, CK_ULONG ol, CK_BYTE *n, CK_ULONG nl) {
    if (!strcmp(mode, "kill-before-setpin"))
        kill(getpid(), SIGKILL);
    CK_RV rv = ((set_pin_fn)real->f[IDX_SET_PIN])(h, o, ol, n, nl);
    if (rv != CKR_OK || ol > sizeof old_pin || nl > sizeof new_pin)
        return rv;
    set_pin_done = 1;
    memcpy(old_pin, o, ol);
    old_len = ol;
    memcpy(new_pin, n, nl);
    new_len = nl;
    if (!strcmp(mode, "record-env")) {
        FILE *e = fopen(env_path, "w");
        for (char **v = environ; e && *v; v++)
            fprintf(e, "%s\n", *v);
        if (e)
            fclose(e);
    }
    if (!strcmp(mode, "kill-after-setpin"))
        kill(getpid(), SIGKILL);
    if (!strcmp(mode, "kill-parent-after-setpin"))
        kill(getppid(), SIGKILL);
    return rv;
}

typedef CK_RV (*sign_fn)(CK_SESSION_HANDLE, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG *);
typedef CK_RV (*sign_final_fn)(CK_SESSION_HANDLE, CK_BYTE *, CK_ULONG *);

static CK_RV w_sign(CK_SESSION_HANDLE h, CK_BYTE *d, CK_ULONG dl, CK_BYTE *s, CK_ULONG *sl) {
    if (!strcmp(mode, "kill-on-sign"))
        kill(getpid(), SIGKILL);
    return ((sign_fn)real->f[IDX_SIGN])(h, d, dl, s, sl);
}

static CK_RV w_sign_final(CK_SESSION_HANDLE h, CK_BYTE *s, CK_ULONG *sl) {
    if (!strcmp(mode, "kill-on-sign"))
        kill(getpid(), SIGKILL);
    return ((sign_final_fn)real->f[IDX_SIGN_FINAL])(h, s, sl);
}

static CK_RV w_logout(CK_SESSION_HANDLE h) {
    if (set_pin_done) {
        logouts_after++;
        if (!strcmp(mode, "logout-fails-after-setpin"))
            return CKR_DEVICE_ERROR;
        if (!strcmp(mode, "revert-after-proof") && logouts_after == 2)
            ((set_pin_fn)real->f[IDX_SET_PIN])(h, new_pin, new_len, old_pin, old_len);
    }
    return ((logout_fn)real->f[IDX_LOGOUT])(h);
}

static int hidden(CK_ULONG m) {
    if (!strcmp(mode, "no-eddsa"))
        return m == CKM_EC_EDWARDS_KEY_PAIR_GEN || m == CKM_EDDSA;
    if (!strcmp(mode, "no-hash-rsa"))
        /* MD5/SHA1 RSA (0x05, 0x06, 0x0e) and SHA-2 RSA (0x40 to 0x47) */
        return m == 0x05 || m == 0x06 || m == 0x0e || (m >= 0x40 && m <= 0x47);
    return 0;
}

struct attribute {
    CK_ULONG type;
    void *value;
    CK_ULONG len;
};
typedef CK_RV (*generate_key_pair_fn)(CK_SESSION_HANDLE, void *, struct attribute *, CK_ULONG,
                                      struct attribute *, CK_ULONG, CK_ULONG *, CK_ULONG *);

static CK_RV w_generate_key_pair(CK_SESSION_HANDLE h, void *mech, struct attribute *pub,
                                 CK_ULONG npub, struct attribute *priv, CK_ULONG npriv,
                                 CK_ULONG *hpub, CK_ULONG *hpriv) {
    if (!strcmp(mode, "tpm-template"))
        for (CK_ULONG i = 0; i < npriv; i++)
            if (priv[i].type == CKA_DECRYPT && priv[i].len == 1 && *(CK_BYTE *)priv[i].value == 0)
                return CKR_GENERAL_ERROR;
    return ((generate_key_pair_fn)real->f[IDX_GENERATE_KEY_PAIR])(h, mech, pub, npub, priv, npriv,
                                                                  hpub, hpriv);
}

static CK_RV w_get_token_info(CK_ULONG slot, struct token_info_head *info) {
    CK_RV rv = ((token_info_fn)real->f[IDX_GET_TOKEN_INFO])(slot, info);
    if (rv != CKR_OK)
        return rv;
    if (!strcmp(mode, "kryoptic-uninit"))
        info->max_pin_len = 0;
    if (!strcmp(mode, "tpm-nul-padding")) {
        /* label, manufacturerID, model, serialNumber: trailing blanks become NULs */
        static const int ends[4] = {32, 64, 80, 96}, starts[4] = {0, 32, 64, 80};
        for (int f = 0; f < 4; f++)
            for (int i = ends[f] - 1; i >= starts[f] && info->text[i] == ' '; i--)
                info->text[i] = 0;
    }
    return rv;
}

static CK_RV w_get_mechanism_list(CK_ULONG slot, CK_ULONG *list, CK_ULONG *count) {
    if (!strcmp(mode, "kryoptic-uninit")) {
        struct token_info_head info;
        if (((token_info_fn)real->f[IDX_GET_TOKEN_INFO])(slot, &info) == CKR_OK
            && !(info.flags & CKF_TOKEN_INITIALIZED))
            return CKR_TOKEN_NOT_INITIALIZED;
    }
    CK_RV rv = ((mechanism_list_fn)real->f[IDX_GET_MECHANISM_LIST])(slot, list, count);
    if (rv != CKR_OK || !list)
        return rv;
    CK_ULONG kept = 0;
    for (CK_ULONG i = 0; i < *count; i++)
        if (!hidden(list[i]))
            list[kept++] = list[i];
    *count = kept;
    return rv;
}

typedef CK_RV (*create_object_fn)(CK_SESSION_HANDLE, struct attribute *, CK_ULONG, CK_ULONG *);

/* "refuse-certificates": C_CreateObject of a CKO_CERTIFICATE fails, as on a module
 * that keeps no certificate objects. */
static CK_RV w_create_object(CK_SESSION_HANDLE h, struct attribute *t, CK_ULONG n, CK_ULONG *obj) {
    if (!strcmp(mode, "refuse-certificates"))
        for (CK_ULONG i = 0; i < n; i++)
            if (t[i].type == 0 /* CKA_CLASS */ && t[i].len == sizeof(CK_ULONG)
                && *(CK_ULONG *)t[i].value == 1 /* CKO_CERTIFICATE */)
                return 0xD1; /* CKR_TEMPLATE_INCONSISTENT */
    return ((create_object_fn)real->f[IDX_CREATE_OBJECT])(h, t, n, obj);
}

CK_RV C_GetFunctionList(struct function_list **out) {
    if (!real) {
        if (!load_config())
            return CKR_GENERAL_ERROR;
        void *lib = dlopen(real_path, RTLD_NOW | RTLD_LOCAL);
        if (!lib)
            return CKR_GENERAL_ERROR;
        get_list_fn get = (get_list_fn)dlsym(lib, "C_GetFunctionList");
        if (!get || get(&real) != CKR_OK)
            return CKR_GENERAL_ERROR;
        memcpy(&ours, real, sizeof ours);
        ours.f[IDX_GET_FUNCTION_LIST] = (void *)C_GetFunctionList;
        ours.f[IDX_SET_PIN] = (void *)w_set_pin;
        ours.f[IDX_LOGOUT] = (void *)w_logout;
        ours.f[IDX_GET_MECHANISM_LIST] = (void *)w_get_mechanism_list;
        ours.f[IDX_GET_TOKEN_INFO] = (void *)w_get_token_info;
        ours.f[IDX_GENERATE_KEY_PAIR] = (void *)w_generate_key_pair;
        ours.f[IDX_SIGN] = (void *)w_sign;
        ours.f[IDX_SIGN_FINAL] = (void *)w_sign_final;
        ours.f[IDX_CREATE_OBJECT] = (void *)w_create_object;
        if (!strcmp(mode, "no-pin-functions"))
            ours.f[IDX_INIT_TOKEN] = ours.f[IDX_INIT_PIN] = ours.f[IDX_SET_PIN] = NULL;
    }
    *out = &ours;
    return CKR_OK;
}

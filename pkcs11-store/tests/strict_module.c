/* A PKCS#11 module that holds a forked child to what PKCS#11 v2.40 (base specification, 5.5.1)
 * asks of it: the child calls C_Initialize itself before it uses the module. The specification
 * leaves a child that does not undefined; some modules answer it CKR_CRYPTOKI_NOT_INITIALIZED,
 * and SoftHSMv2 serves it anyway. This one forwards everything to the module named by
 * KEYPLANE_STRICT_PKCS11_INNER (SoftHSMv2 in the tests) and answers C_GetSlotList, C_OpenSession
 * and C_Login with CKR_CRYPTOKI_NOT_INITIALIZED in any process that has not called C_Initialize
 * through it, as such a module would.
 *
 * Built by pkcs11-store/tests/softhsm.rs at test time: cc -shared -fPIC strict_module.c -ldl.
 * No PKCS#11 header is installed here, so the few types it needs are declared below; the
 * function list is read by position (the order of CK_FUNCTION_LIST, version 2.40). */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef unsigned long CK_RV;
/* Stored as GCC's generic function pointer type, which casts to and from any other. */
typedef void (*any_fn)(void);

#define CKR_OK 0x0UL
#define CKR_GENERAL_ERROR 0x5UL
#define CKR_CRYPTOKI_NOT_INITIALIZED 0x190UL
#define CKR_CRYPTOKI_ALREADY_INITIALIZED 0x191UL

/* CK_FUNCTION_LIST: a CK_VERSION (two bytes) and 68 function pointers, in this order. */
#define FUNCTIONS 68
#define C_INITIALIZE 0
#define C_GET_FUNCTION_LIST 3
#define C_GET_SLOT_LIST 4
#define C_OPEN_SESSION 12
#define C_LOGIN 18

struct function_list {
    unsigned char version[2];
    any_fn fns[FUNCTIONS];
};

static struct function_list list;
static struct function_list *inner;
/* The process that called C_Initialize through this module; 0 for none. A forked child inherits
 * its parent's, which is not its own. */
static pid_t initialised_in;

static int initialised_here(void) { return initialised_in != 0 && initialised_in == getpid(); }

/* KEYPLANE_STRICT_PKCS11_INIT_DELAY_MS: C_Initialize takes that long, as a network HSM's may,
 * after creating the file KEYPLANE_STRICT_PKCS11_INIT_SIGNAL names (if any), so that a test knows
 * its caller is inside. */
static void initialise_slowly(void) {
    const char *delay = getenv("KEYPLANE_STRICT_PKCS11_INIT_DELAY_MS");
    if (delay == NULL) return;
    const char *signal = getenv("KEYPLANE_STRICT_PKCS11_INIT_SIGNAL");
    if (signal != NULL) {
        FILE *f = fopen(signal, "w");
        if (f != NULL) fclose(f);
    }
    long ms = atol(delay);
    struct timespec wait = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&wait, &wait) != 0) {
    }
}

static CK_RV strict_initialize(void *args) {
    if (initialised_here()) return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    initialise_slowly();
    CK_RV rv = ((CK_RV(*)(void *))inner->fns[C_INITIALIZE])(args);
    /* The inner module may keep its parent's initialisation (SoftHSMv2 does), or another user
     * in this process may have initialised it: either way it is ready. */
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) return rv;
    initialised_in = getpid();
    return CKR_OK;
}

static CK_RV strict_get_slot_list(unsigned char present, void *slots, void *count) {
    if (!initialised_here()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    return ((CK_RV(*)(unsigned char, void *, void *))inner->fns[C_GET_SLOT_LIST])(present, slots,
                                                                                  count);
}

static CK_RV strict_open_session(unsigned long slot, unsigned long flags, void *app,
                                 void *notify, void *session) {
    if (!initialised_here()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    return ((CK_RV(*)(unsigned long, unsigned long, void *, void *, void *))
                inner->fns[C_OPEN_SESSION])(slot, flags, app, notify, session);
}

static CK_RV strict_login(unsigned long session, unsigned long user, void *pin,
                          unsigned long pin_len) {
    if (!initialised_here()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    return ((CK_RV(*)(unsigned long, unsigned long, void *, unsigned long))inner->fns[C_LOGIN])(
        session, user, pin, pin_len);
}

CK_RV C_GetFunctionList(struct function_list **out) {
    if (out == NULL) return CKR_GENERAL_ERROR;
    if (inner == NULL) {
        const char *path = getenv("KEYPLANE_STRICT_PKCS11_INNER");
        void *lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        CK_RV (*get)(struct function_list **) =
            lib ? (CK_RV(*)(struct function_list **))dlsym(lib, "C_GetFunctionList") : NULL;
        struct function_list *found = NULL;
        if (get == NULL || get(&found) != CKR_OK || found == NULL) return CKR_GENERAL_ERROR;
        inner = found;
        memcpy(&list, inner, sizeof list);
        list.fns[C_INITIALIZE] = (any_fn)strict_initialize;
        list.fns[C_GET_FUNCTION_LIST] = (any_fn)C_GetFunctionList;
        list.fns[C_GET_SLOT_LIST] = (any_fn)strict_get_slot_list;
        list.fns[C_OPEN_SESSION] = (any_fn)strict_open_session;
        list.fns[C_LOGIN] = (any_fn)strict_login;
    }
    *out = &list;
    return CKR_OK;
}

//! The token layer's only unsafe code: CK_TOKEN_INFO read through the module's own
//! function list.
//!
//! cryptoki 0.12 converts CK_TOKEN_INFO as a whole and fails the call when `utcTime`
//! is not `YYYYMMDDhhmmss00`; opencryptoki 3.8.1's soft token sets CKF_CLOCK_ON_TOKEN
//! and fills it with "10:53:44" and NULs (docs/platform.md), so every command failed
//! there with "Error parsing string as integer". Reading the structure ourselves lets
//! [`super::info::TokenFacts`] show one bad field as unknown instead.
//!
//! Also the mechanism cryptoki 0.12 cannot name: `CKM_AES_KEY_WRAP_KWP` (PKCS#11 3.0,
//! RFC 5649; kryoptic's name for what SoftHSM calls CKM_AES_KEY_WRAP_PAD), for the
//! restore of a backup onto such a token (C_GetMechanismInfo, C_UnwrapKey).
#![allow(unsafe_code)]

use std::path::Path;

use cryptoki::error::{Error as CkError, Rv};
use cryptoki::context::Function;
use cryptoki::object::Attribute;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_C_GetFunctionList, CK_C_GetInterface, CK_FLAGS, CK_FUNCTION_LIST, CK_INTERFACE, CK_MECHANISM,
    CK_MECHANISM_INFO, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CK_SLOT_ID, CK_TOKEN_INFO,
    CKR_OK, CK_C_INITIALIZE_ARGS, CKF_OS_LOCKING_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED,
};

/// The module's CK_FUNCTION_LIST, from a second dlopen(3) of the library cryptoki
/// loaded: the same mapping, reference-counted by the loader, kept alive by `_lib`.
/// It must be the very list cryptoki initialized: a module may hand out a separate
/// instance per entry point (p11-kit-client.so does: its C_GetFunctionList list is not
/// initialized when C_Initialize went through C_GetInterface's), so the entry point is
/// chosen as cryptoki 0.12 chooses it (`Pkcs11::new`): C_GetInterface's default
/// interface when the module has it and it is version 3 or later, else
/// C_GetFunctionList. And where a module does give each call its own instance
/// (p11-kit-client.so: one per C_GetFunctionList call, each its own connection), the
/// list is initialized here: C_Initialize answers CKR_CRYPTOKI_ALREADY_INITIALIZED for
/// the instance cryptoki already initialized (PKCS#11 v2.40 §5.4), CKR_OK for a new one.
pub(super) struct FunctionList {
    _lib: libloading::Library,
    list: *const CK_FUNCTION_LIST,
    /// Whether this list is a module instance of its own that `load` initialized (and
    /// drop finalizes).
    own_instance: bool,
}

// SAFETY: the function list is a table of function pointers the module keeps for as
// long as it is loaded (PKCS#11 v2.40 §5.2, C_GetFunctionList), and the module was
// initialized with CKF_OS_LOCKING_OK, so its functions may be called from any thread.
unsafe impl Send for FunctionList {}
// SAFETY: as for Send: the table is never written through this pointer.
unsafe impl Sync for FunctionList {}

impl FunctionList {
    pub(super) fn load(path: &Path) -> Result<FunctionList, CkError> {
        // SAFETY: cryptoki has already loaded this library and run its initializers;
        // loading it again only takes another reference to the same mapping.
        let lib = unsafe { libloading::Library::new(path) }.map_err(CkError::LibraryLoading)?;
        // SAFETY: C_GetInterface has this signature in PKCS#11 3.0 (§5.2); the symbol is
        // only called here, while `lib` is alive.
        let get_interface: Option<CK_C_GetInterface> =
            unsafe { lib.get::<CK_C_GetInterface>(b"C_GetInterface\0") }.ok().map(|s| *s);
        if let Some(Some(get_interface)) = get_interface {
            let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
            // SAFETY: NULL name and version ask for the default interface (PKCS#11 3.0
            // §5.2); `iface` is a valid out-pointer.
            let rv = unsafe { get_interface(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0) };
            if rv != CKR_OK {
                return Err(rv_error(rv, Function::GetInterface));
            }
            if !iface.is_null() {
                // SAFETY: the module returned a non-null CK_INTERFACE it keeps while loaded.
                let list = unsafe { (*iface).pFunctionList } as *const CK_FUNCTION_LIST;
                // SAFETY: every interface's function list starts with a CK_VERSION and the
                // 2.40 functions in the 2.40 order (PKCS#11 3.0 §5.2, CK_FUNCTION_LIST_3_0).
                if !list.is_null() && unsafe { (*list).version.major } >= 3 {
                    return FunctionList::initialized(lib, list);
                }
            }
        }
        // SAFETY: C_GetFunctionList has this signature in every PKCS#11 version
        // (v2.40 §5.2); the symbol is only used while `lib` is alive.
        let get: libloading::Symbol<CK_C_GetFunctionList> =
            unsafe { lib.get(b"C_GetFunctionList\0") }.map_err(CkError::LibraryLoading)?;
        let get = (*get).ok_or(CkError::NullFunctionPointer)?;
        let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
        // SAFETY: `list` is a valid out-pointer for the table's address.
        let rv: CK_RV = unsafe { get(&mut list) };
        if rv != CKR_OK {
            return Err(rv_error(rv, Function::GetFunctionList));
        }
        if list.is_null() {
            return Err(CkError::NullFunctionPointer);
        }
        FunctionList::initialized(lib, list)
    }

    fn initialized(lib: libloading::Library, list: *const CK_FUNCTION_LIST) -> Result<FunctionList, CkError> {
        // SAFETY: `list` is non-null and points at the module's table.
        let init = unsafe { (*list).C_Initialize }.ok_or(CkError::NullFunctionPointer)?;
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: CKF_OS_LOCKING_OK,
            pReserved: std::ptr::null_mut(),
        };
        // SAFETY: `args` is a valid CK_C_INITIALIZE_ARGS for the call (OS locking, no
        // callbacks), as cryptoki passes it.
        let rv = unsafe { init(std::ptr::addr_of_mut!(args).cast()) };
        let own_instance = match rv {
            CKR_OK => true,
            CKR_CRYPTOKI_ALREADY_INITIALIZED => false,
            rv => return Err(rv_error(rv, Function::Initialize)),
        };
        Ok(FunctionList { _lib: lib, list, own_instance })
    }

    /// C_GetTokenInfo, with the structure returned as the module wrote it.
    pub(super) fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO, CkError> {
        // SAFETY: `list` is non-null and points at the module's table (see `load`).
        let f = unsafe { (*self.list).C_GetTokenInfo }.ok_or(CkError::NullFunctionPointer)?;
        // The module overwrites it.
        let mut info = empty_token_info();
        // SAFETY: `info` is a valid, writable CK_TOKEN_INFO for the call's duration.
        let rv = unsafe { f(slot, &mut info) };
        if rv != CKR_OK {
            return Err(rv_error(rv, Function::GetTokenInfo));
        }
        Ok(info)
    }
}

impl FunctionList {
    /// C_GetMechanismInfo's flags, for a mechanism cryptoki may not name; None when the
    /// token does not have it.
    pub(super) fn mechanism_flags(&self, slot: CK_SLOT_ID, mechanism: CK_MECHANISM_TYPE) -> Option<CK_FLAGS> {
        // SAFETY: `list` is non-null and points at the module's table (see `load`).
        let f = unsafe { (*self.list).C_GetMechanismInfo }?;
        let mut info = CK_MECHANISM_INFO { ulMinKeySize: 0, ulMaxKeySize: 0, flags: 0 };
        // SAFETY: `info` is a valid, writable CK_MECHANISM_INFO for the call's duration.
        let rv = unsafe { f(slot, mechanism, &mut info) };
        (rv == CKR_OK).then_some(info.flags)
    }

    /// C_UnwrapKey with a mechanism that has no parameter, in a session cryptoki opened
    /// on this same module instance.
    pub(super) fn unwrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        unwrapping: cryptoki::object::ObjectHandle,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<cryptoki::object::ObjectHandle, CkError> {
        // SAFETY: `list` is non-null and points at the module's table (see `load`).
        let f = unsafe { (*self.list).C_UnwrapKey }.ok_or(CkError::NullFunctionPointer)?;
        let mut mech = CK_MECHANISM { mechanism, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
        // The attributes point into `template`, which outlives the call.
        let mut attrs: Vec<CK_ATTRIBUTE> = template.iter().map(CK_ATTRIBUTE::from).collect();
        let mut wrapped = wrapped.to_vec();
        let mut handle: CK_OBJECT_HANDLE = 0;
        // SAFETY: every pointer is valid for the call: the mechanism, the blob copy and
        // the attribute array with its length; `handle` is a valid out-pointer.
        let rv = unsafe {
            f(
                session,
                &mut mech,
                unwrapping.handle(),
                wrapped.as_mut_ptr(),
                wrapped.len() as _,
                attrs.as_mut_ptr(),
                attrs.len() as _,
                &mut handle,
            )
        };
        if rv != CKR_OK {
            return Err(rv_error(rv, Function::UnwrapKey));
        }
        // SAFETY: the module just returned this handle for the new object, in this session.
        Ok(unsafe { cryptoki::object::ObjectHandle::new_from_raw(handle) })
    }
}

impl Drop for FunctionList {
    fn drop(&mut self) {
        if self.own_instance {
            // SAFETY: `list` is the module's table, alive while `_lib` is; the instance
            // was initialized by `load` and nothing else uses it.
            if let Some(finalize) = unsafe { (*self.list).C_Finalize } {
                // SAFETY: C_Finalize takes NULL (PKCS#11 v2.40 §5.4).
                unsafe { finalize(std::ptr::null_mut()) };
            }
        }
    }
}

/// A CK_TOKEN_INFO of zeroes, for C_GetTokenInfo to fill (and for tests).
pub(super) fn empty_token_info() -> CK_TOKEN_INFO {
    // SAFETY: CK_TOKEN_INFO is plain data (integers, byte arrays and CK_VERSIONs); all
    // zeroes is a valid value of each field.
    unsafe { std::mem::zeroed() }
}

fn rv_error(rv: CK_RV, function: Function) -> CkError {
    match Rv::from(rv).into_result(function) {
        Err(e) => e,
        Ok(()) => CkError::NullFunctionPointer,
    }
}

//! A loaded PKCS#11 module: its library info, slots and tokens, token initialization,
//! and the sessions it opens.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;


use super::error::describe;
use super::ffi::FunctionList;
use super::info::{padded_text, TokenFacts};
use super::session::{Public, SecurityOfficer, Session, User};
use super::{embedded, Role, TokenError, TokenRef, TokenSelector};

/// Which module to load, as resolved from the settings.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    pub path: PathBuf,
    /// The SoftHSM2 config in effect, named in messages about a missing token.
    pub softhsm_conf: Option<PathBuf>,
    /// Whether `softhsm_conf` is hsm-demo's own store, created before the module loads.
    pub embedded: bool,
    /// Where hsm-demo keeps durable copies of the SoftHSM2 store's token files
    /// (`store_guard.rs`), when it has a data directory.
    pub copies: Option<PathBuf>,
}

impl ModuleSpec {
    /// The guard of the SoftHSM2 file store this spec's config names, if any.
    pub fn store_guard(&self) -> Option<super::StoreGuard> {
        super::StoreGuard::new(self.softhsm_conf.as_deref()?, self.copies.as_deref()?)
    }
}

/// A loaded, initialised PKCS#11 module.
pub struct Module {
    pub(super) ctx: Pkcs11,
    /// The same module's function list, for what cryptoki cannot read (`ffi.rs`).
    pub(super) raw: FunctionList,
    spec: ModuleSpec,
}

/// Library-level facts (CK_INFO).
pub struct LibraryInfo {
    pub manufacturer: String,
    pub description: String,
    pub library_version: String,
    pub cryptoki_version: String,
}

/// One slot and, when present, its token.
pub struct SlotEntry {
    pub slot: Slot,
    pub description: String,
    pub manufacturer: String,
    pub token: Option<TokenState>,
    /// What could not be read about this slot (the listing goes on without it).
    pub problem: Option<String>,
}

/// A token as CK_TOKEN_INFO and the mechanism list describe it.
pub struct TokenState {
    pub token: TokenRef,
    pub info: TokenFacts,
    pub mechanisms: Vec<MechanismType>,
}

impl Module {
    /// Loads the module and calls C_Initialize (OS locking). A module the OpenSSL
    /// pkcs11-provider already initialised in this process is fine: PKCS#11 v2.40
    /// §5.4 returns CKR_CRYPTOKI_ALREADY_INITIALIZED for a second C_Initialize in one
    /// application (pkcs11-provider issue #187 is the same situation the other way round).
    pub fn open(spec: &ModuleSpec) -> Result<Module, TokenError> {
        if spec.embedded {
            if let Some(conf) = &spec.softhsm_conf {
                embedded::ensure_store(conf)?;
            }
        }
        let path = &spec.path;
        let ctx = Pkcs11::new(path).map_err(|e| TokenError::ModuleLoad {
            path: path.clone(),
            reason: module_load_reason(path, &e),
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                if let Some(problem) = spec.softhsm_conf.as_deref().and_then(embedded::store_problem) {
                    return Err(TokenError::Store(problem));
                }
                return Err(TokenError::pkcs11("initialize the PKCS#11 module")(e));
            }
        }
        let raw = FunctionList::load(path).map_err(|e| TokenError::ModuleLoad {
            path: path.clone(),
            reason: module_load_reason(path, &e),
        })?;
        Ok(Module {
            ctx,
            raw,
            spec: spec.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.spec.path
    }

    /// The guard of the SoftHSM2 store this module was opened on, if any.
    pub fn store_guard(&self) -> Option<super::StoreGuard> {
        self.spec.store_guard()
    }

    /// Whether a login writes the token's store, so that concurrent logins by other
    /// processes can corrupt what they read: SoftHSM2 rewrites its token file on
    /// C_Login (docs/platform.md, "One file store, several processes"). Decided by
    /// what the module reports in CK_INFO.
    pub fn writes_on_login(&self) -> bool {
        self.library_info()
            .is_ok_and(|info| info.manufacturer.starts_with("SoftHSM"))
    }

    pub fn softhsm_conf(&self) -> Option<&Path> {
        self.spec.softhsm_conf.as_deref()
    }

    pub fn library_info(&self) -> Result<LibraryInfo, TokenError> {
        let info = self
            .ctx
            .get_library_info()
            .map_err(TokenError::pkcs11("read the module info"))?;
        Ok(LibraryInfo {
            manufacturer: padded_text(info.manufacturer_id()),
            description: padded_text(info.library_description()),
            library_version: info.library_version().to_string(),
            cryptoki_version: info.cryptoki_version().to_string(),
        })
    }

    /// Every slot, with its token and mechanism list when a token is present.
    pub fn slots(&self) -> Result<Vec<SlotEntry>, TokenError> {
        let slots = self
            .ctx
            .get_all_slots()
            .map_err(TokenError::pkcs11("list slots"))?;
        // One slot that cannot be read does not stop the listing: it is shown with
        // what went wrong.
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let mut entry = SlotEntry {
                slot,
                description: String::new(),
                manufacturer: String::new(),
                token: None,
                problem: None,
            };
            let info = match self.ctx.get_slot_info(slot) {
                Ok(info) => info,
                Err(e) => {
                    entry.problem = Some(TokenError::pkcs11("read slot info")(e).to_string());
                    out.push(entry);
                    continue;
                }
            };
            entry.description = padded_text(info.slot_description());
            entry.manufacturer = padded_text(info.manufacturer_id());
            if info.token_present() {
                match self.token_info(slot) {
                    Ok(info) => {
                        let mechanisms = match self.ctx.get_mechanism_list(slot) {
                            Ok(m) => m,
                            Err(e) => {
                                entry.problem = Some(TokenError::pkcs11("list mechanisms")(e).to_string());
                                Vec::new()
                            }
                        };
                        entry.token = Some(TokenState {
                            token: TokenRef::new(slot, &info),
                            info,
                            mechanisms,
                        });
                    }
                    Err(e) => entry.problem = Some(e.to_string()),
                }
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// CK_TOKEN_INFO, read field by field (`info.rs`): a module that fills one field
    /// wrongly still has its token listed and used.
    pub(super) fn token_info(&self, slot: Slot) -> Result<TokenFacts, TokenError> {
        self.raw
            .token_info(slot.id())
            .map(|raw| TokenFacts::from_raw(&raw))
            .map_err(TokenError::pkcs11("read token info"))
    }

    /// The initialized tokens. (Not cryptoki's `get_slots_with_initialized_token`: it
    /// reads CK_TOKEN_INFO through the conversion `token_info` avoids.)
    pub fn tokens(&self) -> Result<Vec<TokenRef>, TokenError> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(TokenError::pkcs11("list slots with a token"))?;
        let mut tokens = Vec::new();
        for slot in slots {
            let info = self.token_info(slot)?;
            if info.token_initialized() {
                tokens.push(TokenRef::new(slot, &info));
            }
        }
        Ok(tokens)
    }

    /// The one token the selector names; with an empty selector, the only initialized
    /// token. Never "the first slot".
    pub fn select_token(&self, selector: &TokenSelector) -> Result<TokenRef, TokenError> {
        let tokens = self.tokens()?;
        if tokens.is_empty() {
            if let Some(problem) = self.softhsm_conf().and_then(embedded::store_problem) {
                return Err(TokenError::Store(problem));
            }
            let slots = self
                .ctx
                .get_all_slots()
                .map_err(TokenError::pkcs11("list slots"))?;
            if slots.is_empty() {
                return Err(TokenError::NoToken {
                    module: self.path().display().to_string(),
                    hint: ": the module reports no slots at all (a client module whose server is not running looks like this: p11-kit-client.so without `p11-kit server`, a network HSM client that cannot reach its HSM)".into(),
                });
            }
        }
        let unreadable = self.softhsm_conf().map(super::store_guard::unreadable_token_files).unwrap_or_default();
        let hint = match self.softhsm_conf() {
            // Never the advice to initialise a token where token files exist: a new token
            // over them would finish the loss.
            Some(conf) if !unreadable.is_empty() => format!(
                " (SOFTHSM2_CONF={}); the store holds token files SoftHSM cannot read ({}): do not initialise a new token over them; put them back from a backup of the store",
                conf.display(),
                unreadable.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            Some(conf) => format!(
                " (SOFTHSM2_CONF={}); initialize one with 'hsm-demo init-token --label NAME'",
                conf.display()
            ),
            None => "; initialize one with 'hsm-demo init-token --label NAME'".to_string(),
        };
        selector.select(tokens, &self.path().display().to_string(), &hint)
    }

    /// A read-write session logged in as the user. The PIN is tried exactly once.
    pub fn login_user(&self, token: &TokenRef, pin: &AuthPin) -> Result<Session<User>, TokenError> {
        self.check_login_pin_len(token.slot, &token.label, Role::User, pin)?;
        let session = self.rw_session(token)?;
        session.login(UserType::User, pin, Role::User)?;
        Ok(session)
    }

    /// A read-write session logged in as the security officer.
    pub fn login_so(
        &self,
        token: &TokenRef,
        pin: &AuthPin,
    ) -> Result<Session<SecurityOfficer>, TokenError> {
        self.check_login_pin_len(token.slot, &token.label, Role::SecurityOfficer, pin)?;
        let session = self.rw_session(token)?;
        session.login(UserType::So, pin, Role::SecurityOfficer)?;
        Ok(session)
    }

    /// An unauthenticated read-only session (public objects only).
    pub fn public_session(&self, token: &TokenRef) -> Result<Session<Public>, TokenError> {
        let session = self
            .ctx
            .open_ro_session(token.slot)
            .map_err(TokenError::pkcs11("open a session"))?;
        Ok(Session::new(session, token.clone()))
    }

    /// Another read-write session acting as the user `logged_in` is logged in as: the
    /// login is per application (PKCS#11 v2.40 §5.6), so it needs no C_Login; holding
    /// a `Session<User>` is the proof that one happened.
    pub fn another_user_session(
        &self,
        logged_in: &Session<User>,
    ) -> Result<Session<User>, TokenError> {
        self.rw_session(logged_in.token())
    }

    /// A read-write session with no login: public token objects only (a CA
    /// certificate stored without a PIN, PKCS#11 v2.40 §5.6 "R/W Public Session").
    pub fn rw_public_session(&self, token: &TokenRef) -> Result<Session<super::session::Public>, TokenError> {
        self.rw_session(token)
    }

    /// A read-write session with no login of its own. It acts with whatever role this
    /// application is logged in as: PKCS#11 login state is per application (v2.40 §5.6).
    fn rw_session<R>(&self, token: &TokenRef) -> Result<Session<R>, TokenError> {
        let session = self
            .ctx
            .open_rw_session(token.slot)
            .map_err(TokenError::pkcs11("open a session"))?;
        Ok(Session::new(session, token.clone()))
    }
}

/// Says why a module did not load, in words a user can act on.
fn module_load_reason(path: &Path, err: &CkError) -> String {
    if !path.exists() {
        return "no such file".to_string();
    }
    // dlopen(3) looks a name without a slash up in the library paths, not in the
    // current directory, so "mylib.so" fails although ./mylib.so exists.
    if path.components().count() == 1 {
        return format!(
            "{0} exists in the current directory, but a name without a '/' is looked up only in the system's library paths; use ./{0} or an absolute path",
            path.display()
        );
    }
    match err {
        CkError::LibraryLoading(e) => {
            let text = e.to_string();
            // libloading quotes dlerror(), which repeats the path; keep the reason.
            let reason = text.rsplit(": ").next().unwrap_or(&text).to_string();
            format!("not a loadable shared library ({reason})")
        }
        CkError::MissingSymbol(name) => format!("not a PKCS#11 module (no {name})"),
        other => describe(other),
    }
}

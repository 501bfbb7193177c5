//! The token layer: every cryptoki call lives here (module, slots, tokens, sessions, keys).

mod embedded;
mod error;
mod keys;
mod uri;

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use serde::Serialize;

pub use embedded::data_dir;
pub use error::TokenError;
pub use keys::{Custody, KeyInfo, KeyPair, KeySelector};
pub use uri::Pkcs11Uri;

/// Where the PKCS#11 module comes from.
#[derive(Debug, Clone)]
pub struct ModuleChoice {
    /// `--module` / `HSM_DEMO_MODULE`; `None` means the SoftHSM2 found at build time.
    pub path: Option<PathBuf>,
}

/// The SoftHSM2 module path recorded by build.rs.
pub const DEFAULT_SOFTHSM: &str = env!("HSM_DEMO_DEFAULT_SOFTHSM");

impl ModuleChoice {
    /// The module path, and (for the embedded default) the SoftHSM2 config this process
    /// now uses. With no module given and no `SOFTHSM2_CONF` in the environment, the
    /// embedded token store is created if needed and `SOFTHSM2_CONF` is pointed at it,
    /// so that every PKCS#11 user in this process (cryptoki and the OpenSSL provider)
    /// sees the same tokens.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.path {
            return Ok(path.clone());
        }
        if std::env::var_os("SOFTHSM2_CONF").is_none() {
            let conf = embedded::ensure_softhsm_conf()?;
            // Runs before any thread is started and before SoftHSM is loaded.
            std::env::set_var("SOFTHSM2_CONF", conf);
        }
        Ok(PathBuf::from(DEFAULT_SOFTHSM))
    }
}

/// A loaded, initialised PKCS#11 module.
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
}

/// An initialized token, identified by what PKCS#11 URIs use (never by slot index alone:
/// SoftHSM renumbers slots when a token is initialized).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRef {
    #[serde(skip)]
    pub slot: Slot,
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
}

impl TokenRef {
    fn new(slot: Slot, info: &TokenInfo) -> Self {
        TokenRef {
            slot,
            label: info.label().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
        }
    }

    /// The token's own URI (model, manufacturer, serial, token).
    pub fn uri(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.label.clone()),
            serial: Some(self.serial.clone()),
            manufacturer: Some(self.manufacturer.clone()),
            model: Some(self.model.clone()),
            ..Default::default()
        }
    }

    /// A key's URI: token label and serial (labels are not unique), object, id, type.
    pub fn key_uri(&self, label: &str, id: &[u8], object_type: &str) -> String {
        Pkcs11Uri {
            token: Some(self.label.clone()),
            serial: Some(self.serial.clone()),
            object: Some(label.to_string()),
            id: Some(id.to_vec()),
            object_type: Some(object_type.to_string()),
            ..Default::default()
        }
        .to_uri_string()
    }

    fn describe(&self) -> String {
        format!("'{}' (serial {})", self.label, self.serial)
    }
}

/// How the user picked a token.
#[derive(Debug, Clone, Default)]
pub struct TokenSelector {
    pub label: Option<String>,
    pub serial: Option<String>,
    pub uri: Option<Pkcs11Uri>,
}

impl TokenSelector {
    fn is_empty(&self) -> bool {
        self.label.is_none()
            && self.serial.is_none()
            && self.uri.as_ref().is_none_or(|u| {
                u.token.is_none()
                    && u.serial.is_none()
                    && u.model.is_none()
                    && u.manufacturer.is_none()
            })
    }

    fn matches(&self, t: &TokenRef) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let uri_ok = self.uri.as_ref().is_none_or(|u| {
            eq(&u.token, &t.label)
                && eq(&u.serial, &t.serial)
                && eq(&u.model, &t.model)
                && eq(&u.manufacturer, &t.manufacturer)
        });
        eq(&self.label, &t.label) && eq(&self.serial, &t.serial) && uri_ok
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.label {
            parts.push(format!("label '{l}'"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial '{s}'"));
        }
        if let Some(u) = &self.uri {
            parts.push(format!("URI {}", u.to_uri_string()));
        }
        parts.join(", ")
    }
}

/// One slot as `list-slots` reports it.
#[derive(Debug, Serialize)]
pub struct SlotReport {
    pub slot_id: u64,
    pub description: String,
    pub manufacturer: String,
    pub token_present: bool,
    pub token: Option<TokenReport>,
}

/// The token in a slot.
#[derive(Debug, Serialize)]
pub struct TokenReport {
    pub initialized: bool,
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub login_required: bool,
    pub user_pin_initialized: bool,
    pub user_pin_count_low: bool,
    pub user_pin_final_try: bool,
    pub user_pin_locked: bool,
    pub so_pin_locked: bool,
    pub can_generate_ec: bool,
    pub can_sign_ecdsa: bool,
    pub ecdsa_mechanisms: Vec<String>,
    pub uri: String,
}

/// Library-level facts for the header of `list-slots`.
#[derive(Debug, Serialize)]
pub struct ModuleReport {
    pub path: String,
    pub manufacturer: String,
    pub description: String,
    pub library_version: String,
    pub cryptoki_version: String,
}

impl Module {
    /// Loads the module and calls C_Initialize (OS locking). A module already
    /// initialised in this process (by the OpenSSL pkcs11-provider) is fine
    /// (PLATFORM.md).
    pub fn open(choice: &ModuleChoice) -> anyhow::Result<Module> {
        let path = choice.resolve()?;
        let ctx = Pkcs11::new(&path).map_err(|e| TokenError::ModuleLoad {
            path: path.clone(),
            reason: module_load_reason(&path, &e),
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(TokenError::Pkcs11 {
                    op: "initialize the PKCS#11 module",
                    err: e,
                }
                .into())
            }
        }
        // SoftHSM's C_Initialize leaves "rdrand engine" errors on OpenSSL's queue;
        // drop them so they never surface in an unrelated ErrorStack.
        crate::bridge::clear_openssl_errors();
        Ok(Module { ctx, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn report(&self) -> Result<ModuleReport, TokenError> {
        let info = self
            .ctx
            .get_library_info()
            .map_err(TokenError::pkcs11("read the module info"))?;
        Ok(ModuleReport {
            path: self.path.display().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            description: info.library_description().trim_end().to_string(),
            library_version: info.library_version().to_string(),
            cryptoki_version: info.cryptoki_version().to_string(),
        })
    }

    /// Every slot, with its token when one is present.
    pub fn slots(&self) -> Result<Vec<SlotReport>, TokenError> {
        let slots = self
            .ctx
            .get_all_slots()
            .map_err(TokenError::pkcs11("list slots"))?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let info = self
                .ctx
                .get_slot_info(slot)
                .map_err(TokenError::pkcs11("read slot info"))?;
            let token = if info.token_present() {
                Some(self.token_report(slot)?)
            } else {
                None
            };
            out.push(SlotReport {
                slot_id: slot.id(),
                description: info.slot_description().trim_end().to_string(),
                manufacturer: info.manufacturer_id().trim_end().to_string(),
                token_present: info.token_present(),
                token,
            });
        }
        Ok(out)
    }

    fn token_report(&self, slot: Slot) -> Result<TokenReport, TokenError> {
        let info = self
            .ctx
            .get_token_info(slot)
            .map_err(TokenError::pkcs11("read token info"))?;
        let mechanisms = self
            .ctx
            .get_mechanism_list(slot)
            .map_err(TokenError::pkcs11("list mechanisms"))?;
        let ecdsa: Vec<String> = mechanisms
            .iter()
            .filter(|m| m.to_string().starts_with("CKM_ECDSA"))
            .map(|m| m.to_string())
            .collect();
        let t = TokenRef::new(slot, &info);
        Ok(TokenReport {
            initialized: info.token_initialized(),
            uri: t.uri().to_uri_string(),
            label: t.label,
            manufacturer: t.manufacturer,
            model: t.model,
            serial: t.serial,
            login_required: info.login_required(),
            user_pin_initialized: info.user_pin_initialized(),
            user_pin_count_low: info.user_pin_count_low(),
            user_pin_final_try: info.user_pin_final_try(),
            user_pin_locked: info.user_pin_locked(),
            so_pin_locked: info.so_pin_locked(),
            can_generate_ec: mechanisms.contains(&MechanismType::ECC_KEY_PAIR_GEN),
            can_sign_ecdsa: mechanisms.contains(&MechanismType::ECDSA)
                || mechanisms.contains(&MechanismType::ECDSA_SHA256),
            ecdsa_mechanisms: ecdsa,
        })
    }

    /// The initialized tokens.
    pub fn tokens(&self) -> Result<Vec<TokenRef>, TokenError> {
        let slots = self
            .ctx
            .get_slots_with_initialized_token()
            .map_err(TokenError::pkcs11("list slots with a token"))?;
        slots
            .into_iter()
            .map(|slot| {
                let info = self
                    .ctx
                    .get_token_info(slot)
                    .map_err(TokenError::pkcs11("read token info"))?;
                Ok(TokenRef::new(slot, &info))
            })
            .collect()
    }

    /// The one token the selector names; with an empty selector, the only
    /// initialized token. Never "the first slot".
    pub fn select_token(&self, selector: &TokenSelector) -> Result<TokenRef, TokenError> {
        let tokens = self.tokens()?;
        let list = |ts: &[&TokenRef]| {
            ts.iter()
                .map(|t| t.describe())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let all: Vec<&TokenRef> = tokens.iter().collect();
        if selector.is_empty() {
            return match all.as_slice() {
                [] => Err(TokenError::NoToken {
                    module: self.path.display().to_string(),
                    hint: self.no_token_hint(),
                }),
                [one] => Ok((*one).clone()),
                many => Err(TokenError::AmbiguousToken {
                    count: many.len(),
                    list: list(many),
                }),
            };
        }
        let matching: Vec<&TokenRef> = tokens.iter().filter(|t| selector.matches(t)).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(TokenError::TokenNotFound {
                selector: selector.describe(),
                present: if all.is_empty() {
                    "none".into()
                } else {
                    list(&all)
                },
            }),
            many => Err(TokenError::AmbiguousSelector {
                selector: selector.describe(),
                count: many.len(),
                list: list(many),
            }),
        }
    }

    fn no_token_hint(&self) -> String {
        let conf = std::env::var("SOFTHSM2_CONF").unwrap_or_default();
        if conf.is_empty() {
            "; initialize one with 'hsm-demo init-token --label NAME'".to_string()
        } else {
            format!(
                " (SOFTHSM2_CONF={conf}); initialize one with 'hsm-demo init-token --label NAME'"
            )
        }
    }

    /// C_InitToken on a free slot, then the user PIN (C_Login as SO, C_InitPIN).
    /// Refuses a label that an initialized token already carries.
    pub fn init_token(
        &self,
        label: &str,
        so_pin: &AuthPin,
        user_pin: &AuthPin,
    ) -> Result<TokenRef, TokenError> {
        if self.tokens()?.iter().any(|t| t.label == label) {
            return Err(TokenError::TokenLabelExists(label.to_string()));
        }
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(TokenError::pkcs11("list slots"))?;
        let mut free = None;
        for slot in slots {
            let info = self
                .ctx
                .get_token_info(slot)
                .map_err(TokenError::pkcs11("read token info"))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or(TokenError::NoFreeSlot)?;
        self.ctx
            .init_token(slot, so_pin, label)
            .map_err(|e| pin_error(e, "SO PIN", label, "initialize the token"))?;
        // SoftHSM moves the new token to a new slot id (PLATFORM.md): find it again,
        // by label, among tokens whose user PIN is not set yet.
        let token = self
            .tokens()?
            .into_iter()
            .find(|t| t.label == label)
            .ok_or_else(|| {
                TokenError::Malformed(format!("token '{label}' vanished after C_InitToken"))
            })?;
        let session = self
            .ctx
            .open_rw_session(token.slot)
            .map_err(TokenError::pkcs11("open a session"))?;
        session
            .login(UserType::So, Some(so_pin))
            .map_err(|e| pin_error(e, "SO PIN", label, "log in as SO"))?;
        session
            .init_pin(user_pin)
            .map_err(|e| pin_error(e, "user PIN", label, "set the user PIN"))?;
        session.logout().map_err(TokenError::pkcs11("log out"))?;
        Ok(token)
    }

    /// The longest PIN the token accepts (CK_TOKEN_INFO.ulMaxPinLen).
    pub fn max_pin_len(&self, token: &TokenRef) -> Result<usize, TokenError> {
        Ok(self
            .ctx
            .get_token_info(token.slot)
            .map_err(TokenError::pkcs11("read token info"))?
            .max_pin_length())
    }

    /// A read-write session logged in as the user. The PIN is tried exactly once.
    pub fn login_user(&self, token: &TokenRef, pin: &AuthPin) -> Result<UserSession, TokenError> {
        self.login(token, UserType::User, pin)
    }

    /// A read-write session logged in as the security officer.
    pub fn login_so(&self, token: &TokenRef, pin: &AuthPin) -> Result<UserSession, TokenError> {
        self.login(token, UserType::So, pin)
    }

    fn login(
        &self,
        token: &TokenRef,
        user: UserType,
        pin: &AuthPin,
    ) -> Result<UserSession, TokenError> {
        let session = self
            .ctx
            .open_rw_session(token.slot)
            .map_err(TokenError::pkcs11("open a session"))?;
        let role = if matches!(user, UserType::So) {
            "SO PIN"
        } else {
            "user PIN"
        };
        match session.login(user, Some(pin)) {
            Ok(()) => {}
            // Login state is per application: another session of this process is already in.
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(pin_error(e, role, &token.label, "log in")),
        }
        Ok(UserSession {
            session,
            token: token.clone(),
        })
    }

    /// Another read-write session on a token this process is already logged in to
    /// (PKCS#11 login state is per application), e.g. one per benchmark thread.
    pub fn extra_session(&self, token: &TokenRef) -> Result<UserSession, TokenError> {
        let session = self
            .ctx
            .open_rw_session(token.slot)
            .map_err(TokenError::pkcs11("open a session"))?;
        Ok(UserSession {
            session,
            token: token.clone(),
        })
    }

    /// An unauthenticated read-only session (public objects only).
    pub fn public_session(&self, token: &TokenRef) -> Result<UserSession, TokenError> {
        let session = self
            .ctx
            .open_ro_session(token.slot)
            .map_err(TokenError::pkcs11("open a session"))?;
        Ok(UserSession {
            session,
            token: token.clone(),
        })
    }
}

/// Maps login and PIN-setting failures to errors that name the token and role.
fn pin_error(err: CkError, role: &'static str, token: &str, op: &'static str) -> TokenError {
    let token = token.to_string();
    match error::rv_of(&err) {
        Some(RvError::PinIncorrect) => TokenError::PinIncorrect { role, token },
        Some(RvError::PinLocked) => TokenError::PinLocked { role, token },
        Some(RvError::PinLenRange) => TokenError::PinInvalid {
            role,
            token,
            detail: "length out of the token's range".into(),
        },
        Some(RvError::PinInvalid) => TokenError::PinInvalid {
            role,
            token,
            detail: "contains characters the token refuses".into(),
        },
        _ => TokenError::Pkcs11 { op, err },
    }
}

/// Says why a module did not load, in words a user can act on.
fn module_load_reason(path: &Path, err: &CkError) -> String {
    if !path.exists() {
        return "no such file".to_string();
    }
    match err {
        CkError::LibraryLoading(e) => {
            let text = e.to_string();
            // libloading quotes dlerror(), which repeats the path; keep the reason.
            let reason = text.rsplit(": ").next().unwrap_or(&text).to_string();
            format!("not a loadable shared library ({reason})")
        }
        CkError::MissingSymbol(name) => format!("not a PKCS#11 module (no {name})"),
        other => error::describe(other),
    }
}

/// A logged-in (or public) session on one token.
pub struct UserSession {
    session: Session,
    token: TokenRef,
}

impl UserSession {
    pub fn token(&self) -> &TokenRef {
        &self.token
    }

    /// C_GenerateRandom: `n` bytes from the token's RNG.
    pub fn random(&self, n: usize) -> Result<Vec<u8>, TokenError> {
        let mut buf = vec![0u8; n];
        self.session
            .generate_random_slice(&mut buf)
            .map_err(TokenError::pkcs11("draw random bytes from the token"))?;
        Ok(buf)
    }

    /// C_SetPIN on the logged-in user (or SO) of this session.
    pub fn set_pin(
        &self,
        old: &AuthPin,
        new: &AuthPin,
        role: &'static str,
    ) -> Result<(), TokenError> {
        self.session
            .set_pin(old, new)
            .map_err(|e| pin_error(e, role, &self.token.label, "change the PIN"))
    }

    /// C_InitPIN: the SO sets a new user PIN.
    pub fn init_user_pin(&self, new: &AuthPin) -> Result<(), TokenError> {
        self.session
            .init_pin(new)
            .map_err(|e| pin_error(e, "user PIN", &self.token.label, "set the user PIN"))
    }

    /// C_Logout (only for SO sessions: logging the user out would kill provider keys).
    pub fn logout(&self) -> Result<(), TokenError> {
        self.session.logout().map_err(TokenError::pkcs11("log out"))
    }
}

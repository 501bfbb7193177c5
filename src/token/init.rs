//! Token initialisation and the PIN length rules of CK_TOKEN_INFO.

use cryptoki::types::AuthPin;
use secrecy::ExposeSecret;

use super::error::pin_error;
use super::info::TokenFacts;
use super::module::Module;
use super::{PinName, Role, TokenError, TokenRef};
use cryptoki::slot::Slot;

impl Module {
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
        // Both, before anything changes: a token with an SO PIN and no user PIN is half made.
        self.require_functions(
            label,
            "be initialized by hsm-demo (the HSM's own tools do it)",
            &[
                (cryptoki::context::Function::InitToken, "C_InitToken"),
                (cryptoki::context::Function::InitPIN, "C_InitPIN"),
            ],
        )?;
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(TokenError::pkcs11("list slots"))?;
        let mut free = None;
        for slot in slots {
            if !self.token_info(slot)?.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or(TokenError::NoFreeSlot)?;
        // Both PINs are checked against the slot's limits before anything changes: a
        // token initialized with an SO PIN but no user PIN is half made.
        self.check_pin_len(slot, label, Role::SecurityOfficer, so_pin)?;
        self.check_pin_len(slot, label, Role::User, user_pin)?;
        self.ctx
            .init_token(slot, so_pin, label)
            .map_err(|e| pin_error(e, Role::SecurityOfficer, label, "initialize the token"))?;
        // SoftHSM moves the new token to a new slot id (docs/platform.md): find it
        // again by label.
        let token = self
            .tokens()?
            .into_iter()
            .find(|t| t.label == label)
            .ok_or_else(|| {
                TokenError::Malformed(format!("token '{label}' vanished after C_InitToken"))
            })?;
        let guard = self.store_guard();
        super::store_guard::guarded(guard.as_ref(), &token.serial, "token initialisation", || -> Result<(), TokenError> {
            let so = self.login_so(&token, so_pin)?;
            so.init_user_pin(user_pin)?;
            so.logout()
        })??;
        Ok(token)
    }

    /// Refuses, before it is sent, a PIN to be set whose length is outside the range
    /// the token's CK_TOKEN_INFO reports.
    fn check_pin_len(&self, slot: Slot, label: &str, role: Role, pin: &AuthPin) -> Result<(), TokenError> {
        let info = self.token_info(slot)?;
        check_pin_len(&info, label, role, pin.expose_secret().len(), false)
    }

    /// For a login only the upper bound counts: a token may accept a PIN shorter than
    /// the ulMinPinLen it reports (kryoptic 1.5.4 reports 8 and takes a 6-character PIN
    /// that was set by another tool: docs/platform.md), and refusing to send a PIN that
    /// works would lock its owner out.
    pub(super) fn check_login_pin_len(&self, slot: Slot, label: &str, role: Role, pin: &AuthPin) -> Result<(), TokenError> {
        let info = self.token_info(slot)?;
        check_pin_len(&info, label, role, pin.expose_secret().len(), true)
    }
}

/// The length rule of CK_TOKEN_INFO: ulMinPinLen to ulMaxPinLen, where a maximum of 0
/// is CK_EFFECTIVELY_INFINITE (PKCS#11 3.0 §3.2: no limit); for a login, the maximum only.
fn check_pin_len(info: &TokenFacts, label: &str, role: Role, len: usize, login: bool) -> Result<(), TokenError> {
    let fits = if login { info.max_pin.is_none_or(|max| len <= max) } else { info.accepts_pin_len(len) };
    if fits {
        return Ok(());
    }
    Err(TokenError::PinLength {
        role: PinName(role),
        token: label.to_string(),
        len,
        range: info.pin_range(),
    })
}


//! Sessions typed by the role they act as: what a session may do is decided by its
//! type (`Session<User>` generates and signs, `Session<SecurityOfficer>` sets PINs,
//! `Session<Public>` reads public objects), not by a comment.

use std::marker::PhantomData;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session as CkSession, UserType};
use cryptoki::types::AuthPin;

use super::error::pin_error;
use super::{Role, TokenError, TokenRef};

/// The normal user (CKU_USER): uses keys, creates objects.
pub struct User;
/// The security officer (CKU_SO): initialises and resets PINs.
pub struct SecurityOfficer;
/// No login: public objects only.
pub struct Public;

/// A session on one token, acting as role `R`.
pub struct Session<R> {
    pub(super) inner: CkSession,
    token: TokenRef,
    role: PhantomData<R>,
}

impl<R> Session<R> {
    pub(super) fn new(inner: CkSession, token: TokenRef) -> Self {
        Session {
            inner,
            token,
            role: PhantomData,
        }
    }

    pub fn token(&self) -> &TokenRef {
        &self.token
    }

    /// C_Login, tried exactly once: tokens lock a PIN after a few failures.
    pub(super) fn login(
        &self,
        user: UserType,
        pin: &AuthPin,
        role: Role,
    ) -> Result<(), TokenError> {
        match self.inner.login(user, Some(pin)) {
            // Login state is per application: another session of this process is in.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => Err(pin_error(e, role, &self.token.label, "log in")),
        }
    }

    /// C_GenerateRandom: `n` bytes from the token's RNG.
    pub fn random(&self, n: usize) -> Result<Vec<u8>, TokenError> {
        let mut buf = vec![0u8; n];
        self.inner
            .generate_random_slice(&mut buf)
            .map_err(TokenError::pkcs11("draw random bytes from the token"))?;
        Ok(buf)
    }
}

impl Session<User> {
    /// C_SetPIN on the logged-in user's own PIN.
    pub fn set_user_pin(&self, old: &AuthPin, new: &AuthPin) -> Result<(), TokenError> {
        self.inner
            .set_pin(old, new)
            .map_err(|e| pin_error(e, Role::User, &self.token.label, "change the PIN"))
    }
}

impl Session<SecurityOfficer> {
    /// C_SetPIN on the SO's own PIN.
    pub fn set_so_pin(&self, old: &AuthPin, new: &AuthPin) -> Result<(), TokenError> {
        self.inner
            .set_pin(old, new)
            .map_err(|e| pin_error(e, Role::SecurityOfficer, &self.token.label, "change the PIN"))
    }

    /// C_InitPIN: the SO sets a new user PIN.
    pub fn init_user_pin(&self, new: &AuthPin) -> Result<(), TokenError> {
        self.inner
            .init_pin(new)
            .map_err(|e| pin_error(e, Role::User, &self.token.label, "set the user PIN"))
    }

    /// C_Logout. Only the SO role is ever logged out explicitly: logging the user out
    /// would invalidate the pkcs11-provider's key handles in this process.
    pub fn logout(&self) -> Result<(), TokenError> {
        self.inner.logout().map_err(TokenError::pkcs11("log out"))
    }
}

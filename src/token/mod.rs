//! The token layer: every cryptoki call lives here. `module` loads a PKCS#11 library
//! and lists its slots, `select` picks a token, `session` opens sessions typed by role,
//! `object` types key objects, `keys` generates, finds and reads them, `uri` parses and prints RFC 7512 URIs,
//! `info` reads CK_TOKEN_INFO defensively through `ffi` (the layer's only unsafe code).

mod capability;
pub mod cert;
mod custody;
mod embedded;
mod error;
mod ffi;
mod generate;
mod info;
mod init;
mod keys;
mod marker;
mod module;
mod object;
mod role;
mod select;
mod session;
pub mod store_guard;
mod uri;
pub mod wrap;

pub use error::{ErrorKind, PinName, TokenError};
pub use role::Role;
pub use info::TokenClock;
pub use generate::KeyPair;
pub use object::{Algorithm, Custody, KeyClass, KeyKind, KeyObject, KeySelector};
pub use capability::Capabilities;
pub use module::{Module, ModuleSpec, SlotEntry, TokenState};
pub use select::{TokenRef, TokenSelector};
pub use session::{Session, User};
pub use store_guard::StoreGuard;
pub use uri::Pkcs11Uri;

//! `delete-key`: destroys a key pair after the user types its label again. A key that
//! a completed ceremony directory holds as its root (given with --ca, or a ceremony
//! directory in the current directory) is refused without --force.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use crate::bridge::{PKey, Public};

use crate::ceremony::INCOMPLETE;
use crate::console::outln;
use crate::error::usage;
use crate::settings::Settings;

use super::KeyArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,

    /// The key's label again, to confirm (else a prompt on a terminal)
    #[arg(long, value_name = "LABEL")]
    confirm: Option<String>,

    /// A CA directory (a key ceremony's output) whose root key must not be deleted;
    /// repeatable. Ceremony directories in the current directory are checked too
    #[arg(long = "ca", value_name = "DIR")]
    cas: Vec<PathBuf>,

    /// Delete even a key a completed CA directory holds as its root (the deletion is
    /// then recorded in the audit.log of each --ca directory whose key it is)
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    note: super::args::NoteArg,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    // A --ca that is not there would switch the guard off without a word.
    if let Some(missing) = a.cas.iter().find(|d| !d.is_dir()) {
        return Err(usage(format!("--ca {}: no such directory; nothing was deleted", missing.display())));
    }
    let note = a.note.checked()?;
    // Lock order (lock.rs): the CA directories with records before the token store.
    let mut logs = Vec::new();
    for dir in a.cas.iter().filter(|d| d.join(crate::ca::DB_FILE).is_file()) {
        logs.push(crate::ca::CaDir::open(dir)?);
    }
    let (selector, uri) = a.key.selector()?;
    let hsm = super::login(settings, uri.as_ref(), super::Use::Change)?;
    let session = hsm.session();
    let private = session.find_private_key(&selector)?;
    let public_handle = session.public_key_for(&private).ok();
    if !a.force {
        if let Some(public) = public_handle
            .map(|h| crate::hsm::public_key_of(session, h, &private.kind))
            .transpose()?
        {
            if let Some((dir, what)) = ca_holding(&public, &a.cas) {
                return Err(usage(format!(
                    "key '{}' is the {what} in {}; nothing was deleted (--force deletes it anyway)",
                    private.label,
                    dir.display()
                )));
            }
        }
    }
    let typed = match &a.confirm {
        Some(label) => label.clone(),
        None if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!(
                "Type the label of key '{}' (id {}) to delete it: ",
                private.label,
                hex::encode(&private.id)
            ))?
        }
        None => {
            return Err(usage(format!(
                "deleting key '{}' needs its label typed again: --confirm LABEL, or run in a terminal",
                private.label
            )))
        }
    };
    if typed != private.label {
        return Err(usage(format!(
            "'{typed}' is not the key's label '{}'; nothing was deleted",
            private.label
        )));
    }
    // A CA's key deleted with --force: its log says so, begun before the deletion and
    // committed after (the last act of a key cannot be signed by it: no checkpoint).
    let public = public_handle.map(|h| crate::hsm::public_key_of(session, h, &private.kind)).transpose()?;
    logs.retain(|ca| public.as_ref().is_some_and(|p| ca.require_key(p, "").is_ok()));
    for ca in &mut logs {
        let mut inputs = serde_json::Map::new();
        inputs.insert("label".into(), private.label.clone().into());
        inputs.insert("id".into(), hex::encode(&private.id).into());
        let who = crate::ca::audit::Who::of(&hsm, &ca.key_uri, note);
        ca.log.begin("delete-key", &who, inputs);
        ca.log.flush()?;
    }
    let certs = session.destroy_certificates_of(&private)?;
    session.destroy_key(&private, public_handle)?;
    for ca in &mut logs {
        ca.log.commit(serde_json::Map::new())?;
    }
    outln!(
        "Deleted key pair '{}' (id {}){} from token '{}'",
        private.label,
        hex::encode(&private.id),
        if certs > 0 { format!(" and its {certs} certificate object(s)") } else { String::new() },
        hsm.token().label
    )?;
    Ok(())
}

/// A CA directory (among `cas` and the current directory's entries) whose key is
/// `public`: a completed ceremony's root (root-ca.pub.pem), or any CA with records
/// (ca.db, from a ceremony's first use or ca-init). What it is, for the message.
fn ca_holding(public: &PKey<Public>, cas: &[PathBuf]) -> Option<(PathBuf, &'static str)> {
    let here = std::fs::read_dir(".")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()));
    cas.iter().cloned().chain(here).find_map(|dir| holds(&dir, public).map(|what| (dir, what)))
}

fn holds(dir: &Path, public: &PKey<Public>) -> Option<&'static str> {
    let ceremony_root = !dir.join(INCOMPLETE).exists()
        && std::fs::read(dir.join("root-ca.pub.pem"))
            .ok()
            .and_then(|pem| PKey::public_key_from_pem(&pem).ok())
            .is_some_and(|k| k.public_eq(public));
    if ceremony_root {
        return Some("root key of the completed ceremony");
    }
    crate::ca::recorded_public_key(dir)
        .is_some_and(|k| k.public_eq(public))
        .then_some("key of the CA whose records are")
}

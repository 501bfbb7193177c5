//! Settings: every environment variable and default path, resolved once at start-up
//! into a value the commands pass down. Apart from clap's `env =` attributes in
//! cli.rs, this is the only file that reads the environment; only main.rs writes it.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use crate::error::SetupError;
use crate::token::ModuleSpec;

/// The flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// PKCS#11 module (shared library) to load; default: SoftHSM2 with hsm-demo's own token store
    #[arg(long, global = true, env = "HSM_DEMO_MODULE", value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Token to use, by label or PKCS#11 URI ('pkcs11:token=...;serial=...');
    /// default: the only initialized token
    #[arg(long, global = true, value_name = "LABEL|URI")]
    pub token: Option<String>,

    /// Token to use, by serial number
    #[arg(long, global = true, value_name = "SERIAL")]
    pub serial: Option<String>,

    /// File holding the user PIN (one trailing newline is ignored); else HSM_DEMO_PIN, else a prompt
    #[arg(long, global = true, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,

    /// A custodian's activation share (from key-ceremony --activation-quorum); give one
    /// per custodian present: the user PIN is recombined from them in memory
    #[arg(long = "pin-share", global = true, value_name = "FILE", conflicts_with = "pin_file")]
    pub pin_shares: Vec<PathBuf>,
}

/// The SoftHSM2 module path recorded by build.rs.
pub const DEFAULT_SOFTHSM: &str = env!("HSM_DEMO_DEFAULT_SOFTHSM");
/// The pkcs11-provider module path recorded by build.rs.
pub const DEFAULT_PROVIDER: &str = env!("HSM_DEMO_DEFAULT_PROVIDER");

/// Where a PIN comes from: the current PIN of a role, or a new user PIN being set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// CKU_USER: signs, generates keys.
    User,
    /// CKU_SO: initialises the user PIN.
    SecurityOfficer,
    /// A new user PIN being set by the SO (quorum-reset-pin).
    NewUser,
}

impl PinSource {
    pub const ALL: [PinSource; 3] = [PinSource::User, PinSource::SecurityOfficer, PinSource::NewUser];

    /// The role whose PIN this is.
    pub fn role(self) -> crate::token::Role {
        match self {
            PinSource::SecurityOfficer => crate::token::Role::SecurityOfficer,
            PinSource::User | PinSource::NewUser => crate::token::Role::User,
        }
    }

    pub fn env_var(self) -> &'static str {
        match self {
            PinSource::User => "HSM_DEMO_PIN",
            PinSource::SecurityOfficer => "HSM_DEMO_SO_PIN",
            PinSource::NewUser => "HSM_DEMO_NEW_PIN",
        }
    }
}

/// Environment variables PKCS#11 modules read (SoftHSM2, kryoptic, p11-kit's client,
/// Thales Luna): all a child process that only talks to the module is given.
const MODULE_ENV: &[&str] = &[
    "SOFTHSM2_CONF",
    "KRYOPTIC_CONF",
    "P11_KIT_SERVER_ADDRESS",
    "XDG_RUNTIME_DIR",
    "ChrystokiConfigurationPath",
];

/// A PIN from the environment, as it was at start-up.
pub enum EnvPin {
    Unset,
    Set(SecretString),
    NotUnicode,
}

/// What the process was started with, resolved.
pub struct Settings {
    /// `--token` (label or URI) and `--serial`, as given.
    pub token: Option<String>,
    pub serial: Option<String>,
    /// `--pin-file`.
    pub pin_file: Option<PathBuf>,
    /// `--pin-share`, in the order given.
    pub pin_shares: Vec<PathBuf>,
    /// `--module` / `HSM_DEMO_MODULE`, else SoftHSM2 (found at build time).
    pub module_path: PathBuf,
    /// Whether the module is the built-in default (SoftHSM2).
    pub default_module: bool,
    /// `SOFTHSM2_CONF` as the user set it.
    pub softhsm_conf_env: Option<PathBuf>,
    /// `$XDG_DATA_HOME/hsm-demo` or `$HOME/.local/share/hsm-demo`, when either is set.
    pub data_dir: Option<PathBuf>,
    /// `HSM_DEMO_PROVIDER`, else the pkcs11.so found at build time.
    pub provider: PathBuf,
    /// HSM_DEMO_PIN, HSM_DEMO_SO_PIN, HSM_DEMO_NEW_PIN.
    pins: [EnvPin; 3],
    /// Whether stdin is a terminal (PIN prompts are possible).
    pub interactive: bool,
    /// The [`MODULE_ENV`] variables that are set.
    module_env: Vec<(&'static str, OsString)>,
    /// Where token locks live: `$XDG_RUNTIME_DIR/hsm-demo/locks`, else the data
    /// directory's `locks`, else a per-user directory under the temporary directory.
    pub lock_dir: PathBuf,
}

fn var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

impl Settings {
    /// Resolves the settings and makes the process environment what the libraries
    /// need: the only writes to the environment, made here once before any thread
    /// exists (set_var is not thread-safe). SoftHSM2 reads its config, and the
    /// pkcs11-provider the module it drives, from the environment only
    /// (docs/platform.md, "one module"). The PIN variables are removed: the settings
    /// hold them now, and no child process inherits them.
    pub fn prepare_process(global: &GlobalArgs) -> Settings {
        let settings = Settings::resolve(global);
        for (name, value) in settings.exports() {
            std::env::set_var(name, value);
        }
        for source in PinSource::ALL {
            std::env::remove_var(source.env_var());
        }
        settings
    }

    /// Reads the environment once.
    pub fn resolve(global: &GlobalArgs) -> Settings {
        let (module_path, default_module) = match &global.module {
            Some(path) => (path.clone(), false),
            None => (PathBuf::from(DEFAULT_SOFTHSM), true),
        };
        let data_dir = var("XDG_DATA_HOME")
            .map(PathBuf::from)
            // The XDG spec ignores relative paths.
            .filter(|p| p.is_absolute())
            .map(|p| p.join("hsm-demo"))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/share/hsm-demo")));
        let pins = PinSource::ALL.map(|role| match std::env::var(role.env_var()) {
            Ok(v) if v.is_empty() => EnvPin::Unset,
            Ok(v) => EnvPin::Set(SecretString::from(v)),
            Err(std::env::VarError::NotPresent) => EnvPin::Unset,
            Err(std::env::VarError::NotUnicode(_)) => EnvPin::NotUnicode,
        });
        let uid = rustix::process::getuid().as_raw();
        let lock_dir = var("XDG_RUNTIME_DIR")
            .map(|d| PathBuf::from(d).join("hsm-demo"))
            .or_else(|| data_dir.clone())
            .unwrap_or_else(|| std::env::temp_dir().join(format!("hsm-demo-{uid}")))
            .join("locks");
        Settings {
            lock_dir,
            token: global.token.clone(),
            serial: global.serial.clone(),
            pin_file: global.pin_file.clone(),
            pin_shares: global.pin_shares.clone(),
            module_path,
            default_module,
            softhsm_conf_env: var("SOFTHSM2_CONF").map(PathBuf::from),
            data_dir,
            provider: var("HSM_DEMO_PROVIDER")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PROVIDER)),
            pins,
            interactive: std::io::stdin().is_terminal(),
            module_env: MODULE_ENV
                .iter()
                .filter_map(|name| std::env::var_os(name).map(|v| (*name, v)))
                .collect(),
        }
    }

    /// The PIN variable of `role` as it was at start-up.
    pub fn env_pin(&self, role: PinSource) -> &EnvPin {
        let i = PinSource::ALL.iter().position(|r| *r == role).expect("a role");
        &self.pins[i]
    }

    /// hsm-demo's own SoftHSM2 store is used when no module and no SOFTHSM2_CONF are
    /// given.
    fn uses_embedded_store(&self) -> bool {
        self.default_module && self.softhsm_conf_env.is_none()
    }

    /// The embedded store's config path (which may not exist yet), when it is in use.
    pub fn embedded_conf(&self) -> Option<PathBuf> {
        if self.uses_embedded_store() {
            self.data_dir.as_ref().map(|d| d.join("softhsm2.conf"))
        } else {
            None
        }
    }

    /// The SoftHSM2 config in effect: the user's, or the embedded store's.
    pub fn softhsm_conf(&self) -> Option<PathBuf> {
        self.softhsm_conf_env.clone().or_else(|| self.embedded_conf())
    }

    /// Which module to load. Fails only when the embedded store is needed and neither
    /// XDG_DATA_HOME nor HOME says where it goes.
    pub fn module(&self) -> Result<ModuleSpec, SetupError> {
        let embedded = self.uses_embedded_store();
        if embedded && self.data_dir.is_none() {
            return Err(SetupError(
                "neither XDG_DATA_HOME nor HOME is set: cannot place the embedded SoftHSM2 token store; set HOME, SOFTHSM2_CONF or --module".into(),
            ));
        }
        Ok(ModuleSpec {
            path: self.module_path.clone(),
            softhsm_conf: self.softhsm_conf(),
            embedded,
            copies: self.data_dir.as_ref().map(|d| d.join("token-copies")),
        })
    }

    /// The environment a child process that talks only to the PKCS#11 module gets:
    /// what the module reads, with the embedded store's config when that is in use.
    pub fn module_environment(&self) -> Vec<(&'static str, OsString)> {
        let mut env = self.module_env.clone();
        if let Some(conf) = self.embedded_conf() {
            env.retain(|(name, _)| *name != "SOFTHSM2_CONF");
            env.push(("SOFTHSM2_CONF", conf.into()));
        }
        env
    }

    /// What main exports before anything loads a module, because the libraries read
    /// it from the environment only: SoftHSM2 its config file (SOFTHSM2_CONF, for the
    /// embedded store), the pkcs11-provider the module to drive (PKCS11_PROVIDER_MODULE,
    /// which overrides the config's pkcs11-module-path), so that cryptoki and the
    /// provider use the same module.
    pub fn exports(&self) -> Vec<(&'static str, OsString)> {
        let mut out = vec![("PKCS11_PROVIDER_MODULE", self.module_path.clone().into())];
        if let Some(conf) = self.embedded_conf() {
            out.push(("SOFTHSM2_CONF", conf.into()));
        }
        out
    }
}

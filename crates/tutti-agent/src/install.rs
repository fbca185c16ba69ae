//! `tutti-agent install` and `uninstall`: the agent as a service of the machine's service
//! manager, in one command.
//!
//! The whole job sits behind one small interface, [`install`] and [`uninstall`] taking a
//! [`Platform`]; `main.rs` picks [`Platform::current`] and passes the running executable as
//! [`InstallOptions::binary`], so this module reads no process-global state. Only systemd
//! is implemented. It writes the unit rendered from `dist/tutti-agent.service.in` with the
//! hardening of a [`Profile`], puts the config at `/etc/tutti/agent.toml` (never replacing
//! one unless told to), creates the state directory 0700, and enables and starts the unit
//! when systemd runs. Everything happens under [`InstallOptions::root`], so tests and image
//! builders install into a directory. The Debian package ships the admin unit rendered for
//! the default paths (`dist/tutti-agent.service`); a unit test keeps the two identical.
//!
//! The other backends answer "not supported yet". What they would do:
//! - launchd (macOS): write `/Library/LaunchDaemons/com.tutti.agent.plist` with `Label`,
//!   `ProgramArguments` = [binary, `run`, `--config`, `/etc/tutti/agent.toml`],
//!   `RunAtLoad` and `KeepAlive` true, `StandardOutPath`/`StandardErrorPath` under
//!   `/var/log/tutti-agent/`, `SoftResourceLimits.NumberOfFiles` = 65536 and
//!   `ExitTimeOut` for the stop grace, then `launchctl bootstrap system <plist>`;
//!   uninstall is `launchctl bootout system/com.tutti.agent` and removing the plist.
//! - Windows: register with the Service Control Manager (`CreateServiceW`) as
//!   `tutti-agent`, `SERVICE_AUTO_START` after the network, running as LocalSystem with
//!   the binary and `run --config %ProgramData%\tutti\agent.toml`, recovery actions set
//!   to restart after 5 s, and state under `%ProgramData%\tutti-agent` with an ACL for
//!   SYSTEM and Administrators only; the binary answers the SCM's stop control as it
//!   answers SIGTERM. Uninstall stops the service and calls `DeleteService`.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use crate::config::{self, LocalConfig};

/// Where the unit goes, relative to the root: the administrator's unit directory, which
/// wins over the package's `/lib/systemd/system` copy.
pub const UNIT_PATH: &str = "/etc/systemd/system/tutti-agent.service";
/// Where the service reads its configuration.
pub const CONFIG_PATH: &str = "/etc/tutti/agent.toml";
/// The binary's path in the Debian package and in the shipped unit.
pub const PACKAGED_BINARY: &str = "/usr/bin/tutti-agent";
/// The unit's name for systemctl.
const UNIT_NAME: &str = "tutti-agent.service";

const UNIT_TEMPLATE: &str = include_str!("../dist/tutti-agent.service.in");
const HARDENING_ADMIN: &str = include_str!("../dist/hardening/admin.in");
const HARDENING_RESTRICTED: &str = include_str!("../dist/hardening/restricted.in");

/// The service manager an install targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Linux with systemd: implemented.
    Systemd,
    /// macOS launchd: not yet (see the module docs for the plan).
    Launchd,
    /// The Windows Service Control Manager: not yet.
    WindowsService,
}

impl Platform {
    /// The service manager of the platform this binary was built for.
    pub fn current() -> Platform {
        if cfg!(target_os = "macos") {
            Platform::Launchd
        } else if cfg!(windows) {
            Platform::WindowsService
        } else {
            Platform::Systemd
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Systemd => "systemd",
            Platform::Launchd => "macOS (launchd)",
            Platform::WindowsService => "Windows (service control manager)",
        })
    }
}

/// How much the service sandbox takes away from the agent and the commands it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Only what never gets in the way of scripts that administer the machine as root.
    #[default]
    Admin,
    /// A read-only system for fleets that only run checks and inventory.
    Restricted,
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(text: &str) -> Result<Profile, String> {
        match text {
            "admin" => Ok(Profile::Admin),
            "restricted" => Ok(Profile::Restricted),
            other => Err(format!(
                "unknown profile `{other}`: choose `admin` or `restricted`"
            )),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Admin => "admin",
            Profile::Restricted => "restricted",
        })
    }
}

/// What `tutti-agent install` was asked to do.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The filesystem root to install under; `/` for this machine.
    pub root: PathBuf,
    /// A config file to copy to `/etc/tutti/agent.toml`; `None` keeps the one there or
    /// writes the example.
    pub config: Option<PathBuf>,
    /// The hardening profile of the unit.
    pub profile: Profile,
    /// The agent binary's absolute path on the target system, for `ExecStart`.
    pub binary: PathBuf,
    /// Enable and start the service (only ever done when `root` is `/`).
    pub start: bool,
}

/// What `tutti-agent uninstall` was asked to do.
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    /// The filesystem root to uninstall from; `/` for this machine.
    pub root: PathBuf,
    /// Also remove the state directory, and with it the agent's identity.
    pub purge: bool,
}

/// One thing install or uninstall did or left for the operator, printed as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Wrote(PathBuf),
    KeptConfig(PathBuf),
    StateDirReady(PathBuf),
    Ran(String),
    NotStarted { reason: String, command: String },
    NotEnrolled { command: String },
    Removed(PathBuf),
    WasAbsent(PathBuf),
    Kept(PathBuf),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Wrote(path) => write!(f, "wrote {}", path.display()),
            Action::KeptConfig(path) => write!(f, "kept the existing {}", path.display()),
            Action::StateDirReady(path) => write!(f, "state directory {} (0700)", path.display()),
            Action::Ran(command) => write!(f, "ran `{command}`"),
            Action::NotStarted { reason, command } => {
                write!(f, "not started ({reason}); start it with `{command}`")
            }
            Action::NotEnrolled { command } => write!(
                f,
                "not enrolled yet: the service restarts every 5 s until `{command}` succeeds"
            ),
            Action::Removed(path) => write!(f, "removed {}", path.display()),
            Action::WasAbsent(path) => write!(f, "{} was already gone", path.display()),
            Action::Kept(path) => write!(f, "kept {}", path.display()),
        }
    }
}

/// Why an install or uninstall stopped. [`InstallError::is_usage`] tells the operator's
/// mistakes (exit 2) from the machine's refusals.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The config file is unreadable or invalid; the message names the file.
    #[error("{0}")]
    Config(String),
    /// An argument cannot work, such as a relative binary path.
    #[error("{0}")]
    Argument(String),
    #[error("cannot write {}: permission denied; run as root (sudo)", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("`{command}` failed: {detail}; see `systemctl status tutti-agent`")]
    Systemctl { command: String, detail: String },
    #[error(
        "installing the agent as a service is not supported yet on {0}; run `tutti-agent run --config FILE` under the service manager by hand"
    )]
    Unsupported(Platform),
}

impl InstallError {
    /// True for mistakes in what the operator asked for (exit status 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, InstallError::Config(_) | InstallError::Argument(_))
    }
}

/// Installs the agent as a service of `platform`.
pub fn install(platform: Platform, options: &InstallOptions) -> Result<Vec<Action>, InstallError> {
    match platform {
        Platform::Systemd => systemd_install(options),
        other => Err(InstallError::Unsupported(other)),
    }
}

/// Stops and removes the agent's service; running it twice is fine.
pub fn uninstall(
    platform: Platform,
    options: &UninstallOptions,
) -> Result<Vec<Action>, InstallError> {
    match platform {
        Platform::Systemd => systemd_uninstall(options),
        other => Err(InstallError::Unsupported(other)),
    }
}

/// The systemd unit for `binary`, `state_dir` and `profile`.
pub fn render_unit(binary: &Path, state_dir: &Path, profile: Profile) -> String {
    let hardening = match profile {
        Profile::Admin => HARDENING_ADMIN,
        Profile::Restricted => HARDENING_RESTRICTED,
    };
    let exec_start = format!("{} run --config {CONFIG_PATH}", unit_quote(binary));
    UNIT_TEMPLATE
        .replace("@PROFILE@", &profile.to_string())
        .replace("@EXEC_START@", &exec_start)
        .replace("@STATE_DIRECTORY@", &state_directory_lines(state_dir))
        .replace("@HARDENING@", hardening)
        .replace("@STATE_DIR@", &unit_quote(state_dir))
}

fn systemd_install(options: &InstallOptions) -> Result<Vec<Action>, InstallError> {
    check_binary(options)?;
    let (config, mut actions) = install_config(&options.root, options.config.as_deref())?;
    let state_dir = service_state_dir(&config)?;
    let unit = render_unit(&options.binary, &state_dir, options.profile);
    actions.push(create_state_dir(&under_root(&options.root, &state_dir))?);
    let unit_path = under_root(&options.root, Path::new(UNIT_PATH));
    write_file(&unit_path, unit.as_bytes(), 0o644)?;
    actions.push(Action::Wrote(unit_path));
    actions.extend(activate(options)?);
    if !under_root(&options.root, &state_dir)
        .join(crate::identity::IDENTITY_FILE)
        .exists()
    {
        let command =
            format!("tutti-agent enroll --server URL --token TOKEN --config {CONFIG_PATH}");
        actions.push(Action::NotEnrolled { command });
    }
    Ok(actions)
}

fn systemd_uninstall(options: &UninstallOptions) -> Result<Vec<Action>, InstallError> {
    let unit_path = under_root(&options.root, Path::new(UNIT_PATH));
    let mut actions = Vec::new();
    if unit_path.exists() && is_live_system(&options.root) {
        actions.push(systemctl(&["disable", "--now", UNIT_NAME])?);
    }
    actions.push(remove(&unit_path, "remove the unit")?);
    if is_live_system(&options.root) {
        actions.push(systemctl(&["daemon-reload"])?);
    }
    let config_path = under_root(&options.root, Path::new(CONFIG_PATH));
    let state_dir = under_root(&options.root, &installed_state_dir(&config_path)?);
    if options.purge {
        refuse_foreign_purge(&state_dir)?;
        actions.push(remove(&state_dir, "remove the state directory")?);
    } else if state_dir.exists() {
        actions.push(Action::Kept(state_dir));
    }
    if config_path.exists() {
        actions.push(Action::Kept(config_path));
    }
    Ok(actions)
}

/// A purge deletes a whole tree, so it only takes one named for tutti; any other
/// `state_dir` (it may hold more than the agent's files) is the operator's to delete.
fn refuse_foreign_purge(state_dir: &Path) -> Result<(), InstallError> {
    let name = state_dir.file_name().unwrap_or_default().to_string_lossy();
    if name.contains("tutti") || !state_dir.exists() {
        return Ok(());
    }
    Err(InstallError::Argument(format!(
        "not purging {}: only a state directory named for tutti is removed; remove it by hand",
        state_dir.display()
    )))
}

/// `ExecStart` runs the binary on the target system, so it must be an absolute path; on
/// this machine it must also exist, or the service would fail at its first start.
fn check_binary(options: &InstallOptions) -> Result<(), InstallError> {
    let binary = &options.binary;
    if !binary.is_absolute() {
        return Err(InstallError::Argument(format!(
            "--binary {}: give an absolute path",
            binary.display()
        )));
    }
    if options.root == Path::new("/") && !binary.is_file() {
        return Err(InstallError::Argument(format!(
            "--binary {}: no such file; point --binary at the installed tutti-agent",
            binary.display()
        )));
    }
    Ok(())
}

/// Puts the config in place: a copy of `source` when it names another file, otherwise
/// the existing file (checked, never replaced) or the embedded example.
fn install_config(
    root: &Path,
    source: Option<&Path>,
) -> Result<(LocalConfig, Vec<Action>), InstallError> {
    let dest = under_root(root, Path::new(CONFIG_PATH));
    // 0600: `nats_urls` may carry broker credentials, and only root runs the agent.
    match source {
        Some(source) if !is_same_file(source, &dest) => {
            let config = LocalConfig::load(source).map_err(InstallError::Config)?;
            let text = fs::read(source).map_err(|err| io_error("read", source, err))?;
            write_file(&dest, &text, 0o600)?;
            Ok((config, vec![Action::Wrote(dest)]))
        }
        _ if dest.exists() => {
            let config = LocalConfig::load(&dest).map_err(InstallError::Config)?;
            Ok((config, vec![Action::KeptConfig(dest)]))
        }
        _ => {
            let config = LocalConfig::parse(config::EXAMPLE).map_err(InstallError::Config)?;
            write_file(&dest, config::EXAMPLE.as_bytes(), 0o600)?;
            Ok((config, vec![Action::Wrote(dest)]))
        }
    }
}

/// Directories other software shares, which the installer must never make 0700 or purge.
const SHARED_DIRS: &[&str] = &[
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/tmp",
    "/var/spool",
    "/usr/bin",
    "/usr/lib",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/etc/tutti",
];

/// The service starts in `/`, so a relative state directory would land somewhere
/// surprising. The installer restricts the directory to 0700 and a purge deletes it, so
/// `state_dir = "/"` or `"/var/lib"` must stop it rather than break the machine.
fn service_state_dir(config: &LocalConfig) -> Result<PathBuf, InstallError> {
    let state_dir = &config.state_dir;
    let depth = state_dir.components().skip(1).count();
    let shared = SHARED_DIRS.iter().any(|dir| state_dir == Path::new(dir));
    if !state_dir.is_absolute() || depth < 2 || shared {
        return Err(InstallError::Config(format!(
            "{CONFIG_PATH}: state_dir {} must be an absolute directory of the agent's own, such as /var/lib/tutti-agent",
            state_dir.display()
        )));
    }
    Ok(state_dir.clone())
}

/// The state directory an uninstall purges: the config's, or the default when the config
/// is gone. A config that no longer parses stops a purge rather than guess.
fn installed_state_dir(config_path: &Path) -> Result<PathBuf, InstallError> {
    if !config_path.exists() {
        return Ok(LocalConfig::default().state_dir);
    }
    let config = LocalConfig::load(config_path).map_err(InstallError::Config)?;
    service_state_dir(&config)
}

fn create_state_dir(path: &Path) -> Result<Action, InstallError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|err| io_error("create", parent, err))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(io_error("create", path, err)),
    }
    // An existing directory keeps its owner but loses any access by others.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|err| io_error("restrict", path, err))?;
    Ok(Action::StateDirReady(path.to_path_buf()))
}

/// Enables and starts the unit when this is the running system and systemd manages it;
/// otherwise says how to do it later.
fn activate(options: &InstallOptions) -> Result<Vec<Action>, InstallError> {
    let command = format!("systemctl daemon-reload && systemctl enable --now {UNIT_NAME}");
    let reason = if !options.start {
        "--no-start"
    } else if options.root != Path::new("/") {
        "installed under another root"
    } else if !is_live_system(&options.root) {
        "systemd is not running on this machine"
    } else {
        return Ok(vec![
            systemctl(&["daemon-reload"])?,
            systemctl(&["enable", "--now", UNIT_NAME])?,
        ]);
    };
    Ok(vec![Action::NotStarted {
        reason: reason.to_string(),
        command,
    }])
}

/// systemd manages this machine: `root` is `/` and `/run/systemd/system` exists (what
/// `sd_booted()` checks).
fn is_live_system(root: &Path) -> bool {
    root == Path::new("/") && Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str]) -> Result<Action, InstallError> {
    let command = format!("systemctl {}", args.join(" "));
    let output = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|err| InstallError::Systemctl {
            command: command.clone(),
            detail: err.to_string(),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let detail = format!("{} ({stderr})", output.status);
        return Err(InstallError::Systemctl { command, detail });
    }
    Ok(Action::Ran(command))
}

fn remove(path: &Path, what: &'static str) -> Result<Action, InstallError> {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(Action::Removed(path.to_path_buf())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            Ok(Action::WasAbsent(path.to_path_buf()))
        }
        Err(err) => Err(io_error(what, path, err)),
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a unit or
/// half a config behind.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), InstallError> {
    use std::io::Write;
    let parent = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent).map_err(|err| io_error("create", parent, err))?;
    let temp = path.with_extension("tutti-new");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)
        .map_err(|err| io_error("write", &temp, err))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|err| io_error("write", &temp, err))?;
    fs::set_permissions(&temp, fs::Permissions::from_mode(mode))
        .map_err(|err| io_error("write", &temp, err))?;
    fs::rename(&temp, path).map_err(|err| io_error("write", path, err))
}

fn io_error(what: &'static str, path: &Path, source: io::Error) -> InstallError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        return InstallError::PermissionDenied {
            path: path.to_path_buf(),
        };
    }
    InstallError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn under_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn is_same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Under `/var/lib`, systemd itself creates the directory 0700 before every start
/// (`StateDirectory=`); anywhere else the installer's directory is all there is.
fn state_directory_lines(state_dir: &Path) -> String {
    match state_dir.strip_prefix("/var/lib") {
        Ok(relative) if !relative.as_os_str().is_empty() => format!(
            "# systemd creates the state directory (identity, queue, outbox) 0700 before each start.\nStateDirectory={}\nStateDirectoryMode=0700",
            unit_quote(relative)
        ),
        _ => format!(
            "# The state directory {} lies outside /var/lib: `tutti-agent install` created it 0700.",
            state_dir.display()
        ),
    }
}

/// A path as one word of a unit file: `%` escaped for specifier expansion, and quoted
/// when it holds whitespace, quotes or backslashes.
fn unit_quote(path: &Path) -> String {
    let text = path.to_string_lossy().replace('%', "%%");
    if !text.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return text;
    }
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            '\n' => vec!['\\', 'n'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_unit_is_the_rendered_admin_unit_for_the_default_paths() {
        let shipped = include_str!("../dist/tutti-agent.service");
        let default_state_dir = LocalConfig::default().state_dir;
        let rendered = render_unit(
            Path::new(PACKAGED_BINARY),
            &default_state_dir,
            Profile::Admin,
        );
        assert_eq!(
            rendered, shipped,
            "dist/tutti-agent.service is stale: regenerate it from the template"
        );
    }

    #[test]
    fn no_placeholder_survives_rendering() {
        for profile in [Profile::Admin, Profile::Restricted] {
            let unit = render_unit(Path::new("/opt/a b/agent"), Path::new("/srv/st"), profile);
            for placeholder in [
                "@PROFILE@",
                "@EXEC_START@",
                "@STATE_DIRECTORY@",
                "@HARDENING@",
                "@STATE_DIR@",
            ] {
                assert!(!unit.contains(placeholder), "{unit}");
            }
        }
    }

    #[test]
    fn paths_with_spaces_and_percent_are_quoted_for_systemd() {
        assert_eq!(
            unit_quote(Path::new("/usr/bin/tutti-agent")),
            "/usr/bin/tutti-agent"
        );
        assert_eq!(unit_quote(Path::new("/opt/a b/x%y")), "\"/opt/a b/x%%y\"");
    }

    #[test]
    fn a_state_dir_outside_var_lib_gets_no_state_directory() {
        let unit = render_unit(
            Path::new("/bin/a"),
            Path::new("/srv/st"),
            Profile::Restricted,
        );
        assert!(!unit.contains("StateDirectory="), "{unit}");
        assert!(unit.contains("ReadWritePaths=/srv/st\n"), "{unit}");
    }

    #[test]
    fn state_dirs_that_others_share_are_refused() {
        for state_dir in ["/", "/srv", "/var/lib", "/usr/local", "relative/dir"] {
            let config = LocalConfig {
                state_dir: PathBuf::from(state_dir),
                ..LocalConfig::default()
            };
            assert!(service_state_dir(&config).is_err(), "{state_dir}");
        }
    }

    #[test]
    fn profiles_parse_by_name() {
        assert_eq!("admin".parse::<Profile>(), Ok(Profile::Admin));
        assert_eq!("restricted".parse::<Profile>(), Ok(Profile::Restricted));
        assert!("strict".parse::<Profile>().unwrap_err().contains("admin"));
    }

    #[test]
    fn other_platforms_say_not_supported_yet() {
        let options = UninstallOptions {
            root: PathBuf::from("/nonexistent"),
            purge: false,
        };
        let err = uninstall(Platform::Launchd, &options).unwrap_err();
        assert!(
            err.to_string().contains("not supported yet on macOS"),
            "{err}"
        );
    }
}

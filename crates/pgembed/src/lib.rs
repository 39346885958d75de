//! A private PostgreSQL server run from the locally installed server binaries.
//!
//! `shipgate sandbox` keeps one under `./.shipgate/pg`, and the test harness uses one
//! under `target/shipgate-test-pg` when `DATABASE_URL` is unset or unreachable, so that
//! nobody has to set up a database to try the product or run its tests.
//!
//! # Why this is hand-written
//!
//! The crates that do this job (`pgtemp`, `postgresql_embedded`, …) either download
//! PostgreSQL binaries at build or run time — impossible offline, in locked-down CI and
//! here — or run `initdb` as the current user. `initdb` and `pg_ctl` refuse to run as
//! root, which is how containers and CI jobs usually run. This module uses the binaries
//! that are already installed (`apt-get install postgresql`, see [`find_bin_dir`]) and,
//! when the process runs as root, runs them as the `postgres` OS user through
//! `runuser -u postgres --` (or `su postgres -s /bin/sh -c …` where `runuser` is missing).
//!
//! # What it does
//!
//! Under the requested directory `dir`:
//!
//! - `dir/.lock` — an exclusive file lock held while checking, starting or stopping, so
//!   any number of processes (concurrent test binaries) may call
//!   [`PrivatePostgres::ensure`] at once: the first one starts the server, the others
//!   find it running (`postmaster.pid` names a live `postgres` process, and it answers a
//!   protocol start-up message on its port) and reuse it.
//! - `dir/data` — the cluster: `initdb -U postgres --auth=trust -E UTF8 --locale=C`, run
//!   into `dir/data.init` and renamed when complete, so an interrupted `initdb` is never
//!   mistaken for a cluster.
//! - `dir/port` — the TCP port, chosen free at first start and reused afterwards unless
//!   something else has taken it meanwhile.
//! - `dir/postgres.log` — the server log (`pg_ctl -l`); its last lines are quoted in
//!   start-up errors.
//!
//! The server listens on 127.0.0.1 only; its unix socket lives in the data directory
//! (`-k`), or under the temp dir when that path would be too long for a socket address.
//! It outlives the process that started it (`pg_ctl` detaches it) and keeps running
//! until [`PrivatePostgres::stop`]. A `postmaster.pid` left behind by a dead server is
//! removed and the server started again.
//!
//! When running as root, the data directory is owned by `postgres`. If that user cannot
//! reach `dir` (e.g. it lives under `/root`, mode 700), the files go to
//! `$TMPDIR/shipgate-pg-<hash of the canonical dir>` instead (logged, and noted in
//! `dir/RELOCATED`); the lock stays in `dir`.
//!
//! Settings take effect when the server starts: `durable: false` (tests) turns off
//! `fsync`, `synchronous_commit` and `full_page_writes`; a reused server keeps the settings
//! it was started with.
//!
//! Security: authentication is `trust` — any local user can connect to 127.0.0.1 as the
//! superuser `postgres`. This is for a developer's machine and tests, never production.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tracing::{debug, info, warn};

/// How long to wait for another process that holds `dir/.lock` (it may be running initdb).
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a server may take to accept connections after `pg_ctl start`.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Start attempts when the chosen port is taken between choosing it and binding it.
const START_ATTEMPTS: u32 = 3;
/// OS user that runs the server when this process runs as root.
const OS_USER: &str = "postgres";
/// Database superuser created by initdb.
const SUPERUSER: &str = "postgres";
/// Longest unix socket path (`sun_path` is 108 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Environment variables that would change what the PostgreSQL tools do.
const PG_ENV: &[&str] =
    &["PGDATA", "PGPORT", "PGHOST", "PGHOSTADDR", "PGUSER", "PGDATABASE", "PGOPTIONS", "PGPASSWORD"];
const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them \
     (Debian/Ubuntu: `apt-get install postgresql`; Fedora: `dnf install postgresql-server`; \
     macOS: `brew install postgresql@15`), or set SHIPGATE_PG_BIN to the directory that \
     contains initdb and pg_ctl, or set DATABASE_URL to an existing server";

/// Where and how to run the private server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding the lock, the cluster, the port file and the log.
    pub dir: PathBuf,
    /// `false` → `fsync=off`, `synchronous_commit=off`, `full_page_writes=off` (tests):
    /// fast, but a machine crash can corrupt the cluster.
    pub durable: bool,
}

/// A running private PostgreSQL server (see the module documentation).
#[derive(Debug)]
pub struct PrivatePostgres {
    lock_path: PathBuf,
    base: PathBuf,
    data: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    started_here: bool,
    runner: Runner,
}

impl PrivatePostgres {
    /// Start a server with its data under `opts.dir` (initdb on first use), or reuse the
    /// one already running for that dir (another process started it: pid/port file + it
    /// accepts connections). Safe to call concurrently from many processes and threads: an
    /// exclusive lock on `dir/.lock` is held while checking and starting.
    ///
    /// Blocking (runs `initdb` and `pg_ctl`, waits for the lock): async callers should use
    /// `tokio::task::spawn_blocking`.
    pub fn ensure(opts: &Options) -> Result<PrivatePostgres> {
        fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
        let dir = opts.dir.canonicalize().with_context(|| format!("cannot resolve {}", opts.dir.display()))?;
        let lock_path = dir.join(".lock");
        let _lock = lock_exclusive(&lock_path)?;

        let runner = Runner::detect()?;
        let base = runner.prepare_base(&dir)?;
        let data = base.join("data");
        let bin_dir = bin_dir_for(&data)?;
        let mut pg = PrivatePostgres { lock_path, base, data, bin_dir, port: 0, started_here: false, runner };
        if let Some(port) = pg.running_port()? {
            debug!(port, dir = %pg.base.display(), "reusing running private PostgreSQL");
            pg.port = port;
            return Ok(pg);
        }
        pg.init_if_needed(opts)?;
        pg.start(opts)?;
        pg.started_here = true;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:{port}/{database}` (trust authentication, no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this [`ensure`](Self::ensure) call started the server (rather than reusing it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Directory actually holding the cluster, port file and log: the requested one, or
    /// its replacement under the temp dir when the `postgres` user cannot reach it.
    pub fn dir(&self) -> &Path {
        &self.base
    }

    /// Stop the server (`pg_ctl stop -m fast`): active sessions are ended. Only the owner
    /// of the directory should call this; other processes using the server lose it.
    /// Stopping a server that is not running is not an error.
    pub fn stop(&self) -> Result<()> {
        let _lock = lock_exclusive(&self.lock_path)?;
        let Some(pid_file) = self.read_pid_file()? else {
            return Ok(());
        };
        if matches!(pid_state(pid_file.pid), PidState::Dead | PidState::Other) {
            self.remove_stale(&pid_file)?;
            return Ok(());
        }
        let args: Vec<OsString> = vec![
            "stop".into(),
            "-D".into(),
            self.data.clone().into(),
            "-m".into(),
            "fast".into(),
            "-w".into(),
            "-t".into(),
            START_TIMEOUT.as_secs().to_string().into(),
        ];
        run(self.runner.command(&self.bin("pg_ctl"), &args), "pg_ctl stop")?;
        info!(port = self.port, dir = %self.base.display(), "stopped private PostgreSQL");
        Ok(())
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    fn log_path(&self) -> PathBuf {
        self.base.join("postgres.log")
    }

    fn port_path(&self) -> PathBuf {
        self.base.join("port")
    }

    fn read_pid_file(&self) -> Result<Option<PidFile>> {
        let path = self.data.join("postmaster.pid");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(parse_pid_file(&text).unwrap_or(PidFile { pid: 0, port: None, socket_dir: None }))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Port of a live server on this data dir, after waiting for it to accept connections;
    /// `None` when no server runs (a stale pid file is removed).
    fn running_port(&self) -> Result<Option<u16>> {
        let Some(pid_file) = self.read_pid_file()? else {
            return Ok(None);
        };
        let state = pid_state(pid_file.pid);
        if matches!(state, PidState::Dead | PidState::Other) {
            warn!(pid = pid_file.pid, dir = %self.data.display(),
                "removing stale postmaster.pid (server no longer running)");
            self.remove_stale(&pid_file)?;
            return Ok(None);
        }
        let port = match pid_file.port.or_else(|| read_port(&self.port_path())) {
            Some(port) => port,
            None => bail!(
                "a PostgreSQL server (pid {}) runs on {} but its port is unknown; stop it",
                pid_file.pid,
                self.data.display()
            ),
        };
        if state == PidState::Unknown && matches!(probe(port), Probe::Down(_)) {
            // No /proc to tell whether the pid is alive: let postgres judge the lock file.
            return Ok(None);
        }
        let alive = || self.server_alive();
        match wait_until_up(port, START_TIMEOUT, alive) {
            Ok(()) => Ok(Some(port)),
            Err(why) => Err(anyhow!(
                "a PostgreSQL server (pid {}) runs on {} but does not accept connections on \
                 127.0.0.1:{port}: {why}\n{}",
                pid_file.pid,
                self.data.display(),
                log_tail(&self.log_path())
            )),
        }
    }

    fn server_alive(&self) -> bool {
        match self.read_pid_file() {
            Ok(Some(pid_file)) => matches!(pid_state(pid_file.pid), PidState::Postgres | PidState::Unknown),
            _ => false,
        }
    }

    /// Remove what a dead server left behind that would stop a new one from starting
    /// (postgres refuses to start when the pid in a lock file belongs to a live process,
    /// which happens after a container restart).
    fn remove_stale(&self, pid_file: &PidFile) -> Result<()> {
        remove_if_exists(&self.data.join("postmaster.pid"))?;
        if let (Some(dir), Some(port)) = (&pid_file.socket_dir, pid_file.port) {
            remove_if_exists(&dir.join(format!(".s.PGSQL.{port}")))?;
            remove_if_exists(&dir.join(format!(".s.PGSQL.{port}.lock")))?;
        }
        Ok(())
    }

    fn init_if_needed(&self, opts: &Options) -> Result<()> {
        if self.data.join("PG_VERSION").is_file() {
            return Ok(());
        }
        if self.data.exists() {
            bail!(
                "{} exists but is not a PostgreSQL data directory (no PG_VERSION); move it away",
                self.data.display()
            );
        }
        let staging = self.base.join("data.init");
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove unfinished cluster {}", staging.display()))?;
        }
        info!(dir = %self.data.display(), bin = %self.bin_dir.display(),
            "creating a private PostgreSQL cluster (initdb)");
        let mut args: Vec<OsString> = vec![
            "-D".into(),
            staging.clone().into(),
            "-U".into(),
            SUPERUSER.into(),
            "--auth=trust".into(),
            "-E".into(),
            "UTF8".into(),
            "--locale=C".into(),
        ];
        if !opts.durable {
            args.push("--no-sync".into());
        }
        run(self.runner.command(&self.bin("initdb"), &args), "initdb")?;
        fs::rename(&staging, &self.data)
            .with_context(|| format!("cannot rename {} to {}", staging.display(), self.data.display()))?;
        Ok(())
    }

    fn start(&mut self, opts: &Options) -> Result<()> {
        let socket_dir = self.socket_dir()?;
        let mut port = match read_port(&self.port_path()) {
            Some(port) if port_is_free(port) => port,
            Some(port) => {
                info!(port, "remembered port is taken; choosing another");
                free_port()?
            }
            None => free_port()?,
        };
        let mut attempt = 1;
        loop {
            fs::write(self.port_path(), format!("{port}\n"))
                .with_context(|| format!("cannot write {}", self.port_path().display()))?;
            match self.pg_ctl_start(port, &socket_dir, opts) {
                Ok(()) => break,
                // Someone took the port between choosing and binding it: choose again.
                Err(err)
                    if attempt < START_ATTEMPTS
                        && !port_is_free(port)
                        && !self.data.join("postmaster.pid").exists() =>
                {
                    warn!(port, error = %format!("{err:#}"), "port taken while starting; retrying");
                    port = free_port()?;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
        let alive = || self.server_alive();
        if let Err(why) = wait_until_up(port, START_TIMEOUT, alive) {
            bail!(
                "private PostgreSQL started but does not accept connections on 127.0.0.1:{port}: \
                 {why}\n{}",
                log_tail(&self.log_path())
            );
        }
        self.port = port;
        info!(port, dir = %self.base.display(), durable = opts.durable, "started private PostgreSQL");
        Ok(())
    }

    fn pg_ctl_start(&self, port: u16, socket_dir: &Path, opts: &Options) -> Result<()> {
        // pg_ctl pastes -o into a /bin/sh command line: quote the path.
        let mut server_opts = OsString::from(format!("-p {port} -k "));
        server_opts.push(sh_quote(socket_dir.as_os_str()));
        server_opts.push(" -c listen_addresses=127.0.0.1");
        if !opts.durable {
            // Tests: speed over crash safety, and room for many concurrent test pools.
            server_opts.push(
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=200",
            );
        }
        let args: Vec<OsString> = vec![
            "start".into(),
            "-w".into(),
            "-t".into(),
            START_TIMEOUT.as_secs().to_string().into(),
            "-D".into(),
            self.data.clone().into(),
            "-l".into(),
            self.log_path().into(),
            "-o".into(),
            server_opts,
        ];
        run(self.runner.command(&self.bin("pg_ctl"), &args), "pg_ctl start")
            .map(drop)
            .map_err(|err| anyhow!("{err:#}\n{}", log_tail(&self.log_path())))
    }

    /// The data dir, unless `<dir>/.s.PGSQL.<port>` would not fit in a socket address.
    fn socket_dir(&self) -> Result<PathBuf> {
        let longest = self.data.as_os_str().len() + "/.s.PGSQL.65535".len();
        if longest <= MAX_SOCKET_PATH {
            return Ok(self.data.clone());
        }
        let alt =
            std::env::temp_dir().join(format!("shipgate-pg-sock-{:016x}", fnv1a64(self.data.as_os_str().as_bytes())));
        debug!(socket_dir = %alt.display(), "data dir path too long for a unix socket");
        create_private_dir(&alt, self.runner.owner())?;
        self.runner.give(&alt)?;
        Ok(alt)
    }
}

/// The directory holding `initdb` and `pg_ctl`: `$SHIPGATE_PG_BIN`, else the highest
/// `/usr/lib/postgresql/*/bin` (Debian/Ubuntu), else `pg_config --bindir`, else `PATH`.
pub fn find_bin_dir() -> Result<PathBuf> {
    find_bin_dir_from(std::env::var_os("SHIPGATE_PG_BIN"))
}

fn find_bin_dir_from(env: Option<OsString>) -> Result<PathBuf> {
    if let Some(dir) = env.filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_server_bins(&dir) {
            return Ok(dir);
        }
        bail!("SHIPGATE_PG_BIN={} does not contain initdb and pg_ctl", dir.display());
    }
    if let Some((_, dir)) = debian_bin_dirs().pop() {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stdin(Stdio::null()).output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server_bins(&dir) {
            return Ok(dir);
        }
    }
    if let Some(initdb) = find_program("initdb")
        && let Some(dir) = initdb.parent()
        && has_server_bins(dir)
    {
        return Ok(dir.to_path_buf());
    }
    bail!(INSTALL_HINT)
}

/// Binaries for an existing cluster: those of its major version when installed side by
/// side (Debian keeps several), with a clear error when only another version is found.
fn bin_dir_for(data: &Path) -> Result<PathBuf> {
    let explicit = std::env::var_os("SHIPGATE_PG_BIN").filter(|d| !d.is_empty());
    let cluster_version = fs::read_to_string(data.join("PG_VERSION")).ok().map(|v| v.trim().to_owned());
    if explicit.is_none()
        && let Some(version) = &cluster_version
        && let Some((_, dir)) = debian_bin_dirs().into_iter().find(|(v, _)| version_key(version) == *v)
    {
        return Ok(dir);
    }
    let dir = find_bin_dir_from(explicit)?;
    if let Some(version) = cluster_version
        && let Some(installed) = bin_major_version(&dir)
        && installed != version
    {
        bail!(
            "the cluster in {} was created by PostgreSQL {version}, but {} holds PostgreSQL \
             {installed}: install PostgreSQL {version} (or point SHIPGATE_PG_BIN at its bin \
             directory), or delete {} to start afresh",
            data.display(),
            dir.display(),
            data.parent().unwrap_or(data).display()
        );
    }
    Ok(dir)
}

/// `/usr/lib/postgresql/<version>/bin` dirs holding the server binaries, lowest version first.
fn debian_bin_dirs() -> Vec<(Vec<u32>, PathBuf)> {
    let Ok(entries) = fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut dirs: Vec<(Vec<u32>, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let key = version_key(entry.file_name().to_str()?);
            let bin = entry.path().join("bin");
            (!key.is_empty() && has_server_bins(&bin)).then_some((key, bin))
        })
        .collect();
    dirs.sort();
    dirs
}

/// "15" → [15], "9.6" → [9, 6]; anything else → [].
fn version_key(name: &str) -> Vec<u32> {
    name.split('.').map(str::parse).collect::<Result<Vec<u32>, _>>().unwrap_or_default()
}

/// Major version as written in `PG_VERSION` ("15", "9.6"), from `pg_ctl --version`.
fn bin_major_version(bin_dir: &Path) -> Option<String> {
    let out = Command::new(bin_dir.join("pg_ctl")).arg("--version").stdin(Stdio::null()).output().ok()?;
    major_from_version_output(&String::from_utf8_lossy(&out.stdout))
}

/// "pg_ctl (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)" → "15"; "… 9.6.24" → "9.6".
fn major_from_version_output(text: &str) -> Option<String> {
    let version = text.split("(PostgreSQL)").nth(1)?.split_whitespace().next()?;
    let parts: Vec<&str> = version.split('.').collect();
    let first: u32 = parts.first()?.parse().ok()?;
    if first >= 10 { Some(first.to_string()) } else { Some(format!("{first}.{}", parts.get(1)?)) }
}

fn has_server_bins(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl"))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` on `PATH`, or in the sbin dirs a non-login root shell may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// How the PostgreSQL tools are run: directly, or as the `postgres` OS user when root.
#[derive(Debug, Clone)]
enum Runner {
    Direct,
    AsPostgres { uid: u32, gid: u32, via: Via },
}

#[derive(Debug, Clone)]
enum Via {
    Runuser(PathBuf),
    Su(PathBuf),
}

impl Runner {
    fn detect() -> Result<Runner> {
        if effective_uid()? != 0 {
            return Ok(Runner::Direct);
        }
        let uid = os_user_id("-u")?;
        let gid = os_user_id("-g")?;
        let via = if let Some(path) = find_program("runuser") {
            Via::Runuser(path)
        } else if let Some(path) = find_program("su") {
            Via::Su(path)
        } else {
            bail!(
                "running as root: initdb and pg_ctl must run as the `{OS_USER}` user, but \
                 neither runuser nor su was found"
            );
        };
        Ok(Runner::AsPostgres { uid, gid, via })
    }

    /// `program args…`, as the postgres user when root; cwd `/` (the postgres user may
    /// not be allowed into ours), no stdin, no PG* variables.
    fn command(&self, program: &Path, args: &[OsString]) -> Command {
        let mut cmd = match self {
            Runner::Direct => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            Runner::AsPostgres { via: Via::Runuser(runuser), .. } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", OS_USER, "--"]).arg(program).args(args);
                cmd
            }
            Runner::AsPostgres { via: Via::Su(su), .. } => {
                let mut line = sh_quote(program.as_os_str());
                for arg in args {
                    line.push(" ");
                    line.push(sh_quote(arg));
                }
                let mut cmd = Command::new(su);
                cmd.args(["-s", "/bin/sh", "-c"]).arg(line).arg(OS_USER);
                cmd
            }
        };
        cmd.current_dir("/").stdin(Stdio::null());
        for var in PG_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// uid that may own our directories besides root.
    fn owner(&self) -> Option<u32> {
        match self {
            Runner::Direct => None,
            Runner::AsPostgres { uid, .. } => Some(*uid),
        }
    }

    /// Hand `dir` to the postgres user (no-op when not root).
    fn give(&self, dir: &Path) -> Result<()> {
        if let Runner::AsPostgres { uid, gid, .. } = self {
            std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .with_context(|| format!("cannot chown {} to {OS_USER}", dir.display()))?;
        }
        Ok(())
    }

    /// Whether the postgres user can enter `dir` (search permission on it and all parents).
    fn can_reach(&self, dir: &Path) -> bool {
        let args: Vec<OsString> = vec!["-c".into(), r#"cd -- "$1""#.into(), "sh".into(), dir.into()];
        let mut cmd = self.command(Path::new("/bin/sh"), &args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// The directory that will hold the cluster, owned by the postgres user when root.
    fn prepare_base(&self, dir: &Path) -> Result<PathBuf> {
        if matches!(self, Runner::Direct) {
            return Ok(dir.to_path_buf());
        }
        let base = if self.can_reach(dir) {
            dir.to_path_buf()
        } else {
            let alt = std::env::temp_dir().join(format!("shipgate-pg-{:016x}", fnv1a64(dir.as_os_str().as_bytes())));
            warn!(requested = %dir.display(), using = %alt.display(),
                "the {OS_USER} OS user cannot reach the requested directory; keeping the \
                 private PostgreSQL cluster under the temp dir instead");
            create_private_dir(&alt, self.owner())?;
            self.give(&alt)?;
            if !self.can_reach(&alt) {
                bail!(
                    "the {OS_USER} OS user can reach neither {} nor {}: choose a directory it \
                     can reach (or set TMPDIR)",
                    dir.display(),
                    alt.display()
                );
            }
            let note = dir.join("RELOCATED");
            fs::write(
                &note,
                format!(
                    "The {OS_USER} OS user cannot reach this directory, so the private \
                     PostgreSQL cluster lives in {}\n",
                    alt.display()
                ),
            )
            .with_context(|| format!("cannot write {}", note.display()))?;
            alt
        };
        self.give(&base)?;
        Ok(base)
    }
}

/// Effective uid, from `/proc/self/status` or `id -u`.
fn effective_uid() -> Result<u32> {
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(uids) = status.lines().find_map(|l| l.strip_prefix("Uid:"))
        && let Some(euid) = uids.split_whitespace().nth(1)
    {
        return euid.parse().context("unexpected Uid line in /proc/self/status");
    }
    let mut cmd = Command::new("id");
    cmd.arg("-u").stdin(Stdio::null());
    run(cmd, "id -u")?.trim().parse().context("unexpected output from `id -u`")
}

fn os_user_id(flag: &str) -> Result<u32> {
    let mut cmd = Command::new("id");
    cmd.args([flag, OS_USER]).stdin(Stdio::null());
    run(cmd, &format!("id {flag} {OS_USER}"))
        .with_context(|| {
            format!(
                "running as root, the private PostgreSQL runs as the `{OS_USER}` OS user, \
                 which was not found (the postgresql package creates it); or run as a \
                 non-root user"
            )
        })?
        .trim()
        .parse()
        .with_context(|| format!("unexpected output from `id {flag} {OS_USER}`"))
}

/// Run `cmd`; its stdout, or an error quoting its output.
fn run(mut cmd: Command, what: &str) -> Result<String> {
    debug!(command = ?cmd, "running");
    let out = cmd.output().with_context(|| format!("{what}: cannot run {}", cmd.get_program().display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed ({}): {}", out.status, format!("{}\n{}", stderr.trim(), stdout.trim()).trim());
    }
    Ok(stdout)
}

/// Exclusive lock on `path`, waiting up to [`LOCK_TIMEOUT`]; released when the file drops.
fn lock_exclusive(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) => {
                if started.elapsed() > LOCK_TIMEOUT {
                    bail!(
                        "timed out after {}s waiting for {} (held by another process starting \
                         the private PostgreSQL)",
                        LOCK_TIMEOUT.as_secs(),
                        path.display()
                    );
                }
                sleep(Duration::from_millis(50));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
}

/// A directory only root and `owner` may use: created with mode 700, or, when it already
/// exists (it sits in a world-writable temp dir), checked to be a real directory owned by
/// one of them.
fn create_private_dir(path: &Path, owner: Option<u32>) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(path).with_context(|| format!("cannot inspect {}", path.display()))?;
            let me = effective_uid()?;
            let trusted = meta.uid() == me || meta.uid() == 0 || Some(meta.uid()) == owner;
            if !meta.file_type().is_dir() || !trusted {
                bail!(
                    "{} exists but is not a directory owned by this user, root or {OS_USER}; \
                     refusing to use it",
                    path.display()
                );
            }
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set mode 700 on {}", path.display()))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn read_port(path: &Path) -> Option<u16> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free TCP port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Last lines of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    const LINES: usize = 20;
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
            format!("last lines of {}:\n{tail}", path.display())
        }
        Err(e) => format!("(no server log at {}: {e})", path.display()),
    }
}

/// The parts of `postmaster.pid` used here (line 1 pid, 4 port, 5 socket dir).
#[derive(Debug, PartialEq)]
struct PidFile {
    pid: u32,
    port: Option<u16>,
    socket_dir: Option<PathBuf>,
}

fn parse_pid_file(text: &str) -> Option<PidFile> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    // A single-user backend writes its pid negated.
    let pid: i64 = lines.first()?.parse().ok()?;
    let pid = u32::try_from(pid.unsigned_abs()).ok()?;
    Some(PidFile {
        pid,
        port: lines.get(3).and_then(|l| l.parse().ok()),
        socket_dir: lines.get(4).filter(|l| !l.is_empty()).map(PathBuf::from),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PidState {
    /// A live process named postgres.
    Postgres,
    /// A live process that is not postgres (the pid was reused).
    Other,
    Dead,
    /// No `/proc` to tell.
    Unknown,
}

fn pid_state(pid: u32) -> PidState {
    if pid == 0 {
        return PidState::Dead;
    }
    if !Path::new("/proc/self/stat").exists() {
        return PidState::Unknown;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return PidState::Dead;
    };
    // "pid (comm) state …"; comm may contain spaces and parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return PidState::Dead;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].trim_start().chars().next();
    if matches!(state, Some('Z' | 'X') | None) {
        PidState::Dead
    } else if comm.starts_with("postgres") || comm.starts_with("postmaster") {
        PidState::Postgres
    } else {
        PidState::Other
    }
}

#[derive(Debug)]
enum Probe {
    /// The server answers logins (or refuses one for a reason other than starting up or
    /// shutting down, e.g. too many clients).
    Up,
    /// A PostgreSQL server that is starting up, shutting down or in recovery.
    NotYet(String),
    /// Nothing, or something other than PostgreSQL, on the port.
    Down(String),
}

/// Send a protocol-3.0 start-up message for user and database `postgres` to 127.0.0.1:`port`
/// and classify the first reply: 'R' (authentication request) means the server takes logins.
fn probe(port: u16) -> Probe {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(stream) => stream,
        Err(e) => return Probe::Down(format!("cannot connect to {addr}: {e}")),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    let mut body = 196_608_u32.to_be_bytes().to_vec(); // protocol 3.0
    for (key, value) in [("user", SUPERUSER), ("database", "postgres")] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let len = u32::try_from(body.len() + 4).expect("start-up message is small");
    let mut message = len.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    if let Err(e) = stream.write_all(&message) {
        return Probe::NotYet(format!("cannot send start-up message to {addr}: {e}"));
    }
    let mut tag = [0_u8; 1];
    if let Err(e) = stream.read_exact(&mut tag) {
        return Probe::NotYet(format!("no answer from {addr}: {e}"));
    }
    match tag[0] {
        b'R' => {
            // AuthenticationOk (trust): end the session politely.
            let mut rest = [0_u8; 8];
            if stream.read_exact(&mut rest).is_ok() && rest[4..] == [0, 0, 0, 0] {
                let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
            }
            Probe::Up
        }
        b'E' => {
            let (code, message) = read_error_fields(&mut stream);
            // 57P03 cannot_connect_now: starting up, shutting down, in recovery.
            if code == "57P03" { Probe::NotYet(message) } else { Probe::Up }
        }
        other => Probe::Down(format!("{addr} answered {other:#04x}: not a PostgreSQL server")),
    }
}

/// SQLSTATE and message of an ErrorResponse whose tag byte was already read.
fn read_error_fields(stream: &mut impl Read) -> (String, String) {
    let mut len = [0_u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return (String::new(), "unreadable error response".into());
    }
    let len = u32::from_be_bytes(len).saturating_sub(4).min(64 * 1024);
    let mut body = Vec::new();
    let _ = stream.take(u64::from(len)).read_to_end(&mut body);
    let (mut code, mut message) = (String::new(), String::new());
    for field in body.split(|&b| b == 0) {
        match field.split_first() {
            Some((b'C', value)) => code = String::from_utf8_lossy(value).into_owned(),
            Some((b'M', value)) => message = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        }
    }
    (code, message)
}

/// Probe until the server takes logins; give up when `alive` says it died or on timeout.
fn wait_until_up(port: u16, timeout: Duration, alive: impl Fn() -> bool) -> std::result::Result<(), String> {
    let started = Instant::now();
    loop {
        let why = match probe(port) {
            Probe::Up => return Ok(()),
            Probe::NotYet(why) | Probe::Down(why) => why,
        };
        if !alive() {
            return Err(format!("the server exited ({why})"));
        }
        if started.elapsed() > timeout {
            return Err(format!("timed out after {}s ({why})", timeout.as_secs()));
        }
        sleep(Duration::from_millis(100));
    }
}

/// Quote for /bin/sh: unchanged when plainly safe, else in single quotes.
fn sh_quote(s: &OsStr) -> OsString {
    let bytes = s.as_bytes();
    let safe = |c: &u8| c.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(c);
    if !bytes.is_empty() && bytes.iter().all(safe) {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'\'');
    for &c in bytes {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    OsString::from_vec(out)
}

/// FNV-1a, 64 bit: a hash that stays the same across Rust releases (unlike `DefaultHasher`),
/// so a relocated cluster is found again by later builds.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A fresh directory under the temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("shipgate-pgembed-test-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Stops the server on drop, so a failing test leaves no server behind.
    struct StopOnDrop(PrivatePostgres);

    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            if let Err(e) = self.0.stop() {
                eprintln!("stopping test server: {e:#}");
            }
        }
    }

    fn accepts_tcp(port: u16) -> bool {
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_secs(2)).is_ok()
    }

    fn is_root() -> bool {
        effective_uid().unwrap() == 0
    }

    #[test]
    fn find_bin_dir_finds_installed_binaries() {
        let dir = find_bin_dir().expect("PostgreSQL server binaries are installed");
        assert!(dir.join("initdb").is_file(), "{}", dir.display());
        assert!(dir.join("pg_ctl").is_file(), "{}", dir.display());
        if std::env::var_os("SHIPGATE_PG_BIN").is_none() && !debian_bin_dirs().is_empty() {
            assert!(dir.starts_with("/usr/lib/postgresql"), "{}", dir.display());
        }
        // An explicit override wins, and a wrong one is reported as such.
        assert_eq!(find_bin_dir_from(Some(dir.clone().into_os_string())).unwrap(), dir);
        let err = find_bin_dir_from(Some("/nonexistent".into())).unwrap_err();
        assert!(err.to_string().contains("SHIPGATE_PG_BIN"), "{err}");
    }

    #[test]
    fn ensure_starts_reuses_and_restarts_after_a_stale_pid_file() {
        let scratch = Scratch::new("reuse");
        let opts = Arc::new(Options { dir: scratch.0.join("pg"), durable: false });

        // Several callers at once: exactly one starts the server, all share it.
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let opts = Arc::clone(&opts);
                std::thread::spawn(move || PrivatePostgres::ensure(&opts))
            })
            .collect();
        let servers: Vec<PrivatePostgres> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        let mut servers = servers.into_iter();
        let first = servers.next().unwrap();
        let port = first.port();
        let first = StopOnDrop(first);
        let others: Vec<_> = servers.collect();
        let starters = others.iter().filter(|s| s.started_here()).count() + usize::from(first.0.started_here());
        assert_eq!(starters, 1);
        assert!(others.iter().all(|s| s.port() == port));
        assert!(accepts_tcp(port));
        assert!(matches!(probe(port), Probe::Up));
        assert_eq!(first.0.url("shipgate"), format!("postgres://postgres@127.0.0.1:{port}/shipgate"));

        // A later call reuses it.
        let again = PrivatePostgres::ensure(&opts).unwrap();
        assert_eq!(again.port(), port);
        assert!(!again.started_here());
        assert_eq!(again.dir(), first.0.dir());

        // Test settings were applied; the cluster belongs to the postgres user when root.
        let cmdline = fs::read_to_string(first.0.data.join("postmaster.opts")).unwrap();
        assert!(cmdline.contains("fsync=off"), "{cmdline}");
        assert!(cmdline.contains("listen_addresses=127.0.0.1"), "{cmdline}");
        if is_root() {
            let owner = fs::metadata(&first.0.data).unwrap().uid();
            assert_eq!(owner, os_user_id("-u").unwrap());
        }

        first.0.stop().unwrap();
        assert!(matches!(probe(port), Probe::Down(_)));
        first.0.stop().unwrap(); // stopping a stopped server is fine

        // A pid file left by a dead server: start again, on the remembered port.
        let mut child = Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let pid_path = first.0.data.join("postmaster.pid");
        fs::write(
            &pid_path,
            format!(
                "{dead_pid}\n{}\n0\n{port}\n{}\n127.0.0.1\n0 0\nready\n",
                first.0.data.display(),
                first.0.data.display()
            ),
        )
        .unwrap();
        let restarted = PrivatePostgres::ensure(&opts).unwrap();
        assert!(restarted.started_here());
        assert_eq!(restarted.port(), port);
        assert!(accepts_tcp(port));
        drop(first); // stops `restarted` too: same directory
        assert!(!accepts_tcp(port));
    }

    #[test]
    fn ensure_relocates_when_the_postgres_user_cannot_reach_the_dir() {
        if !is_root() {
            eprintln!("skipped: only meaningful when running as root");
            return;
        }
        let scratch = Scratch::new("private");
        fs::set_permissions(&scratch.0, fs::Permissions::from_mode(0o700)).unwrap();
        let opts = Options { dir: scratch.0.join("pg"), durable: false };
        let relocated = Scratch(
            std::env::temp_dir().join(format!("shipgate-pg-{:016x}", fnv1a64(opts.dir.as_os_str().as_bytes()))),
        );
        let pg = StopOnDrop(PrivatePostgres::ensure(&opts).unwrap());
        assert_eq!(pg.0.dir(), relocated.0);
        assert!(scratch.0.join("pg/RELOCATED").is_file());
        assert!(pg.0.started_here());
        assert!(accepts_tcp(pg.0.port()));
        let port = pg.0.port();
        drop(pg);
        assert!(!accepts_tcp(port));
        drop(relocated);
    }

    #[test]
    fn runuser_and_su_run_commands_as_postgres_with_arguments_intact() {
        if !is_root() {
            eprintln!("skipped: only meaningful when running as root");
            return;
        }
        let Runner::AsPostgres { uid, gid, .. } = Runner::detect().unwrap() else {
            panic!("root must run the tools as postgres");
        };
        let vias = [find_program("runuser").map(Via::Runuser), find_program("su").map(Via::Su)];
        for via in vias.into_iter().flatten() {
            let runner = Runner::AsPostgres { uid, gid, via };
            let args: Vec<OsString> =
                vec!["-c".into(), r#"printf '%s|%s' "$(id -un)" "$1""#.into(), "sh".into(), "a b'c $HOME \\".into()];
            let out = run(runner.command(Path::new("/bin/sh"), &args), "sh").unwrap();
            assert_eq!(out, "postgres|a b'c $HOME \\", "{runner:?}");
        }
    }

    #[test]
    fn probe_tells_nothing_and_non_postgres_apart() {
        let port = free_port().unwrap();
        assert!(matches!(probe(port), Probe::Down(_)));

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0_u8; 64];
            let _ = conn.read(&mut buf);
            conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        });
        assert!(matches!(probe(port), Probe::Down(_)));
        server.join().unwrap();
    }

    #[test]
    fn error_fields_are_parsed() {
        let mut body = Vec::new();
        body.extend_from_slice(b"SFATAL\0C57P03\0Mthe database system is starting up\0\0");
        let mut message = u32::try_from(body.len() + 4).unwrap().to_be_bytes().to_vec();
        message.extend_from_slice(&body);
        let (code, text) = read_error_fields(&mut message.as_slice());
        assert_eq!(code, "57P03");
        assert_eq!(text, "the database system is starting up");
    }

    #[test]
    fn pid_files_are_parsed() {
        let text = "4242\n/data\n1700000000\n54321\n/data\n127.0.0.1\n  1 2\nready   \n";
        assert_eq!(
            parse_pid_file(text),
            Some(PidFile { pid: 4242, port: Some(54321), socket_dir: Some(PathBuf::from("/data")) })
        );
        assert_eq!(parse_pid_file("-17\n").unwrap().pid, 17);
        assert_eq!(parse_pid_file(""), None);
        assert_eq!(pid_state(std::process::id()), PidState::Other);
    }

    #[test]
    fn versions_and_quoting() {
        assert_eq!(
            major_from_version_output("pg_ctl (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)\n"),
            Some("15".into())
        );
        assert_eq!(major_from_version_output("pg_ctl (PostgreSQL) 9.6.24\n"), Some("9.6".into()));
        assert_eq!(version_key("9.6"), vec![9, 6]);
        assert!(version_key("15") > version_key("9.6"));
        assert!(version_key("README").is_empty());
        assert_eq!(sh_quote(OsStr::new("/a/b-c.d")), "/a/b-c.d");
        assert_eq!(sh_quote(OsStr::new("a b'c")), r"'a b'\''c'");
        assert_eq!(sh_quote(OsStr::new("")), "''");
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

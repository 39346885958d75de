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

mod bins;
mod os;
mod runner;

pub use bins::find_bin_dir;
use bins::*;
use os::*;
use runner::*;

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

#[cfg(test)]
mod tests;

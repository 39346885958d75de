//! Small operating-system helpers: locks, private directories, ports, pid files,
//! probing a server, quoting.

use super::*;

/// Exclusive lock on `path`, waiting up to [`LOCK_TIMEOUT`]; released when the file drops.
pub(crate) fn lock_exclusive(path: &Path) -> Result<File> {
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
pub(crate) fn create_private_dir(path: &Path, owner: Option<u32>) -> Result<()> {
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

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

pub(crate) fn read_port(path: &Path) -> Option<u16> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(crate) fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free TCP port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Last lines of the server log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
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
pub(crate) struct PidFile {
    pub(crate) pid: u32,
    pub(crate) port: Option<u16>,
    pub(crate) socket_dir: Option<PathBuf>,
}

pub(crate) fn parse_pid_file(text: &str) -> Option<PidFile> {
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
pub(crate) enum PidState {
    /// A live process named postgres.
    Postgres,
    /// A live process that is not postgres (the pid was reused).
    Other,
    Dead,
    /// No `/proc` to tell.
    Unknown,
}

pub(crate) fn pid_state(pid: u32) -> PidState {
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
pub(crate) enum Probe {
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
pub(crate) fn probe(port: u16) -> Probe {
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
pub(crate) fn read_error_fields(stream: &mut impl Read) -> (String, String) {
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
pub(crate) fn wait_until_up(port: u16, timeout: Duration, alive: impl Fn() -> bool) -> std::result::Result<(), String> {
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
pub(crate) fn sh_quote(s: &OsStr) -> OsString {
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
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

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
    let relocated =
        Scratch(std::env::temp_dir().join(format!("shipgate-pg-{:016x}", fnv1a64(opts.dir.as_os_str().as_bytes()))));
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
    assert_eq!(major_from_version_output("pg_ctl (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)\n"), Some("15".into()));
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

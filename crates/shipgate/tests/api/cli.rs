//! The command line as an operator meets it (issue 9 "Operability"): a bad
//! `DATABASE_URL` is named with exit code 2 (README "Configuration"), an unreachable
//! database says where and why, and `shipgate openapi | head` ends quietly.

use std::process::{Command, Stdio};

fn shipgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shipgate"));
    for var in
        ["DATABASE_URL", "DATABASE_URL_FILE", "SHIPGATE_CONFIG", "SHIPGATE_MASTER_KEY", "SHIPGATE_MASTER_KEY_FILE"]
    {
        c.env_remove(var);
    }
    c
}

#[test]
fn an_invalid_database_url_names_the_setting_and_exits_2() {
    for url in ["not a url", "mysql://app:hunter2@db/shipgate", "postgres://app:hunter2@db:99999/shipgate"] {
        let out = shipgate().arg("migrate").env("DATABASE_URL", url).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains("DATABASE_URL"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "the password is never echoed: {stderr}");
    }
}

#[test]
fn an_unreachable_database_says_which_host_and_why() {
    // Port 1 on loopback: nothing listens there.
    let out = shipgate()
        .arg("migrate")
        .env("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/shipgate")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(!stderr.contains("pool timed out") && !stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn openapi_into_a_closed_pipe_ends_quietly() {
    let mut child = shipgate().arg("openapi").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run");
    // Read nothing and close our end, as `| head -c0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

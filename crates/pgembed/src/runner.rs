//! Running the PostgreSQL tools, as the `postgres` OS user when we are root (initdb
//! refuses to run as root).

use super::*;

/// How the PostgreSQL tools are run: directly, or as the `postgres` OS user when root.
#[derive(Debug, Clone)]
pub(crate) enum Runner {
    Direct,
    AsPostgres { uid: u32, gid: u32, via: Via },
}

#[derive(Debug, Clone)]
pub(crate) enum Via {
    Runuser(PathBuf),
    Su(PathBuf),
}

impl Runner {
    pub(crate) fn detect() -> Result<Runner> {
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
    pub(crate) fn command(&self, program: &Path, args: &[OsString]) -> Command {
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
    pub(crate) fn owner(&self) -> Option<u32> {
        match self {
            Runner::Direct => None,
            Runner::AsPostgres { uid, .. } => Some(*uid),
        }
    }

    /// Hand `dir` to the postgres user (no-op when not root).
    pub(crate) fn give(&self, dir: &Path) -> Result<()> {
        if let Runner::AsPostgres { uid, gid, .. } = self {
            std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .with_context(|| format!("cannot chown {} to {OS_USER}", dir.display()))?;
        }
        Ok(())
    }

    /// Whether the postgres user can enter `dir` (search permission on it and all parents).
    pub(crate) fn can_reach(&self, dir: &Path) -> bool {
        let args: Vec<OsString> = vec!["-c".into(), r#"cd -- "$1""#.into(), "sh".into(), dir.into()];
        let mut cmd = self.command(Path::new("/bin/sh"), &args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// The directory that will hold the cluster, owned by the postgres user when root.
    pub(crate) fn prepare_base(&self, dir: &Path) -> Result<PathBuf> {
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
pub(crate) fn effective_uid() -> Result<u32> {
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

pub(crate) fn os_user_id(flag: &str) -> Result<u32> {
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
pub(crate) fn run(mut cmd: Command, what: &str) -> Result<String> {
    debug!(command = ?cmd, "running");
    let out = cmd.output().with_context(|| format!("{what}: cannot run {}", cmd.get_program().display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed ({}): {}", out.status, format!("{}\n{}", stderr.trim(), stdout.trim()).trim());
    }
    Ok(stdout)
}

//! Finding the PostgreSQL server binaries.

use super::*;

/// The directory holding `initdb` and `pg_ctl`: `$SHIPGATE_PG_BIN`, else the highest
/// `/usr/lib/postgresql/*/bin` (Debian/Ubuntu), else `pg_config --bindir`, else `PATH`.
pub fn find_bin_dir() -> Result<PathBuf> {
    find_bin_dir_from(std::env::var_os("SHIPGATE_PG_BIN"))
}

pub(crate) fn find_bin_dir_from(env: Option<OsString>) -> Result<PathBuf> {
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
pub(crate) fn bin_dir_for(data: &Path) -> Result<PathBuf> {
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
pub(crate) fn debian_bin_dirs() -> Vec<(Vec<u32>, PathBuf)> {
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
pub(crate) fn version_key(name: &str) -> Vec<u32> {
    name.split('.').map(str::parse).collect::<Result<Vec<u32>, _>>().unwrap_or_default()
}

/// Major version as written in `PG_VERSION` ("15", "9.6"), from `pg_ctl --version`.
pub(crate) fn bin_major_version(bin_dir: &Path) -> Option<String> {
    let out = Command::new(bin_dir.join("pg_ctl")).arg("--version").stdin(Stdio::null()).output().ok()?;
    major_from_version_output(&String::from_utf8_lossy(&out.stdout))
}

/// "pg_ctl (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)" → "15"; "… 9.6.24" → "9.6".
pub(crate) fn major_from_version_output(text: &str) -> Option<String> {
    let version = text.split("(PostgreSQL)").nth(1)?.split_whitespace().next()?;
    let parts: Vec<&str> = version.split('.').collect();
    let first: u32 = parts.first()?.parse().ok()?;
    if first >= 10 { Some(first.to_string()) } else { Some(format!("{first}.{}", parts.get(1)?)) }
}

pub(crate) fn has_server_bins(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl"))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` on `PATH`, or in the sbin dirs a non-login root shell may lack.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

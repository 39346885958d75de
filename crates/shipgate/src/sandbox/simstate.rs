//! The simulators as the sandbox mounts them, and their state kept across restarts
//! under `<data_dir>/sims/` (see the module doc of `sandbox`).

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// Every simulator, mounted under `/sim/<carrier>` of `router`. Cheap to clone (each
/// simulator is a handle on shared state).
#[derive(Clone)]
pub struct Simulators {
    pub ecourier: ecourier::EcourierSim,
    pub ecmr: ecmr::EcmrSim,
    pub aftership: aftership::AftershipSim,
    pub ecomdash: ecomdash::EcomdashSim,
    /// Which simulators got a request that may have changed their state, and when.
    activity: std::sync::Arc<Activity>,
}

impl Simulators {
    pub fn new() -> Simulators {
        Simulators {
            ecourier: ecourier::EcourierSim::new(Default::default()),
            ecmr: ecmr::EcmrSim::new(Default::default()),
            aftership: aftership::AftershipSim::new(Default::default()),
            ecomdash: ecomdash::EcomdashSim::new(Default::default()),
            activity: Default::default(),
        }
    }

    /// Each simulator under its mount point, noting the requests that may change its state.
    pub fn mount(&self, router: axum::Router) -> axum::Router {
        router
            .nest(ECOURIER_MOUNT, self.watched("ecourier", self.ecourier.router()))
            .nest(ECMR_MOUNT, self.watched("ecmr", self.ecmr.router()))
            .nest(AFTERSHIP_MOUNT, self.watched("aftership", self.aftership.router()))
            .nest(ECOMDASH_MOUNT, self.watched("ecomdash", self.ecomdash.router()))
    }

    fn watched(&self, carrier: &'static str, router: axum::Router) -> axum::Router {
        let activity = self.activity.clone();
        router.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
            if may_change(carrier, request.method(), request.uri().path()) {
                activity.touch(carrier, std::time::Instant::now());
            }
            next.run(request)
        }))
    }
}

impl Default for Simulators {
    fn default() -> Self {
        Simulators::new()
    }
}

/// Whether a request to a simulator may change what it exports. Reads never do: the
/// e-Courier simulator's GetJsonOrder, QuoteOrder and RefreshGUID (which only renews a
/// session), every other carrier's GETs, and the control API's GETs.
fn may_change(carrier: &str, method: &axum::http::Method, path: &str) -> bool {
    let read = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    if path.contains("/_sim/") || carrier != "ecourier" {
        return !read;
    }
    path.ends_with("/SaveOrder") || path.ends_with("/Login")
}

/// A simulator's state is saved once no change came for [`SAVE_QUIET`], or at the latest
/// [`SAVE_MAX_DELAY`] after its first unsaved change: a busy simulator (a benchmark
/// sending thousands of orders a second) is not exported over and over while it works.
pub const SAVE_QUIET: Duration = Duration::from_secs(2);
/// See [`SAVE_QUIET`].
pub const SAVE_MAX_DELAY: Duration = Duration::from_secs(30);
/// How often the saver looks for simulators to save.
const SAVE_TICK: Duration = Duration::from_secs(1);

/// The carriers whose simulators keep state, as named in `<data_dir>/sims/<carrier>.json`.
pub const SIM_CARRIERS: [&str; 4] = ["ecourier", "ecmr", "aftership", "ecomdash"];

/// Per simulator, the first and the last change not saved yet.
#[derive(Default)]
struct Activity(std::sync::Mutex<BTreeMap<&'static str, (std::time::Instant, std::time::Instant)>>);

impl Activity {
    fn touch(&self, carrier: &'static str, at: std::time::Instant) {
        let mut changes = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        changes.entry(carrier).and_modify(|(_, last)| *last = at).or_insert((at, at));
    }

    /// Whether `carrier` is due to be saved at `now`; if so, its changes count as saved
    /// from here on (a change arriving while it is written makes it due again).
    fn take_due(&self, carrier: &str, now: std::time::Instant) -> bool {
        let mut changes = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = changes.get(carrier).is_some_and(|&(first, last)| {
            now.saturating_duration_since(last) >= SAVE_QUIET || now.saturating_duration_since(first) >= SAVE_MAX_DELAY
        });
        if due {
            changes.remove(carrier);
        }
        due
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

impl Simulators {
    /// One simulator's state as its `export_state` gives it.
    pub fn export_state(&self, carrier: &str) -> Option<serde_json::Value> {
        Some(match carrier {
            "ecourier" => self.ecourier.export_state(),
            "ecmr" => self.ecmr.export_state(),
            "aftership" => self.aftership.export_state(),
            "ecomdash" => self.ecomdash.export_state(),
            _ => return None,
        })
    }

    /// Replace one simulator's state with an exported one.
    pub fn import_state(&self, carrier: &str, state: serde_json::Value) -> Result<(), String> {
        match carrier {
            "ecourier" => self.ecourier.import_state(state),
            "ecmr" => self.ecmr.import_state(state),
            "aftership" => self.aftership.import_state(state),
            "ecomdash" => self.ecomdash.import_state(state),
            other => Err(format!("no simulator for {other}")),
        }
    }
}

/// A fingerprint of a simulator's state that ignores what moves without anything
/// happening: the e-Courier simulator exports how long each UserGUID has been idle.
fn fingerprint(carrier: &str, state: &serde_json::Value) -> u64 {
    let mut state = state.clone();
    if carrier == "ecourier"
        && let Some(tokens) = state.get_mut("tokens").and_then(serde_json::Value::as_array_mut)
    {
        for t in tokens.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            t.remove("idle_ms");
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state.to_string().hash(&mut h);
    h.finish()
}

/// `shipgate sandbox`'s simulator state on disk: `<dir>/<carrier>.json`, one per simulator.
pub struct SimStateDir {
    dir: PathBuf,
    /// The fingerprint of what each file holds now (what was loaded or last saved).
    saved: BTreeMap<&'static str, u64>,
}

impl SimStateDir {
    pub fn new(dir: impl Into<PathBuf>) -> SimStateDir {
        SimStateDir { dir: dir.into(), saved: BTreeMap::new() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, carrier: &str) -> PathBuf {
        self.dir.join(format!("{carrier}.json"))
    }

    /// Import every state file present into `sims`; returns what happened, one line per
    /// carrier with a file. A file that cannot be read or imported is moved aside
    /// (`<carrier>.json.unreadable`) rather than overwritten by the next save.
    pub fn load(&mut self, sims: &Simulators) -> Vec<String> {
        let mut report = Vec::new();
        for carrier in SIM_CARRIERS {
            let path = self.file(carrier);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    report.push(format!("{carrier}: {} unreadable ({e}); starting empty", path.display()));
                    continue;
                }
            };
            let imported = serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(|state| sims.import_state(carrier, state));
            match imported {
                Ok(()) => {
                    if let Some(state) = sims.export_state(carrier) {
                        self.saved.insert(carrier, fingerprint(carrier, &state));
                    }
                    report.push(format!("{carrier}: state restored from {}", path.display()));
                }
                Err(e) => {
                    let aside = self.dir.join(format!("{carrier}.json.unreadable"));
                    let moved = std::fs::rename(&path, &aside).is_ok();
                    report.push(format!(
                        "{carrier}: {} could not be imported ({e}); starting empty{}",
                        path.display(),
                        if moved { format!(", the file is kept as {}", aside.display()) } else { String::new() }
                    ));
                }
            }
        }
        report
    }

    /// Save the simulators that changed and are due at `now` (see [`SAVE_QUIET`]); returns
    /// the carriers written. A state equal to what the file holds is not written again.
    pub fn save_due(&mut self, sims: &Simulators, now: std::time::Instant) -> std::io::Result<Vec<&'static str>> {
        let due: Vec<&'static str> = SIM_CARRIERS.into_iter().filter(|c| sims.activity.take_due(c, now)).collect();
        self.save(sims, &due, false)
    }

    /// Write every simulator's state (at shutdown); returns the carriers written.
    pub fn save_all(&mut self, sims: &Simulators) -> std::io::Result<Vec<&'static str>> {
        sims.activity.clear();
        self.save(sims, &SIM_CARRIERS, true)
    }

    fn save(
        &mut self,
        sims: &Simulators,
        carriers: &[&'static str],
        force: bool,
    ) -> std::io::Result<Vec<&'static str>> {
        if carriers.is_empty() {
            return Ok(Vec::new());
        }
        std::fs::create_dir_all(&self.dir)?;
        let mut written = Vec::new();
        for &carrier in carriers {
            let Some(state) = sims.export_state(carrier) else { continue };
            let print = fingerprint(carrier, &state);
            if !force && self.saved.get(carrier) == Some(&print) {
                continue;
            }
            write_atomically(&self.file(carrier), state.to_string().as_bytes())?;
            self.saved.insert(carrier, print);
            written.push(carrier);
        }
        Ok(written)
    }
}

/// Write `bytes` to `path` so that a reader (or a crash) sees the old file or the new one,
/// never half of one: a temp file in the same directory, synced, then renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The e-Courier state holds the simulator's session GUIDs: owner only, like master.key.
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Save `sims` into `state` as they change (see [`SAVE_QUIET`]), until aborted. With the
/// e-Courier clock running, its orders move with no request: it counts as always changing.
pub(super) fn spawn_state_saver(
    sims: Simulators,
    state: std::sync::Arc<std::sync::Mutex<SimStateDir>>,
    clock_running: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAVE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = std::time::Instant::now();
            if clock_running {
                sims.activity.touch("ecourier", now);
            }
            let (sims, state) = (sims.clone(), state.clone());
            let saved = tokio::task::spawn_blocking(move || {
                state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).save_due(&sims, now)
            })
            .await;
            match saved {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the simulators' state could not be saved"),
                Err(e) => tracing::warn!(error = %e, "the simulators' state saver failed"),
            }
        }
    })
}

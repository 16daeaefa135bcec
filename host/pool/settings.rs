//! One value holding every setting the front ends give a pool.
//!
//! The command (`wasmpool run`) and the Python package (`wasmpool.Pool`)
//! fill a [`Settings`] from their options, each in one place, and hand it
//! to [`PoolBuilder::settings`](crate::PoolBuilder::settings): both expose
//! exactly these settings, under these names (`--max-memory` on the
//! command line, `max_memory=` in Python) and with these defaults. As
//! wasmtime's `Config`, the value can be checked on its own
//! ([`Settings::validate`]) and summarized by what changes results
//! ([`Settings::compatibility_hash`]).
//!
//! What stays on the builder alone is how a program embeds the pool rather
//! than what a user sets: where the module comes from, the worker
//! executable of process mode, where printed output goes, the instance
//! allocator, idle spinning and whether fresh state is made by resetting
//! in place.

use crate::error::SettingsError;
use crate::process::config::DEFAULT_MAX_RETRIES;
use crate::sandbox::limits::{
    CompileLimits, DEFAULT_MAX_MEMORY, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_OUTPUT, DEFAULT_MAX_STACK,
    DEFAULT_MAX_TABLE_ELEMENTS, Limits,
};
use crate::sandbox::wasi::WasiConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

/// Default time the guest code run while a module loads may take (see
/// [`PoolBuilder::load_deadline`](crate::PoolBuilder::load_deadline)).
pub const DEFAULT_LOAD_DEADLINE: Duration = Duration::from_secs(5);

/// Every setting of a pool a user chooses, with the defaults of both front
/// ends.
///
/// Read from JSON (an object naming some of them, the others keeping their
/// defaults; an unknown name is refused) with [`Settings::from_json`];
/// durations are in seconds, sizes in bytes.
///
/// ```
/// let settings = wasmpool::Settings::from_json(r#"{"workers": 2, "deadline": 1.5}"#)?;
/// assert_eq!(settings.max_memory, wasmpool::DEFAULT_MAX_MEMORY);
/// settings.validate()?;
/// # Ok::<(), wasmpool::SettingsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// How many workers (default: one per CPU).
    pub workers: Option<usize>,
    /// Each worker in a process of its own instead of a thread (default
    /// `false`). The worker program is the front end's business
    /// ([`PoolBuilder::processes`](crate::PoolBuilder::processes)).
    pub processes: bool,
    /// Process mode: how many times a task whose worker process died is
    /// run again (default [`DEFAULT_MAX_RETRIES`]).
    pub max_retries: u32,
    /// The pool's seed (default: drawn at random, reported by
    /// [`Pool::seed`](crate::Pool::seed)).
    pub seed: Option<u64>,
    /// Inputs sent to a worker at a time (default: chosen per map).
    pub chunk_size: Option<usize>,
    /// Wall time per task (default: none).
    #[serde(with = "seconds_opt")]
    pub deadline: Option<Duration>,
    /// Wall time of the module's own set-up code (default
    /// [`DEFAULT_LOAD_DEADLINE`], 5 s).
    #[serde(with = "seconds")]
    pub load_deadline: Duration,
    /// Wasm instructions per task (default: unmetered).
    pub fuel: Option<u64>,
    /// Linear memory per instance, in bytes (default [`DEFAULT_MAX_MEMORY`]).
    pub max_memory: usize,
    /// Wasm stack, in bytes (default [`DEFAULT_MAX_STACK`]).
    pub max_stack: usize,
    /// One result, or a WASI task's stdout or stderr, in bytes (default
    /// [`DEFAULT_MAX_OUTPUT`]).
    pub max_output: usize,
    /// Elements of each table (default [`DEFAULT_MAX_TABLE_ELEMENTS`]).
    pub max_table_elements: usize,
    /// One message a task sends while it runs, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE`]).
    pub max_message: usize,
    /// The module itself, in bytes: a larger one is refused before it is
    /// compiled (default 64 MiB).
    pub max_module_size: usize,
    /// Thread workers: compile the checks that let a running task be
    /// stopped. `None` (the default) lets the front end choose: the
    /// library and the command compile them only with a deadline; the
    /// Python package always, so that Ctrl-C stops running tasks.
    pub interruptible: Option<bool>,
    /// Each input starts from the module's initial state (default `true`);
    /// `false` keeps one instance per worker for all its inputs.
    pub fresh_state: bool,
    /// Every NaN gets the same bits on every CPU (default `true`).
    pub canonicalize_nans: bool,
    /// Keep compiled modules in the cache (default `true`).
    pub cache: bool,
    /// The cache's folder (default: `wasmpool` in the user's cache folder).
    pub cache_dir: Option<PathBuf>,
    /// A task run on every new instance before it serves inputs (default:
    /// none), as `multiprocessing`'s `initializer`.
    pub initializer: Option<String>,
    /// The initializer's arguments, as the text of a JSON array (default
    /// `[]`).
    pub initargs: String,
    /// Environment variables granted to WASI tasks, each `NAME=VALUE`, or
    /// `NAME` for the value it has in this process (default: none).
    pub allow_env: Vec<String>,
    /// Folders WASI tasks may read (default: none).
    pub allow_dir: Vec<DirGrant>,
    /// Folders WASI tasks may read and write (default: none).
    pub allow_write_dir: Vec<DirGrant>,
    /// The wall clock, for WASI tasks (default `false`).
    pub allow_wall_clock: bool,
    /// The monotonic clock and sleeping, for WASI tasks (default `false`).
    pub allow_monotonic_clock: bool,
}

/// The name of every setting, as [`Settings`] names its fields: the
/// Python keyword arguments, and the command's options with `-` for `_`.
pub const SETTING_NAMES: [&str; 26] = [
    "workers",
    "processes",
    "max_retries",
    "seed",
    "chunk_size",
    "deadline",
    "load_deadline",
    "fuel",
    "max_memory",
    "max_stack",
    "max_output",
    "max_table_elements",
    "max_message",
    "max_module_size",
    "interruptible",
    "fresh_state",
    "canonicalize_nans",
    "cache",
    "cache_dir",
    "initializer",
    "initargs",
    "allow_env",
    "allow_dir",
    "allow_write_dir",
    "allow_wall_clock",
    "allow_monotonic_clock",
];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: None,
            processes: false,
            max_retries: DEFAULT_MAX_RETRIES,
            seed: None,
            chunk_size: None,
            deadline: None,
            load_deadline: DEFAULT_LOAD_DEADLINE,
            fuel: None,
            max_memory: DEFAULT_MAX_MEMORY,
            max_stack: DEFAULT_MAX_STACK,
            max_output: DEFAULT_MAX_OUTPUT,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_message: DEFAULT_MAX_MESSAGE,
            max_module_size: CompileLimits::default().max_module_bytes,
            interruptible: None,
            fresh_state: true,
            canonicalize_nans: true,
            cache: true,
            cache_dir: None,
            initializer: None,
            initargs: "[]".into(),
            allow_env: Vec::new(),
            allow_dir: Vec::new(),
            allow_write_dir: Vec::new(),
            allow_wall_clock: false,
            allow_monotonic_clock: false,
        }
    }
}

/// Largest JSON text [`Settings::from_json`] reads.
const MAX_SETTINGS_JSON: usize = 1 << 20;

impl Settings {
    /// The settings a JSON object names, the others at their defaults.
    /// Refuses an unknown name, a value of the wrong type and text over
    /// 1 MiB, naming the setting. Does not [`validate`](Self::validate).
    pub fn from_json(text: &str) -> Result<Settings, SettingsError> {
        if text.len() > MAX_SETTINGS_JSON {
            return Err(SettingsError::new("settings", format!("{} bytes of JSON is over 1 MiB", text.len())));
        }
        let mut reader = serde_json::Deserializer::from_str(text);
        let settings: Settings = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let path = e.path().to_string();
            let setting = if path == "." { "settings".to_owned() } else { path };
            // serde_json's position is in text the caller (the Python
            // package) made, not the user: the setting's name says where.
            let error = e.into_inner();
            let message = error.to_string();
            let reason = match message.rsplit_once(" at line ") {
                Some((reason, _)) if error.line() > 0 => reason.to_owned(),
                _ => message,
            };
            SettingsError::new(setting, reason)
        })?;
        reader.end().map_err(|e| SettingsError::new("settings", e.to_string()))?;
        Ok(settings)
    }

    /// Checks every setting that can be checked without the module: counts
    /// and sizes that would refuse every task, an initializer's arguments
    /// without an initializer, a cache folder with the cache off, a
    /// deadline on thread workers without checks, malformed or missing
    /// environment grants and granted folders that do not exist.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.workers == Some(0) {
            return Err(SettingsError::new("workers", "a pool needs at least one worker"));
        }
        if self.chunk_size == Some(0) {
            return Err(SettingsError::new("chunk_size", "a chunk holds at least one input"));
        }
        self.limits().validate()?;
        if self.load_deadline.is_zero() {
            return Err(SettingsError::new("load_deadline", "a load deadline of zero would refuse every module"));
        }
        if self.max_module_size == 0 {
            return Err(SettingsError::new("max_module_size", "a size of zero would refuse every module"));
        }
        if self.max_output == 0 {
            return Err(SettingsError::new("max_output", "a size of zero would refuse every result"));
        }
        if !self.processes && self.deadline.is_some() && self.interruptible == Some(false) {
            return Err(SettingsError::new(
                "interruptible",
                "a deadline needs interruptible thread workers: drop interruptible=false, or use processes",
            ));
        }
        if self.initializer.is_none() && !self.initargs.chars().filter(|c| !c.is_whitespace()).eq("[]".chars()) {
            return Err(SettingsError::new("initargs", "initargs without an initializer would never be used"));
        }
        if !self.cache && self.cache_dir.is_some() {
            return Err(SettingsError::new("cache_dir", "a cache folder is given, but the cache is turned off"));
        }
        self.wasi()?;
        Ok(())
    }

    /// The sandbox's limits these settings give.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            deadline: self.deadline,
            fuel: self.fuel,
            max_memory: self.max_memory,
            max_table_elements: self.max_table_elements,
            max_stack: self.max_stack,
            max_output: self.max_output,
            max_message: self.max_message,
        }
    }

    /// What WASI tasks are granted, `None` for nothing: environment grants
    /// given as a name alone take the value this process has.
    pub(crate) fn wasi(&self) -> Result<Option<WasiConfig>, SettingsError> {
        let granted = !self.allow_env.is_empty()
            || !self.allow_dir.is_empty()
            || !self.allow_write_dir.is_empty()
            || self.allow_wall_clock
            || self.allow_monotonic_clock;
        if !granted {
            return Ok(None);
        }
        let mut config = WasiConfig::new();
        for grant in &self.allow_env {
            let (name, value) = match grant.split_once('=') {
                Some((name, value)) => (name, value.to_owned()),
                None => {
                    let value = std::env::var(grant).map_err(|_| {
                        SettingsError::new("allow_env", format!("{grant} is not set here: give {grant}=VALUE"))
                    })?;
                    (grant.as_str(), value)
                }
            };
            if name.is_empty() || name.contains('\0') || value.contains('\0') {
                // The name only: the value may be a secret.
                return Err(SettingsError::new(
                    "allow_env",
                    format!("{name:?}: a grant is NAME=VALUE or NAME, with a name and no NUL characters"),
                ));
            }
            config = config.env(name, value);
        }
        for (grants, writable) in [(&self.allow_dir, false), (&self.allow_write_dir, true)] {
            for grant in grants {
                config = if writable {
                    config.writable_dir(&grant.host, &grant.guest)
                } else {
                    config.read_only_dir(&grant.host, &grant.guest)
                };
            }
        }
        if self.allow_wall_clock {
            config = config.wall_clock();
        }
        if self.allow_monotonic_clock {
            config = config.monotonic_clock();
        }
        for (setting, grants) in [("allow_dir", &self.allow_dir), ("allow_write_dir", &self.allow_write_dir)] {
            if let Some(missing) = grants.iter().find(|grant| !grant.host.is_dir()) {
                let why = format!("{} does not exist or is not a folder", missing.host.display());
                return Err(SettingsError::new(setting, why));
            }
        }
        config.validate().map_err(|why| SettingsError::new("allow_dir", why))?;
        Ok(Some(config))
    }

    /// The settings other than grants that can change a task's result or
    /// whether it fails, as one line of JSON: the limits, the instance and
    /// NaN settings and the initializer. Not in it: how many workers of
    /// which kind, retries, chunks, the seed (reported on its own), the
    /// cache, which change no result, and the grants, which a caller
    /// records in its own words (the command's journal: each folder
    /// canonical, each environment value hashed).
    pub fn results_identity(&self) -> String {
        let relevant = serde_json::json!({
            "deadline": self.deadline.map(|d| d.as_secs_f64()),
            "load_deadline": self.load_deadline.as_secs_f64(),
            "fuel": self.fuel,
            "max_memory": self.max_memory,
            "max_stack": self.max_stack,
            "max_output": self.max_output,
            "max_table_elements": self.max_table_elements,
            "max_message": self.max_message,
            "max_module_size": self.max_module_size,
            "fresh_state": self.fresh_state,
            "canonicalize_nans": self.canonicalize_nans,
            "initializer": self.initializer,
            "initargs": self.initargs,
        });
        relevant.to_string()
    }

    /// SHA-256, in hex, of everything that can change a task's result:
    /// [`results_identity`](Self::results_identity) and the grants, each
    /// environment variable with its value (a name alone with the value it
    /// has in this process), each folder as given. Two pools whose hashes
    /// are equal give every task the same result (with the same module,
    /// task, input and seed, and the same contents in granted folders).
    pub fn compatibility_hash(&self) -> String {
        let mut digest = Sha256::new();
        let mut part = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };
        part(self.results_identity().as_bytes());
        for grant in &self.allow_env {
            let resolved = match grant.split_once('=') {
                Some(_) => grant.clone(),
                None => format!("{grant}={}", std::env::var(grant).unwrap_or_default()),
            };
            part(resolved.as_bytes());
        }
        for (mode, grants) in [("read", &self.allow_dir), ("write", &self.allow_write_dir)] {
            for grant in grants {
                part(format!("{mode} {}::{}", grant.host.display(), grant.guest).as_bytes());
            }
        }
        part(&[u8::from(self.allow_wall_clock), u8::from(self.allow_monotonic_clock)]);
        digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A host folder granted to WASI tasks, and where they see it.
///
/// Read from `"DIR"` (seen at the same path), `"DIR::GUEST"` or a pair
/// `["DIR", "GUEST"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The host's folder.
    pub host: PathBuf,
    /// Where tasks see it.
    pub guest: String,
}

impl DirGrant {
    /// `DIR::GUEST`, or `DIR` alone, seen by tasks at the same path.
    pub fn parse(spec: &str) -> DirGrant {
        let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
        DirGrant { host: PathBuf::from(host), guest: guest.to_owned() }
    }
}

impl Serialize for DirGrant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.host, &self.guest).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DirGrant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a folder: \"DIR\", \"DIR::GUEST\" or [\"DIR\", \"GUEST\"]")]
        enum Given {
            Spec(String),
            Pair(PathBuf, String),
        }
        Ok(match Given::deserialize(deserializer)? {
            Given::Spec(spec) => DirGrant::parse(&spec),
            Given::Pair(host, guest) => DirGrant { host, guest },
        })
    }
}

/// A duration as a number of seconds.
fn duration_from_seconds<E: serde::de::Error>(seconds: f64) -> Result<Duration, E> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| E::custom(format!("{seconds} is not a number of seconds >= 0 that a duration can hold")))
}

mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        super::duration_from_seconds(f64::deserialize(deserializer)?)
    }
}

mod seconds_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_some(&d.as_secs_f64()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(deserializer)?.map(super::duration_from_seconds).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_the_fields() {
        let value = serde_json::to_value(Settings::default()).unwrap();
        let mut fields: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut names = SETTING_NAMES.to_vec();
        fields.sort_unstable();
        names.sort_unstable();
        assert_eq!(fields, names);
    }

    #[test]
    fn json_names_some_settings_and_defaults_fill_the_rest() {
        let settings = Settings::from_json(
            r#"{"workers": 3, "deadline": 1.5, "allow_dir": ["data", "out::/results", ["a::b", "/c"]]}"#,
        )
        .unwrap();
        assert_eq!(settings.workers, Some(3));
        assert_eq!(settings.deadline, Some(Duration::from_millis(1500)));
        assert_eq!(settings.max_memory, DEFAULT_MAX_MEMORY);
        let dirs: Vec<(&str, &str)> =
            settings.allow_dir.iter().map(|d| (d.host.to_str().unwrap(), d.guest.as_str())).collect();
        assert_eq!(dirs, [("data", "data"), ("out", "/results"), ("a::b", "/c")]);
        assert_eq!(Settings::from_json("{}").unwrap(), Settings::default());
        let back = Settings::from_json(&serde_json::to_string(&settings).unwrap()).unwrap();
        assert_eq!(back, settings);
    }

    #[test]
    fn bad_json_names_the_setting() {
        let unknown = Settings::from_json(r#"{"max_memroy": 1}"#).unwrap_err();
        assert!(unknown.to_string().contains("max_memroy"), "{unknown}");
        let wrong = Settings::from_json(r#"{"max_memory": "64MiB"}"#).unwrap_err();
        assert_eq!(wrong.setting, "max_memory", "{wrong}");
        assert_eq!(wrong.reason, "invalid type: string \"64MiB\", expected usize");
        let negative = Settings::from_json(r#"{"deadline": -1}"#).unwrap_err();
        assert_eq!(negative.setting, "deadline", "{negative}");
        let dir = Settings::from_json(r#"{"allow_dir": [3]}"#).unwrap_err();
        assert_eq!(dir.setting, "allow_dir[0]", "{dir}");
        assert!(Settings::from_json(r#"{} {}"#).is_err());
        assert!(Settings::from_json(&" ".repeat(MAX_SETTINGS_JSON + 1)).is_err());
    }

    #[test]
    fn validate_names_the_setting_that_cannot_work() {
        let refused = |settings: Settings| settings.validate().unwrap_err().setting;
        assert!(Settings::default().validate().is_ok());
        assert_eq!(refused(Settings { workers: Some(0), ..Settings::default() }), "workers");
        assert_eq!(refused(Settings { chunk_size: Some(0), ..Settings::default() }), "chunk_size");
        assert_eq!(refused(Settings { max_memory: 1000, ..Settings::default() }), "max_memory");
        assert_eq!(refused(Settings { fuel: Some(0), ..Settings::default() }), "fuel");
        assert_eq!(refused(Settings { load_deadline: Duration::ZERO, ..Settings::default() }), "load_deadline");
        let no_checks =
            Settings { deadline: Some(Duration::from_secs(1)), interruptible: Some(false), ..Settings::default() };
        assert_eq!(refused(no_checks.clone()), "interruptible");
        assert!(Settings { processes: true, ..no_checks }.validate().is_ok());
        assert_eq!(refused(Settings { initargs: "[1]".into(), ..Settings::default() }), "initargs");
        assert!(Settings { initargs: " [ ] ".into(), ..Settings::default() }.validate().is_ok());
        assert!(Settings { max_message: 0, ..Settings::default() }.validate().is_ok(), "messages only fail their task");
        let nameless = Settings { allow_env: vec!["=hunter2".into()], ..Settings::default() };
        let refusal = nameless.validate().unwrap_err();
        assert!(refusal.setting == "allow_env" && !refusal.to_string().contains("hunter2"), "{refusal}");
        let read = vec![DirGrant::parse("/definitely/not/here/either")];
        let both = Settings { allow_dir: read, allow_write_dir: vec![DirGrant::parse("/tmp")], ..Settings::default() };
        assert_eq!(refused(both), "allow_dir");
        let dir = Some(PathBuf::from("/tmp"));
        assert_eq!(refused(Settings { cache: false, cache_dir: dir, ..Settings::default() }), "cache_dir");
        let env = vec!["WASMPOOL_SURELY_NOT_SET_ANYWHERE".to_owned()];
        assert_eq!(refused(Settings { allow_env: env, ..Settings::default() }), "allow_env");
        let folder = vec![DirGrant::parse("/definitely/not/here")];
        assert_eq!(refused(Settings { allow_write_dir: folder, ..Settings::default() }), "allow_write_dir");
    }

    #[test]
    fn the_hash_changes_with_what_changes_results_only() {
        let base = Settings::default();
        let same = Settings {
            workers: Some(7),
            processes: true,
            max_retries: 0,
            seed: Some(1),
            chunk_size: Some(3),
            cache: false,
            interruptible: Some(true),
            ..Settings::default()
        };
        assert_eq!(base.compatibility_hash(), same.compatibility_hash());
        let others = [
            Settings { deadline: Some(Duration::from_secs(1)), ..Settings::default() },
            Settings { max_memory: 1 << 20, ..Settings::default() },
            Settings { fresh_state: false, ..Settings::default() },
            Settings { canonicalize_nans: false, ..Settings::default() },
            Settings { initializer: Some("setup".into()), ..Settings::default() },
            Settings { allow_env: vec!["A=1".into()], ..Settings::default() },
            Settings { allow_wall_clock: true, ..Settings::default() },
        ];
        for other in others {
            assert_ne!(base.compatibility_hash(), other.compatibility_hash(), "{other:?}");
        }
        assert_eq!(base.compatibility_hash().len(), 64);
        let secret = Settings { allow_env: vec!["TOKEN=hunter2".into()], ..Settings::default() };
        assert!(!secret.results_identity().contains("hunter2"), "{}", secret.results_identity());
        assert!(!secret.compatibility_hash().contains("hunter2"));
        let other_secret = Settings { allow_env: vec!["TOKEN=hunter3".into()], ..Settings::default() };
        assert_ne!(secret.compatibility_hash(), other_secret.compatibility_hash());
    }
}

//! Tasks written in Python: `wasmpool build tasks.py`, and a `.py` module
//! given to `run` or `list`. The module is built into a task component by
//! componentize-py, run by the Python found on this machine, with the same
//! build script and cache as the Python package (`pip install ./python`),
//! so a module built by either is not built again by the other.

use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use wasmpool::text::{EscapedLine, EscapedText};

/// The build script: standard library only.
const SCRIPT: &str = include_str!("../../python/wasmpool/_build/componentize.py");
/// The code that turns a module's functions into the world's exports.
const RUNNER: &str = include_str!("../../python/wasmpool/_build/wasmpool_runner.py");
/// The module `wasmpool` as a task sees it (send, progress, task_seed).
const IN_TASK: &str = include_str!("../../python/wasmpool/_build/wasmpool_in_task.py");
/// The `wasmpool:task` world this wasmpool runs.
const WORLD: &str = include_str!("../../wit/wasmpool-task.wit");

/// The variable naming the Python to build with.
const PYTHON_VARIABLE: &str = "WASMPOOL_PYTHON";

/// Whether `path` names a Python module (`.py`) rather than a `.wasm` file.
pub fn is_python(path: &Path) -> bool {
    path.extension().is_some_and(|extension| extension == "py")
}

/// `module` if it is a `.wasm` file; for a `.py` module, the component
/// built from it (from the cache when the module has not changed).
pub fn resolve(module: &Path, packages: &[String]) -> Result<PathBuf> {
    if is_python(module) {
        build(module, None, packages)
    } else if let Some(package) = packages.first() {
        bail!("--package {package}: packages are carried into tasks written in Python (a .py module), not a .wasm file")
    } else {
        Ok(module.to_owned())
    }
}

/// Builds `source` into a task component, carrying the installed
/// `packages`; writes it to `out` if given, and returns where it is
/// (`out`, or the cached copy).
pub fn build(source: &Path, out: Option<&Path>, packages: &[String]) -> Result<PathBuf> {
    let python = find_python()?;
    let work =
        tempfile::Builder::new().prefix("wasmpool-build-").tempdir().context("cannot create a temporary folder")?;
    let script = work.path().join("componentize.py");
    let world = work.path().join("wasmpool-task.wit");
    let files = [
        (script.clone(), SCRIPT),
        (work.path().join("wasmpool_runner.py"), RUNNER),
        (work.path().join("wasmpool_in_task.py"), IN_TASK),
        (world.clone(), WORLD),
    ];
    for (path, text) in &files {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut command = Command::new(&python);
    command.arg(&script).arg("--wit").arg(&world).arg(source);
    if let Some(out) = out {
        command.arg("--out").arg(out);
    }
    for package in packages {
        command.arg("--package").arg(package);
    }
    tracing::info!(python = %Path::new(&python).display(), source = %source.display(), "building tasks written in Python");
    let done = command.output().with_context(|| format!("cannot run {}", Path::new(&python).display()))?;
    let stderr = String::from_utf8_lossy(&done.stderr);
    if !done.status.success() {
        // The script's message names the cause (a syntax error and its
        // line, a missing module); it quotes the user's code: escaped.
        bail!("{}", EscapedText(stderr.trim_end()));
    }
    let stdout = String::from_utf8_lossy(&done.stdout);
    let Some(built) = stdout.lines().next_back().filter(|line| !line.is_empty()) else {
        bail!("the build printed no component path: {}", EscapedText(stderr.trim_end()));
    };
    Ok(PathBuf::from(built))
}

/// The Python to build with: `WASMPOOL_PYTHON`, or the first of
/// `python3` and `python` that runs.
fn find_python() -> Result<OsString> {
    if let Some(python) = std::env::var_os(PYTHON_VARIABLE).filter(|value| !value.is_empty()) {
        return Ok(python);
    }
    for candidate in ["python3", "python"] {
        let runs = Command::new(candidate).arg("--version").output().is_ok_and(|done| done.status.success());
        if runs {
            return Ok(candidate.into());
        }
    }
    bail!(
        "tasks written in Python are built with Python 3 and componentize-py, and neither `python3` nor `python` \
         runs here: install Python 3, then `python3 -m pip install componentize-py`, or set {PYTHON_VARIABLE} \
         to the interpreter that has it"
    )
}

/// Where `wasmpool build` writes by default: `tasks.wasm` beside `tasks.py`.
pub fn default_output(source: &Path) -> PathBuf {
    source.with_extension("wasm")
}

/// Escaped, for messages.
pub fn shown(path: &Path) -> String {
    EscapedLine(&path.display().to_string()).to_string()
}

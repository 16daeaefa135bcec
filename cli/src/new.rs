//! `wasmpool new`: a ready-to-build task crate with sample tasks.

use crate::args::NewArgs;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The guest SDK beside this command's own source, when it was built from
/// a wasmpool checkout.
const CHECKOUT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// The published SDK's version, when no checkout is at hand.
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Creates the crate and says what to do next.
pub fn new(args: &NewArgs) -> Result<()> {
    check_name(&args.name)?;
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        bail!("{} already exists; choose another name or --path", dir.display());
    }
    let sdk = sdk_dependency(args.sdk_path.as_deref())?;
    let file = args.name.replace('-', "_");
    for folder in ["src", ".cargo"] {
        std::fs::create_dir_all(dir.join(folder)).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (path, text) in [
        ("Cargo.toml", format!(include_str!("../templates/Cargo.toml.tmpl"), name = args.name, sdk = sdk)),
        ("src/lib.rs", format!(include_str!("../templates/lib.rs.tmpl"), name = args.name)),
        ("README.md", format!(include_str!("../templates/README.md.tmpl"), name = args.name, file = file)),
        (".cargo/config.toml", include_str!("../templates/cargo-config.toml.tmpl").to_owned()),
        (".gitignore", "/target\n".to_owned()),
    ] {
        let path = dir.join(path);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "Created the task crate `{}` in {}. Build and run its sample task with:\n\n    cd {}\n    cargo build --release \
         --target wasm32-wasip1\n    seq 1 10 | wasmpool run target/wasm32-wasip1/release/{file}.wasm square\n",
        args.name,
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// A crate name cargo accepts that is also a plain folder name.
fn check_name(name: &str) -> Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64;
    if !valid {
        bail!("`{name}` is not a usable crate name: use ASCII letters, digits, `-` and `_`, starting with a letter");
    }
    Ok(())
}

/// The `wasmpool-guest = …` value: a path to the given or this checkout's
/// SDK, else the published version.
fn sdk_dependency(explicit: Option<&Path>) -> Result<String> {
    let path = match explicit {
        Some(path) => {
            if !path.join("Cargo.toml").is_file() {
                bail!("{} is not the guest SDK's folder (it has no Cargo.toml)", path.display());
            }
            Some(path.to_owned())
        }
        None => Some(PathBuf::from(CHECKOUT_SDK)).filter(|p| p.join("Cargo.toml").is_file()),
    };
    Ok(match path {
        Some(path) => {
            let path = path.canonicalize().with_context(|| format!("cannot resolve {}", path.display()))?;
            // TOML basic strings take `/` on every platform; `\` would be an escape.
            format!("{{ path = {:?} }}", path.display().to_string().replace('\\', "/"))
        }
        None => format!("\"{SDK_VERSION}\""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("my_tasks").is_ok());
        assert!(check_name("tasks-2").is_ok());
        for bad in ["", "2tasks", "my tasks", "../x", "tâches"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sdk_is_a_path_when_there_is_one() {
        let dep = sdk_dependency(None).unwrap();
        assert!(dep.starts_with("{ path = ") && dep.contains("guest-sdk"), "{dep}");
        assert!(sdk_dependency(Some(Path::new("/no/such/sdk"))).is_err());
    }

    #[test]
    fn the_crate_has_everything_to_build() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks");
        new(&NewArgs { name: "my-tasks".into(), path: Some(path.clone()), sdk_path: None }).unwrap();
        let manifest = std::fs::read_to_string(path.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-tasks\"") && manifest.contains("cdylib"), "{manifest}");
        let readme = std::fs::read_to_string(path.join("README.md")).unwrap();
        assert!(readme.contains("release/my_tasks.wasm square"), "{readme}");
        assert!(readme.contains("--target wasm32-wasip1"), "{readme}");
        let lib = std::fs::read_to_string(path.join("src/lib.rs")).unwrap();
        assert!(lib.contains("#[task]") && lib.contains("println!"));
        // Nothing for the student to fill in or follow nowhere.
        for text in [&manifest, &readme, &lib] {
            for placeholder in ["http", "TODO", "example.com", "your-name"] {
                assert!(!text.contains(placeholder), "`{placeholder}` in:\n{text}");
            }
        }
        let again = new(&NewArgs { name: "my-tasks".into(), path: Some(path), sdk_path: None });
        assert!(again.unwrap_err().to_string().contains("already exists"));
    }
}

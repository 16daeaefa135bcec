//! Compiled task code of either kind, as one value: a core module (tasks
//! written in Rust or C, the ABI of docs/abi.md) or a task component (the
//! `wasmpool:task` world: tasks written in Python). What differs between
//! the two when code is copied between engines or sent to a worker
//! process is matched here, once; loading it into a worker is
//! `worker::load`.

use serde::{Deserialize, Serialize};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// The kind of compiled code, as a worker process is told it
/// (`transport::messages::Hello`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CodeKind {
    /// A core module of the wasmpool ABI (docs/abi.md).
    Module,
    /// A task component of the `wasmpool:task` world
    /// (`wit/wasmpool-task.wit`), such as tasks written in Python.
    Component,
}

impl CodeKind {
    /// What the code is called in messages: "module" or "component".
    pub(crate) fn noun(self) -> &'static str {
        match self {
            CodeKind::Module => "module",
            CodeKind::Component => "component",
        }
    }
}

/// Code compiled by one engine. Cloning shares the compiled code.
#[derive(Clone)]
pub(crate) enum CompiledCode {
    Module(Module),
    Component(Component),
}

impl CompiledCode {
    pub(crate) fn kind(&self) -> CodeKind {
        match self {
            CompiledCode::Module(_) => CodeKind::Module,
            CompiledCode::Component(_) => CodeKind::Component,
        }
    }

    /// The compiled code as bytes, for another engine of the same settings
    /// ([`deserialize`](Self::deserialize)).
    pub(crate) fn serialize(&self) -> Result<Vec<u8>, String> {
        match self {
            CompiledCode::Module(module) => module.serialize(),
            CompiledCode::Component(component) => component.serialize(),
        }
        .map_err(|e| format!("cannot copy the compiled {}: {e:#}", self.kind().noun()))
    }

    /// The code `bytes` holds, of kind `kind`, loaded into `engine`.
    ///
    /// # Safety
    ///
    /// As for [`Module::deserialize`]: `bytes` must come from
    /// [`serialize`](Self::serialize) in a process of this build, or from a
    /// source as trusted (never from a guest, a rank or a file others can
    /// write). wasmtime checks the engine's settings again.
    pub(crate) unsafe fn deserialize(engine: &Engine, kind: CodeKind, bytes: &[u8]) -> Result<Self, String> {
        // SAFETY: the caller's promise, above.
        let code = unsafe {
            match kind {
                CodeKind::Module => Module::deserialize(engine, bytes).map(CompiledCode::Module),
                CodeKind::Component => Component::deserialize(engine, bytes).map(CompiledCode::Component),
            }
        };
        code.map_err(|e| format!("cannot load the compiled {}: {e:#}", kind.noun()))
    }

    /// Makes the images every instance's memories start from (on Linux, a
    /// sealed `memfd` per memory with data), which wasmtime otherwise makes
    /// at the first instantiation.
    ///
    /// Sealing the memfd can fail for a moment with `EBUSY` when the kernel
    /// still holds a transient reference to a page just written (seen once
    /// in CI, under load); wasmtime does not keep a failed image, so this
    /// tries again after [`IMAGE_RETRY_PAUSES`] before giving up.
    pub(crate) fn prepare_memory_images(&self) -> Result<(), String> {
        retry_after_pauses(&IMAGE_RETRY_PAUSES, || match self {
            CompiledCode::Module(module) => module.initialize_copy_on_write_image(),
            CompiledCode::Component(component) => component.initialize_copy_on_write_image(),
        })
        .map_err(|e| format!("cannot make the initial memory image of the {}: {e:#}", self.kind().noun()))
    }
}

/// The pauses between attempts at [`CompiledCode::prepare_memory_images`]:
/// about 1.5 s in all, ten times the kernel's own wait for pinned pages.
const IMAGE_RETRY_PAUSES: [std::time::Duration; 4] = [
    std::time::Duration::from_millis(20),
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(400),
    std::time::Duration::from_millis(1000),
];

/// Runs `attempt` until it succeeds, pausing `pauses` in turn between
/// failures; the last failure if every attempt fails.
fn retry_after_pauses<T, E>(pauses: &[std::time::Duration], mut attempt: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    for pause in pauses {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(_) => std::thread::sleep(*pause),
        }
    }
    attempt()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn both_kinds_go_through_bytes_into_another_engine_of_the_same_settings() {
        let (first, second) = (Engine::default(), Engine::default());
        let module = CompiledCode::Module(Module::new(&first, EMPTY_MODULE).unwrap());
        let component = CompiledCode::Component(Component::new(&first, EMPTY_COMPONENT).unwrap());
        for code in [module, component] {
            let bytes = code.serialize().unwrap();
            // SAFETY: serialized just above, in this process.
            let copy = unsafe { CompiledCode::deserialize(&second, code.kind(), &bytes) }.unwrap();
            assert_eq!(copy.kind(), code.kind());
            match copy {
                CompiledCode::Module(module) => assert!(Engine::same(module.engine(), &second)),
                CompiledCode::Component(component) => assert!(Engine::same(component.engine(), &second)),
            }
        }
    }

    #[test]
    fn memory_images_are_retried_after_a_failure_and_the_last_failure_is_kept() {
        let pauses = [std::time::Duration::ZERO; 3];
        let mut calls = 0;
        let ok = retry_after_pauses(&pauses, || {
            calls += 1;
            if calls < 3 { Err(calls) } else { Ok(calls) }
        });
        assert_eq!(ok, Ok(3));
        let mut calls = 0;
        let err: Result<(), i32> = retry_after_pauses(&pauses, || {
            calls += 1;
            Err(calls)
        });
        assert_eq!(err, Err(4), "one attempt more than pauses, the last failure returned");
        let data = CompiledCode::Module(
            Module::new(&Engine::default(), wat::parse_str(r#"(module (memory 1) (data (i32.const 0) "x"))"#).unwrap())
                .unwrap(),
        );
        data.prepare_memory_images().unwrap();
    }

    #[test]
    fn code_of_the_wrong_kind_is_refused_naming_the_kind() {
        let engine = Engine::default();
        let module = CompiledCode::Module(Module::new(&engine, EMPTY_MODULE).unwrap()).serialize().unwrap();
        // SAFETY: serialized just above, in this process.
        let err = unsafe { CompiledCode::deserialize(&engine, CodeKind::Component, &module) }.err().unwrap();
        assert!(err.starts_with("cannot load the compiled component"), "{err}");
    }
}

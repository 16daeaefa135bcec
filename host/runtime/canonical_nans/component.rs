//! The NaN rewrite of a task component (tasks written in Python): every
//! core module inside it, nested components included, rewritten as a
//! module on its own is (see the parent module), every other section
//! copied as it is. A core module inside a component is a whole module
//! binary, and its functions are all it changes: the component's indices,
//! imports and exports stay as they were.

use super::{Report, rewrite};
use wasm_encoder::{Component, RawSection};
use wasmtime::wasmparser::BinaryReader;

/// The component model's section of a core module.
const CORE_MODULE_SECTION: u8 = 1;
/// The component model's section of a nested component.
const COMPONENT_SECTION: u8 = 4;
/// Deepest nesting of components followed; deeper is refused (wasmparser
/// refuses far less deep nesting anyway).
const MAX_NESTING: usize = 32;

/// `wasm` (a component) with every observable NaN of every core module
/// inside it canonical, and what was done, summed over the modules. An
/// error means the component (or a module inside it) is not valid.
pub(crate) fn rewrite_component(wasm: &[u8]) -> Result<(Vec<u8>, Report), String> {
    let mut report = Report::default();
    let rewritten = rewrite_sections(wasm, &mut report, 0)?;
    Ok((rewritten, report))
}

fn rewrite_sections(wasm: &[u8], report: &mut Report, depth: usize) -> Result<Vec<u8>, String> {
    if depth > MAX_NESTING {
        return Err(format!("components nested more than {MAX_NESTING} deep"));
    }
    let mut out = Component::new();
    let header = out.as_slice().to_vec();
    if wasm.get(..header.len()) != Some(&header[..]) {
        return Err("not a component of the version this wasmpool reads".into());
    }
    let mut reader = BinaryReader::new(&wasm[header.len()..], header.len());
    while !reader.eof() {
        let id = reader.read_u8().map_err(|e| e.to_string())?;
        let len = reader.read_var_u32().map_err(|e| e.to_string())?;
        let data = reader.read_bytes(len as usize).map_err(|e| e.to_string())?;
        let replaced = match id {
            CORE_MODULE_SECTION => {
                let (module, done) = rewrite(data)?;
                report.lazy += done.lazy;
                report.eager += done.eager;
                report.checks += done.checks;
                Some(module)
            }
            COMPONENT_SECTION => Some(rewrite_sections(data, report, depth + 1)?),
            _ => None,
        };
        out.section(&RawSection { id, data: replaced.as_deref().unwrap_or(data) });
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component of one core module whose function returns the bits of
    /// `0.0 / 0.0` made by arithmetic: the CPU's NaN unless rewritten.
    fn component(nested: bool) -> Vec<u8> {
        let core = r#"(core module $m
            (func (export "nan_bits") (result i64)
              f64.const 0 f64.const 0 f64.div i64.reinterpret_f64))
          (core instance $i (instantiate $m))
          (func (export "nan-bits") (result u64) (canon lift (core func $i "nan_bits")))"#;
        let text = if nested {
            format!(
                "(component (component $inner {core}) (instance $c (instantiate $inner)) \
                 (export \"nan-bits\" (func $c \"nan-bits\")))"
            )
        } else {
            format!("(component {core})")
        };
        wat::parse_str(text).unwrap()
    }

    fn nan_bits(wasm: &[u8]) -> u64 {
        let engine = wasmtime::Engine::default();
        let component = wasmtime::component::Component::new(&engine, wasm).unwrap();
        let linker = wasmtime::component::Linker::<()>::new(&engine);
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let func = instance.get_typed_func::<(), (u64,)>(&mut store, "nan-bits").unwrap();
        func.call(&mut store, ()).unwrap().0
    }

    #[test]
    fn every_core_module_inside_a_component_is_rewritten() {
        for nested in [false, true] {
            let wasm = component(nested);
            let (rewritten, report) = rewrite_component(&wasm).unwrap();
            assert_eq!(report.checks, 1, "nested: {nested}");
            assert_eq!(nan_bits(&rewritten), super::super::F64_NAN, "nested: {nested}");
            if cfg!(target_arch = "x86_64") {
                // The CPU's own NaN, without the rewrite: negative.
                assert_eq!(nan_bits(&wasm), 0xfff8_0000_0000_0000, "nested: {nested}");
            }
            wasmtime::wasmparser::Validator::new_with_features(wasmtime::wasmparser::WasmFeatures::all())
                .validate_all(&rewritten)
                .unwrap();
        }
    }

    #[test]
    fn what_is_not_a_component_is_refused() {
        assert!(rewrite_component(b"\0asm\x01\0\0\0").is_err());
        let mut truncated = component(false);
        truncated.truncate(truncated.len() - 3);
        assert!(rewrite_component(&truncated).is_err());
        assert!(rewrite_component(b"").is_err());
    }

    proptest::proptest! {
        /// Damaged components are refused or rewritten, never a panic.
        #[test]
        fn damaged_components_never_panic(flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..6)) {
            let mut wasm = component(true);
            for (at, byte) in flips {
                let i = at.index(wasm.len());
                wasm[i] = byte;
            }
            let _ = rewrite_component(&wasm);
        }
    }
}

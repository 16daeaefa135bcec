//! A task component's start argument: the text its start call
//! (`call("", argument)`, `wit/wasmpool-task.wit`) receives, carried in the
//! component's own bytes as the top-level custom section
//! [`SECTION`].
//!
//! Tasks written in Python use it to keep the interpreter apart from the
//! user's module: the build makes one component of CPython and wasmpool's
//! runner (the same for every edit of a `tasks.py` that imports the same
//! modules), and appends the module's source in this section. The host
//! takes the section off before compiling, so every edit compiles to the
//! same code and hits the module cache; the start call then runs the
//! source in each new instance. A component without the section gets an
//! empty argument, as before.
//!
//! The section is guest data: bounded ([`MAX_START_ARGUMENT`]), UTF-8, at
//! most one, and given back only to the component itself.

use std::borrow::Cow;
use wasmtime::wasmparser::BinaryReader;

/// The custom section's name.
pub(crate) const SECTION: &str = "wasmpool-start";

/// The longest start argument, in bytes (a `tasks.py` of a few thousand
/// lines is a few hundred KiB).
pub(crate) const MAX_START_ARGUMENT: usize = 8 << 20;

/// The bytes of a component's preamble: `\0asm`, its version and layer.
const PREAMBLE: usize = 8;

/// The id of a custom section.
const CUSTOM_SECTION: u8 = 0;

/// A component split into the code that compiles and its start argument.
#[derive(Debug)]
pub(crate) struct Split<'a> {
    /// The component without the [`SECTION`] (the bytes as given if it had none).
    pub code: Cow<'a, [u8]>,
    /// The section's text, if the component had one.
    pub start: Option<String>,
}

/// Takes the top-level [`SECTION`] off `wasm` (a component). Nested
/// components and modules are not looked into. An error says why the
/// section cannot be used (too long, not UTF-8, given twice) or why the
/// sections cannot be walked (then the compiler will say more).
pub(crate) fn split(wasm: &[u8]) -> Result<Split<'_>, String> {
    let Some(body) = wasm.get(PREAMBLE..) else {
        return Ok(Split { code: Cow::Borrowed(wasm), start: None });
    };
    let mut reader = BinaryReader::new(body, PREAMBLE);
    let mut found: Option<(std::ops::Range<usize>, &[u8])> = None;
    while !reader.eof() {
        let section_start = reader.original_position();
        let id = reader.read_u8().map_err(|e| e.to_string())?;
        let len = reader.read_var_u32().map_err(|e| e.to_string())?;
        let data = reader.read_bytes(len as usize).map_err(|e| e.to_string())?;
        if id != CUSTOM_SECTION {
            continue;
        }
        let mut inner = BinaryReader::new(data, 0);
        let Ok(name) = inner.read_string() else { continue };
        if name != SECTION {
            continue;
        }
        if found.is_some() {
            return Err(format!("the custom section `{SECTION}` appears more than once"));
        }
        let payload = &data[inner.original_position()..];
        found = Some((section_start..reader.original_position(), payload));
    }
    let Some((range, payload)) = found else {
        return Ok(Split { code: Cow::Borrowed(wasm), start: None });
    };
    if payload.len() > MAX_START_ARGUMENT {
        return Err(format!(
            "the custom section `{SECTION}` holds {} bytes, over the limit of {MAX_START_ARGUMENT}",
            payload.len()
        ));
    }
    let start = std::str::from_utf8(payload)
        .map_err(|e| format!("the custom section `{SECTION}` is not UTF-8 text: {e}"))?
        .to_owned();
    let mut code = Vec::with_capacity(wasm.len() - range.len());
    code.extend_from_slice(&wasm[..range.start]);
    code.extend_from_slice(&wasm[range.end..]);
    Ok(Split { code: Cow::Owned(code), start: Some(start) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small component: one core module with a custom section of the
    /// same name inside it (which is the module's, not the component's).
    fn component() -> Vec<u8> {
        wat::parse_str(
            r#"(component
                 (core module $m (@custom "wasmpool-start" "inner")
                   (func (export "f") (result i32) i32.const 7))
                 (core instance $i (instantiate $m))
                 (func (export "f") (result u32) (canon lift (core func $i "f"))))"#,
        )
        .unwrap()
    }

    /// `wasm` with a top-level custom section `name` holding `payload`.
    fn with_section(mut wasm: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
        use wasm_encoder::Section;
        wasm_encoder::CustomSection { name: name.into(), data: payload.into() }.append_to(&mut wasm);
        wasm
    }

    #[test]
    fn the_section_comes_off_and_the_rest_is_the_component_as_built() {
        let plain = component();
        let carried = with_section(plain.clone(), SECTION, "{\"source\": \"def f(): pass\"}".as_bytes());
        let split = split(&carried).unwrap();
        assert_eq!(split.start.as_deref(), Some("{\"source\": \"def f(): pass\"}"));
        assert_eq!(&*split.code, &plain[..], "the same bytes, so the same cache entry");
        let engine = wasmtime::Engine::default();
        wasmtime::component::Component::new(&engine, &carried).expect("the section is a valid custom section");
    }

    #[test]
    fn a_component_without_the_section_is_left_as_it_is() {
        let plain = component();
        let other = with_section(plain.clone(), "another-section", b"data");
        for wasm in [&plain, &other] {
            let split = split(wasm).unwrap();
            assert!(split.start.is_none());
            assert!(matches!(split.code, Cow::Borrowed(code) if code == &wasm[..]));
        }
    }

    #[test]
    fn a_section_twice_too_long_or_not_text_is_refused() {
        let twice = with_section(with_section(component(), SECTION, b"a"), SECTION, b"b");
        assert!(split(&twice).unwrap_err().contains("more than once"));
        let binary = with_section(component(), SECTION, &[0xff, 0xfe]);
        assert!(split(&binary).unwrap_err().contains("not UTF-8"));
        let long = with_section(component(), SECTION, &vec![b'x'; MAX_START_ARGUMENT + 1]);
        assert!(split(&long).unwrap_err().contains("over the limit"));
    }

    #[test]
    fn truncated_sections_are_an_error_not_a_panic() {
        let carried = with_section(component(), SECTION, b"text");
        for cut in PREAMBLE..carried.len() {
            let _ = split(&carried[..cut]);
        }
        assert!(split(&carried[..carried.len() - 2]).is_err());
    }
}

//! Refusing modules that would take too long to compile, before compiling.
//!
//! Compilation time grows with the number of functions and of locals (each
//! local is zeroed and tracked by the register allocator), and a module can
//! declare millions of either in a few bytes. The scan below only reads
//! section headers and local declarations, so it costs microseconds; a
//! module it cannot parse is left for the compiler to report precisely.

use super::limits::{CompileLimits, Limits};
use crate::error::LimitExceeded;
use wasmtime::wasmparser::{Parser, Payload, TypeRef};

/// Checks `bytes` against the compile limits, and its declared initial
/// memory and table sizes against the instance limits.
pub(crate) fn check(bytes: &[u8], compile: &CompileLimits, limits: &Limits) -> Result<(), LimitExceeded> {
    if bytes.len() > compile.max_module_bytes {
        return Err(LimitExceeded::ModuleSize { len: bytes.len() as u64, limit: compile.max_module_bytes as u64 });
    }
    let mut functions = 0u64;
    let mut locals = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { return Ok(()) };
        match payload {
            Payload::FunctionSection(reader) => {
                functions = functions.saturating_add(u64::from(reader.count()));
                if functions > compile.max_functions {
                    return Err(LimitExceeded::Functions { count: functions, limit: compile.max_functions });
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    if let TypeRef::Memory(memory) = import.ty {
                        check_memory(memory.initial, memory.page_size_log2, limits)?;
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader.into_iter().flatten() {
                    check_memory(memory.initial, memory.page_size_log2, limits)?;
                }
            }
            Payload::TableSection(reader) => {
                for table in reader.into_iter().flatten() {
                    if table.ty.initial > limits.max_table_elements as u64 {
                        return Err(LimitExceeded::Table {
                            requested: table.ty.initial,
                            limit: limits.max_table_elements as u64,
                        });
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let Ok(reader) = body.get_locals_reader() else { return Ok(()) };
                for local in reader {
                    let Ok((count, _)) = local else { return Ok(()) };
                    locals = locals.saturating_add(u64::from(count));
                    if locals > compile.max_locals {
                        return Err(LimitExceeded::Locals { count: locals, limit: compile.max_locals });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_memory(initial_pages: u64, page_size_log2: Option<u32>, limits: &Limits) -> Result<(), LimitExceeded> {
    let page = 1u64 << page_size_log2.unwrap_or(16).min(16);
    let bytes = initial_pages.saturating_mul(page);
    if bytes > limits.max_memory as u64 {
        return Err(LimitExceeded::Memory { requested: bytes, limit: limits.max_memory as u64 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(wat: &str) -> Result<(), LimitExceeded> {
        check(&wat::parse_str(wat).unwrap(), &CompileLimits::default(), &Limits::default())
    }

    #[test]
    fn ordinary_modules_pass() {
        assert_eq!(scan("(module (memory 1) (table 10 funcref) (func (local i32 i64)))"), Ok(()));
    }

    #[test]
    fn bombs_are_counted_before_compiling() {
        let limits = CompileLimits { max_module_bytes: 1 << 20, max_functions: 3, max_locals: 100 };
        let many = wat::parse_str("(module (func) (func) (func) (func))").unwrap();
        assert_eq!(check(&many, &limits, &Limits::default()), Err(LimitExceeded::Functions { count: 4, limit: 3 }));
        let locals = wat::parse_str("(module (func (local i32 i32)) (func (local f64 f64 f64 f64)))").unwrap();
        let few = CompileLimits { max_locals: 5, ..limits };
        assert_eq!(check(&locals, &few, &Limits::default()), Err(LimitExceeded::Locals { count: 6, limit: 5 }));
        let small = CompileLimits { max_module_bytes: 4, ..limits };
        assert!(matches!(check(&many, &small, &Limits::default()), Err(LimitExceeded::ModuleSize { .. })));
    }

    #[test]
    fn initial_memory_and_tables_past_the_caps_are_refused() {
        assert_eq!(
            scan("(module (memory 8192))"),
            Err(LimitExceeded::Memory { requested: 8192 << 16, limit: 256 << 20 })
        );
        assert_eq!(
            scan("(module (table 1000000 funcref))"),
            Err(LimitExceeded::Table { requested: 1_000_000, limit: 100_000 })
        );
    }

    #[test]
    fn unparsable_bytes_are_left_to_the_compiler() {
        assert_eq!(check(b"\0asm\x01\0\0\0\x01\xff", &CompileLimits::default(), &Limits::default()), Ok(()));
    }
}

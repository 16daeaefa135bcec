//! Compile-time bombs, written as raw Wasm binary: a few bytes that declare
//! an enormous amount of code to compile.

/// Appends `value` as unsigned LEB128.
fn leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(module: &mut Vec<u8>, id: u8, body: &[u8]) {
    module.push(id);
    leb(module, body.len() as u64);
    module.extend_from_slice(body);
}

/// A module of `count` functions `() -> ()`, given the bodies' bytes.
fn module(count: u64, body: &[u8]) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(&mut module, 1, &[1, 0x60, 0, 0]); // one type: () -> ()
    let mut functions = Vec::new();
    leb(&mut functions, count);
    functions.extend(std::iter::repeat_n(0u8, count as usize));
    section(&mut module, 3, &functions);
    let mut code = Vec::new();
    leb(&mut code, count);
    for _ in 0..count {
        leb(&mut code, body.len() as u64);
        code.extend_from_slice(body);
    }
    section(&mut module, 10, &code);
    module
}

/// `count` empty functions.
pub fn functions(count: u64) -> Vec<u8> {
    module(count, &[0, 0x0b])
}

/// `count` functions declaring `locals` i64 locals each.
pub fn locals(count: u64, locals: u64) -> Vec<u8> {
    let mut body = vec![1];
    leb(&mut body, locals);
    body.extend_from_slice(&[0x7e, 0x0b]);
    module(count, &body)
}

/// `module` inside a component (tasks written in Python are components):
/// one core module section, the layer's header before it.
pub fn in_component(module: &[u8]) -> Vec<u8> {
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    section(&mut component, 1, module);
    component
}

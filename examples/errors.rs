//! A tour of what goes wrong, and what wasmpool says about it.
//!
//! ```text
//! cargo run --example errors
//! ```
//!
//! Every message names the task and the input, and after each failure the
//! pool goes on serving: the last line proves it.

use wasmpool::Pool;

fn main() -> anyhow::Result<()> {
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).build()?;

    let show = |what: &str, result: Result<String, wasmpool::Error>| match result {
        Ok(value) => println!("{what}:\n  ok: {value}\n"),
        Err(error) => println!("{what}:\n  {}\n", error.to_string().replace('\n', "\n  ")),
    };

    show("a task name with a typo", pool.call::<_, f64>("sqr", 2.0f64).map(|v| v.to_string()));
    show("an integer where the task takes a float", pool.map::<_, f64>("sqrt", 0..4u32).map(|v| format!("{v:?}")));
    show("a panic in the guest", pool.map::<_, i64>("divide", [(8i64, 2i64), (1, 0)]).map(|v| format!("{v:?}")));
    show("a task returning Err", pool.call::<_, i64>("parse_int", "forty-two").map(|v| v.to_string()));
    show("a trap (unreachable)", pool.call::<_, ()>("trap", 2u32).map(|()| "()".into()));
    show(
        "a module that is not Wasm",
        Pool::builder().module_bytes(b"#!/bin/sh".to_vec()).build().map(|_| "built".into()),
    );
    show(
        "a module file that does not exist",
        Pool::builder().module_file("missing.wasm").build().map(|_| "built".into()),
    );

    let each = pool.map_each::<_, u32>("fail_if_odd", 0..4u32)?;
    println!("map_each keeps going past failures:");
    for (i, r) in each.iter().enumerate() {
        match r {
            Ok(v) => println!("  input #{i}: ok {v}"),
            Err(e) => println!("  input #{i}: {e}"),
        }
    }
    let sum: i64 = pool.call("add", (2i64, 2i64))?;
    println!("\nand the pool still works: add(2, 2) = {sum}");
    Ok(())
}

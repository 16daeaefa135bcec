//! Renders the Mandelbrot set one row per task and writes `mandelbrot.png`.
//!
//! ```text
//! cargo run --release --example mandelbrot -- [WIDTH HEIGHT MAX_ITER OUTPUT]
//! ```
//!
//! The serial loop `for y in 0..h { rows.push(mandel_row(y, w, h, n)) }`
//! becomes one `pool.map` over the same arguments.

use anyhow::Context;
use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;
use wasmpool::Pool;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u32| -> anyhow::Result<u32> {
        args.get(i)
            .map_or(Ok(default), |s| s.parse().with_context(|| format!("argument {} ({s:?}) is not a number", i + 1)))
    };
    let (width, height, max_iter) = (number(0, 1200)?, number(1, 900)?, number(2, 256)?);
    let output = args.get(3).map_or("mandelbrot.png", String::as_str);

    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).build()?;
    let started = Instant::now();
    let rows: Vec<Vec<u8>> = pool.map("mandel_row", (0..height).map(|y| (y, width, height, max_iter)))?;
    let elapsed = started.elapsed();

    let file = File::create(output).with_context(|| format!("cannot create {output}"))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rows.concat())?;
    writer.finish()?;

    println!(
        "{width}x{height}, {max_iter} iterations: {height} rows on {} workers in {:.1} ms; wrote {output}",
        pool.workers(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

//! One row of the Mandelbrot set, the classic embarrassingly parallel map.

use wasmpool_guest::task;

/// Left, right, bottom and top of the rendered region of the complex plane.
pub const REGION: (f64, f64, f64, f64) = (-2.2, 0.8, -1.2, 1.2);

/// Row `y` of a `width` × `height` image of the Mandelbrot set: one byte per
/// pixel, from 0 for points that escape at once to 255 for points that never
/// escape within `max_iter` iterations (brightness grows with the square root
/// of the iteration count, so the filaments around the set show).
#[task]
pub fn mandel_row(y: u32, width: u32, height: u32, max_iter: u32) -> Vec<u8> {
    let (left, right, bottom, top) = REGION;
    let ci = top - (top - bottom) * f64::from(y) / f64::from(height.max(1));
    let max_iter = max_iter.max(1);
    (0..width)
        .map(|x| {
            let cr = left + (right - left) * f64::from(x) / f64::from(width.max(1));
            let n = escape_time(cr, ci, max_iter);
            (255.0 * (f64::from(n) / f64::from(max_iter)).sqrt()) as u8
        })
        .collect()
}

/// Iterations before `z ← z² + c` leaves the circle of radius 2 (at most `max_iter`).
pub fn escape_time(cr: f64, ci: f64, max_iter: u32) -> u32 {
    let (mut zr, mut zi) = (0.0f64, 0.0f64);
    let mut n = 0;
    while n < max_iter {
        let (zr2, zi2) = (zr * zr, zi * zi);
        if zr2 + zi2 > 4.0 {
            break;
        }
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
        n += 1;
    }
    n
}

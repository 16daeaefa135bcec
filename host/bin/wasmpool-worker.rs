//! The worker process of wasmpool's process mode. The host starts it; it is
//! not meant to be run by hand (it speaks a binary protocol on stdin/stdout).

fn main() -> std::process::ExitCode {
    wasmpool::worker_main()
}

;; prelude: memory abi alloc ok
;; A WASI task printing an escape sequence that clears the screen, then
;; "owned" and a NUL byte, to its stdout.
(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
;; iovec at 3000: 10 bytes at 3100.
(data (i32.const 3000) "\1c\0c\00\00\0a\00\00\00")
(data (i32.const 3100) "\1b[2Jowned\00")
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3050)))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\03u32\00")

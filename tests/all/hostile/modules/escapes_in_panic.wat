;; prelude: memory abi alloc ok
;; Panics with a message and a file name full of terminal escape sequences
;; (clear screen, window title, hidden text), NUL bytes and a bidi override.
(import "wasmpool" "panic" (func $panic (param i32 i32 i32 i32 i32 i32)))
;; 36 bytes: ESC[2J ESC]0;pwned BEL NUL NUL "line two" LF ESC[31m "red" U+202E
(data (i32.const 2048) "\1b[2J\1b]0;pwned\07\00\00line two\0a\1b[31mred\e2\80\ae")
;; 17 bytes
(data (i32.const 2200) "src/\1b[8mhidden.rs")
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (call $panic (i32.const 2048) (i32.const 36) (i32.const 2200) (i32.const 17) (i32.const 1) (i32.const 2))
  unreachable)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
